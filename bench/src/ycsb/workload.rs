//! YCSB's CoreWorkload as a typed, checked configuration: every property
//! it reads, with YCSB's defaults, and the choosers (operation, key, field
//! length, scan length) that each worker clones.

use super::generator::{self, AckCounter, Hotspot, ScrambledZipfian, SkewedLatest, Zipfian};
use super::properties::Properties;
use super::record;
use crate::workload::Rng;
use anyhow::{Result, bail};
use std::time::Duration;

/// Every property this implementation reads; anything else is refused.
pub const KNOWN_PROPERTIES: &[&str] = &[
    "workload",
    "recordcount",
    "operationcount",
    "insertstart",
    "insertcount",
    "fieldcount",
    "fieldlength",
    "minfieldlength",
    "fieldlengthdistribution",
    "readallfields",
    "writeallfields",
    "dataintegrity",
    "readproportion",
    "updateproportion",
    "insertproportion",
    "scanproportion",
    "readmodifywriteproportion",
    "requestdistribution",
    "hotspotdatafraction",
    "hotspotopnfraction",
    "minscanlength",
    "maxscanlength",
    "scanlengthdistribution",
    "insertorder",
    "zeropadding",
    "threadcount",
    "target",
    "maxexecutiontime",
];

/// The workload classes accepted for `workload=` (YCSB's old and new package).
const WORKLOAD_CLASSES: [&str; 2] = [
    "site.ycsb.workloads.CoreWorkload",
    "com.yahoo.ycsb.workloads.CoreWorkload",
];
/// Upper bound on `recordcount`, `insertstart + insertcount` and `operationcount`.
pub const RECORD_COUNT_MAX: u64 = 1_000_000_000_000;
/// Upper bound on `fieldcount` (the node's value limit bounds it further).
pub const FIELD_COUNT_MAX: u64 = 10_000;
/// Upper bound on `maxscanlength`: the node's scan limit.
pub const SCAN_LENGTH_MAX: u64 = ferrisdb_proto::SCAN_LIMIT_MAX as u64;
/// Upper bound on `zeropadding` (keys stay far below the key limit).
pub const ZERO_PADDING_MAX: u64 = 1000;
/// Upper bound on `target` (operations per second).
pub const TARGET_OPS_MAX: f64 = 100_000_000.0;
/// Upper bound on `maxexecutiontime` (seconds): one week.
pub const MAX_EXECUTION_SECS_MAX: u64 = 7 * 24 * 3600;

/// A YCSB operation, named as YCSB's output names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Read,
    Update,
    Insert,
    Scan,
    ReadModifyWrite,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::Read,
        Operation::Update,
        Operation::Insert,
        Operation::Scan,
        Operation::ReadModifyWrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::Read => "READ",
            Operation::Update => "UPDATE",
            Operation::Insert => "INSERT",
            Operation::Scan => "SCAN",
            Operation::ReadModifyWrite => "READ-MODIFY-WRITE",
        }
    }

    /// Position in [`Operation::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

// `index` is the position in `ALL`: ALL lists the operations in declaration order.
const _: () = {
    let mut i = 0;
    while i < Operation::ALL.len() {
        assert!(Operation::ALL[i] as usize == i);
        i += 1;
    }
};

/// How a length (of a field, of a scan) is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthDistribution {
    Constant,
    Uniform,
    Zipfian,
}

/// Lengths in `min..=max` (`max` alone when constant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lengths {
    pub distribution: LengthDistribution,
    pub min: u64,
    pub max: u64,
}

impl Lengths {
    pub fn chooser(&self) -> LengthChooser {
        match self.distribution {
            LengthDistribution::Constant => LengthChooser::Constant(self.max),
            LengthDistribution::Uniform => LengthChooser::Uniform(self.min, self.max),
            LengthDistribution::Zipfian => LengthChooser::Zipfian(Zipfian::new(self.min, self.max)),
        }
    }
}

#[derive(Debug, Clone)]
pub enum LengthChooser {
    Constant(u64),
    Uniform(u64, u64),
    Zipfian(Zipfian),
}

impl LengthChooser {
    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        match self {
            LengthChooser::Constant(n) => *n,
            LengthChooser::Uniform(min, max) => generator::uniform(rng, *min, *max),
            LengthChooser::Zipfian(z) => z.next(rng),
        }
    }
}

/// `requestdistribution`: which existing keys operations pick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RequestDistribution {
    Uniform,
    Zipfian,
    Latest,
    Hotspot {
        data_fraction: f64,
        opn_fraction: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOrder {
    /// Key numbers are FNV-hashed before they become key names.
    Hashed,
    /// Key names follow key numbers (zero-padded to `zeropadding`).
    Ordered,
}

/// The checked CoreWorkload configuration.
#[derive(Debug, Clone)]
pub struct CoreWorkload {
    pub record_count: u64,
    /// 0: unbounded (the run needs `maxexecutiontime` then).
    pub operation_count: u64,
    pub insert_start: u64,
    pub insert_count: u64,
    pub field_count: u64,
    pub field_lengths: Lengths,
    pub read_all_fields: bool,
    pub write_all_fields: bool,
    pub data_integrity: bool,
    /// Weights of [`Operation::ALL`], in that order.
    pub mix: [f64; Operation::ALL.len()],
    pub request: RequestDistribution,
    pub scan_lengths: Lengths,
    pub insert_order: InsertOrder,
    pub zero_padding: u64,
    pub thread_count: Option<usize>,
    pub target: Option<f64>,
    pub max_execution_time: Option<Duration>,
}

impl CoreWorkload {
    /// Reads and checks every property; the first problem is the error,
    /// naming where the bad value was set.
    pub fn from_properties(p: &Properties) -> Result<CoreWorkload> {
        p.check_known(KNOWN_PROPERTIES)?;
        if let Some((class, origin)) = p.get("workload")
            && !WORKLOAD_CLASSES.contains(&class)
        {
            bail!(
                "{origin}: workload={class}: only the core workload is built in ({})",
                WORKLOAD_CLASSES[0]
            );
        }
        let record_count = p.required_u64("recordcount", 1, RECORD_COUNT_MAX)?;
        let insert_start = p.u64("insertstart", 0, 0, RECORD_COUNT_MAX)?;
        let insert_count = p.u64(
            "insertcount",
            record_count.saturating_sub(insert_start),
            1,
            RECORD_COUNT_MAX,
        )?;
        if insert_start + insert_count > record_count {
            bail!(
                "insertstart ({insert_start}) + insertcount ({insert_count}) exceeds recordcount ({record_count})"
            );
        }
        let field_lengths = Lengths {
            distribution: p.choice(
                "fieldlengthdistribution",
                "constant",
                &[
                    ("constant", LengthDistribution::Constant),
                    ("uniform", LengthDistribution::Uniform),
                    ("zipfian", LengthDistribution::Zipfian),
                ],
            )?,
            min: p.u64("minfieldlength", 1, 0, u64::MAX)?,
            max: p.u64("fieldlength", 100, 0, u64::MAX)?,
        };
        let scan_lengths = Lengths {
            distribution: p.choice(
                "scanlengthdistribution",
                "uniform",
                &[
                    ("uniform", LengthDistribution::Uniform),
                    ("zipfian", LengthDistribution::Zipfian),
                ],
            )?,
            min: p.u64("minscanlength", 1, 1, SCAN_LENGTH_MAX)?,
            max: p.u64("maxscanlength", 1000, 1, SCAN_LENGTH_MAX)?,
        };
        let mix = [
            p.fraction("readproportion", 0.95)?,
            p.fraction("updateproportion", 0.05)?,
            p.fraction("insertproportion", 0.0)?,
            p.fraction("scanproportion", 0.0)?,
            p.fraction("readmodifywriteproportion", 0.0)?,
        ];
        let mut request = p.choice(
            "requestdistribution",
            "uniform",
            &[
                ("uniform", RequestDistribution::Uniform),
                ("zipfian", RequestDistribution::Zipfian),
                ("latest", RequestDistribution::Latest),
                (
                    "hotspot",
                    RequestDistribution::Hotspot {
                        data_fraction: 0.0,
                        opn_fraction: 0.0,
                    },
                ),
            ],
        )?;
        if let RequestDistribution::Hotspot {
            data_fraction,
            opn_fraction,
        } = &mut request
        {
            *data_fraction = p.fraction("hotspotdatafraction", 0.2)?;
            *opn_fraction = p.fraction("hotspotopnfraction", 0.8)?;
        }
        let target = p.f64("target", 0.0, TARGET_OPS_MAX)?;
        let w = CoreWorkload {
            record_count,
            operation_count: p.u64("operationcount", 0, 0, RECORD_COUNT_MAX)?,
            insert_start,
            insert_count,
            field_count: p.u64("fieldcount", 10, 1, FIELD_COUNT_MAX)?,
            field_lengths,
            read_all_fields: p.bool("readallfields", true)?,
            write_all_fields: p.bool("writeallfields", false)?,
            data_integrity: p.bool("dataintegrity", false)?,
            mix,
            request,
            scan_lengths,
            insert_order: p.choice(
                "insertorder",
                "hashed",
                &[
                    ("hashed", InsertOrder::Hashed),
                    ("ordered", InsertOrder::Ordered),
                ],
            )?,
            zero_padding: p.u64("zeropadding", 1, 1, ZERO_PADDING_MAX)?,
            thread_count: p
                .opt_u64("threadcount", 1, crate::flags::CONCURRENCY_MAX as u64)?
                .map(|t| t as usize),
            target: target.filter(|t| *t > 0.0),
            max_execution_time: p
                .opt_u64("maxexecutiontime", 1, MAX_EXECUTION_SECS_MAX)?
                .map(Duration::from_secs),
        };
        w.check()?;
        Ok(w)
    }

    /// Rules between properties.
    fn check(&self) -> Result<()> {
        if self.mix.iter().sum::<f64>() <= 0.0 {
            bail!("every operation proportion is 0: nothing to run");
        }
        for (name, l) in [("field", self.field_lengths), ("scan", self.scan_lengths)] {
            if l.distribution != LengthDistribution::Constant && l.min > l.max {
                bail!(
                    "min{name}length ({}) exceeds max {name} length ({})",
                    l.min,
                    l.max
                );
            }
        }
        if self.data_integrity && self.field_lengths.distribution != LengthDistribution::Constant {
            bail!("dataintegrity=true needs fieldlengthdistribution=constant (as in YCSB)");
        }
        let bytes = record::bytes_max(self.field_count, self.field_lengths.max);
        if bytes > ferrisdb_proto::VALUE_BYTES_MAX as u64 {
            bail!(
                "a record of fieldcount={} fields of up to fieldlength={} bytes takes up to {bytes} bytes \
                 encoded, above the node's value limit of {} bytes; lower fieldcount or fieldlength",
                self.field_count,
                self.field_lengths.max,
                ferrisdb_proto::VALUE_BYTES_MAX
            );
        }
        Ok(())
    }

    /// Weight of `op` over the sum of the weights.
    pub fn share(&self, op: Operation) -> f64 {
        self.mix[op.index()] / self.mix.iter().sum::<f64>()
    }

    /// A draw of the next operation by the mix's weights.
    pub fn next_operation(&self, rng: &mut Rng) -> Operation {
        let mut left = rng.unit_f64() * self.mix.iter().sum::<f64>();
        for op in Operation::ALL {
            let w = self.mix[op.index()];
            if left < w {
                return op;
            }
            left -= w;
        }
        *Operation::ALL
            .iter()
            .rev()
            .find(|op| self.mix[op.index()] > 0.0)
            .expect("checked: some proportion is positive")
    }

    /// The key chooser of the run phase (YCSB's `keychooser`), built once
    /// and cloned into every worker.
    pub fn key_chooser(&self) -> KeyChooser {
        let lower = self.insert_start;
        let upper = self.insert_start + self.insert_count - 1;
        match self.request {
            RequestDistribution::Uniform => KeyChooser::Uniform(lower, upper),
            RequestDistribution::Zipfian => {
                // Room for the keys the run will insert (YCSB doubles the
                // expected count so that new keys are not all cold).
                let expected_new =
                    (self.operation_count as f64 * self.share(Operation::Insert) * 2.0) as u64;
                KeyChooser::Zipfian(ScrambledZipfian::new(lower, upper + expected_new))
            }
            RequestDistribution::Latest => KeyChooser::Latest(SkewedLatest::new(lower, upper)),
            RequestDistribution::Hotspot {
                data_fraction,
                opn_fraction,
            } => KeyChooser::Hotspot(Hotspot::new(lower, upper, data_fraction, opn_fraction)),
        }
    }
}

/// Picks the key number of a read, update, scan or read-modify-write.
#[derive(Debug, Clone)]
pub enum KeyChooser {
    Uniform(u64, u64),
    Zipfian(ScrambledZipfian),
    Latest(SkewedLatest),
    Hotspot(Hotspot),
}

/// Draws of a key beyond the acknowledged ones before giving up on the
/// distribution and taking the newest acknowledged key.
const KEY_REDRAWS_MAX: u32 = 1000;

impl KeyChooser {
    /// YCSB's `nextKeynum`: a draw that is never beyond the newest
    /// acknowledged insert (redrawn until it is).
    pub fn next(&mut self, rng: &mut Rng, acked: &AckCounter) -> u64 {
        let newest = acked
            .newest_acknowledged()
            .expect("the load phase's keys count as acknowledged");
        for _ in 0..KEY_REDRAWS_MAX {
            let k = match self {
                KeyChooser::Uniform(lower, upper) => generator::uniform(rng, *lower, *upper),
                KeyChooser::Zipfian(z) => z.next(rng),
                KeyChooser::Latest(l) => return l.next(rng, newest),
                KeyChooser::Hotspot(h) => h.next(rng),
            };
            if k <= newest {
                return k;
            }
        }
        newest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    pub(crate) fn workload(text: &str, overrides: &[&str]) -> Result<CoreWorkload> {
        let mut p = Properties::new();
        p.parse_text(text, Path::new("wl"))?;
        for o in overrides {
            p.set_override(o)?;
        }
        CoreWorkload::from_properties(&p)
    }

    const A: &str = "recordcount=1000\noperationcount=1000\nworkload=site.ycsb.workloads.CoreWorkload\n\
                     readallfields=true\nreadproportion=0.5\nupdateproportion=0.5\nscanproportion=0\n\
                     insertproportion=0\nrequestdistribution=zipfian\n";

    #[test]
    fn workload_a_with_overrides() {
        let w = workload(A, &["recordcount=5000", "fieldcount=4", "fieldlength=8"]).expect("valid");
        assert_eq!(
            (w.record_count, w.operation_count, w.insert_count),
            (5000, 1000, 5000)
        );
        assert_eq!((w.field_count, w.field_lengths.max), (4, 8));
        assert_eq!(w.request, RequestDistribution::Zipfian);
        assert_eq!(w.share(Operation::Read), 0.5);
        assert!(w.read_all_fields && !w.write_all_fields);
        assert_eq!(w.insert_order, InsertOrder::Hashed);
        assert_eq!((w.thread_count, w.target), (None, None));
    }

    #[test]
    fn operation_mix_follows_the_proportions() {
        let w = workload(
            A,
            &[
                "readproportion=0.2",
                "updateproportion=0.3",
                "scanproportion=0.5",
            ],
        )
        .expect("valid");
        let mut rng = Rng::new(9);
        let mut counts = [0u32; 5];
        for _ in 0..100_000 {
            counts[w.next_operation(&mut rng).index()] += 1;
        }
        assert!((19_000..21_000).contains(&counts[0]), "{counts:?}");
        assert!((29_000..31_000).contains(&counts[1]), "{counts:?}");
        assert!((49_000..51_000).contains(&counts[3]), "{counts:?}");
        assert_eq!(counts[2] + counts[4], 0);
    }

    #[test]
    fn bad_values_name_where_they_were_set() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["recordcount=abc"],
                "-p: recordcount=abc: not a whole number",
            ),
            (&["recordcount=0"], "-p: recordcount=0: must be in 1..="),
            (
                &["readproportion=1.5"],
                "-p: readproportion=1.5: must be in 0..=1",
            ),
            (&["readproportion=x"], "-p: readproportion=x: not a number"),
            (
                &["readallfields=yes"],
                "-p: readallfields=yes: expected true or false",
            ),
            (
                &["requestdistribution=exponential"],
                "-p: requestdistribution=exponential: not supported here; one of uniform, zipfian, latest, hotspot",
            ),
            (
                &["workload=site.ycsb.workloads.TimeSeriesWorkload"],
                "-p: workload=site.ycsb.workloads.TimeSeriesWorkload: only the core workload",
            ),
            (
                &["readproportion=0", "updateproportion=0"],
                "every operation proportion is 0",
            ),
            (
                &["insertstart=600", "insertcount=500"],
                "insertstart (600) + insertcount (500) exceeds recordcount (1000)",
            ),
            (
                &["fieldcount=10", "fieldlength=10000"],
                "above the node's value limit of 100000 bytes",
            ),
            (
                &["minscanlength=50", "maxscanlength=10"],
                "minscanlength (50) exceeds max scan length (10)",
            ),
            (
                &["dataintegrity=true", "fieldlengthdistribution=uniform"],
                "dataintegrity=true needs",
            ),
            (&["threadcount=0"], "-p: threadcount=0: must be in 1..="),
            (&["tabel=usertable"], "-p: unknown property `tabel`"),
        ];
        for (overrides, want) in cases {
            let err = workload(A, overrides).expect_err(want).to_string();
            assert!(
                err.starts_with(want) || err.contains(want),
                "{overrides:?}: {err}"
            );
        }
        let err = workload("readproportion=1\n", &[])
            .expect_err("no recordcount")
            .to_string();
        assert!(err.starts_with("recordcount is not set"), "{err}");
        let err = workload("recordcount=1\nfieldcount=-1\n", &[])
            .expect_err("negative")
            .to_string();
        assert_eq!(err, "wl:2: fieldcount=-1: not a whole number");
    }

    #[test]
    fn a_record_just_under_the_value_limit_is_accepted() {
        let w = workload(A, &["fieldcount=1", "fieldlength=99990"]).expect("fits");
        assert!(record::bytes_max(w.field_count, w.field_lengths.max) <= 100_000);
        assert!(workload(A, &["fieldcount=1", "fieldlength=99999"]).is_err());
    }

    #[test]
    fn zipfian_key_range_makes_room_for_inserts() {
        let w = workload(
            A,
            &[
                "insertproportion=0.5",
                "readproportion=0.5",
                "updateproportion=0",
            ],
        )
        .expect("valid");
        let acked = AckCounter::new(w.record_count);
        let mut chooser = w.key_chooser();
        let mut rng = Rng::new(3);
        for _ in 0..10_000 {
            assert!(chooser.next(&mut rng, &acked) < 1000);
        }
        for _ in 0..500 {
            let k = acked.next_value();
            acked.acknowledge(k);
        }
        let beyond = (0..10_000)
            .filter(|_| chooser.next(&mut rng, &acked) >= 1000)
            .count();
        assert!(
            beyond > 1000,
            "new keys get picked once acknowledged: {beyond}"
        );
    }
}
