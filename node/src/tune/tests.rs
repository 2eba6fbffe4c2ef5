use super::*;
use crate::config::{ConfigArgs, ConfigFile, resolve};
use ferrisdb_tuning::derive::Value;
use std::path::Path;

fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tuning/profiles")
}

/// How `config` must be loaded by a node: through the real parser, with
/// the data directory (and insecure mode) from flags as an operator would.
fn load_as_node(path: &Path, text: &str) -> crate::config::NodeConfig {
    let args = ConfigArgs {
        data_dir: Some("/var/lib/ferrisdb".into()),
        insecure: true,
        ..ConfigArgs::default()
    };
    resolve(Some(ConfigFile { path, text }), &|_| None, &args)
        .unwrap_or_else(|e| panic!("{} does not load: {e:#}", path.display()))
}

fn inputs_for(cores: usize, memory: u64, io: &str) -> TuneConfigArgs {
    TuneConfigArgs {
        cores: Some(cores),
        memory: Some(memory),
        io_properties: Some(profiles_dir().join(io)),
        shards_per_core: 1,
        out: None,
    }
}

/// Each shipped profile loads through the node's parser and holds exactly
/// the values `ferrisdb tune config` derives for the machine it describes.
#[test]
fn shipped_profiles_load_and_match_what_tune_config_derives() {
    let profiles = [
        (
            "small-vm.toml",
            inputs_for(2, 4 << 30, "small-vm.io_properties.toml"),
        ),
        (
            "nvme-server.toml",
            inputs_for(32, 256 << 30, "nvme-server.io_properties.toml"),
        ),
    ];
    let shipped: Vec<_> = std::fs::read_dir(profiles_dir())
        .expect("profiles dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|n| n.ends_with(".toml") && !n.ends_with(".io_properties.toml"))
        .collect();
    assert_eq!(
        shipped.len(),
        profiles.len(),
        "a test case per profile: {shipped:?}"
    );
    for (name, args) in profiles {
        let path = profiles_dir().join(name);
        let text = std::fs::read_to_string(&path).expect("read profile");
        let node = load_as_node(&path, &text);
        let derived = derive::derive(&config_inputs(&args).expect("inputs"));
        let count = |key: &str| match derived.value(key) {
            Some(Value::Count(n) | Value::Bytes(n)) => n,
            None => panic!("{key} derived"),
        };
        assert_eq!(node.cores as u64, count("cores"), "{name}");
        assert_eq!(node.memtable_bytes, count("memtable_bytes"), "{name}");
        assert_eq!(node.block_cache_bytes, count("block_cache_bytes"), "{name}");
        assert_eq!(u64::from(node.io_depth), count("io_depth"), "{name}");
        assert_eq!(
            u64::from(node.background_shares),
            count("background_shares"),
            "{name}"
        );
        assert_eq!(
            node.compaction_bytes_per_sec,
            count("compaction_bytes_per_sec"),
            "{name}"
        );
        assert_eq!(
            derived.settings.len(),
            6,
            "{name}: every derived key is checked above"
        );
        assert!(
            text.contains("Group commit has no window"),
            "{name} explains group commit"
        );
    }
}

#[test]
fn tune_config_output_is_a_node_config() {
    for io in [None, Some("small-vm.io_properties.toml")] {
        let args = TuneConfigArgs {
            io_properties: io.map(|f| profiles_dir().join(f)),
            ..inputs_for(1, 2 << 30, "unused")
        };
        let text = derive::derive(&config_inputs(&args).expect("inputs")).to_toml();
        let node = load_as_node(Path::new("derived.toml"), &text);
        assert_eq!(node.cores, 1);
        assert_eq!(
            node.io_depth == crate::config::IO_DEPTH_DEFAULT,
            io.is_none(),
            "{text}"
        );
    }
}

#[test]
fn tune_config_refuses_bad_input() {
    type Change = fn(&mut TuneConfigArgs);
    let cases: [(Change, &str); 5] = [
        (|a| a.cores = Some(0), "--cores is 0"),
        (|a| a.cores = Some(65), "--cores is 65"),
        (|a| a.shards_per_core = 0, "--shards-per-core is 0"),
        (|a| a.memory = Some(0), "--memory must be above 0"),
        (
            |a| a.io_properties = Some("/nonexistent/io.toml".into()),
            "read /nonexistent/io.toml",
        ),
    ];
    for (change, want) in cases {
        let mut args = inputs_for(2, 1 << 30, "small-vm.io_properties.toml");
        change(&mut args);
        let e = format!("{:#}", config_inputs(&args).expect_err(want));
        assert!(e.starts_with(want), "{e}");
    }
}

fn compaction_args() -> CompactionArgs {
    CompactionArgs {
        keys: 2000,
        update_ratio: 0.5,
        distributions: vec!["uniform".into(), "zipf".into()],
        zipf_exponent: 0.99,
        entry_bytes: 128,
        scale: 4096,
        multipliers: vec![4, 10],
        l0_triggers: vec![2],
        sst_bytes: vec![16 << 20],
        memtable_bytes: vec![],
        seed: 1,
        max_secs: 60.0,
    }
}

#[test]
fn tune_compaction_runs_tiny_and_refuses_bad_input() {
    compaction(&compaction_args()).expect("tiny run");
    type Change = fn(&mut CompactionArgs);
    let cases: [(Change, &str); 5] = [
        (|a| a.scale = 0, "--scale"),
        (
            |a| a.distributions = vec!["pareto".into()],
            "unknown distribution \"pareto\"",
        ),
        (|a| a.update_ratio = 1.0, "--update-ratio"),
        (
            |a| a.multipliers = vec![1],
            "multipliers must be at least 2",
        ),
        (|a| a.max_secs = 0.0, "--max-secs"),
    ];
    for (change, want) in cases {
        let mut args = compaction_args();
        change(&mut args);
        let e = format!("{:#}", compaction(&args).expect_err(want));
        assert!(e.contains(want), "{e}");
    }
}
