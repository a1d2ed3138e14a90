//! The allocator lab's operation lists: `a100,a200,f0,a50`.
//!
//! `aN` allocates N units (bytes for a free list, pages for the buddy
//! allocator, the object size for slab caches); `fI` frees the allocation
//! made by the I-th `a` of the list (0-based, counting failed allocations
//! too, as `malloc.py` numbers its `ptr[I]`). `malloc.py`'s own spelling,
//! `+N` and `-I`, is accepted as well. Operations are separated by commas or
//! white space; `#` starts a comment that runs to the end of the line. N is
//! a number in the workspace's size syntax (`100`, `0x64`, `4K`).
//!
//! Everything that can be checked without running an allocator is checked
//! here, with the line and the operation named: a free of an allocation
//! not made yet, and a second free of the same allocation. (Freeing an
//! allocation that *failed* is `free(NULL)`: allowed, it does nothing.)

use std::fmt;

use serde::{Serialize, Serializer};
use thiserror::Error;

/// One operation of an allocator exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeapOp {
    /// Allocate this many units.
    Alloc(u64),
    /// Free the allocation made by this `a` (0-based).
    Free(usize),
}

impl fmt::Display for HeapOp {
    /// `a100` or `f0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Alloc(n) => write!(f, "a{n}"),
            Self::Free(i) => write!(f, "f{i}"),
        }
    }
}

impl Serialize for HeapOp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An operation list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpsError {
    /// A token that is not an operation.
    #[error(
        "{source_name}:{line}: '{token}' is not an operation (expected aN to allocate N, fI to free the I-th allocation; +N and -I also work)"
    )]
    BadToken {
        /// File name (or `--ops`).
        source_name: String,
        /// 1-based line.
        line: usize,
        /// The token.
        token: String,
    },
    /// An allocation of zero units.
    #[error("{source_name}:{line}: '{token}' allocates nothing (sizes start at 1)")]
    ZeroAlloc {
        /// File name (or `--ops`).
        source_name: String,
        /// 1-based line.
        line: usize,
        /// The token.
        token: String,
    },
    /// A free of an allocation that has not been made yet.
    #[error(
        "{source_name}:{line}: '{token}' frees allocation {index}, but only {made} allocation(s) come before it (indices start at 0)"
    )]
    FreeBeforeAlloc {
        /// File name (or `--ops`).
        source_name: String,
        /// 1-based line.
        line: usize,
        /// The token.
        token: String,
        /// The index freed.
        index: usize,
        /// Allocations made before it.
        made: usize,
    },
    /// A second free of the same allocation.
    #[error("{source_name}:{line}: '{token}' frees allocation {index} a second time")]
    DoubleFree {
        /// File name (or `--ops`).
        source_name: String,
        /// 1-based line.
        line: usize,
        /// The token.
        token: String,
        /// The index freed twice.
        index: usize,
    },
    /// No operation at all.
    #[error("{0}: no operations (expected e.g. a100,a200,f0)")]
    Empty(String),
}

/// Parses an operation list (see the module docs); `source_name` names the
/// file (or `--ops`) in errors.
pub fn parse_ops(text: &str, source_name: &str) -> Result<Vec<HeapOp>, OpsError> {
    let mut ops = Vec::new();
    let mut freed: Vec<bool> = Vec::new();
    for (l, line) in text.lines().enumerate() {
        let line_no = l + 1;
        let code = line.split('#').next().unwrap_or("");
        for token in code.split([',', ' ', '\t', '\r']).filter(|t| !t.is_empty()) {
            let bad = || OpsError::BadToken {
                source_name: source_name.to_owned(),
                line: line_no,
                token: token.to_owned(),
            };
            let mut chars = token.chars();
            let kind = chars.next().ok_or_else(bad)?;
            let rest = chars.as_str();
            match kind {
                'a' | 'A' | '+' => {
                    let n = crate::units::parse_size(rest).map_err(|_| bad())?;
                    if n == 0 {
                        return Err(OpsError::ZeroAlloc {
                            source_name: source_name.to_owned(),
                            line: line_no,
                            token: token.to_owned(),
                        });
                    }
                    freed.push(false);
                    ops.push(HeapOp::Alloc(n));
                }
                'f' | 'F' | '-' => {
                    let i = crate::units::parse_u64(rest)
                        .ok()
                        .and_then(|i| usize::try_from(i).ok())
                        .ok_or_else(bad)?;
                    match freed.get_mut(i) {
                        None => {
                            return Err(OpsError::FreeBeforeAlloc {
                                source_name: source_name.to_owned(),
                                line: line_no,
                                token: token.to_owned(),
                                index: i,
                                made: freed.len(),
                            });
                        }
                        Some(true) => {
                            return Err(OpsError::DoubleFree {
                                source_name: source_name.to_owned(),
                                line: line_no,
                                token: token.to_owned(),
                                index: i,
                            });
                        }
                        Some(f) => *f = true,
                    }
                    ops.push(HeapOp::Free(i));
                }
                _ => return Err(bad()),
            }
        }
    }
    if ops.is_empty() {
        return Err(OpsError::Empty(source_name.to_owned()));
    }
    Ok(ops)
}

/// The list written back in the `aN,fI` syntax.
#[must_use]
pub fn format_ops(ops: &[HeapOp]) -> String {
    let parts: Vec<String> = ops.iter().map(HeapOp::to_string).collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_comments_and_sizes() {
        let ops = parse_ops("a100, +4K\n# comment\nf0 -1 a0x10 # trailing", "f").expect("ok");
        assert_eq!(
            ops,
            [
                HeapOp::Alloc(100),
                HeapOp::Alloc(4096),
                HeapOp::Free(0),
                HeapOp::Free(1),
                HeapOp::Alloc(16),
            ]
        );
        assert_eq!(format_ops(&ops), "a100,a4096,f0,f1,a16");
    }

    #[test]
    fn errors_name_line_and_token() {
        let e = parse_ops("a1\nx3", "ops.txt").expect_err("bad");
        assert!(e.to_string().starts_with("ops.txt:2: 'x3'"), "{e}");
        let e = parse_ops("a1,f1", "--ops").expect_err("future");
        assert!(
            matches!(
                e,
                OpsError::FreeBeforeAlloc {
                    index: 1,
                    made: 1,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_ops("a1,f0,f0", "--ops").expect_err("double");
        assert!(matches!(e, OpsError::DoubleFree { index: 0, .. }), "{e}");
        assert!(matches!(
            parse_ops("a0", "--ops"),
            Err(OpsError::ZeroAlloc { .. })
        ));
        assert!(matches!(
            parse_ops(" # x", "--ops"),
            Err(OpsError::Empty(_))
        ));
        assert!(parse_ops("a", "--ops").is_err());
        assert!(parse_ops("f-1", "--ops").is_err());
    }
}
