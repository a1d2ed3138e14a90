//! Integration tests of the trace crate, one module per topic.
