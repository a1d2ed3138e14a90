//! The lackey reader on arbitrary bytes: never panics, and every access it
//! hands out has a size of 1 to MAX_ACCESS_BYTES. The first byte chooses
//! whether an empty trace is allowed; the rest is the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsim_trace::TraceSource;
use vmsim_trace::access::MAX_ACCESS_BYTES;
use vmsim_trace::lackey::LackeyReader;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, text)) = data.split_first() else {
        return;
    };
    let mut r = LackeyReader::new(text, "fuzz.lackey", false);
    r.set_allow_empty(flags & 1 == 1);
    let mut batch = Vec::new();
    while let Ok(n) = r.next_batch(&mut batch) {
        if n == 0 {
            break;
        }
        for a in &batch {
            assert!((1..=MAX_ACCESS_BYTES).contains(&a.size), "{a:?}");
        }
    }
});
