//! Integration tests of the vmsim engine, one module per topic.

mod policy;
