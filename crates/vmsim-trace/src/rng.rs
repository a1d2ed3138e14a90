//! The project's one pseudo-random number generator.
//!
//! Every random choice in vmsim (synthetic workloads here, random replacement
//! and any other seeded decision in the engine) uses [`Rng`], so one seed in a
//! configuration reproduces a run bit for bit on every platform. It is
//! xoshiro256** (Blackman & Vigna, 2018), whose 256-bit state is filled from the
//! 64-bit seed with splitmix64, as its authors recommend. It is fast and
//! statistically strong, and not cryptographic. This module owns the generator
//! only; distributions built on it (Zipf) live next to their users.

/// A seeded xoshiro256** generator. The same seed gives the same sequence everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

/// One step of splitmix64: advances `state` and returns a well-mixed output.
#[inline]
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose state is derived from `seed` by splitmix64 (never all zero).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Self { s }
    }

    /// The whole state: with [`Rng::from_state`], a generator can be saved
    /// (in a checkpoint) and continued exactly where it stood.
    #[must_use]
    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    /// A generator continuing from a saved [`Rng::state`]; `None` for the
    /// all-zero state, which xoshiro256** never reaches (it would stay zero).
    #[must_use]
    pub fn from_state(s: [u64; 4]) -> Option<Self> {
        (s != [0; 4]).then_some(Self { s })
    }

    /// The next 64 uniformly distributed bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform `f64` in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        Self::unit(self.next_bits53())
    }

    /// The 53 random bits (below 2^53) that [`Rng::next_f64`] turns into
    /// its `f64` (by [`Rng::unit`]): a caller that can decide from the
    /// bits alone skips the conversion.
    #[inline]
    pub fn next_bits53(&mut self) -> u64 {
        self.next_u64() >> 11
    }

    /// The `f64` in `[0, 1)` that [`Rng::next_f64`] makes of `bits` (from
    /// [`Rng::next_bits53`]): exactly `bits / 2^53`.
    #[inline]
    #[must_use]
    pub fn unit(bits: u64) -> f64 {
        bits as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, n)`, without modulo bias (Lemire's
    /// multiply-and-reject). `below(0)` returns 0.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        let mut low = m as u64;
        if low < n {
            let threshold = n.wrapping_neg() % n;
            while low < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
                low = m as u64;
            }
        }
        (m >> 64) as u64
    }

    /// The top `64 - shift` bits of one draw (`shift` in `1..=63`): exactly
    /// [`Rng::below`]`(1 << (64 - shift))`, which for a power of two `n`
    /// keeps the high word of `x * n`, `x >> shift`, and never rejects
    /// (its threshold, `2^64 mod n`, is 0): the same value from the same
    /// draw, without the wide multiply and the rejection test.
    #[inline]
    pub fn top_bits(&mut self, shift: u32) -> u64 {
        debug_assert!((1..64).contains(&shift));
        self.next_u64() >> shift
    }

    /// True with probability `p` (`p <= 0` never, `p >= 1` always).
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Shuffles `items` in place (Fisher-Yates), using this generator.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_splitmix_and_xoshiro() {
        // splitmix64 from seed 0: first output is the published test value.
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xe220_a839_7b1d_cdaf);
        // xoshiro256** reference: state {1, 2, 3, 4} gives 11520, 0, 1509978240, 1215971899390074240.
        let mut r = Rng { s: [1, 2, 3, 4] };
        assert_eq!(r.next_u64(), 11520);
        assert_eq!(r.next_u64(), 0);
        assert_eq!(r.next_u64(), 1_509_978_240);
        assert_eq!(r.next_u64(), 1_215_971_899_390_074_240);
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let mut c = Rng::new(43);
        let xa: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut r = Rng::new(7);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            let v = r.below(6);
            counts[v as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert_eq!(r.below(1), 0);
        assert_eq!(r.below(0), 0);
    }

    /// `top_bits` is `below` of a power of two, draw for draw (the fast
    /// offset in a page of the synthetic workloads relies on it).
    #[test]
    fn top_bits_is_below_of_a_power_of_two() {
        for b in 1..64u32 {
            let (mut x, mut y) = (Rng::new(u64::from(b)), Rng::new(u64::from(b)));
            for _ in 0..2_000 {
                assert_eq!(x.below(1 << b), y.top_bits(64 - b), "2^{b}");
            }
            assert_eq!(x, y, "2^{b}: the draws differ");
        }
    }

    #[test]
    fn f64_in_unit_interval() {
        let mut r = Rng::new(1);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let x = r.next_f64();
            assert!((0.0..1.0).contains(&x));
            sum += x;
        }
        assert!((sum / 10_000.0 - 0.5).abs() < 0.02);
    }
}
