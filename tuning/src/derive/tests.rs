use super::*;
use crate::properties::tests::sample;

fn inputs(cores: usize, memory_bytes: u64, io: bool) -> Inputs {
    Inputs {
        cores,
        memory_bytes,
        memory_source: MemorySource::Given,
        shards_per_core: 1,
        io: io.then(|| (sample(), PathBuf::from("/d/io_properties.toml"))),
    }
}

#[test]
fn device_knobs_follow_the_measured_curve_and_bandwidth() {
    // IOPS 8k, 25k, 45k, 48k at depths 1, 4, 16, 64: 45k is 94% of 48k.
    let k = device_knobs(&sample(), 2);
    assert_eq!(k.io_depth, 16);
    // 1.5 GB/s over 2 cores is 750 MB/s per core: a fast device.
    assert_eq!(k.background_shares, BACKGROUND_SHARES_FAST_DEVICE);
    // Half of 1.5 GB/s over 2 cores = 375 MB/s, rounded down to whole MiB.
    assert_eq!(k.compaction_bytes_per_sec, 357 << 20);
    let k8 = device_knobs(&sample(), 8);
    assert_eq!(
        k8.background_shares, BACKGROUND_SHARES_DEFAULT,
        "187 MB/s per core"
    );
    assert_eq!(k8.compaction_bytes_per_sec, 89 << 20);
    let mut flat = sample();
    for r in &mut flat.random_read {
        r.iops = 1000;
    }
    assert_eq!(device_knobs(&flat, 1).io_depth, 1, "no gain from depth");
}

#[test]
fn memory_splits_into_memtables_and_cache_per_core() {
    let d = derive(&inputs(2, 24 << 30, false));
    // 12 GiB for the node, 6 GiB per core; memtables get 1.5 GiB / 3 = 512 MiB: capped.
    assert_eq!(
        d.value("memtable_bytes"),
        Some(Value::Bytes(MEMTABLE_DERIVED_MAX))
    );
    assert_eq!(
        d.value("block_cache_bytes"),
        Some(Value::Bytes((6 << 30) - (768 << 20)))
    );
    assert_eq!(d.value("cores"), Some(Value::Count(2)));
    assert_eq!(d.value("io_depth"), None, "not measured");
    assert!(d.notes[0].contains("ferrisdb tune disk"), "{:?}", d.notes);

    let small = derive(&inputs(4, 1 << 30, false));
    // 128 MiB per core: memtables at the 16 MiB floor, the cache gets what is left.
    assert_eq!(
        small.value("memtable_bytes"),
        Some(Value::Bytes(MEMTABLE_DERIVED_MIN))
    );
    assert_eq!(
        small.value("block_cache_bytes"),
        Some(Value::Bytes(64 << 20))
    );
    let tiny = derive(&inputs(4, 64 << 20, false));
    assert_eq!(
        tiny.value("block_cache_bytes"),
        Some(Value::Bytes(BLOCK_CACHE_DERIVED_MIN))
    );
}

#[test]
fn rendering_explains_every_value_in_short_lines() {
    let d = derive(&inputs(2, 8 << 30, true));
    let text = d.to_toml();
    let table: toml::Table = toml::from_str(&text).expect("valid TOML");
    for s in &d.settings {
        assert!(table.contains_key(s.key), "{} in {text}", s.key);
        let line = format!("{} = {}", s.key, s.value);
        let at = text.find(&line).expect("value line");
        assert!(
            text[..at].ends_with("\n")
                && text[..at]
                    .trim_end()
                    .lines()
                    .last()
                    .is_some_and(|l| l.starts_with('#')),
            "{} has its reason right above it",
            s.key
        );
    }
    assert_eq!(
        table["memtable_bytes"].as_str(),
        Some("160MiB"),
        "8 GiB: 2 GiB per core, a quarter over 3 memtables"
    );
    assert_eq!(table["io_depth"].as_integer(), Some(16));
    assert!(text.contains("Group commit has no window"), "{text}");
    // The sample device has O_DSYNC figures; they are part of the reason.
    assert!(text.contains("one O_DSYNC write"), "{text}");
    assert!(text.contains("wake-ups included"), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
}

#[test]
fn sizes_show_in_binary_units() {
    assert_eq!(show(512), "512 bytes");
    assert_eq!(show(1536), "1.5 KiB");
    assert_eq!(show(24 << 30), "24.0 GiB");
    assert_eq!(Value::Bytes(64 << 20).to_string(), "\"64MiB\"");
    assert_eq!(Value::Bytes(1000).to_string(), "1000");
    assert_eq!(Value::Count(7).to_string(), "7");
}
