//! Integration tests of the engine, one module per topic.

mod alloc;
mod checkpoint;
mod embed;
mod inverted_hashed;
mod kernel;
mod machine;
mod migrate;
mod mmu;
mod paging;
mod policy;
mod replay;
mod segment;
mod span_counts;
mod spec;
mod structures;
mod swap_loan;
