//! Trace formats and generators for vmsim.
