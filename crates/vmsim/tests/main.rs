//! Integration tests of the engine, one module per topic.

mod paging;
