//! Records per second of each trace reader: lackey text (plain and zstd,
//! generated here so the bench needs no external file), `.vmt`, synthetic,
//! and page-number files read into dense ids (the policy lab's input).

#![allow(missing_docs)]

use std::io::Write;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vmsim_trace::{
    Access, AccessKind, DenseMap, TraceSource, open_pages, open_path, synth::SynthSource, vmt,
};

const RECORDS: u64 = 1_000_000;

/// A lackey-like trace: instruction fetches walking code, with loads, stores
/// and the occasional modify on a stack and a heap.
fn lackey_text() -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORDS as usize * 16);
    writeln!(out, "==1234== Lackey, an example Valgrind tool").expect("vec");
    let mut pc = 0x0400_1000u64;
    for i in 0..RECORDS {
        match i % 5 {
            0..=2 => {
                writeln!(out, "I  {pc:08x},{}", 1 + i % 7).expect("vec");
                pc += 1 + i % 7;
            }
            3 => writeln!(out, " L 1fff000{:03x},8", i % 0x1000).expect("vec"),
            _ if i % 50 == 4 => writeln!(out, " M 0484{:04x},4", i % 0x10000).expect("vec"),
            _ => writeln!(out, " S 0484{:04x},8", i % 0x10000).expect("vec"),
        }
    }
    out
}

/// A page-number file like `vmsim trace pages` writes of a program: one
/// number per line, runs on a few code pages (5 digits) and a stack far
/// above (8 digits, past the direct table), every tenth a write.
fn page_numbers() -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORDS as usize * 8);
    for i in 0..RECORDS {
        let page = if i % 7 < 5 {
            16_410 + (i / 64) % 40
        } else {
            33_550_336 - (i / 512) % 16
        };
        let w = if i % 10 == 9 { "w" } else { "" };
        writeln!(out, "{page}{w}").expect("vec");
    }
    out
}

/// Reads a page-number file into dense ids, as the policy lab does.
fn dense(path: &Path) -> u64 {
    let mut src = open_pages(&path.display().to_string(), 4096, false).expect("open");
    let mut map = DenseMap::new();
    let mut sum = 0u64;
    src.for_each(|r| {
        let id = map.id(r.pid, r.page).expect("room");
        sum = sum.wrapping_add(u64::from(id) ^ u64::from(r.write));
        Ok(())
    })
    .expect("read");
    sum
}

fn drain(path: &Path) -> u64 {
    let mut src = open_path(path).expect("open");
    let mut batch: Vec<Access> = Vec::new();
    let mut sum = 0u64;
    while src.next_batch(&mut batch).expect("read") > 0 {
        for a in &batch {
            sum = sum.wrapping_add(a.va ^ u64::from(a.kind == AccessKind::Store));
        }
    }
    sum
}

fn readers(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = lackey_text();
    let plain = dir.path().join("b.lackey");
    std::fs::write(&plain, &text).expect("write");
    let zst = dir.path().join("b.lackey.zst");
    std::fs::write(
        &zst,
        zstd::stream::encode_all(text.as_slice(), 9).expect("zstd"),
    )
    .expect("write");
    let vmt_path = dir.path().join("b.vmt");
    vmt::convert(&mut open_path(&plain).expect("open"), &vmt_path).expect("convert");

    let pages = dir.path().join("b.pages");
    std::fs::write(&pages, page_numbers()).expect("write");

    let mut g = c.benchmark_group("readers");
    g.throughput(Throughput::Elements(RECORDS));
    g.sample_size(10);
    g.bench_function("lackey_plain", |b| b.iter(|| drain(&plain)));
    g.bench_function("lackey_zstd", |b| b.iter(|| drain(&zst)));
    g.bench_function("vmt", |b| b.iter(|| drain(&vmt_path)));
    g.bench_function("page_numbers_dense", |b| b.iter(|| dense(&pages)));
    g.bench_function("synth_zipf", |b| {
        b.iter(|| {
            let mut s = SynthSource::parse("zipf,pages=65536,s=1.0,refs=1M").expect("spec");
            let mut batch = Vec::new();
            let mut n = 0u64;
            while s.next_batch(&mut batch).expect("synth") > 0 {
                n += batch.iter().map(|a| a.va & 1).sum::<u64>();
            }
            n
        });
    });
    g.bench_function("synth_scan", |b| {
        b.iter(|| {
            let mut s = SynthSource::parse("scan,bytes=4MiB,stride=4").expect("spec");
            let mut batch = Vec::new();
            let mut n = 0u64;
            while s.next_batch(&mut batch).expect("synth") > 0 {
                n += batch.iter().map(|a| a.va & 1).sum::<u64>();
            }
            n
        });
    });
    g.finish();
}

criterion_group!(benches, readers);
criterion_main!(benches);
