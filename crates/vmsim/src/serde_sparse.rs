//! A serde adapter for long vectors that are mostly the default value
//! (per-frame and per-page-id tables sized for the whole machine, of which a
//! run uses a small part): written as the length and the runs of
//! non-default elements with the count of defaults before each, so a
//! checkpoint of a 1 GiB machine that uses 1 MiB stores kilobytes, not
//! megabytes, and a dense table costs one run. Use with
//! `#[serde(with = "crate::serde_sparse")]` on a `Vec<T>`.

use serde::de::Error as _;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most elements a table read back may have (far above any table of
/// the largest machine accepted: 2^25 frames, five times as many page ids).
const MAX_LEN: u64 = 1 << 32;

struct Runs<'a, T>(&'a [T]);

impl<T: PartialEq + Default> Runs<'_, T> {
    /// Each run of non-default elements with the count of defaults before it.
    /// (`position` over slices: the scan of a mostly-zero table of a million
    /// entries vectorizes.)
    fn each(&self, mut f: impl FnMut(u64, &[T])) {
        let zero = T::default();
        let v = self.0;
        let mut i = 0;
        while i < v.len() {
            let Some(gap) = v[i..].iter().position(|x| *x != zero) else {
                break;
            };
            let first = i + gap;
            let len = v[first..]
                .iter()
                .position(|x| *x == zero)
                .unwrap_or(v.len() - first);
            f(gap as u64, &v[first..first + len]);
            i = first + len;
        }
    }
}

impl<T: Serialize + Default + PartialEq> Serialize for Runs<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Two passes: formats like postcard need the count first.
        let mut n = 0;
        self.each(|_, _| n += 1);
        let mut seq = s.serialize_seq(Some(n))?;
        let mut err = None;
        self.each(|gap, run| {
            if err.is_none()
                && let Err(e) = seq.serialize_element(&(gap, run))
            {
                err = Some(e);
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        seq.end()
    }
}

/// Writes `v` as its length and its runs of non-default elements.
///
/// # Errors
/// Whatever the serializer reports.
pub fn serialize<S: Serializer, T: Serialize + Default + PartialEq>(
    v: &[T],
    s: S,
) -> Result<S::Ok, S::Error> {
    (v.len() as u64, Runs(v)).serialize(s)
}

/// Writes a table kept in a packed form `P` as [`serialize`] writes the
/// `Vec<T>` it stands for, `f` unpacking one element: the same bytes, so a
/// table can change its in-memory form and keep its checkpoint form. `f`
/// must map `P::default()`, and nothing else, to `T::default()` (the runs
/// are found on the packed elements).
///
/// # Errors
/// Whatever the serializer reports.
pub fn serialize_mapped<S, P, T, F>(v: &[P], f: F, s: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    P: Default + PartialEq,
    T: Serialize,
    F: Fn(&P) -> T,
{
    (v.len() as u64, MappedRuns(Runs(v), &f)).serialize(s)
}

/// The runs of a packed table, each element written unpacked.
struct MappedRuns<'a, P, F>(Runs<'a, P>, &'a F);

/// One run of a packed table, written as the slice of unpacked elements.
struct MappedRun<'a, P, F>(&'a [P], &'a F);

impl<P: Default + PartialEq, T: Serialize, F: Fn(&P) -> T> Serialize for MappedRuns<'_, P, F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut n = 0;
        self.0.each(|_, _| n += 1);
        let mut seq = s.serialize_seq(Some(n))?;
        let mut err = None;
        self.0.each(|gap, run| {
            if err.is_none()
                && let Err(e) = seq.serialize_element(&(gap, MappedRun(run, self.1)))
            {
                err = Some(e);
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        seq.end()
    }
}

impl<P, T: Serialize, F: Fn(&P) -> T> Serialize for MappedRun<'_, P, F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // As a slice serializes: a sequence of known length.
        s.collect_seq(self.0.iter().map(self.1))
    }
}

/// Reads what [`serialize_mapped`] (or [`serialize`] of the `Vec<T>`) wrote
/// into the packed form, `f` packing one element (`T::default()` to
/// `P::default()`). The table starts as `vec![P::default(); len]`, which for
/// a primitive `P` is zeroed host memory touched only where runs are.
///
/// # Errors
/// As [`deserialize`].
pub fn deserialize_mapped<'de, D, P, T, F>(d: D, f: F) -> Result<Vec<P>, D::Error>
where
    D: Deserializer<'de>,
    P: Default + Clone,
    T: Deserialize<'de>,
    F: Fn(T) -> P,
{
    let (len, runs): (u64, Vec<(u64, Vec<T>)>) = Deserialize::deserialize(d)?;
    if len > MAX_LEN {
        return Err(D::Error::custom(format!("a table of {len} elements")));
    }
    let mut v = vec![P::default(); len as usize];
    let mut at = 0u64;
    for (gap, run) in runs {
        let start = at.checked_add(gap);
        let end = start.and_then(|x| x.checked_add(run.len() as u64));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(D::Error::custom("runs past the table's length"));
        };
        if end > len {
            return Err(D::Error::custom("runs past the table's length"));
        }
        for (slot, t) in v[start as usize..end as usize].iter_mut().zip(run) {
            *slot = f(t);
        }
        at = end;
    }
    Ok(v)
}

/// Reads what [`serialize`] wrote.
///
/// # Errors
/// A length above 2^32, runs that do not fit it, or the elements' own errors.
pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default + Clone>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    let (len, runs): (u64, Vec<(u64, Vec<T>)>) = Deserialize::deserialize(d)?;
    if len > MAX_LEN {
        return Err(D::Error::custom(format!("a table of {len} elements")));
    }
    let mut v = Vec::with_capacity(len as usize);
    for (gap, run) in runs {
        let end = (v.len() as u64)
            .checked_add(gap)
            .and_then(|x| x.checked_add(run.len() as u64));
        if end.is_none_or(|e| e > len) {
            return Err(D::Error::custom("runs past the table's length"));
        }
        v.resize(v.len() + gap as usize, T::default());
        v.extend(run);
    }
    v.resize(len as usize, T::default());
    Ok(v)
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct T {
        #[serde(with = "super")]
        v: Vec<u64>,
    }

    #[test]
    fn sparse_and_dense_tables_round_trip_small() {
        let mut v = vec![0u64; 1_000_000];
        v[5] = 1;
        v[6] = 2;
        v[999_999] = 7;
        let t = T { v };
        let bytes = postcard::to_allocvec(&t).expect("ser");
        assert!(bytes.len() < 40, "{} bytes", bytes.len());
        assert_eq!(postcard::from_bytes::<T>(&bytes).expect("de"), t);
        let dense = T {
            v: (1..1000).collect(),
        };
        let bytes = postcard::to_allocvec(&dense).expect("ser");
        assert_eq!(postcard::from_bytes::<T>(&bytes).expect("de"), dense);
        let empty = T { v: vec![0; 10] };
        let bytes = postcard::to_allocvec(&empty).expect("ser");
        assert_eq!(postcard::from_bytes::<T>(&bytes).expect("de"), empty);
    }

    #[test]
    fn runs_past_the_length_are_refused() {
        let bad = postcard::to_allocvec(&(3u64, vec![(2u64, vec![1u64, 2])])).expect("ser");
        assert!(postcard::from_bytes::<T>(&bad).is_err());
        assert!(postcard::from_bytes::<Packed>(&bad).is_err());
    }

    /// A table of `u64` kept packed as `u32` halves (`(hi, lo)` swapped into
    /// one word) to check the mapped forms against the plain one.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Packed {
        #[serde(with = "swapped")]
        v: Vec<u64>,
    }

    mod swapped {
        use serde::{Deserializer, Serializer};

        fn swap(w: u64) -> u64 {
            w.rotate_left(32)
        }

        pub(super) fn serialize<S: Serializer>(v: &[u64], s: S) -> Result<S::Ok, S::Error> {
            crate::serde_sparse::serialize_mapped(v, |w| swap(*w), s)
        }

        pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
            crate::serde_sparse::deserialize_mapped(d, swap)
        }
    }

    #[test]
    fn a_mapped_table_writes_the_bytes_of_its_unpacked_form() {
        let plain: Vec<u64> = (0..5000u64)
            .map(|i| {
                if i % 7 < 3 || i > 4990 {
                    0
                } else {
                    i * 0x1_0000_0003
                }
            })
            .collect();
        let packed: Vec<u64> = plain.iter().map(|w| w.rotate_left(32)).collect();
        let a = postcard::to_allocvec(&T { v: plain.clone() }).expect("ser");
        let b = postcard::to_allocvec(&Packed { v: packed.clone() }).expect("ser");
        assert_eq!(a, b);
        assert_eq!(postcard::from_bytes::<Packed>(&a).expect("de").v, packed);
        let ja = serde_json::to_string(&T { v: plain }).expect("json");
        let jb = serde_json::to_string(&Packed { v: packed }).expect("json");
        assert_eq!(ja, jb);
    }
}
