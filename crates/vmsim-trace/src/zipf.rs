//! Zipf-distributed ranks in O(1) per sample.
//!
//! Rank `k` in `1..=n` is drawn with probability proportional to `1 / k^s`, by
//! rejection-inversion (W. Hörmann and G. Derflinger, "Rejection-inversion to
//! generate variates from monotone discrete distributions", ACM TOMACS 6(3),
//! 1996), the method Apache Commons RNG uses. It needs no table, so `n` can be
//! huge, and it works for every exponent `s >= 0` (`s = 0` is uniform, `s = 1`
//! is classic Zipf, `s < 1` and `s > 1` both fine). Owns the sampler only; the
//! mapping from ranks to pages belongs to the synthetic generator.

use crate::rng::Rng;

/// A Zipf(`n`, `s`) sampler over ranks `1..=n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

/// `log1p(x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `expm1(x) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// `y.floor()`, bit for bit, without the library call the baseline x86-64
/// target makes for it (no `roundsd` before SSE4.1): a positive `y` below
/// 2^52 has an integer part that converts exactly, and truncation is floor
/// there; anything else (already an integer from 2^52 up, zero, negative,
/// NaN) takes `f64::floor`.
#[inline(always)]
fn floor(y: f64) -> f64 {
    if y > 0.0 && y < 4_503_599_627_370_496.0 {
        (y as i64) as f64
    } else {
        y.floor()
    }
}

impl Zipf {
    /// A sampler over `n >= 1` ranks with exponent `s >= 0` (finite). Returns
    /// `None` for `n == 0` or a negative or non-finite `s`.
    #[must_use]
    pub fn new(n: u64, s: f64) -> Option<Self> {
        if n == 0 || !s.is_finite() || s < 0.0 {
            return None;
        }
        let mut z = Self {
            n: n as f64,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.threshold = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        Some(z)
    }

    /// The number of ranks.
    #[must_use]
    pub fn ranks(&self) -> u64 {
        self.n as u64
    }

    /// `H(x)`: an integral of `h` (the antiderivative used by the method).
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    /// `h(x) = x^-s`.
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// The inverse of [`Self::h_integral`].
    fn h_integral_inverse(&self, x: f64) -> f64 {
        let mut t = x * (1.0 - self.s);
        if t < -1.0 {
            // Rounding can push t just below -1, where log1p is undefined.
            t = -1.0;
        }
        (helper1(t) * x).exp()
    }

    /// Draws one rank in `1..=n`. Expected O(1) work: the acceptance rate is high for every `s`.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.draw(rng);
            if let Some(k) = self.decide(u) {
                return k;
            }
        }
    }

    /// One try's uniform point `u` in `(H(1.5) - 1, H(n + 0.5)]`: the only
    /// random draw of a try.
    #[inline(always)]
    pub(crate) fn draw(&self, rng: &mut Rng) -> f64 {
        self.draw_at(rng.next_bits53())
    }

    /// The `u` of a try whose draw's 53 bits ([`Rng::next_bits53`]) are
    /// `bits`: what [`Zipf::draw`] returns for them.
    #[inline(always)]
    pub(crate) fn draw_at(&self, bits: u64) -> f64 {
        self.h_integral_n + Rng::unit(bits) * (self.h_integral_x1 - self.h_integral_n)
    }

    /// The try at `u`: its rank if accepted, `None` if rejected (the sampler
    /// then draws again).
    #[inline(always)]
    pub(crate) fn decide(&self, u: f64) -> Option<u64> {
        let x = self.h_integral_inverse(u);
        let k = floor(x + 0.5).clamp(1.0, self.n);
        if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
            Some(k as u64)
        } else {
            None
        }
    }

    /// The second acceptance test of [`Zipf::decide`], for a try at `u` whose
    /// rank `k` is known and whose `x` is below `k - threshold`: the same
    /// arithmetic (`k` converts exactly: it is at most `n`, below 2^53).
    /// (The tests' reference: the sampler's tries take
    /// [`Zipf::accepts_at_end`].)
    #[cfg(test)]
    #[inline]
    pub(crate) fn accepts_at(&self, k: u64, u: f64) -> bool {
        let k = k as f64;
        u >= self.h_integral(k + 0.5) - self.h(k)
    }

    /// The second acceptance test of [`Zipf::decide`],
    /// `u >= H(k + 0.5) - h(k)`, for a try at `u` of rank `k`, with
    /// `H(k + 0.5)` given: `end`, what [`Zipf::rank_bounds`] gives for `k`
    /// (the same call of `H` on the same `k + 0.5`, so the same bits),
    /// worked out here only for the last rank (whose `end` there is
    /// infinite).
    ///
    /// Why: the table's search has the rank's end at hand, and `H` is a
    /// logarithm and an `exp_m1`, half of the second test's library calls.
    #[inline]
    pub(crate) fn accepts_at_end(&self, k: u64, u: f64, end: f64) -> bool {
        let k = k as f64;
        let end = if k >= self.n {
            self.h_integral(k + 0.5)
        } else {
            end
        };
        u >= end - self.h(k)
    }

    /// The range of [`Zipf::draw`]'s `u`: `(H(1.5) - 1, H(n + 0.5))`.
    pub(crate) fn u_range(&self) -> (f64, f64) {
        (self.h_integral_x1, self.h_integral_n)
    }

    /// Where rank `k` (in `1..=n`) ends and where its sure acceptance
    /// starts, as values of `u`: `H(k + 0.5)` (infinite for `k = n`, whose
    /// rank takes every larger `x`) and `H(k - threshold)`. Worked out with
    /// the forward function `H`, so only close to the values at which
    /// [`Zipf::decide`]'s rounded inverse changes its answer (see
    /// `ZipfTable`).
    pub(crate) fn rank_bounds(&self, k: u64) -> [f64; 2] {
        let kf = k as f64;
        let end = if kf >= self.n {
            f64::INFINITY
        } else {
            self.h_integral(kf + 0.5)
        };
        [end, self.h_integral(kf - self.threshold)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws many samples and checks each rank's frequency against the exact
    /// probability, within 5 standard deviations (deterministic: fixed seed).
    fn check(n: u64, s: f64) {
        let z = Zipf::new(n, s).expect("valid");
        let norm: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
        let draws = 200_000u32;
        let mut counts = vec![0u32; n as usize];
        let mut rng = Rng::new(99);
        for _ in 0..draws {
            let k = z.sample(&mut rng);
            assert!((1..=n).contains(&k));
            counts[(k - 1) as usize] += 1;
        }
        for (i, &c) in counts.iter().enumerate() {
            let p = ((i + 1) as f64).powf(-s) / norm;
            let mean = p * f64::from(draws);
            let sd = (mean * (1.0 - p)).sqrt().max(1.0);
            assert!(
                (f64::from(c) - mean).abs() <= 5.0 * sd,
                "n={n} s={s} rank {}: {c} draws, expected {mean:.0}",
                i + 1
            );
        }
    }

    #[test]
    fn matches_exact_pmf_for_several_exponents() {
        check(10, 1.0);
        check(20, 0.5);
        check(20, 1.5);
        check(5, 0.0);
        check(1, 2.0);
    }

    #[test]
    fn floor_is_f64_floor_bit_for_bit() {
        let mut rng = Rng::new(5);
        let special = [
            0.0,
            -0.0,
            0.5,
            1.0,
            1.5,
            -0.5,
            -1.0,
            4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            4_503_599_627_370_497.0,
            9.0e18,
            2.0e19,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let random = (0..100_000).map(|i| {
            let u = rng.next_f64();
            match i % 4 {
                0 => u * 70_000.0,
                1 => u * 1e17,
                2 => (u - 0.5) * 1e6,
                _ => f64::from_bits(rng.next_u64()),
            }
        });
        for y in special.into_iter().chain(random) {
            assert_eq!(floor(y).to_bits(), y.floor().to_bits(), "{y:e}");
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(Zipf::new(0, 1.0).is_none());
        assert!(Zipf::new(10, -0.5).is_none());
        assert!(Zipf::new(10, f64::NAN).is_none());
    }

    #[test]
    fn huge_n_is_fine() {
        let z = Zipf::new(1 << 40, 0.9).expect("valid");
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            let k = z.sample(&mut rng);
            assert!((1..=1u64 << 40).contains(&k));
        }
    }

    /// `accepts_at_end` with the end `rank_bounds` gives is `accepts_at`,
    /// for every rank (the last, whose end there is infinite, included) at
    /// `u` a few units in the last place either side of the second test's
    /// bound and at random points of the rank's range.
    #[test]
    fn accepts_at_end_is_accepts_at() {
        let mut rng = Rng::new(3);
        for (n, s) in [
            (1u64, 0.9),
            (2, 0.0),
            (7, 1.0),
            (1000, 0.9),
            (5000, 1.3),
            (300, 3.5),
        ] {
            let z = Zipf::new(n, s).expect("valid");
            let (lo, hi) = z.u_range();
            for k in 1..=n {
                let end = z.rank_bounds(k)[0];
                let kf = k as f64;
                let bound = z.h_integral(kf + 0.5) - z.h(kf);
                let mut points: Vec<f64> = (0..16u64)
                    .map(|d| f64::from_bits(bound.to_bits().wrapping_sub(8).wrapping_add(d)))
                    .collect();
                points.extend((0..4).map(|_| lo + rng.next_f64() * (hi - lo)));
                for u in points {
                    assert_eq!(
                        z.accepts_at_end(k, u, end),
                        z.accepts_at(k, u),
                        "n={n} s={s} k={k} u={u:e}"
                    );
                }
            }
        }
    }
}
