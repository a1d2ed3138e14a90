//! Integration tests of the engine, one module per topic.

mod alloc;
mod kernel;
mod mmu;
mod paging;
