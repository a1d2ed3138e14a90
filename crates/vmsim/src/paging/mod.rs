//! Page-table structures kept in simulated physical memory.

pub mod hashed;
pub mod inverted;
