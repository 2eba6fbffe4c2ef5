//! Keys, values and the order in which each worker visits keys. Both engines
//! get byte-identical streams for one `--seed`.

use crate::flags::{BenchSpec, Benchmark, EngineArgs};
use std::sync::Arc;

/// splitmix64: tiny, seedable, and uniform enough to choose keys.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A stream seed distinct per (seed, benchmark position, worker).
    pub fn for_stream(seed: u64, bench_index: usize, worker: usize) -> Self {
        let mut r = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
        let a = r.next_u64() ^ (bench_index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut r = Rng(a);
        Rng(r.next_u64() ^ (worker as u64).wrapping_mul(0xA24B_AED4_963E_E407))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; bias below 2^-32 for our n).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "empty range");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Keys are the key number in zero-padded decimal, `key_size` bytes, so they
/// sort numerically; a missing key is an existing one plus `.` (LevelDB's
/// readmissing), which lands between real keys so only filters can skip it.
#[derive(Debug, Clone, Copy)]
pub struct KeyFormat {
    size: usize,
}

impl KeyFormat {
    /// # Panics
    /// If `size` cannot hold `num - 1` (checked earlier by `EngineArgs::validate`).
    pub fn new(size: usize, num: u64) -> Self {
        let digits = Self::digits(num);
        assert!(size >= digits, "key_size {size} < {digits} digits");
        KeyFormat { size }
    }

    /// Decimal digits of the largest key number, `num - 1`: the shortest
    /// `key_size` for `num` keys.
    pub fn digits(num: u64) -> usize {
        (num.max(2) - 1).ilog10() as usize + 1
    }

    pub fn write(&self, k: u64, buf: &mut Vec<u8>) {
        buf.clear();
        buf.resize(self.size, b'0');
        let mut k = k;
        for slot in buf.iter_mut().rev() {
            if k == 0 {
                break;
            }
            *slot = b'0' + (k % 10) as u8;
            k /= 10;
        }
        assert!(k == 0, "key number does not fit key_size");
    }

    /// The key a reader asks for: key `k`, or a key that was never written.
    pub fn write_read_key(&self, k: u64, missing: bool, buf: &mut Vec<u8>) {
        if missing {
            self.write_missing(k, buf);
        } else {
            self.write(k, buf);
        }
    }

    pub fn write_missing(&self, k: u64, buf: &mut Vec<u8>) {
        self.write(k, buf);
        buf.push(b'.');
    }
}

/// db_bench's RandomGenerator: a buffer of 100-byte pieces, each a random
/// printable prefix of `ratio * 100` bytes repeated to fill the piece; values
/// are consecutive slices of it.
#[derive(Debug, Clone)]
pub struct ValueGen {
    data: Arc<Vec<u8>>,
    pos: usize,
}

impl ValueGen {
    pub fn new(ratio: f64, value_size: usize, seed: u64) -> Self {
        const PIECE: usize = 100;
        let total = (1usize << 20).max(2 * value_size + PIECE);
        let raw_len = ((PIECE as f64 * ratio) as usize).max(1);
        let mut rng = Rng::new(seed ^ 0x5EED_0FDA_7A00);
        let mut data = Vec::with_capacity(total + PIECE);
        while data.len() < total {
            let raw: Vec<u8> = (0..raw_len).map(|_| b' ' + rng.below(95) as u8).collect();
            data.extend(raw.iter().cycle().take(PIECE));
        }
        ValueGen {
            data: Arc::new(data),
            pos: 0,
        }
    }

    /// Another generator over the same bytes, starting at its own offset.
    pub fn fork(&self, worker: usize) -> Self {
        ValueGen {
            data: self.data.clone(),
            pos: (worker * 7919) % (self.data.len() / 2),
        }
    }

    pub fn next(&mut self, len: usize) -> &[u8] {
        assert!(len < self.data.len(), "value larger than generator");
        if self.pos + len > self.data.len() {
            self.pos = 0;
        }
        self.pos += len;
        &self.data[self.pos - len..self.pos]
    }
}

/// Which key numbers a benchmark visits.
#[derive(Debug, Clone)]
pub enum KeyOrder {
    /// 0, 1, 2, ... interleaved across workers.
    Sequential,
    /// Every key of `0..num` once, shuffled, interleaved across workers.
    Permutation(Arc<Vec<u64>>),
    /// Independent uniform draws from `0..num` per worker.
    Uniform,
}

/// What one benchmark run does, shared by both engines.
#[derive(Debug, Clone)]
pub struct Plan {
    pub spec: BenchSpec,
    pub index: usize,
    pub threads: usize,
    /// Operations (keys written, reads, seeks, entries scanned), all workers.
    pub ops: u64,
    pub num: u64,
    pub sync: bool,
    pub batch_size: usize,
    pub seek_nexts: usize,
    pub value_size: usize,
    pub keys: KeyFormat,
    order: KeyOrder,
    seed: u64,
}

/// Sync writes are slow: fillsync does num/100 of them (at least this many).
pub const FILLSYNC_OPS_MIN: u64 = 1000;

impl Plan {
    pub fn new(args: &EngineArgs, index: usize, spec: BenchSpec) -> Plan {
        let num = args.num;
        let (ops, order) = match spec.bench {
            Benchmark::FillSeq => (num, KeyOrder::Sequential),
            Benchmark::FillRandom => {
                let mut rng = Rng::for_stream(args.seed, index, usize::MAX);
                (
                    num,
                    KeyOrder::Permutation(Arc::new(permutation(num, &mut rng))),
                )
            }
            Benchmark::Overwrite => (num, KeyOrder::Uniform),
            Benchmark::FillSync => ((num / 100).max(FILLSYNC_OPS_MIN), KeyOrder::Uniform),
            Benchmark::ReadSeq => (args.reads(), KeyOrder::Sequential),
            Benchmark::ReadRandom
            | Benchmark::ReadMissing
            | Benchmark::SeekRandom
            | Benchmark::ReadWhileWriting => (args.reads(), KeyOrder::Uniform),
        };
        Plan {
            spec,
            index,
            threads: spec.threads_or(args.threads),
            ops,
            num,
            sync: args.sync || spec.bench == Benchmark::FillSync,
            batch_size: args.batch_size,
            seek_nexts: args.seek_nexts,
            value_size: args.value_size,
            keys: KeyFormat::new(args.key_size, num),
            order,
            seed: args.seed,
        }
    }

    pub fn bench(&self) -> Benchmark {
        self.spec.bench
    }

    /// Worker `w`'s share of `ops` (shares differ by at most one).
    pub fn worker_ops(&self, w: usize) -> u64 {
        let t = self.threads as u64;
        self.ops / t + u64::from((w as u64) < self.ops % t)
    }

    /// Worker `w`'s key numbers; worker `threads` is readwhilewriting's writer.
    pub fn worker_keys(&self, w: usize) -> KeyStream {
        KeyStream {
            order: self.order.clone(),
            rng: Rng::for_stream(self.seed, self.index, w),
            next: w as u64,
            step: self.threads as u64,
            num: self.num,
        }
    }

    /// Worker `w`'s writes with values from `values`: its share of `ops`,
    /// or, if `endless` (readwhilewriting's writer), until told to stop.
    pub fn worker_writes(&self, w: usize, values: ValueGen, endless: bool) -> Writes {
        Writes {
            keys: self.worker_keys(w),
            format: self.keys,
            values,
            value_size: self.value_size,
            batch_size: self.batch_size as u64,
            left: if endless {
                u64::MAX
            } else {
                self.worker_ops(w)
            },
            key: Vec::new(),
            bytes: 0,
        }
    }
}

/// One worker's stream of writes, each of at most `batch_size` entries,
/// shared by every engine's write loop:
///
/// ```text
/// while let Some(n) = writes.next_write(stopped) {
///     // n == 1: put writes.entry(); else a batch of n writes.entry()
///     meter.finish_op(start, n, writes.take_bytes());
/// }
/// ```
#[derive(Debug)]
pub struct Writes {
    keys: KeyStream,
    format: KeyFormat,
    values: ValueGen,
    value_size: usize,
    batch_size: u64,
    /// Entries still to write.
    left: u64,
    key: Vec<u8>,
    /// Key and value bytes of the entries since the last `take_bytes`.
    bytes: u64,
}

impl Writes {
    /// Entries in the next write; `None` once the share is written or when
    /// `stop` is set.
    pub fn next_write(&mut self, stop: bool) -> Option<u64> {
        if stop || self.left == 0 {
            return None;
        }
        let n = self.left.min(self.batch_size);
        self.left -= n;
        Some(n)
    }

    /// The next entry: (key, value).
    pub fn entry(&mut self) -> (&[u8], &[u8]) {
        self.format.write(self.keys.next_key(), &mut self.key);
        let value = self.values.next(self.value_size);
        self.bytes += (self.key.len() + value.len()) as u64;
        (&self.key, value)
    }

    /// Key and value bytes of the entries taken since the last call.
    pub fn take_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.bytes)
    }
}

#[derive(Debug)]
pub struct KeyStream {
    order: KeyOrder,
    rng: Rng,
    next: u64,
    step: u64,
    num: u64,
}

impl KeyStream {
    pub fn next_key(&mut self) -> u64 {
        match &self.order {
            KeyOrder::Uniform => self.rng.below(self.num),
            KeyOrder::Sequential => {
                let k = self.next % self.num;
                self.next += self.step;
                k
            }
            KeyOrder::Permutation(p) => {
                let k = p[(self.next % self.num) as usize];
                self.next += self.step;
                k
            }
        }
    }
}

/// Fisher-Yates shuffle of `0..num`.
pub fn permutation(num: u64, rng: &mut Rng) -> Vec<u64> {
    let mut v: Vec<u64> = (0..num).collect();
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fixed_width_decimal_and_sort_numerically() {
        let f = KeyFormat::new(16, 1_000_000);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        f.write(42, &mut a);
        assert_eq!(a, b"0000000000000042");
        f.write(1000, &mut b);
        assert!(a < b);
        f.write_missing(42, &mut b);
        assert_eq!(b, b"0000000000000042.");
        assert!(a < b);
    }

    #[test]
    fn permutation_covers_every_key_once() {
        let mut p = permutation(1000, &mut Rng::new(7));
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn workers_split_the_permutation_without_overlap() {
        let args = crate::flags::tests_support::args(&["--num=1001", "--threads=3"]);
        let spec = crate::flags::parse_spec("fillrandom").expect("known");
        let plan = Plan::new(&args, 0, spec);
        let mut seen = Vec::new();
        for w in 0..3 {
            let mut ks = plan.worker_keys(w);
            for _ in 0..plan.worker_ops(w) {
                seen.push(ks.next_key());
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..1001).collect::<Vec<_>>());
    }

    #[test]
    fn writes_batch_the_worker_share() {
        let args = crate::flags::tests_support::args(&["--num=10", "--batch_size=4"]);
        let spec = crate::flags::parse_spec("fillseq").expect("known");
        let plan = Plan::new(&args, 0, spec);
        let mut writes = plan.worker_writes(0, ValueGen::new(0.5, 100, 1), false);
        let mut keys = Vec::new();
        let mut sizes = Vec::new();
        while let Some(n) = writes.next_write(false) {
            for _ in 0..n {
                let (key, value) = writes.entry();
                assert_eq!(value.len(), 100);
                keys.push(key.to_vec());
            }
            sizes.push((n, writes.take_bytes()));
        }
        assert_eq!(sizes, [(4, 4 * 116), (4, 4 * 116), (2, 2 * 116)]);
        assert_eq!(
            keys.first().map(Vec::as_slice),
            Some(&b"0000000000000000"[..])
        );
        assert_eq!(
            keys.last().map(Vec::as_slice),
            Some(&b"0000000000000009"[..])
        );
        let mut endless = plan.worker_writes(1, ValueGen::new(0.5, 100, 1), true);
        assert_eq!(endless.next_write(false), Some(4));
        assert_eq!(endless.next_write(true), None);
    }

    #[test]
    fn values_compress_like_db_bench() {
        let mut g = ValueGen::new(0.5, 100, 1);
        let v = g.next(100).to_vec();
        assert_eq!(v.len(), 100);
        assert_eq!(v[..50], v[50..]);
        assert!(v.iter().all(|c| (b' '..=b'~').contains(c)));
    }
}
