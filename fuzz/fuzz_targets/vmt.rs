//! The `.vmt` reader on arbitrary bytes (header, blocks, CRCs, varints):
//! never panics, and every record it hands out has a size of 1 to
//! MAX_ACCESS_BYTES. A file that decodes is written back and must decode to
//! the same records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsim_trace::TraceSource;
use vmsim_trace::access::MAX_ACCESS_BYTES;
use vmsim_trace::vmt::{VmtReader, VmtWriter};

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = VmtReader::new(data, "fuzz.vmt", false) else {
        return;
    };
    r.set_allow_empty(true);
    let Ok(records) = r.collect_all() else {
        return;
    };
    assert!(
        records
            .iter()
            .all(|a| (1..=MAX_ACCESS_BYTES).contains(&a.size))
    );
    let mut w = VmtWriter::new(Vec::new()).expect("writing to memory");
    w.push_all(&records)
        .expect("every record read can be written");
    let (bytes, n) = w.finish().expect("writing to memory");
    assert_eq!(n, records.len() as u64);
    let mut back = VmtReader::new(bytes.as_slice(), "back.vmt", false).expect("header");
    back.set_allow_empty(true);
    assert_eq!(back.collect_all().expect("round trip"), records);
});
