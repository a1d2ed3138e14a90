//! Serde helpers for fixed-size arrays longer than serde's built-in limit
//! of 32 elements (`#[serde(with = "crate::serde_arrays")]`), so state types
//! keep their arrays and still derive `Serialize` and `Deserialize` for
//! checkpoints. Owns nothing else.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Writes `[T; N]` as a sequence.
///
/// # Errors
/// Whatever the serializer reports.
pub fn serialize<S: Serializer, T: Serialize, const N: usize>(
    a: &[T; N],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(a.iter())
}

/// Reads a sequence of exactly `N` elements into `[T; N]`.
///
/// # Errors
/// A sequence of another length, or the elements' own errors.
pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>, const N: usize>(
    d: D,
) -> Result<[T; N], D::Error> {
    let v: Vec<T> = Vec::deserialize(d)?;
    let len = v.len();
    v.try_into()
        .map_err(|_| D::Error::invalid_length(len, &format!("{N} elements").as_str()))
}

/// The same for an array of arrays (`[[T; N]; M]`), element arrays of any length.
pub mod nested {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes `[[T; N]; M]` as a sequence of sequences.
    ///
    /// # Errors
    /// Whatever the serializer reports.
    pub fn serialize<S: Serializer, T: Serialize, const N: usize, const M: usize>(
        a: &[[T; N]; M],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(a.iter().map(|inner| inner.as_slice()))
    }

    /// Reads `M` sequences of `N` elements each.
    ///
    /// # Errors
    /// Sequences of other lengths, or the elements' own errors.
    pub fn deserialize<
        'de,
        D: Deserializer<'de>,
        T: Deserialize<'de>,
        const N: usize,
        const M: usize,
    >(
        d: D,
    ) -> Result<[[T; N]; M], D::Error> {
        let outer: Vec<Vec<T>> = Vec::deserialize(d)?;
        let bad = |len: usize, want: usize| {
            D::Error::invalid_length(len, &format!("{want} elements").as_str())
        };
        let len = outer.len();
        let mut arrays = Vec::with_capacity(M);
        for inner in outer {
            let l = inner.len();
            arrays.push(<[T; N]>::try_from(inner).map_err(|_| bad(l, N))?);
        }
        arrays.try_into().map_err(|_| bad(len, M))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Big {
        #[serde(with = "super")]
        a: [u64; 40],
        #[serde(with = "super::nested")]
        b: [[(u8, u8); 40]; 2],
    }

    #[test]
    fn round_trips_and_refuses_wrong_lengths() {
        let mut x = Big {
            a: [0; 40],
            b: [[(0, 0); 40]; 2],
        };
        x.a[39] = 7;
        x.b[1][3] = (1, 2);
        let bytes = postcard::to_allocvec(&x).expect("serialize");
        let back: Big = postcard::from_bytes(&bytes).expect("deserialize");
        assert_eq!(back, x);
        let short = postcard::to_allocvec(&(vec![1u64; 39], vec![vec![(0u8, 0u8); 40]; 2]))
            .expect("serialize");
        assert!(postcard::from_bytes::<Big>(&short).is_err());
    }
}
