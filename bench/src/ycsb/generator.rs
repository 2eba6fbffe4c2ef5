//! YCSB's number generators (`site.ycsb.generator`), ported: zipfian after
//! Gray et al. with YCSB's constant 0.99, scrambled zipfian (the zipfian's
//! item hashed with FNV-1a so that popular keys are spread over the key
//! space), skewed latest, hotspot and uniform; and the acknowledged-insert
//! counter that keeps readers away from keys not inserted yet.

use crate::workload::Rng;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// YCSB's zipfian constant (`ZipfianGenerator.ZIPFIAN_CONSTANT`).
pub const ZIPFIAN_CONSTANT: f64 = 0.99;
/// Items of the zipfian behind a scrambled zipfian (YCSB's `ITEM_COUNT`):
/// large, so that hashing its draws into the key range keeps the skew.
const SCRAMBLED_ITEMS: u64 = 10_000_000_000;
/// zeta(SCRAMBLED_ITEMS, 0.99), precomputed by YCSB (`ZETAN`) because
/// summing ten billion terms takes minutes.
const SCRAMBLED_ZETAN: f64 = 26.469_028_201_783_02;
/// Inserts that may be in flight (acknowledged out of order) at once; YCSB
/// fails the same way past its window of 2^20.
pub const UNACKNOWLEDGED_MAX: usize = 1 << 20;

/// YCSB's `Utils.fnvhash64`: FNV-1a over the 8 little-endian bytes of
/// `val`, then the absolute value as a signed 64-bit integer. (Java's
/// `Math.abs(Long.MIN_VALUE)` stays negative; here it is 2^63.)
pub fn fnv_hash64(val: u64) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    let mut v = val;
    for _ in 0..8 {
        hash ^= v & 0xff;
        hash = hash.wrapping_mul(1_099_511_628_211);
        v >>= 8;
    }
    (hash as i64).unsigned_abs()
}

/// Sum of `1 / (i + 1)^theta` for `i` in `start..n`, added to `initial`.
fn zeta(start: u64, n: u64, theta: f64, initial: f64) -> f64 {
    (start..n).fold(initial, |sum, i| sum + 1.0 / ((i + 1) as f64).powf(theta))
}

/// Zipfian over `base..base + items`: item `base` is the most popular,
/// item `base + i` has weight `1 / (i + 1)^0.99`.
#[derive(Debug, Clone)]
pub struct Zipfian {
    base: u64,
    /// Items the cached `zetan` covers.
    items: u64,
    theta: f64,
    zeta2theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    /// Items `min..=max`.
    ///
    /// # Panics
    /// If `max < min` (the workload checks its ranges first).
    pub fn new(min: u64, max: u64) -> Self {
        assert!(max >= min, "zipfian range {min}..={max} is empty");
        let items = max - min + 1;
        Self::with_zetan(min, items, zeta(0, items, ZIPFIAN_CONSTANT, 0.0))
    }

    fn with_zetan(base: u64, items: u64, zetan: f64) -> Self {
        let theta = ZIPFIAN_CONSTANT;
        let mut z = Zipfian {
            base,
            items,
            theta,
            zeta2theta: zeta(0, 2, theta, 0.0),
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta: 0.0,
        };
        z.eta = z.eta_for(items);
        z
    }

    fn eta_for(&self, items: u64) -> f64 {
        (1.0 - (2.0 / items as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta2theta / self.zetan)
    }

    /// A draw over all the items.
    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        self.next_among(rng, self.items)
    }

    /// A draw over the first `items` items. When `items` grew, zeta is
    /// extended incrementally (only the new terms are summed), as YCSB
    /// does for the latest distribution; unlike YCSB, eta is recomputed
    /// for the new count (Gray et al.'s formula), not for the old one.
    pub fn next_among(&mut self, rng: &mut Rng, items: u64) -> u64 {
        assert!(items >= 1, "a zipfian draw needs at least one item");
        if items > self.items {
            self.zetan = zeta(self.items, items, self.theta, self.zetan);
            self.items = items;
            self.eta = self.eta_for(items);
        }
        let u = rng.unit_f64();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return self.base;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return self.base + 1.min(items - 1);
        }
        let offset = (items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        self.base + offset.min(items - 1)
    }
}

/// YCSB's `ScrambledZipfianGenerator`: a zipfian over ten billion items,
/// hashed into `min..=max`, so that the popular keys are scattered over the
/// key space instead of clustered at its start.
#[derive(Debug, Clone)]
pub struct ScrambledZipfian {
    min: u64,
    count: u64,
    zipfian: Zipfian,
}

impl ScrambledZipfian {
    /// # Panics
    /// If `max < min`.
    pub fn new(min: u64, max: u64) -> Self {
        assert!(max >= min, "scrambled zipfian range {min}..={max} is empty");
        ScrambledZipfian {
            min,
            count: max - min + 1,
            zipfian: Zipfian::with_zetan(0, SCRAMBLED_ITEMS + 1, SCRAMBLED_ZETAN),
        }
    }

    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        self.min + fnv_hash64(self.zipfian.next(rng)) % self.count
    }
}

/// YCSB's `SkewedLatestGenerator`: the most recently inserted keys are the
/// most popular (zipfian over the distance from the newest key).
#[derive(Debug, Clone)]
pub struct SkewedLatest {
    lowest: u64,
    zipfian: Zipfian,
}

impl SkewedLatest {
    /// Keys from `lowest` up; `newest` is the newest key at the start
    /// (zeta is computed once here for that many items, and clones share
    /// the result).
    pub fn new(lowest: u64, newest: u64) -> Self {
        assert!(newest >= lowest, "no key to choose from");
        SkewedLatest {
            lowest,
            zipfian: Zipfian::new(0, newest - lowest),
        }
    }

    /// A key in `lowest..=newest`, skewed towards `newest`.
    pub fn next(&mut self, rng: &mut Rng, newest: u64) -> u64 {
        assert!(newest >= self.lowest, "no key to choose from");
        newest - self.zipfian.next_among(rng, newest - self.lowest + 1)
    }
}

/// YCSB's `HotspotIntegerGenerator`: a fraction `opn_fraction` of the draws
/// go to the first `data_fraction` of `lower..=upper`, the rest to the
/// remainder; uniform within each part.
#[derive(Debug, Clone)]
pub struct Hotspot {
    lower: u64,
    hot: u64,
    cold: u64,
    opn_fraction: f64,
}

impl Hotspot {
    pub fn new(lower: u64, upper: u64, data_fraction: f64, opn_fraction: f64) -> Self {
        assert!(upper >= lower, "hotspot range {lower}..={upper} is empty");
        assert!((0.0..=1.0).contains(&data_fraction) && (0.0..=1.0).contains(&opn_fraction));
        let count = upper - lower + 1;
        let hot = (count as f64 * data_fraction) as u64;
        Hotspot {
            lower,
            hot,
            cold: count - hot,
            opn_fraction,
        }
    }

    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        let hot_draw = rng.unit_f64() < self.opn_fraction;
        if (hot_draw && self.hot > 0) || self.cold == 0 {
            self.lower + rng.below(self.hot)
        } else {
            self.lower + self.hot + rng.below(self.cold)
        }
    }
}

/// A uniform draw from `lower..=upper`.
pub fn uniform(rng: &mut Rng, lower: u64, upper: u64) -> u64 {
    assert!(upper >= lower, "uniform range {lower}..={upper} is empty");
    match (upper - lower).checked_add(1) {
        Some(count) => lower + rng.below(count),
        None => rng.next_u64(),
    }
}

/// YCSB's `AcknowledgedCounterGenerator`: hands out insert key numbers in
/// order and tracks which inserts finished. `newest_acknowledged` is the
/// highest key number below which every insert has been acknowledged, so a
/// key chooser bounded by it never picks a key whose insert is still in
/// flight, whatever order the inserts complete in.
#[derive(Debug)]
pub struct AckCounter {
    next: AtomicU64,
    /// Every key number below this one is acknowledged.
    acked_below: AtomicU64,
    /// Acknowledged key numbers at or above `acked_below` (completed out of order).
    pending: Mutex<BTreeSet<u64>>,
}

impl AckCounter {
    /// Keys below `start` count as inserted (the load phase's records).
    pub fn new(start: u64) -> Self {
        AckCounter {
            next: AtomicU64::new(start),
            acked_below: AtomicU64::new(start),
            pending: Mutex::new(BTreeSet::new()),
        }
    }

    /// The next key number to insert.
    pub fn next_value(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The highest key number with every key up to it acknowledged; `None`
    /// while no key is.
    pub fn newest_acknowledged(&self) -> Option<u64> {
        self.acked_below.load(Ordering::Acquire).checked_sub(1)
    }

    /// Marks the insert of `value` as finished (also when it failed, as
    /// YCSB does, so that one failed insert does not freeze the counter; a
    /// read of that key then counts as not found).
    ///
    /// # Panics
    /// If `value` was never handed out, was acknowledged twice, or more
    /// than [`UNACKNOWLEDGED_MAX`] inserts are outstanding.
    pub fn acknowledge(&self, value: u64) {
        let mut pending = self.pending.lock().expect("ack counter lock");
        let mut below = self.acked_below.load(Ordering::Acquire);
        assert!(
            value >= below && value < self.next.load(Ordering::Relaxed),
            "acknowledged key {value} was not handed out or is acknowledged already"
        );
        assert!(pending.insert(value), "key {value} acknowledged twice");
        while pending.remove(&below) {
            below += 1;
        }
        assert!(
            pending.len() <= UNACKNOWLEDGED_MAX,
            "more than {UNACKNOWLEDGED_MAX} inserts acknowledged out of order"
        );
        self.acked_below.store(below, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_ycsb() {
        // YCSB's first hashed key is `user6284781860667377211` (key 0).
        assert_eq!(fnv_hash64(0), 6_284_781_860_667_377_211);
        assert_ne!(fnv_hash64(1), fnv_hash64(2));
        assert!(fnv_hash64(u64::MAX) <= 1 << 63);
    }

    #[test]
    fn zipfian_is_skewed_towards_the_first_items() {
        let mut rng = Rng::new(1);
        let mut z = Zipfian::new(0, 999);
        let mut counts = vec![0u64; 1000];
        let draws = 200_000;
        for _ in 0..draws {
            counts[z.next(&mut rng) as usize] += 1;
        }
        // Weight of item 0 is 1 / zeta(1000, 0.99) ~ 0.134; item 1 ~ 0.067.
        let share = |i: usize| counts[i] as f64 / draws as f64;
        assert!((share(0) - 0.134).abs() < 0.01, "item 0: {}", share(0));
        assert!((share(1) - 0.068).abs() < 0.01, "item 1: {}", share(1));
        let top10: u64 = counts[..10].iter().sum();
        assert!(top10 as f64 / draws as f64 > 0.35, "top 1% got {top10}");
        assert!(counts[500..].iter().sum::<u64>() as f64 / (draws as f64) < 0.15);
        assert!(counts.iter().all(|&c| c < draws));
    }

    #[test]
    fn zipfian_grows_incrementally_like_a_fresh_one() {
        let grown = {
            let mut z = Zipfian::new(0, 99);
            z.next_among(&mut Rng::new(3), 5000);
            z
        };
        let fresh = Zipfian::new(0, 4999);
        assert!((grown.zetan - fresh.zetan).abs() < 1e-9);
        assert!((grown.eta - fresh.eta).abs() < 1e-9);
    }

    #[test]
    fn scrambled_zipfian_stays_in_range_and_keeps_the_skew() {
        let mut rng = Rng::new(2);
        let mut z = ScrambledZipfian::new(100, 1099);
        let mut counts = vec![0u64; 1000];
        let draws = 100_000;
        for _ in 0..draws {
            let v = z.next(&mut rng);
            assert!((100..=1099).contains(&v), "{v}");
            counts[(v - 100) as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        // The hottest key is far above the uniform share of 0.1%.
        assert!(counts[0] as f64 / draws as f64 > 0.02, "{}", counts[0]);
        let top10: u64 = counts[..10].iter().sum();
        assert!(top10 as f64 / draws as f64 > 0.10, "top 1% got {top10}");
    }

    #[test]
    fn uniform_covers_its_range_evenly() {
        let mut rng = Rng::new(4);
        let mut counts = [0u64; 10];
        for _ in 0..100_000 {
            let v = uniform(&mut rng, 20, 29);
            assert!((20..=29).contains(&v));
            counts[(v - 20) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(uniform(&mut rng, 7, 7), 7);
    }

    #[test]
    fn hotspot_sends_its_share_to_the_hot_set() {
        let mut rng = Rng::new(5);
        let mut h = Hotspot::new(0, 999, 0.2, 0.8);
        let draws = 100_000;
        let hot = (0..draws).filter(|_| h.next(&mut rng) < 200).count();
        assert!((hot as f64 / draws as f64 - 0.8).abs() < 0.01, "{hot}");
        let mut all_hot = Hotspot::new(0, 9, 1.0, 0.5);
        assert!((0..1000).all(|_| all_hot.next(&mut rng) < 10));
    }

    #[test]
    fn latest_never_picks_beyond_the_newest_acknowledged_key() {
        let counter = AckCounter::new(100);
        let mut latest = SkewedLatest::new(0, 99);
        let mut rng = Rng::new(6);
        let mut in_flight = Vec::new();
        let mut newest_seen = 0;
        for round in 0..2000u64 {
            in_flight.push(counter.next_value());
            // Up to 8 inserts in flight, completing out of order: every
            // third time the oldest, else one from the middle.
            if in_flight.len() > 7 {
                let i = if round % 3 == 0 {
                    0
                } else {
                    in_flight.len() / 2
                };
                counter.acknowledge(in_flight.remove(i));
            }
            let newest = counter.newest_acknowledged().expect("100 loaded keys");
            assert!(
                in_flight.iter().all(|&k| k > newest),
                "in-flight key below {newest}"
            );
            for _ in 0..20 {
                let k = latest.next(&mut rng, newest);
                assert!(k <= newest, "picked {k} beyond {newest}");
                newest_seen = newest_seen.max(k);
            }
        }
        assert!(
            newest_seen > 2000,
            "latest follows the inserts: {newest_seen}"
        );
        for k in in_flight {
            counter.acknowledge(k);
        }
        assert_eq!(counter.newest_acknowledged(), Some(2099));
    }

    #[test]
    fn latest_prefers_the_newest_keys() {
        let mut latest = SkewedLatest::new(0, 9999);
        let mut rng = Rng::new(7);
        let near = (0..10_000)
            .filter(|_| latest.next(&mut rng, 9999) >= 9990)
            .count();
        assert!(near > 3_000, "{near} of 10000 within the newest 10 keys");
    }

    #[test]
    #[should_panic(expected = "acknowledged twice")]
    fn double_acknowledgement_is_a_bug() {
        let counter = AckCounter::new(0);
        let a = counter.next_value();
        let b = counter.next_value();
        counter.acknowledge(b);
        counter.acknowledge(b);
        let _ = a;
    }
}
