//! Integration tests of the engine, one module per topic.

mod alloc;
mod paging;
