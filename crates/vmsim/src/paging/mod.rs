//! Paging: formats, entry encodings, radix tables in physical memory, and
//! the walker.
//!
//! Owns the layout of page tables in simulated physical memory. It does not
//! cache translations (the MMU does) and does not decide what to map (the
//! kernel does).
//!
//! Besides radix trees, two hash-based structures are offered:
//! [`inverted`] (one entry per frame, searched linearly or through a hash
//! anchor table) and [`hashed`] (buckets of chained elements);
//! [`structure`] puts the three behind one type the kernel and MMU use.

pub mod format;
pub mod format_file;
pub mod hashed;
pub mod inverted;
pub mod layout;
pub mod pte;
pub mod radix;
pub mod structure;
pub mod walk;

pub use format::{AddressFault, Canonical, Encoding, Format, FormatError, Level};
pub use layout::{EntryField, FieldKind};
pub use pte::{EncodeError, Entry, PteFlags, UserBits};
pub use radix::{Flush, LeafInfo, MapError, RadixTable, Unmapped};
pub use structure::{PageTables, RadixSpaces, Reload, StructureSpec, TableBase, TableCheckError};
pub use walk::{
    FaultKind, RecordedWalk, Translation, WalkFault, WalkStep, record_walk, walk, walk_from,
};
