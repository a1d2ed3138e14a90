//! Page-number files (the policy lab's and `vmsim mrc`'s input): never
//! panics; every token of an accepted file is a page, and a bad one is an
//! error naming a line that exists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsim_trace::TraceError;
use vmsim_trace::pagenum::PageNumberReader;

fuzz_target!(|data: &[u8]| {
    let mut r = PageNumberReader::new(data, "fuzz.pages", false);
    let mut n = 0u64;
    match r.for_each(|_, _| {
        n += 1;
        Ok(())
    }) {
        Ok(()) => {}
        Err(TraceError::BadPageNumber { line, .. }) => {
            let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
            assert!(line >= 1 && line <= lines, "line {line} of {lines}");
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
});
