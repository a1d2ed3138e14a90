//! [`EatInput`] and [`Eat`]: the effective access time of a memory reference
//! through a TLB and an n-level page table, as the course defines it.

use super::CalcError;

/// The inputs of the effective-access-time formula.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EatInput {
    /// Fraction of references that hit in the TLB, in `[0, 1]`.
    pub hit_ratio: f64,
    /// Time to search the TLB, in nanoseconds.
    pub tlb_ns: f64,
    /// Time of one memory access, in nanoseconds.
    pub mem_ns: f64,
    /// Levels of the page table a miss walks (1 = flat table).
    pub levels: u32,
}

/// The effective access time and its parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eat {
    /// Time of a reference that hits in the TLB: `tlb + mem`.
    pub hit_ns: f64,
    /// Time of a reference that misses: `tlb + (levels + 1) * mem`.
    pub miss_ns: f64,
    /// Memory accesses on a miss: one per level plus the reference itself.
    pub miss_mem_accesses: u32,
    /// `hit_ratio * hit + (1 - hit_ratio) * miss`.
    pub eat_ns: f64,
    /// `eat / mem`: how much slower a reference is than with no translation.
    pub slowdown: f64,
}

impl EatInput {
    /// The effective access time, after checking every input.
    ///
    /// A TLB hit costs the search plus the reference; a miss also reads one
    /// entry per level (the course: "an n-level table costs n + 1 memory
    /// accesses on a miss").
    pub fn compute(&self) -> Result<Eat, CalcError> {
        if !(0.0..=1.0).contains(&self.hit_ratio) {
            return Err(CalcError::HitRatio(self.hit_ratio));
        }
        // A TLB search may take no time (textbooks often neglect it); a
        // memory access must take some, or the slowdown is a division by zero.
        if !self.tlb_ns.is_finite() || self.tlb_ns < 0.0 {
            return Err(CalcError::Time {
                field: "tlb ns",
                value: self.tlb_ns,
            });
        }
        if !self.mem_ns.is_finite() || self.mem_ns <= 0.0 {
            return Err(CalcError::MemTime(self.mem_ns));
        }
        if self.levels == 0 || self.levels > 64 {
            return Err(CalcError::Levels(self.levels));
        }
        let miss_mem_accesses = self.levels + 1;
        let hit_ns = self.tlb_ns + self.mem_ns;
        let miss_ns = self.tlb_ns + f64::from(miss_mem_accesses) * self.mem_ns;
        let eat_ns = self.hit_ratio * hit_ns + (1.0 - self.hit_ratio) * miss_ns;
        let slowdown = eat_ns / self.mem_ns;
        // Finite inputs can still overflow (1e308 ns) or, divided by a
        // subnormal time, give an infinite slowdown: no `inf` is ever printed.
        for (field, value) in [
            ("the TLB hit time", hit_ns),
            ("the TLB miss time", miss_ns),
            ("the effective access time", eat_ns),
            ("the slowdown", slowdown),
        ] {
            if !value.is_finite() {
                return Err(CalcError::Overflow(field));
            }
        }
        Ok(Eat {
            hit_ns,
            miss_ns,
            miss_mem_accesses,
            eat_ns,
            slowdown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eat(hit_ratio: f64, tlb_ns: f64, mem_ns: f64, levels: u32) -> Result<Eat, CalcError> {
        EatInput {
            hit_ratio,
            tlb_ns,
            mem_ns,
            levels,
        }
        .compute()
    }

    #[test]
    fn one_level_course_formula() {
        let e = eat(0.8, 20.0, 100.0, 1).expect("valid");
        assert_eq!(e.hit_ns, 120.0);
        assert_eq!(e.miss_ns, 220.0);
        assert_eq!(e.miss_mem_accesses, 2);
        assert!((e.eat_ns - (0.8 * 120.0 + 0.2 * 220.0)).abs() < 1e-9);
    }

    #[test]
    fn four_level_miss_costs_five_accesses() {
        let e = eat(0.0, 0.0, 100.0, 4).expect("valid");
        assert_eq!(e.miss_mem_accesses, 5);
        assert_eq!(e.eat_ns, 500.0);
        assert_eq!(e.slowdown, 5.0);
    }

    #[test]
    fn rejects_bad_inputs() {
        assert_eq!(eat(1.5, 1.0, 1.0, 1), Err(CalcError::HitRatio(1.5)));
        assert!(matches!(
            eat(f64::NAN, 1.0, 1.0, 1),
            Err(CalcError::HitRatio(_))
        ));
        assert!(matches!(
            eat(0.5, -1.0, 1.0, 1),
            Err(CalcError::Time {
                field: "tlb ns",
                ..
            })
        ));
        assert!(matches!(
            eat(0.5, 1.0, f64::INFINITY, 1),
            Err(CalcError::MemTime(_))
        ));
        assert_eq!(eat(0.5, 1.0, 1.0, 0), Err(CalcError::Levels(0)));
    }

    /// Issue 12: `--mem-ns 0` printed `slowdown infx`, huge times `inf` and
    /// JSON nulls.
    #[test]
    fn no_infinite_or_undefined_result() {
        assert_eq!(eat(0.5, 1.0, 0.0, 1), Err(CalcError::MemTime(0.0)));
        assert_eq!(eat(0.5, 1.0, -2.0, 1), Err(CalcError::MemTime(-2.0)));
        assert!(matches!(
            eat(0.5, 1.0, f64::NAN, 1),
            Err(CalcError::MemTime(_))
        ));
        assert_eq!(
            eat(0.5, 1e308, 1e308, 4),
            Err(CalcError::Overflow("the TLB hit time"))
        );
        assert_eq!(
            eat(0.5, 1.0, 1e-320, 1),
            Err(CalcError::Overflow("the slowdown"))
        );
        let e = eat(0.5, 0.0, 1e-300, 1).expect("tiny but fine");
        assert!(e.slowdown.is_finite());
    }
}
