//! Engine integration tests: one binary, one module per topic.

mod inverted_hashed;
mod segment;
