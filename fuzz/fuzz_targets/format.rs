//! User-defined paging formats (TOML): never panics; a format that is
//! accepted splits any address into fields that cover its bits, and
//! decodes any entry at any level.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsim::addr::VirtAddr;
use vmsim::paging::Format;

fuzz_target!(|data: &[u8]| {
    // The last 16 bytes (if any) are an address and an entry to try.
    let (text, probe) = data.split_at(data.len().saturating_sub(16));
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(fmt) = Format::from_toml(text, "fuzz.toml") else {
        return;
    };
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
        u64::from_le_bytes(w)
    };
    let va = word(probe.get(..8).unwrap_or_default());
    let raw = word(probe.get(8..).unwrap_or_default());
    let va = VirtAddr::new(va);
    if fmt.check_address(va).is_ok() {
        for level in fmt.levels() {
            let _ = level.index(va);
        }
    }
    for idx in 0..fmt.levels().len() {
        let _ = fmt.decode(idx, raw);
        let _ = fmt.bit_names(idx, raw);
        let _ = fmt.table_bytes(idx);
    }
});
