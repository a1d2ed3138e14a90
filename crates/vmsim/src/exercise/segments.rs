//! Segmentation exercises in the textbook model ([`crate::segment::book`]):
//! OSTEP's code, heap and stack segments (`segmentation.py`, figure 16.3),
//! or a single base-and-bounds pair (`relocation.py`), with virtual
//! addresses to translate.
//!
//! Segmented: `va_bits`-bit addresses, the top 2 bits select the segment;
//! code is segment 0 and heap segment 1 (both grow up), the stack is
//! segment 3 (grows down), segment 2 is left undefined. Physical memory is
//! four times the virtual space, cut into sixteen slots of the maximum
//! segment size; each segment gets its own slot (an up segment starts at its
//! slot, the stack ends at the end of its slot), so segments never overlap.
//! Sizes are random multiples of 1/32 of the maximum, between 1/8 and about
//! 3/4 of it. Offsets are drawn so that about one address in five lands
//! past a bound, and one in ten names the undefined segment. With
//! `accesses`, one question in five is a write and one in ten an
//! instruction fetch (so code's `r-x` matters).
//!
//! Base and bounds: addresses of `va_bits` bits, one segment of a random
//! size between a quarter and all of the address space, at a random base
//! (a multiple of 16) in a physical space sixteen times larger.

use crate::segment::{Access, BookSegment, BookSegments, Growth};

use super::{ExerciseError, Rng, distinct, percent};

/// Which model of segmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentModel {
    /// Code, heap and stack chosen by the top two address bits.
    Segmented,
    /// One relocation (base) and bounds register.
    BaseBounds,
}

/// What to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentExerciseSpec {
    /// The model.
    pub model: SegmentModel,
    /// Virtual-address bits (8 to 32).
    pub va_bits: u32,
    /// Addresses to translate.
    pub questions: usize,
    /// Mix writes and instruction fetches in with the reads.
    pub accesses: bool,
}

/// A made exercise.
#[derive(Debug, Clone)]
pub struct SegmentExercise {
    /// The segments, as `vmsim explain --segments` takes them.
    pub specs: Vec<String>,
    /// The table they make.
    pub table: BookSegments,
    /// The addresses and the kind of each access.
    pub questions: Vec<(u64, Access)>,
}

fn spec_text(s: &BookSegment) -> String {
    let name = s
        .name
        .as_ref()
        .map_or_else(String::new, |n| format!("{n}="));
    let down = if s.growth == Growth::Down {
        ":down"
    } else {
        ""
    };
    format!("{name}{}:{:#x}:{:#x}{down}", s.number, s.base, s.size)
}

/// Makes a segmentation exercise with `rng` (see the module docs).
pub fn generate(
    spec: &SegmentExerciseSpec,
    rng: &mut Rng,
) -> Result<SegmentExercise, ExerciseError> {
    if !(8..=32).contains(&spec.va_bits) {
        return Err(ExerciseError::Parameter(format!(
            "{}-bit addresses: expected 8 to 32",
            spec.va_bits
        )));
    }
    if spec.questions == 0 || spec.questions > 100 {
        return Err(ExerciseError::Parameter(format!(
            "{} addresses: ask for 1 to 100",
            spec.questions
        )));
    }
    let access = |rng: &mut Rng| {
        if !spec.accesses {
            return Access::Read;
        }
        match rng.below(10) {
            0 => Access::Execute,
            1 | 2 => Access::Write,
            _ => Access::Read,
        }
    };
    let bad = ExerciseError::Segments;
    match spec.model {
        SegmentModel::Segmented => {
            let ob = spec.va_bits - 2;
            let max = 1u64 << ob;
            let unit = (max / 32).max(1);
            let slots = distinct(rng, 16, 3);
            let mut segs = Vec::new();
            for (k, (name, number)) in [("code", 0u64), ("heap", 1), ("stack", 3)]
                .into_iter()
                .enumerate()
            {
                let size = unit * (4 + rng.below(20));
                let start = slots[k] * max;
                let (base, growth) = if number == 3 {
                    (start + max, Growth::Down)
                } else {
                    (start, Growth::Up)
                };
                segs.push(BookSegment {
                    number,
                    name: Some(name.to_owned()),
                    base,
                    size,
                    growth,
                    perms: BookSegment::default_perms(Some(name)),
                });
            }
            let specs = segs.iter().map(spec_text).collect();
            let table = BookSegments::new(segs, Some(spec.va_bits), Some(2)).map_err(bad)?;
            let mut questions: Vec<(u64, Access)> = Vec::new();
            while questions.len() < spec.questions {
                let pick = rng.below(10);
                let number = match pick {
                    0..=2 => 0,
                    3..=5 => 1,
                    6..=8 => 3,
                    _ => 2,
                };
                let offset = match table.segment(number) {
                    Some(s) if s.growth == Growth::Up => rng.below(s.size + s.size / 4 + 1),
                    Some(s) => max - 1 - rng.below(s.size + s.size / 4).min(max - 1),
                    None => rng.below(max),
                };
                let va = (number << ob) | offset;
                if questions.iter().all(|q| q.0 != va) {
                    let a = access(rng);
                    questions.push((va, a));
                }
            }
            Ok(SegmentExercise {
                specs,
                table,
                questions,
            })
        }
        SegmentModel::BaseBounds => {
            let space = 1u64 << spec.va_bits;
            let unit = space / 32;
            let size = unit * (8 + rng.below(25));
            let phys = space * 16;
            let base = rng.below((phys - size) / 16 + 1) * 16;
            let seg = BookSegment {
                number: 0,
                name: None,
                base,
                size,
                growth: Growth::Up,
                perms: BookSegment::default_perms(None),
            };
            let specs = vec![spec_text(&seg)];
            let table = BookSegments::new(vec![seg], Some(spec.va_bits), Some(0)).map_err(bad)?;
            let mut questions: Vec<(u64, Access)> = Vec::new();
            while questions.len() < spec.questions {
                let va = rng.below(space);
                if questions.iter().all(|q| q.0 != va) {
                    let a = if spec.accesses && percent(rng, 20) {
                        Access::Write
                    } else {
                        Access::Read
                    };
                    questions.push((va, a));
                }
            }
            Ok(SegmentExercise {
                specs,
                table,
                questions,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_ostep_shaped_and_reproducible() {
        let spec = SegmentExerciseSpec {
            model: SegmentModel::Segmented,
            va_bits: 14,
            questions: 10,
            accesses: true,
        };
        let a = generate(&spec, &mut Rng::new(5)).expect("exercise");
        let b = generate(&spec, &mut Rng::new(5)).expect("exercise");
        assert_eq!(a.specs, b.specs);
        assert_eq!(a.questions, b.questions);
        assert_eq!(a.table.seg_bits(), 2);
        let stack = a.table.segment(3).expect("stack");
        assert_eq!(stack.growth, Growth::Down);
        // The specs parse back to the same table.
        let again: Vec<BookSegment> = a.specs.iter().map(|s| s.parse().expect("spec")).collect();
        let t = BookSegments::new(again, Some(14), None).expect("table");
        assert_eq!(t, a.table);
        // Segments do not overlap.
        let mut spans: Vec<(u64, u64)> = a
            .table
            .segments()
            .iter()
            .map(|s| (s.low(), s.low() + s.size))
            .collect();
        spans.sort_unstable();
        assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0));
    }

    #[test]
    fn base_and_bounds() {
        let spec = SegmentExerciseSpec {
            model: SegmentModel::BaseBounds,
            va_bits: 10,
            questions: 5,
            accesses: false,
        };
        let e = generate(&spec, &mut Rng::new(2)).expect("exercise");
        assert_eq!(e.table.seg_bits(), 0);
        assert_eq!(e.specs.len(), 1);
        assert!(
            e.questions
                .iter()
                .all(|q| q.0 < 1024 && q.1 == Access::Read)
        );
    }
}
