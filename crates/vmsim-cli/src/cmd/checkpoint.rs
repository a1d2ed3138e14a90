//! `vmsim checkpoint ls|show|merge`: what a checkpoint directory holds,
//! one checkpoint in detail, and folding a chain into a full checkpoint.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;
use vmsim::addr::{Pid, format_size};
use vmsim::checkpoint::{Chain, CheckpointRecord, Header};

/// List, inspect or merge the checkpoints of a directory.
///
/// Examples:
///   vmsim run trace.lackey.zst --checkpoint-every 1M --checkpoint-dir ck
///   vmsim checkpoint ls ck
///   vmsim checkpoint show ck --at 2
///   vmsim checkpoint show ck --at 2 --pid 1 --json
///   vmsim checkpoint merge ck --at 3
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CheckpointArgs {
    #[command(subcommand)]
    pub command: CheckpointCommand,
}

/// The checkpoint subcommands.
#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// One line per checkpoint: kind, reference, parent, size, contents, and
    /// whether its chain back to a full checkpoint is complete.
    ///
    /// Each file is checked as far as a listing can without reading its
    /// page data: its header, its section table to the end of the file, its
    /// configuration's CRC, its chain id against its configuration and
    /// scenario, and its page and swap counts against its sections. The last column says `ok`, or the first thing wrong with
    /// the file or a file its restore would read (page data and the machine
    /// state are checked by restore, show and merge).
    ///
    /// JSON: {schema_version, checkpoints: [...]}; each checkpoint has file,
    /// seq, full, references, parent, bytes,
    /// data_chunks, zero_chunks, swap_pages, chain_ok, error.
    Ls {
        /// The checkpoint directory.
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One checkpoint in detail: its header and sections, what it saved
    /// (pages, dirty pages by tracker, pause), and every process in it
    /// (with --pid: that process's pages, with their content hashes).
    ///
    /// JSON keys: header, sections, record, processes (pid, name, vmas,
    /// resident, swapped, references, input), pages (with --pid: page,
    /// hash, writable, dirty, resident).
    Show {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The checkpoint (default: the newest).
        #[arg(long, value_name = "K")]
        at: Option<u64>,
        /// List this process's pages.
        #[arg(long, value_name = "PID")]
        pid: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Store the checkpoint files a `vmsim run --checkpoint-to` ships here
    /// (disaster recovery): listen, accept one source holding the same key,
    /// write each file it sends into DIR (temporary name, synced, renamed:
    /// never a half-written checkpoint), until the source is done. If the
    /// source dies, DIR holds every checkpoint it finished sending: finish
    /// its run here with `vmsim restore DIR`.
    ///
    /// Prints `listening on ADDR` (always, on standard error), a line per
    /// file (unless --quiet), and a summary. Exit status 1 if the
    /// connection was lost before the source said it was done.
    ///
    /// Example:
    ///   vmsim checkpoint receive store --key-file mig.key --addr 127.0.0.1:7001
    ///   vmsim run trace.vmt --checkpoint-every 1M --checkpoint-to 127.0.0.1:7001 --key-file mig.key
    ///   vmsim restore store
    #[command(verbatim_doc_comment)]
    Receive {
        /// The directory to store into (new, or without checkpoint files).
        dir: PathBuf,
        /// The address to listen on.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0")]
        addr: String,
        /// The pre-shared key file (readable by its owner only).
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// Seconds to wait for any read or write before giving up.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        timeout: u64,
        /// No line per file.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Fold checkpoint K (default: the newest) and the increments before it
    /// into one full checkpoint that replaces it: restores from K then read
    /// one file. Later increments still link to it.
    Merge {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The checkpoint (default: the newest).
        #[arg(long, value_name = "K")]
        at: Option<u64>,
    },
}

#[derive(Serialize)]
struct LsLine {
    file: String,
    seq: u64,
    full: Option<bool>,
    references: Option<u64>,
    parent: Option<u64>,
    bytes: u64,
    data_chunks: Option<u64>,
    zero_chunks: Option<u64>,
    swap_pages: Option<u64>,
    chain_ok: bool,
    error: Option<String>,
}

fn name_of(p: &std::path::Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn ls(dir: &std::path::Path, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let chain = Chain::open(dir)?;
    let mut lines = Vec::new();
    for e in chain.iter() {
        // The file's own lie first (its sections against its header), then
        // its links back to a full checkpoint, then a link's own lie: an
        // entry is `ok` only if every file a restore of it reads is.
        let link = || match chain.links(e.seq) {
            Err(err) => Some(err.to_string()),
            Ok(links) => links.iter().find_map(|l| {
                l.verified
                    .as_ref()
                    .err()
                    .map(|w| format!("{}: {w}", l.path.display()))
            }),
        };
        let (h, err): (Option<&Header>, Option<String>) = match (&e.header, &e.verified) {
            (Ok(h), Err(w)) => (Some(h), Some(w.clone())),
            (Ok(h), Ok(())) => (Some(h), link()),
            (Err(w), _) => (None, Some(w.clone())),
        };
        lines.push(LsLine {
            file: name_of(&e.path),
            seq: e.seq,
            full: h.map(|h| h.full),
            references: h.map(|h| h.references),
            parent: h.and_then(|h| h.parent.map(|_| e.seq.saturating_sub(1))),
            bytes: e.bytes,
            data_chunks: h.map(|h| h.data_chunks),
            zero_chunks: h.map(|h| h.zero_chunks),
            swap_pages: h.map(|h| h.swap_pages),
            chain_ok: err.is_none(),
            error: err,
        });
    }
    if json {
        writeln!(
            out,
            "{}",
            crate::output::json_pretty(&serde_json::json!({ "checkpoints": lines }))?
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<18} {:<5} {:>12} {:>7} {:>10} {:>8} {:>7} {:>6}  chain",
        "file", "kind", "references", "parent", "size", "chunks", "zero", "swap"
    )?;
    for l in &lines {
        writeln!(
            out,
            "{:<18} {:<5} {:>12} {:>7} {:>10} {:>8} {:>7} {:>6}  {}",
            l.file,
            match l.full {
                Some(true) => "full",
                Some(false) => "incr",
                None => "?",
            },
            l.references.map_or("-".into(), |r| r.to_string()),
            l.parent.map_or("-".into(), |p| p.to_string()),
            format_size(l.bytes),
            l.data_chunks.map_or("-".into(), |n| n.to_string()),
            l.zero_chunks.map_or("-".into(), |n| n.to_string()),
            l.swap_pages.map_or("-".into(), |n| n.to_string()),
            l.error.as_deref().unwrap_or("ok")
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Section {
    tag: String,
    stored: u64,
    raw: u64,
    zstd: bool,
}

#[derive(Serialize)]
struct ProcLine {
    pid: u32,
    name: String,
    vmas: usize,
    resident: usize,
    swapped: usize,
    references: u64,
    input: Option<String>,
}

#[derive(Serialize)]
struct PageLine {
    page: String,
    hash: String,
    writable: bool,
    dirty: bool,
    resident: bool,
}

#[derive(Serialize)]
struct Show {
    header: Header,
    sections: Vec<Section>,
    record: Option<CheckpointRecord>,
    processes: Vec<ProcLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<Vec<PageLine>>,
}

fn show(
    dir: &std::path::Path,
    at: Option<u64>,
    pid: Option<u32>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let chain = Chain::open(dir)?;
    let seq = at
        .or(chain.last())
        .context("the directory holds no checkpoint")?;
    let entry = chain
        .iter()
        .find(|e| e.seq == seq)
        .with_context(|| format!("{}: no checkpoint {seq}", dir.display()))?;
    let header = entry
        .header
        .clone()
        .map_err(|e| anyhow::anyhow!("{}: {e}", entry.path.display()))?;
    let sections = chain
        .sections(seq)?
        .into_iter()
        .map(|(tag, stored, raw, zstd)| Section {
            tag,
            stored,
            raw,
            zstd,
        })
        .collect();
    let mut sim = chain.inspect(Some(seq))?;
    let record = sim
        .checkpoint_report()
        .and_then(|r| r.records.into_iter().find(|r| r.seq == seq));
    let pids: Vec<Pid> = sim.kernel().processes().map(|p| p.pid).collect();
    let mut processes = Vec::new();
    let mut pages = None;
    for p in pids {
        let img = sim.process_image(p)?;
        processes.push(ProcLine {
            pid: p.as_u32(),
            name: img.name.clone(),
            vmas: img.vmas.len(),
            resident: img.resident.len(),
            swapped: img.swapped.len(),
            references: img.references,
            input: img
                .input
                .as_ref()
                .map(|i| format!("{} at access {}", i.id.describe(), i.consumed)),
        });
        if pid == Some(p.as_u32()) {
            let mut v: Vec<PageLine> = img
                .resident
                .iter()
                .map(|pg| (pg, true))
                .chain(img.swapped.iter().map(|pg| (pg, false)))
                .map(|(pg, resident)| PageLine {
                    page: format!("{:#x}", pg.page.as_u64()),
                    hash: format!("{:016x}", pg.hash),
                    writable: pg.writable,
                    dirty: pg.dirty,
                    resident,
                })
                .collect();
            v.sort_by(|a, b| a.page.len().cmp(&b.page.len()).then(a.page.cmp(&b.page)));
            pages = Some(v);
        }
    }
    if let Some(p) = pid
        && pages.is_none()
    {
        anyhow::bail!("checkpoint {seq} has no process {p}");
    }
    let s = Show {
        header,
        sections,
        record,
        processes,
        pages,
    };
    if json {
        writeln!(out, "{}", crate::output::json_pretty(&s)?)?;
    } else {
        write!(out, "{}", show_text(&entry.path, &s))?;
    }
    Ok(())
}

fn show_text(path: &std::path::Path, s: &Show) -> String {
    let mut o = String::new();
    let h = &s.header;
    let _ = writeln!(
        o,
        "{}: checkpoint {} ({}), taken after {} references; {}",
        path.display(),
        h.seq,
        if h.full { "full" } else { "incremental" },
        h.references,
        h.written_by
    );
    let _ = writeln!(
        o,
        "  chain {:016x}, id {:016x}, parent {}",
        h.chain,
        h.id,
        h.parent.map_or("none".into(), |p| format!("{p:016x}"))
    );
    let _ = writeln!(
        o,
        "  holds {} memory chunks with data, {} chunks now zero, {} swap pages",
        h.data_chunks, h.zero_chunks, h.swap_pages
    );
    let _ = writeln!(o, "sections");
    for sec in &s.sections {
        let _ = writeln!(
            o,
            "  {:<4}  {:>10} stored  {:>10} raw{}",
            sec.tag,
            format_size(sec.stored),
            format_size(sec.raw),
            if sec.zstd { "  (zstd)" } else { "" }
        );
    }
    if let Some(r) = &s.record {
        let opt = |v: Option<u64>| v.map_or("-".into(), |n| n.to_string());
        let _ = writeln!(
            o,
            "saved        {} pages ({}), {} zero pages, {} shared pages stored once, {} page-table pages",
            r.pages_saved,
            format_size(r.bytes_saved),
            r.zero_pages,
            r.shared_pages,
            r.table_pages
        );
        let _ = writeln!(
            o,
            "dirty pages  host {}, dirty-bit {}, soft-dirty {}; {} write-protect faults since the previous checkpoint",
            r.dirty_host,
            opt(r.dirty_bits),
            opt(r.soft_dirty),
            r.wp_faults
        );
        let _ = writeln!(
            o,
            "pause        {} cycles ({} PTEs changed, {} shootdowns)",
            r.pause_cycles, r.ptes_changed, r.shootdowns
        );
    }
    let _ = writeln!(
        o,
        "processes    pid  name                 vmas  resident  swapped  references  input"
    );
    for p in &s.processes {
        let _ = writeln!(
            o,
            "             {:<4} {:<20} {:>4}  {:>8}  {:>7}  {:>10}  {}",
            p.pid,
            p.name,
            p.vmas,
            p.resident,
            p.swapped,
            p.references,
            p.input.as_deref().unwrap_or("-")
        );
    }
    if let Some(pages) = &s.pages {
        let _ = writeln!(
            o,
            "pages        address             content hash      rights  where"
        );
        for pg in pages {
            let _ = writeln!(
                o,
                "             {:<18}  {}  {}{}      {}",
                pg.page,
                pg.hash,
                if pg.writable { 'w' } else { '-' },
                if pg.dirty { 'd' } else { '-' },
                if pg.resident { "resident" } else { "swap" }
            );
        }
    }
    o
}

/// Runs `vmsim checkpoint`.
pub fn run(args: &CheckpointArgs, out: &mut impl Write) -> anyhow::Result<()> {
    match &args.command {
        CheckpointCommand::Ls { dir, json } => ls(dir, *json, out),
        CheckpointCommand::Show { dir, at, pid, json } => show(dir, *at, *pid, *json, out),
        CheckpointCommand::Receive {
            dir,
            addr,
            key_file,
            timeout,
            quiet,
        } => receive(dir, addr, key_file, *timeout, *quiet, out),
        CheckpointCommand::Merge { dir, at } => {
            let chain = Chain::open(dir)?;
            let seq = at
                .or(chain.last())
                .context("the directory holds no checkpoint")?;
            let bytes = chain.merge(Some(seq))?;
            writeln!(
                out,
                "merged checkpoints up to {seq} into {} (full, {})",
                dir.join(vmsim::checkpoint::file_name(seq)).display(),
                format_size(bytes)
            )?;
            Ok(())
        }
    }
}

/// Runs `vmsim checkpoint receive`.
fn receive(
    dir: &std::path::Path,
    addr: &str,
    key_file: &std::path::Path,
    timeout: u64,
    quiet: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let key = crate::channel::Key::load(key_file)?;
    if timeout == 0 {
        anyhow::bail!("--timeout 0: give at least 1 second");
    }
    let dir = crate::ship::store_dir(dir)?;
    let timeout = std::time::Duration::from_secs(timeout);
    let listener = crate::channel::listen(addr)?;
    // Always said, even with --quiet: it is how a caller learns the port.
    crate::output::to_stderr(&format!(
        "vmsim checkpoint receive: listening on {}",
        listener.local_addr()?
    ))?;
    let (mut tx, mut rx) = loop {
        let (stream, peer) = listener.accept().context("accepting a connection")?;
        match crate::channel::authenticate(stream, &key, timeout) {
            Ok(halves) => break halves,
            Err(e) => crate::output::to_stderr(&format!(
                "vmsim checkpoint receive: dropped a connection from {peer}: {e}"
            ))?,
        }
    };
    let peer = rx.peer().to_string();
    let (got, err) = crate::ship::store(&dir, &mut tx, &mut rx, |name, bytes| {
        if !quiet {
            let _ = crate::output::to_stderr(&format!(
                "vmsim checkpoint receive: stored {name} ({})",
                format_size(bytes)
            ));
        }
    });
    let held = match got.files.last() {
        Some(last) => format!(
            "{} holds {} checkpoint(s) ({}), the last {last}",
            dir.display(),
            got.files.len(),
            format_size(got.bytes)
        ),
        None => format!("{} holds no checkpoint", dir.display()),
    };
    match err {
        None => {
            writeln!(out, "received the checkpoints of {peer}: {held}")?;
            Ok(())
        }
        Some(e) => Err(e.context(format!(
            "the source {peer} was lost before it was done; {held}{}",
            if got.files.is_empty() {
                String::new()
            } else {
                format!(": finish its run with `vmsim restore {}`", dir.display())
            }
        ))),
    }
}
