//! Machine configs: a TOML file merged over a preset, then `--set` lines
//! (lines of the input that start with `--set `), then build and validate.
//! Never panics; a config that builds can make a TLB and print itself as
//! TOML that builds to the same config. Inputs that name files
//! (`format_file`, `swap_file`) are skipped: the target touches no file system.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsim::config::ConfigBuilder;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("_file") {
        return;
    }
    let mut file = String::new();
    let mut sets = Vec::new();
    for line in text.split_inclusive('\n') {
        match line.strip_prefix("--set ") {
            Some(s) => sets.push(s.trim_end_matches('\n')),
            None => file.push_str(line),
        }
    }
    let Ok(mut b) = ConfigBuilder::preset(None).and_then(|b| b.file(&file, "fuzz.toml")) else {
        return;
    };
    for s in sets {
        match b.set(s) {
            Ok(next) => b = next,
            Err(_) => return,
        }
    }
    let Ok(cfg) = b.build() else {
        return;
    };
    let again = ConfigBuilder::preset(None)
        .and_then(|b| b.file(&cfg.to_toml(), "printed"))
        .and_then(ConfigBuilder::build)
        .expect("a config that builds prints as a config that builds");
    assert_eq!(again, cfg);
});
