//! The human-readable report of `vmsim run`: aligned sections, units, rates.

use std::fmt::Write;

use vmsim::addr::format_size;
use vmsim::report::Report;

fn pct(n: u64, d: u64) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{:.2}%", n as f64 * 100.0 / d as f64)
    }
}

/// Renders the report as text, one section after another.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    machine(&mut o, r);
    tlb(&mut o, r);
    walks(&mut o, r);
    faults(&mut o, r);
    memory(&mut o, r);
    processes(&mut o, r);
    if let Some(eat) = r.eat_cycles {
        let _ = writeln!(
            o,
            "EAT          {eat:.3} cycles per translation (measured from the counts and the configured latencies)"
        );
    }
    if let Some(c) = &r.checkpoints {
        checkpoints(&mut o, c, r.machine.page_size);
    }
    for w in &r.warnings {
        let _ = writeln!(o, "warning      {w}");
    }
    o
}

/// The machine, then what ran through it: references and translations.
fn machine(o: &mut String, r: &Report) {
    let m = &r.machine;
    let _ = writeln!(o, "vmsim run: {}", m.description);
    let _ = writeln!(
        o,
        "machine      {} ({} tables), {} pages, {} of memory ({} frames), {} A/D bits, {}, memory latency {} cycles",
        m.arch,
        m.structure,
        format_size(m.page_size),
        format_size(m.memory_bytes),
        m.frames,
        if m.hardware_ad {
            "hardware"
        } else {
            "Svade (OS-set)"
        },
        if m.asid_tags {
            "ASID-tagged TLB"
        } else {
            "TLB flushed on context switch"
        },
        m.memory_latency_cycles
    );
    let k = &r.references_by_kind;
    let _ = writeln!(
        o,
        "references   {}  (instr {}, load {}, store {}, modify {})",
        r.references, k["instr"], k["load"], k["store"], k["modify"]
    );
    let _ = writeln!(
        o,
        "translations {}  (TLB lookups {}, retries after faults included)",
        r.translations, r.tlb_lookups
    );
}

/// The TLB hierarchy: all levels, then each level by page size.
fn tlb(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "TLB          {} hits, {} misses of every level ({} hit rate)",
        r.tlb_hits,
        r.tlb_misses,
        pct(r.tlb_hits, r.tlb_lookups)
    );
    for l in &r.tlb_levels {
        let sizes: Vec<String> = l
            .hits_by_page_size
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let _ = writeln!(
            o,
            "  level {}    {} lookups, {} hits ({}), {} misses, latency {} cycles; hits by size: {}",
            l.level,
            l.lookups,
            l.hits,
            pct(l.hits, l.lookups),
            l.misses,
            l.latency_cycles,
            if sizes.is_empty() {
                "-".into()
            } else {
                sizes.join(", ")
            }
        );
    }
}

/// Page walks, table probes (inverted and hashed tables) and walk caches.
fn walks(o: &mut String, r: &Report) {
    let m = &r.machine;
    let _ = writeln!(
        o,
        "walks        {} completed, {} faulted, {} dirty-bit walks; {} entries read ({} per walk), by level {:?}; {} A/D write-backs",
        r.walks,
        r.faulting_walks,
        r.dirty_walks,
        r.walk_memory_references,
        r.walk_references_per_walk
            .map_or("-".into(), |v| format!("{v:.2}")),
        r.walk_references_by_level,
        r.ad_writes
    );
    if let Some(p) = &r.table_probes {
        let _ = writeln!(
            o,
            "probes       {} searches of the {} table: {:.2} per search (min {}, max {})",
            p.lookups,
            m.structure,
            p.mean(),
            p.min,
            p.max
        );
    }
    if r.walk_cache.lookups > 0 {
        let depths: Vec<String> = r
            .walk_cache
            .hits_by_depth
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(d, n)| format!("skip {d}: {n}"))
            .collect();
        let _ = writeln!(
            o,
            "walk caches  {} lookups, {} hits ({}){}",
            r.walk_cache.lookups,
            r.walk_cache.hits(),
            pct(r.walk_cache.hits(), r.walk_cache.lookups),
            if depths.is_empty() {
                String::new()
            } else {
                format!(": {}", depths.join(", "))
            }
        );
    }
}

/// Faults: the MMU's by kind, the kernel's by resolution, then paging.
fn faults(o: &mut String, r: &Report) {
    let f = &r.mmu_faults;
    let _ = writeln!(
        o,
        "MMU faults   {} not present, {} protection, {} accessed/dirty (Svade), {} non-canonical, {} too wide, {} reserved bits, {} misaligned",
        f.not_present,
        f.protection,
        f.accessed_dirty,
        f.non_canonical,
        f.too_wide,
        f.reserved_bits,
        f.misaligned_superpage
    );
    let ks = &r.kernel;
    let wp = if ks.write_protect > 0 {
        format!(", {} write-protect", ks.write_protect)
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "kernel       {} demand-zero, {} COW copies, {} COW reuses, {} shared-page, {} stack growth, {} spurious, {} A/D set, {} alias reloads{wp}, {} segfaults; {} forks, {} vforks, {} exits",
        ks.demand_zero,
        ks.cow_copies,
        ks.cow_reuses,
        ks.shared_minor,
        ks.stack_growth,
        ks.spurious,
        ks.accessed_dirty,
        ks.alias_reloads,
        ks.segfaults,
        ks.forks,
        ks.vforks,
        ks.exits
    );
    let pg = &r.paging;
    let _ = writeln!(
        o,
        "paging       {} minor, {} major faults; {} swap-outs ({} written back, {} clean drops), {} swap-ins, {} swap-cache hits, {} refaults; {} pages scanned; page-out daemon {} runs ({} pages), {} direct reclaims; swap slots peak {}",
        r.minor_faults,
        r.major_faults,
        pg.swap_outs,
        pg.writebacks,
        pg.clean_drops,
        pg.swap_ins,
        pg.swap_cache_hits,
        pg.refaults,
        pg.pages_scanned,
        pg.kswapd_runs,
        pg.kswapd_reclaimed,
        pg.direct_reclaims,
        r.swap.slots_peak
    );
}

/// Peak memory, and the snapshot before the first exit (buddy, slabs).
fn memory(o: &mut String, r: &Report) {
    let m = &r.machine;
    let _ = writeln!(
        o,
        "memory       peak {} frames in use, peak {} page-table frames ({}); {} frames leaked",
        r.peak_frames_used,
        r.peak_page_table_frames,
        format_size(r.peak_page_table_frames * m.memory_bytes / m.frames.max(1)),
        r.frames_leaked
    );
    if let Some(s) = &r.memory {
        let _ = writeln!(
            o,
            "  before the first exit: {} frames used, {} free, {} page-table frames",
            s.frames_used, s.frames_free, s.page_table_frames
        );
        let _ = writeln!(
            o,
            "  buddyinfo  {}",
            s.fragmentation.buddyinfo_line(0, "Normal")
        );
        let _ = writeln!(
            o,
            "  extfrag    {}",
            s.fragmentation.extfrag_line(0, "Normal")
        );
        for sl in s.slabs.iter().filter(|sl| sl.slabs > 0) {
            let _ = writeln!(
                o,
                "  slab {:<16} {} objects of {} B in {} slabs, {} B internal fragmentation",
                sl.name,
                sl.active_objects,
                sl.object_size,
                sl.slabs,
                sl.internal_fragmentation_bytes
            );
        }
    }
}

/// One line per process.
fn processes(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "processes    pid  name                 references  resident-peak  faults  page-table-frames  end"
    );
    for p in &r.processes {
        let faults = p.faults.demand_zero
            + p.faults.cow_copy
            + p.faults.cow_reuse
            + p.faults.shared
            + p.faults.stack_growth
            + p.faults.accessed_dirty
            + p.faults.swap_in
            + p.faults.swap_cache;
        let end = p
            .killed
            .map_or_else(|| "exited".to_string(), |k| format!("killed ({k:?})"));
        let _ = writeln!(
            o,
            "             {:<4} {:<20} {:>10}  {:>13}  {:>6}  {:>17}  {end}",
            p.pid.as_u32(),
            p.name,
            p.references,
            p.resident_peak,
            faults,
            p.page_table_frames
        );
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |n| n.to_string())
}

/// The checkpoint section: a summary, then one line per checkpoint.
fn checkpoints(o: &mut String, c: &vmsim::checkpoint::CheckpointReport, page: u64) {
    let wp = c.mode == "write-protect";
    let _ = writeln!(
        o,
        "checkpoints  {} taken ({} mode, {}, every {} references); pauses {} cycles in all{}",
        c.records.len(),
        c.mode,
        if c.tracker == "both" {
            "both trackers".to_string()
        } else {
            format!("{} tracker", c.tracker)
        },
        c.every,
        c.pause_cycles,
        if wp {
            format!(", write-protect faults {} cycles", c.fault_cycles)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "  #     references  kind  pages saved      bytes  zero  shared  tables  dirty host/D-bit/soft  wp-faults  PTEs  shootdowns  pause cycles{}  file",
        if wp {
            "  by-fault/background/next-pause"
        } else {
            ""
        }
    );
    for r in &c.records {
        let _ = writeln!(
            o,
            "  {:<4} {:>11}  {:<4}  {:>11}  {:>9}  {:>4}  {:>6}  {:>6}  {:>21}  {:>9}  {:>4}  {:>10}  {:>12}{}  {}",
            r.seq,
            r.references,
            if r.full { "full" } else { "incr" },
            r.pages_saved,
            format_size(r.pages_saved * page),
            r.zero_pages,
            r.shared_pages,
            r.table_pages,
            format!(
                "{}/{}/{}",
                r.dirty_host,
                opt(r.dirty_bits),
                opt(r.soft_dirty)
            ),
            r.wp_faults,
            r.ptes_changed,
            r.shootdowns,
            r.pause_cycles,
            if wp {
                format!(
                    "  {:>30}",
                    format!(
                        "{}/{}/{}",
                        r.saved_by_fault, r.saved_in_background, r.saved_at_next_pause
                    )
                )
            } else {
                String::new()
            },
            match (&r.file, r.file_bytes) {
                (Some(f), Some(b)) => format!("{f} ({})", format_size(b)),
                _ => "-".into(),
            }
        );
    }
}
