//! Sizes and numbers as users write them: `4096`, `4KiB`, `4K`, `2MiB`,
//! `0x1000`, `10M` references.
//!
//! The syntax is owned by [`vmsim_trace::units`] (the lowest crate, so the
//! trace generators, the engine and the CLI read numbers alike); this module
//! re-exports it so engine code can say `crate::units::parse_size`. It adds
//! nothing: change the rules there, not here.

pub use vmsim_trace::units::*;
