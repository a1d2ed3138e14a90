//! Reference strings for page-replacement exercises.
//!
//! Pages are `0..pages`. Each reference is, with probability `locality`
//! percent, one of the (up to) three pages referenced most recently, else a
//! page drawn uniformly: enough reuse for hits, enough novelty for faults,
//! as the strings in textbook exercises.

use super::{ExerciseError, Rng, percent};

/// What to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefsSpec {
    /// References in the string (1 to 200).
    pub length: usize,
    /// Distinct page numbers to draw from (1 to 100).
    pub pages: u64,
    /// Percent of references that reuse a recent page.
    pub locality: u64,
}

/// A reference string with `rng` (see the module docs).
pub fn reference_string(spec: &RefsSpec, rng: &mut Rng) -> Result<Vec<u64>, ExerciseError> {
    if spec.length == 0 || spec.length > 200 {
        return Err(ExerciseError::Parameter(format!(
            "{} references: ask for 1 to 200",
            spec.length
        )));
    }
    if spec.pages == 0 || spec.pages > 100 {
        return Err(ExerciseError::Parameter(format!(
            "{} pages: ask for 1 to 100",
            spec.pages
        )));
    }
    if spec.locality > 100 {
        return Err(ExerciseError::Parameter(format!(
            "locality {}%: at most 100",
            spec.locality
        )));
    }
    let mut refs: Vec<u64> = Vec::with_capacity(spec.length);
    let mut recent: Vec<u64> = Vec::with_capacity(3);
    for _ in 0..spec.length {
        let p = if !recent.is_empty() && percent(rng, spec.locality) {
            recent[rng.below(recent.len() as u64) as usize]
        } else {
            rng.below(spec.pages)
        };
        recent.retain(|&r| r != p);
        recent.insert(0, p);
        recent.truncate(3);
        refs.push(p);
    }
    Ok(refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_in_range() {
        let spec = RefsSpec {
            length: 20,
            pages: 6,
            locality: 40,
        };
        let a = reference_string(&spec, &mut Rng::new(11)).expect("refs");
        let b = reference_string(&spec, &mut Rng::new(11)).expect("refs");
        assert_eq!(a, b);
        assert_eq!(a.len(), 20);
        assert!(a.iter().all(|&p| p < 6));
        assert!(reference_string(&RefsSpec { length: 0, ..spec }, &mut Rng::new(1)).is_err());
    }
}
