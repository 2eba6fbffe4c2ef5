//! Key streams for the compaction simulator: a random load order and the
//! keys of updates, uniform or Zipf-skewed (hot keys spread over the key
//! space, like YCSB's scrambled Zipfian).

/// splitmix64: small, fast, well mixed; seeds replay exactly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6A09_E667_F3BC_C908)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is below 2^-32 for n < 2^32).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `0..n` in random order (Fisher–Yates).
pub fn permutation(n: u32, rng: &mut Rng) -> Vec<u32> {
    let mut keys: Vec<u32> = (0..n).collect();
    for i in (1..keys.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        keys.swap(i, j);
    }
    keys
}

/// Ranks 1..=n with P(k) proportional to k^-exponent, by rejection-inversion
/// (Hörmann and Derflinger 1996, as in Apache Commons RNG): O(1) per sample
/// and no table, so any n works.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    exponent: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    s: f64,
}

impl Zipf {
    /// # Panics
    /// If `n` is 0 or `exponent` is not positive and finite.
    pub fn new(n: u64, exponent: f64) -> Zipf {
        assert!(n >= 1 && exponent > 0.0 && exponent.is_finite());
        let mut z = Zipf {
            n: n as f64,
            exponent,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            s: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.s = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// A rank in 1..=n.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_integral_n + rng.unit() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.exponent) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// ln(1 + x) / x, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x - 1) / x, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_holds_every_key_once() {
        let mut p = permutation(1000, &mut Rng::new(7));
        assert_ne!(p[..10], (0..10).collect::<Vec<_>>()[..], "shuffled");
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }

    /// Rank 1 of a Zipf(1000, 0.99) has probability 1 / H(1000, 0.99) ≈ 0.134.
    #[test]
    fn zipf_ranks_follow_the_power_law() {
        let z = Zipf::new(1000, 0.99);
        let mut rng = Rng::new(1);
        let mut counts = vec![0u32; 1001];
        const SAMPLES: u32 = 200_000;
        for _ in 0..SAMPLES {
            let k = z.sample(&mut rng);
            assert!((1..=1000).contains(&k));
            counts[k as usize] += 1;
        }
        let h: f64 = (1..=1000).map(|k| (k as f64).powf(-0.99)).sum();
        let want = f64::from(SAMPLES) / h;
        let got = f64::from(counts[1]);
        assert!((got - want).abs() < 0.05 * want, "rank 1: {got} vs {want}");
        let want10 = want / 10f64.powf(0.99);
        let got10 = f64::from(counts[10]);
        assert!(
            (got10 - want10).abs() < 0.15 * want10,
            "rank 10: {got10} vs {want10}"
        );
    }
}
