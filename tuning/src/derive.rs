//! `ferrisdb tune config`: a node configuration derived from the machine
//! (cores, memory) and the measured device ([`IoProperties`]), each value
//! with the reason for it. The keys are the node's configuration keys
//! (docs/operations.md); the node's tests load every rendering and every
//! shipped profile through its real configuration parser.
//!
//! The device settings ([`device_knobs`]) are also what a node derives by
//! itself at start from an `io_properties.toml`, for the keys its
//! configuration leaves unset.

use crate::machine::MemorySource;
use crate::properties::IoProperties;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Share of the machine's memory a node plans to use: the rest is for the
/// kernel, the network stack's buffers, allocator slack and other
/// processes. Direct I/O means the page cache needs none of it.
pub const NODE_MEMORY_FRACTION: f64 = 0.5;
/// Share of a core's memory for its memtables (at their worst: the active
/// one plus the frozen ones waiting for flush, in every shard).
pub const MEMTABLE_MEMORY_FRACTION: f64 = 0.25;
/// Bounds of a derived memtable. Below 16 MiB flushes become frequent and
/// L0 tables small; above 256 MiB a restart replays up to that much WAL
/// per shard, and one flush holds the background queue for longer.
pub const MEMTABLE_DERIVED_MIN: u64 = 16 << 20;
pub const MEMTABLE_DERIVED_MAX: u64 = 256 << 20;
/// Smallest derived block cache (the node accepts 1 MiB and up).
pub const BLOCK_CACHE_DERIVED_MIN: u64 = 32 << 20;
/// A queue depth whose random-read IOPS reach this share of the best
/// measured depth is deep enough: deeper only adds waiting in the device.
pub const DEPTH_KNEE_FRACTION: f64 = 0.9;
/// Share of the device's sequential write bandwidth all cores' compactions
/// may use together; the rest stays for the WAL and for flushes.
pub const COMPACTION_BANDWIDTH_FRACTION: f64 = 0.5;
/// Per-core sequential write bandwidth from which a core's compaction is
/// limited by its CPU rather than by the device.
pub const FAST_DEVICE_BYTES_PER_SEC_PER_CORE: u64 = 400_000_000;
/// Background shares on a fast device (a third of a contended core) and
/// otherwise (the default, a fifth).
pub const BACKGROUND_SHARES_FAST_DEVICE: u32 = 500;
pub const BACKGROUND_SHARES_DEFAULT: u32 = ferrisdb_io::executor::BACKGROUND_SHARES_DEFAULT as u32;
/// Frozen memtables per shard (the engine's default).
const IMMUTABLE_MEMTABLES: u64 = 2;

/// The device-dependent settings: what a node uses from io_properties.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceKnobs {
    pub io_depth: u32,
    pub background_shares: u32,
    /// Per core; 0 would mean unlimited.
    pub compaction_bytes_per_sec: u64,
}

/// What a derivation starts from.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub cores: usize,
    pub memory_bytes: u64,
    pub memory_source: MemorySource,
    pub shards_per_core: u32,
    /// The measured device and the file it came from, if any.
    pub io: Option<(IoProperties, PathBuf)>,
}

/// A value in the node's configuration format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Count(u64),
    Bytes(u64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Count(n) => write!(f, "{n}"),
            Value::Bytes(n) if n != 0 && n.is_multiple_of(1 << 20) => {
                write!(f, "\"{}MiB\"", n >> 20)
            }
            Value::Bytes(n) => write!(f, "{n}"),
        }
    }
}

/// One configuration key, its derived value and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub key: &'static str,
    pub value: Value,
    pub why: String,
}

/// A derived configuration.
#[derive(Debug, Clone)]
pub struct Derived {
    /// What it was derived from, one line each.
    pub basis: Vec<String>,
    pub settings: Vec<Setting>,
    /// Things considered that need no setting, with the reason.
    pub notes: Vec<String>,
}

impl Derived {
    pub fn value(&self, key: &str) -> Option<Value> {
        self.settings.iter().find(|s| s.key == key).map(|s| s.value)
    }

    /// The configuration file: a header, then each setting under its reason.
    pub fn to_toml(&self) -> String {
        let mut out =
            String::from("# FerrisDB node configuration derived by `ferrisdb tune config` from:\n");
        for line in &self.basis {
            writeln!(out, "#   {line}").expect("write to String");
        }
        out.push_str(
            "# Use: ferrisdb start --config FILE --data-dir DIR ...; FERRISDB_* variables\n\
             # and flags override it key by key (docs/operations.md).\n",
        );
        for s in &self.settings {
            out.push('\n');
            push_comment(&mut out, &s.why);
            writeln!(out, "{} = {}", s.key, s.value).expect("write to String");
        }
        for note in &self.notes {
            out.push('\n');
            push_comment(&mut out, note);
        }
        out
    }
}

/// `text` as `# ` lines of at most 78 columns.
fn push_comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 78 && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

/// Derives every setting from `inputs`.
///
/// # Panics
/// If `inputs.cores` or `inputs.shards_per_core` is 0 (callers check).
pub fn derive(inputs: &Inputs) -> Derived {
    assert!(inputs.cores >= 1 && inputs.shards_per_core >= 1);
    let mut basis = vec![
        format!("cores: {} (one pinned executor each)", inputs.cores),
        format!(
            "memory: {} ({})",
            show(inputs.memory_bytes),
            inputs.memory_source
        ),
        format!("shards per core: {}", inputs.shards_per_core),
    ];
    let mut settings = vec![Setting {
        key: "cores",
        value: Value::Count(inputs.cores as u64),
        why: format!(
            "One pinned executor per core, {} core(s); each core owns its shards, its block \
             cache and its files. No more than the CPUs the node may use.",
            inputs.cores
        ),
    }];
    settings.extend(memory_settings(inputs));
    let mut notes = Vec::new();
    match &inputs.io {
        Some((props, path)) => {
            basis.push(format!("disk: {}", path.display()));
            basis.push(format!(
                "  taken in {} ({} on {})",
                props.dir.display(),
                props.filesystem,
                props.device
            ));
            settings.extend(device_settings(props, inputs.cores));
            notes.push(group_commit_note(props));
        }
        None => {
            basis.push("disk: not measured (no io_properties.toml)".into());
            notes.push(
                "io_depth, background_shares and compaction_bytes_per_sec keep their defaults: \
                 run `ferrisdb tune disk DIR` on the data directory's device, then derive again \
                 with --io-properties."
                    .into(),
            );
        }
    }
    Derived {
        basis,
        settings,
        notes,
    }
}

fn memory_settings(inputs: &Inputs) -> Vec<Setting> {
    let node = (inputs.memory_bytes as f64 * NODE_MEMORY_FRACTION) as u64;
    let per_core = node / inputs.cores as u64;
    let memtables_per_core = u64::from(inputs.shards_per_core) * (1 + IMMUTABLE_MEMTABLES);
    let memtable_raw = (per_core as f64 * MEMTABLE_MEMORY_FRACTION) as u64 / memtables_per_core;
    let memtable =
        round_down(memtable_raw, 16 << 20).clamp(MEMTABLE_DERIVED_MIN, MEMTABLE_DERIVED_MAX);
    let cache_raw = per_core.saturating_sub(memtable * memtables_per_core);
    let cache = round_down(cache_raw, 64 << 20).max(BLOCK_CACHE_DERIVED_MIN);
    vec![
        Setting {
            key: "memtable_bytes",
            value: Value::Bytes(memtable),
            why: format!(
                "The node plans on {:.0}% of memory ({}), {} per core. A core's memtables take \
                 at most {:.0}% of that ({}) when each of its {} shard(s) has an active memtable \
                 and {IMMUTABLE_MEMTABLES} frozen ones waiting for flush: {} each, rounded down \
                 to 16 MiB and kept within {}..{} (smaller flushes too often, larger replays \
                 more WAL at restart).",
                NODE_MEMORY_FRACTION * 100.0,
                show(node),
                show(per_core),
                MEMTABLE_MEMORY_FRACTION * 100.0,
                show(memtable_raw * memtables_per_core),
                inputs.shards_per_core,
                show(memtable_raw),
                show(MEMTABLE_DERIVED_MIN),
                show(MEMTABLE_DERIVED_MAX),
            ),
        },
        Setting {
            key: "block_cache_bytes",
            value: Value::Bytes(cache),
            why: format!(
                "The rest of the core's {} after its memtables at their worst ({}), rounded \
                 down to 64 MiB: reads bypass the page cache (O_DIRECT), so this cache is the \
                 only one and should take what the memtables leave.",
                show(per_core),
                show(memtable * memtables_per_core)
            ),
        },
    ]
}

/// The device settings with their reasons (the values of [`device_knobs`]).
pub fn device_settings(props: &IoProperties, cores: usize) -> Vec<Setting> {
    let knobs = device_knobs(props, cores);
    let best = props.best_random_read();
    let curve: Vec<String> = props
        .random_read
        .iter()
        .map(|r| format!("{}: {}", r.depth, r.iops))
        .collect();
    let per_core_write = props.sequential.write_bytes_per_sec / cores.max(1) as u64;
    let fast = per_core_write >= FAST_DEVICE_BYTES_PER_SEC_PER_CORE;
    vec![
        Setting {
            key: "io_depth",
            value: Value::Count(u64::from(knobs.io_depth)),
            why: {
                let deepest = props.random_read.last().expect("checked: not empty").depth;
                let knee = if knobs.io_depth == deepest {
                    format!(
                        "IOPS still grow up to depth {deepest}, the deepest measured, so the \
                         cap is {deepest} (measure deeper with --depths to know more)"
                    )
                } else {
                    format!(
                        "depth {} is the shallowest with at least {:.0}% of the best ({} at \
                         depth {}); deeper queues only wait longer inside the device",
                        knobs.io_depth,
                        DEPTH_KNEE_FRACTION * 100.0,
                        best.iops,
                        best.depth
                    )
                };
                format!(
                    "4 KiB random-read IOPS by queue depth ({}): {knee}. Each core keeps at \
                     most this many disk operations in flight and queues the rest in arrival \
                     order.",
                    curve.join(", ")
                )
            },
        },
        Setting {
            key: "background_shares",
            value: Value::Count(u64::from(knobs.background_shares)),
            why: if fast {
                format!(
                    "Sequential writes reach {}/s, {}/s per core: compaction there is bound \
                     by the CPU, not the device, so the background queue gets {} shares \
                     against the foreground's 1000 (a third of a busy core) to keep L0 below \
                     its stop trigger under sustained writes.",
                    show(props.sequential.write_bytes_per_sec),
                    show(per_core_write),
                    knobs.background_shares
                )
            } else {
                format!(
                    "Sequential writes reach {}/s, {}/s per core: compaction waits on the \
                     device, and more CPU shares would not speed it up, so the background \
                     queue keeps the default {} shares against the foreground's 1000.",
                    show(props.sequential.write_bytes_per_sec),
                    show(per_core_write),
                    knobs.background_shares
                )
            },
        },
        Setting {
            key: "compaction_bytes_per_sec",
            value: Value::Bytes(knobs.compaction_bytes_per_sec),
            why: format!(
                "Per core: {:.0}% of the device's {}/s of sequential writes shared by {} \
                 core(s), rounded down to 1 MiB/s, so compactions on every core at once \
                 still leave the WAL and flushes half the device.",
                COMPACTION_BANDWIDTH_FRACTION * 100.0,
                show(props.sequential.write_bytes_per_sec),
                cores
            ),
        },
    ]
}

/// The device settings a node uses from an io_properties.toml.
pub fn device_knobs(props: &IoProperties, cores: usize) -> DeviceKnobs {
    let best = props.best_random_read().iops as f64;
    let knee = props
        .random_read
        .iter()
        .find(|r| r.iops as f64 >= DEPTH_KNEE_FRACTION * best)
        .expect("the best row itself qualifies");
    let io_depth = knee
        .depth
        .clamp(1, ferrisdb_io::executor::IO_DEPTH_MAX as u32);
    let per_core_write = props.sequential.write_bytes_per_sec / cores.max(1) as u64;
    let background_shares = if per_core_write >= FAST_DEVICE_BYTES_PER_SEC_PER_CORE {
        BACKGROUND_SHARES_FAST_DEVICE
    } else {
        BACKGROUND_SHARES_DEFAULT
    };
    let rate = props.sequential.write_bytes_per_sec as f64 * COMPACTION_BANDWIDTH_FRACTION
        / cores.max(1) as f64;
    let compaction_bytes_per_sec = round_down(rate as u64, 1 << 20).max(1 << 20);
    DeviceKnobs {
        io_depth,
        background_shares,
        compaction_bytes_per_sec,
    }
}

fn group_commit_note(props: &IoProperties) -> String {
    let f = &props.fdatasync;
    let lone = match &props.dsync_write {
        Some(d) => format!(
            " A group written while nothing before it awaits a sync is one O_DSYNC write \
             (measured: p50 {:.0} us, p99 {:.0} us, {} durable 4 KiB writes/s).",
            d.p50_us, d.p99_us, d.ops_per_sec
        ),
        None => String::new(),
    };
    let runtime = match &props.runtime_fdatasync {
        Some(r) => format!(
            " Through the engine's executor, its wake-ups included, a sync takes p50 {:.0} us, \
             p99 {:.0} us ({} synced writes/s).",
            r.sync_p50_us, r.sync_p99_us, r.ops_per_sec
        ),
        None => String::new(),
    };
    format!(
        "Group commit has no window to set. The WAL writes a group as soon as the device is \
         free and gathers the next group while the previous fdatasync is in flight, so the \
         window is the device's own sync time (measured: p50 {:.0} us, p99 {:.0} us, {} \
         synced 4 KiB writes/s for one writer).{runtime}{lone} A fixed delay would add its \
         whole length to every lone writer and gather nothing that the sync time does not \
         already gather.",
        f.sync_p50_us, f.sync_p99_us, f.ops_per_sec
    )
}

fn round_down(n: u64, unit: u64) -> u64 {
    n / unit * unit
}

/// Bytes in binary units with one decimal (for explanations, not values).
pub fn show(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests;
