//! Checking a checkpoint file's `HEAD` section: against itself and the
//! file's other sections when the file is read, and against the machine
//! state it heads when it is restored.
//!
//! The header is what `checkpoint ls` lists and what a chain's links are
//! followed by (sequence number, parent id); the state restored is the
//! `MACH` section. A forged header whose checksums are right was listed
//! as it said (a reference count, a kind, chunk counts the file does not
//! hold) and restored whatever `MACH` held: a file named and headed as
//! checkpoint 1 could carry checkpoint 2's machine, and `restore --at 1`
//! ran from checkpoint 2's reference. Every relation here is one the
//! writers keep exactly ([`Simulation::take_checkpoint`]: `seq` = the
//! checkpoints taken before it, its id made of chain, `seq` and
//! references; [`Simulation::checkpoint`]: `seq` = the checkpoints taken,
//! its id made with `u64::MAX` for `seq`; `vmsim checkpoint merge`: the
//! merged checkpoint's header made full). Restore code only. `Err` names
//! the field; the caller adds the file and the section.
//!
//! [`Simulation::take_checkpoint`]: crate::sim::Simulation::take_checkpoint
//! [`Simulation::checkpoint`]: crate::sim::Simulation::checkpoint

use crate::sim::Machine;
use crate::sim::restored::COUNTER_LIMIT;

use vmsim_trace::scenario::Scenario;

use super::Header;
use super::run::{chain_id, checkpoint_id};

/// The longest `written_by` accepted (a written one is `vmsim X.Y.Z`).
const MAX_WRITTEN_BY: usize = 256;

/// Which writer a header says made it, by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A checkpoint of a run's chain (or one merged into a full one).
    Chain,
    /// A snapshot of [`Simulation::checkpoint`](crate::sim::Simulation::checkpoint).
    Snapshot,
}

fn kind(h: &Header) -> Option<Kind> {
    if h.id == checkpoint_id(h.chain, h.seq, h.references) {
        Some(Kind::Chain)
    } else if h.id == checkpoint_id(h.chain, u64::MAX, h.references) {
        Some(Kind::Snapshot)
    } else {
        None
    }
}

/// The header's own relations, checked whenever a file's `HEAD` is read
/// (a listing too): its id is the one its writer makes of its chain,
/// number and references (a reference count or number changed alone no
/// longer matches it); a full checkpoint has no parent and an increment
/// one, a snapshot is full; its figures are within any run's; the
/// program named is one line of printable text (`checkpoint show`
/// prints it).
pub(crate) fn check_alone(h: &Header) -> Result<(), String> {
    for (name, v) in [
        ("seq", h.seq),
        ("references", h.references),
        ("data_chunks", h.data_chunks),
        ("zero_chunks", h.zero_chunks),
        ("swap_pages", h.swap_pages),
    ] {
        if v > COUNTER_LIMIT {
            return Err(format!(
                "{name} = {v} is beyond any run (at most 2^56 = {COUNTER_LIMIT})"
            ));
        }
    }
    let Some(k) = kind(h) else {
        return Err(format!(
            "id {:016x} is not the id of checkpoint {} of chain {:016x} at {} references",
            h.id, h.seq, h.chain, h.references
        ));
    };
    if h.full != h.parent.is_none() {
        return Err(if h.full {
            "a full checkpoint names a parent".into()
        } else {
            "an increment names no parent".into()
        });
    }
    if k == Kind::Snapshot && !h.full {
        return Err("a snapshot (id of no chain position) that is an increment".into());
    }
    // The chain id's high half is the CRC-32C of the configuration it was
    // made from (`run::chain_id`), the text this file's `config_crc` is
    // of; a snapshot of a run that took no checkpoint has no chain (0).
    if h.chain == 0 {
        if k != Kind::Snapshot {
            return Err("a checkpoint of a chain with chain id 0 (no chain)".into());
        }
    } else if h.chain >> 32 != u64::from(h.config_crc) {
        return Err(format!(
            "chain {:016x} was not made from the configuration of config_crc {:08x} (its high half is that CRC)",
            h.chain, h.config_crc
        ));
    }
    if h.written_by.len() > MAX_WRITTEN_BY || h.written_by.chars().any(char::is_control) {
        return Err(format!(
            "written_by is not one line of at most {MAX_WRITTEN_BY} bytes: {:?}",
            h.written_by.chars().take(64).collect::<String>()
        ));
    }
    Ok(())
}

/// The header against the machine state restored from its file (after
/// [`check_alone`]): the references the machine has made; the chain its
/// checkpoint books name; a chain checkpoint is the last the machine took
/// (`seq` one less than the count taken, its record at the header's
/// references, the machine's last id its id, an increment's parent the
/// id of the record before), a snapshot numbered by the count taken.
pub(crate) fn check_against(h: &Header, m: &Machine) -> Result<(), String> {
    let now: u64 = m.references.iter().sum();
    if h.references != now {
        return Err(format!(
            "the header says {} references, the machine state {now}",
            h.references
        ));
    }
    let ck = &m.ckpt;
    if h.chain != ck.chain {
        return Err(format!(
            "the header's chain {:016x} is not the machine's {:016x}",
            h.chain, ck.chain
        ));
    }
    match kind(h) {
        Some(Kind::Snapshot) => {
            if h.seq != ck.taken {
                return Err(format!(
                    "a snapshot numbered {} of a machine that took {} checkpoints",
                    h.seq, ck.taken
                ));
            }
        }
        Some(Kind::Chain) => {
            if h.seq.checked_add(1) != Some(ck.taken) {
                return Err(format!(
                    "checkpoint {} of a machine that took {} checkpoints (its last is {})",
                    h.seq,
                    ck.taken,
                    ck.taken.wrapping_sub(1)
                ));
            }
            let rec = usize::try_from(h.seq)
                .ok()
                .and_then(|i| ck.records.get(i))
                .ok_or_else(|| format!("checkpoint {} has no record in the machine", h.seq))?;
            if rec.references != h.references || ck.last_id != Some(h.id) {
                return Err(format!(
                    "checkpoint {} at {} references is not the machine's last (its record says {} references)",
                    h.seq, h.references, rec.references
                ));
            }
            if let Some(parent) = h.parent {
                let before = usize::try_from(h.seq)
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| ck.records.get(i));
                if before.map(|r| checkpoint_id(h.chain, r.seq, r.references)) != Some(parent) {
                    return Err(format!(
                        "the parent {parent:016x} is not the machine's checkpoint {}",
                        h.seq.wrapping_sub(1)
                    ));
                }
            }
        }
        None => return Err("its id is no writer's (see the header)".into()),
    }
    Ok(())
}

/// The restored configuration and scenario against the chain id, which
/// is their hash at the run's first checkpoint (after [`check_against`],
/// so the machine's chain is the header's). `text` is the file's `CONF`,
/// `written` the text the configuration read from it writes back as.
///
/// Sound because nothing between the first checkpoint and this file
/// changes what was hashed: a run's configuration and scenario are fixed
/// once it starts (checkpoints are taken only after `start`), a restored
/// run keeps the file's (`CONF` is the text the configuration writes, so
/// it must read back to the same text: checked here first; the scenario
/// is postcard, whose encoding of a decoded value is the encoding it was
/// decoded from, up to encodings of the same value), and a merged file
/// carries its checkpoint's text and scenario. A machine that took no
/// checkpoint has no chain (0) and nothing to hold.
pub(crate) fn check_chain(
    m: &Machine,
    text: &str,
    written: &str,
    scenario: &Scenario,
) -> Result<(), String> {
    if text != written {
        let at = text
            .bytes()
            .zip(written.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(text.len().min(written.len()));
        return Err(format!(
            "section CONF: not the text its configuration is written as (they differ from byte {at})"
        ));
    }
    let ck = &m.ckpt;
    if ck.taken == 0 && ck.chain == 0 {
        return Ok(());
    }
    let scen = postcard::to_allocvec(scenario).map_err(|e| format!("section SCEN: {e}"))?;
    check_chain_id(ck.chain, text, &scen)
}

/// `chain` against the hash of the configuration's text and the
/// scenario's bytes it must be (`run::chain_id`): for a restore
/// ([`check_chain`]) and a listing (`listed.rs`) alike.
pub(crate) fn check_chain_id(chain: u64, text: &str, scenario: &[u8]) -> Result<(), String> {
    let want = chain_id(text, scenario);
    if chain != want {
        return Err(format!(
            "sections HEAD, CONF and SCEN: the chain id {chain:016x} is not {want:016x}, the hash of the configuration and the scenario in the file"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Forged headers: a real chain's files with `HEAD` (or another
    //! section) changed and every length and CRC-32C made right, so only
    //! these checks can tell.

    use vmsim_trace::scenario::Scenario;

    use crate::checkpoint::{Chain, Header, file_name};
    use crate::config::ConfigBuilder;
    use crate::sim::Simulation;

    use super::checkpoint_id;
    use crate::checkpoint::forged::{
        chain_in, header, payload, started, with_header, with_section,
    };

    /// A fresh chain with file `seq` rewritten by `forge` (given the
    /// directory's files' bytes by number); then what `checkpoint ls`
    /// (the entry's header), `restore --at seq` and `restore --at seq+1`
    /// say. `Ok` for a restore means it restored and ran to the end.
    fn forged_chain(
        seq: u64,
        forge: impl FnOnce(&[Vec<u8>]) -> Vec<u8>,
    ) -> (
        Result<Header, String>,
        Result<(), String>,
        Result<(), String>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        chain_in(dir.path());
        let files: Vec<Vec<u8>> = (0..3)
            .map(|k| std::fs::read(dir.path().join(file_name(k))).expect("file"))
            .collect();
        let forged = forge(&files);
        std::fs::write(dir.path().join(file_name(seq)), forged).expect("write");
        let chain = Chain::open(dir.path()).expect("chain");
        let listed = chain
            .iter()
            .find(|e| e.seq == seq)
            .expect("listed")
            .header
            .clone();
        let restore = |at: u64| {
            let sim = chain.restore(Some(at), &[]).map_err(|e| e.to_string())?;
            sim.run_to_end(&mut (), None)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        (listed, restore(seq), restore(seq + 1))
    }

    fn one_line_with(r: &Result<(), String>, what: &str, expect: &str) {
        match r {
            Ok(()) => panic!("{what}: the forged file restored and ran"),
            Err(e) => {
                assert!(!e.contains('\n'), "{what}: {e}");
                assert!(e.contains(expect), "{what}: expected '{expect}' in: {e}");
            }
        }
    }

    #[test]
    fn the_unforged_chain_restores_at_every_checkpoint() {
        let (listed, at1, at2) = forged_chain(1, |f| f[1].clone());
        listed.expect("listed");
        at1.expect("restore at 1");
        at2.expect("restore at 2");
    }

    /// The header's reference count or number changed alone: its id no
    /// longer matches, and `checkpoint ls` marks the file.
    #[test]
    fn a_header_changed_alone_is_refused_when_listed() {
        for (what, forge) in [
            (
                "references",
                (|h: &mut Header| h.references = 17) as fn(&mut Header),
            ),
            ("full", |h| h.full = true),
            ("written_by", |h| {
                h.written_by = "vmsim 0.1.0\nforged".into()
            }),
            ("data chunks", |h| h.data_chunks = u64::MAX),
        ] {
            let (listed, at1, at2) = forged_chain(1, |f| {
                let mut h = header(&f[1]);
                forge(&mut h);
                with_header(&f[1], &h)
            });
            let e = listed.expect_err(what);
            assert!(e.contains("section HEAD"), "{what}: {e}");
            one_line_with(&at1, what, "section HEAD");
            one_line_with(&at2, what, "section HEAD");
        }
    }

    /// A header made consistent in itself (its id worked out again) but
    /// not with the machine state in its file.
    #[test]
    fn a_header_that_is_not_its_machines_is_refused() {
        // Another reference count, between its parent's and its child's.
        let (listed, at1, _) = forged_chain(1, |f| {
            let mut h = header(&f[1]);
            h.references -= 1;
            h.id = checkpoint_id(h.chain, h.seq, h.references);
            with_header(&f[1], &h)
        });
        listed.expect("consistent in itself");
        one_line_with(&at1, "references", "the header says 5999 references");
        // Older than its parent: refused by the chain's links too.
        let (_, at1, _) = forged_chain(1, |f| {
            let mut h = header(&f[1]);
            h.references = 1;
            h.id = checkpoint_id(h.chain, h.seq, h.references);
            with_header(&f[1], &h)
        });
        one_line_with(&at1, "older than its parent", "before its parent");
        // A snapshot's id on an increment.
        let (listed, _, _) = forged_chain(1, |f| {
            let mut h = header(&f[1]);
            h.id = checkpoint_id(h.chain, u64::MAX, h.references);
            with_header(&f[1], &h)
        });
        let e = listed.expect_err("snapshot id");
        assert!(e.contains("a snapshot") && e.contains("increment"), "{e}");
    }

    /// File 1 headed as checkpoint 1 but holding checkpoint 2 (the
    /// sections of the chain merged at 2, HEAD's counts made theirs):
    /// `restore --at 1` ran from checkpoint 2's reference.
    #[test]
    fn a_file_holding_another_checkpoints_machine_is_refused() {
        let (listed, at1, _) = forged_chain(1, |f| {
            let other = tempfile::tempdir().expect("tempdir");
            chain_in(other.path());
            Chain::open(other.path())
                .expect("chain")
                .merge(Some(2))
                .expect("merge");
            let two = std::fs::read(other.path().join(file_name(2))).expect("file");
            let mut b = f[1].clone();
            for tag in [b"MACH", b"SCEN", b"PAGE", b"SWAP"] {
                b = with_section(&b, tag, &payload(&two, tag));
            }
            let (mine, theirs) = (header(&f[1]), header(&two));
            let h = Header {
                data_chunks: theirs.data_chunks,
                zero_chunks: theirs.zero_chunks,
                swap_pages: theirs.swap_pages,
                ..mine
            };
            with_header(&b, &h)
        });
        listed.expect("the header is file 1's");
        one_line_with(&at1, "checkpoint 2 in file 1", "sections HEAD and MACH");
    }

    /// `checkpoint merge` folding a file whose header is consistent in
    /// itself but not its machine's: refused with a restore's words, the
    /// file left as it was and no temporary file beside it.
    #[test]
    fn a_merge_that_would_not_restore_replaces_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        chain_in(dir.path());
        let one = dir.path().join(file_name(1));
        let bytes = std::fs::read(&one).expect("file");
        let mut h = header(&bytes);
        h.references -= 1;
        h.id = checkpoint_id(h.chain, h.seq, h.references);
        let forged = with_header(&bytes, &h);
        std::fs::write(&one, &forged).expect("write");
        let e = Chain::open(dir.path())
            .expect("chain")
            .merge(Some(1))
            .expect_err("merged a forged file")
            .to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(
            e.contains("not replaced") && e.contains("the header says 5999 references"),
            "{e}"
        );
        assert_eq!(std::fs::read(&one).expect("file"), forged);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
        // The same chain unforged merges at 1 and still restores after it.
        std::fs::write(&one, &bytes).expect("write");
        let chain = Chain::open(dir.path()).expect("chain");
        chain.merge(Some(1)).expect("merge");
        let chain = Chain::open(dir.path()).expect("chain");
        chain
            .restore(Some(2), &[])
            .expect("restore after the merged file");
    }

    /// The counts `checkpoint ls` lists against the sections they count,
    /// and the configuration's CRC against its text.
    #[test]
    fn the_header_holds_to_the_files_sections() {
        for (what, expect, forge) in [
            (
                "data chunks",
                "the header says",
                (|h: &mut Header| h.data_chunks += 1) as fn(&mut Header),
            ),
            ("zero chunks", "the header says", |h| h.zero_chunks += 1),
            ("swap pages", "the header says", |h| h.swap_pages += 1),
        ] {
            let (listed, at1, _) = forged_chain(1, |f| {
                let mut h = header(&f[1]);
                forge(&mut h);
                with_header(&f[1], &h)
            });
            listed.expect(what);
            one_line_with(&at1, what, expect);
        }
        // CONF changed (the memory latency: a report figure), its CRC kept.
        let (_, at1, _) = forged_chain(1, |f| {
            let text = String::from_utf8(payload(&f[1], b"CONF")).expect("text");
            let forged = text.replace("latency = 100", "latency = 300");
            assert_ne!(forged, text, "the latency is in CONF");
            with_section(&f[1], b"CONF", forged.as_bytes())
        });
        one_line_with(&at1, "CONF", "config_crc");
    }

    /// A snapshot ([`Simulation::checkpoint`]) is numbered by the count
    /// taken and restores; made a chain checkpoint's header (numbered 0,
    /// its id worked out again), it is refused.
    #[test]
    fn a_snapshots_number_is_the_count_taken() {
        let mut sim = started();
        sim.advance(7_000, &mut (), None).expect("run");
        let bytes = sim.checkpoint().expect("snapshot").as_bytes().to_vec();
        let ck = crate::checkpoint::Checkpoint::from_bytes(bytes.clone(), "s.vmck").expect("ok");
        assert_eq!(ck.header().seq, 2);
        Simulation::restore(&ck, &[]).expect("restores");
        let mut h = header(&bytes);
        h.seq = 0;
        h.id = checkpoint_id(h.chain, h.seq, h.references);
        let ck = crate::checkpoint::Checkpoint::from_bytes(with_header(&bytes, &h), "s.vmck")
            .expect("consistent in itself");
        let e = Simulation::restore(&ck, &[])
            .expect_err("renumbered")
            .to_string();
        assert!(e.contains("checkpoint 0 of a machine that took 2"), "{e}");
    }

    /// The scenario `SCEN` holds, and the section with it replaced.
    fn scenario_of(bytes: &[u8]) -> (Scenario, Vec<u8>) {
        let raw = payload(bytes, b"SCEN");
        let (s, rest): (Scenario, &[u8]) = postcard::take_from_bytes(&raw).expect("SCEN");
        (s, rest.to_vec())
    }

    fn with_scenario(bytes: &[u8], s: &Scenario, rest: &[u8]) -> Vec<u8> {
        let mut raw = postcard::to_allocvec(s).expect("encode");
        raw.extend_from_slice(rest);
        with_section(bytes, b"SCEN", &raw)
    }

    /// The configuration or the scenario changed under a kept chain id
    /// (every CRC made right): the id is their hash at the run's first
    /// checkpoint, so a restore works it out again from the file and
    /// refuses the difference; a header whose `config_crc` follows a
    /// changed configuration is refused when listed (the id's high half
    /// is that CRC).
    #[test]
    fn the_chain_id_is_the_hash_of_the_configuration_and_the_scenario() {
        for seq in [0, 1] {
            // SCEN: the description (reported) and a process's exit point.
            for (what, forge) in [
                (
                    "description",
                    (|s: &mut Scenario| s.description = "forged".into()) as fn(&mut Scenario),
                ),
                ("exit_after", |s| s.processes[0].exit_after = Some(10_000)),
            ] {
                let (listed, at, _) = forged_chain(seq, |f| {
                    let (mut s, rest) = scenario_of(&f[seq as usize]);
                    forge(&mut s);
                    with_scenario(&f[seq as usize], &s, &rest)
                });
                listed.expect("HEAD is untouched");
                one_line_with(&at, what, "sections HEAD, CONF and SCEN: the chain id");
            }
            // CONF: the memory latency (a report figure), config_crc made
            // the new text's.
            let (listed, at, _) = forged_chain(seq, |f| {
                let b = &f[seq as usize];
                let text = String::from_utf8(payload(b, b"CONF")).expect("text");
                let forged = text.replace("latency = 100", "latency = 300");
                assert_ne!(forged, text, "the latency is in CONF");
                let mut h = header(b);
                h.config_crc = crc32c::crc32c(forged.as_bytes());
                with_header(&with_section(b, b"CONF", forged.as_bytes()), &h)
            });
            let e = listed.expect_err("config_crc");
            assert!(
                e.contains("section HEAD") && e.contains("config_crc"),
                "{e}"
            );
            one_line_with(&at, "CONF", "config_crc");
        }
        // A chain checkpoint with no chain.
        let (listed, _, _) = forged_chain(1, |f| {
            let mut h = header(&f[1]);
            h.chain = 0;
            h.id = checkpoint_id(0, h.seq, h.references);
            with_header(&f[1], &h)
        });
        assert!(listed.expect_err("chain 0").contains("chain id 0"));
    }

    /// A configuration's text writes back byte for byte, so a file's
    /// `CONF` must be the text its configuration is written as: a comment
    /// added (its CRC made right) is refused, on a snapshot that has no
    /// chain to hold it to too.
    #[test]
    fn the_configuration_is_the_text_it_is_written_as() {
        for preset in crate::config::PRESETS.iter().map(|p| p.name) {
            let b = ConfigBuilder::preset(Some(preset)).expect("preset");
            let text = b.build().expect("config").to_toml();
            let back: crate::config::Config = toml::from_str(&text).expect("reads back");
            assert_eq!(back.to_toml(), text, "{preset}");
        }
        let mut b = ConfigBuilder::preset(None).expect("preset");
        for s in ["memory.frames=128", "checkpoint.every=1000000000"] {
            b = b.set(s).expect("set");
        }
        let mut sim = Simulation::new(b.build().expect("config")).expect("machine");
        sim.start(&Scenario::of_traces(&[
            "synth:zipf,pages=300,refs=12K,seed=21",
        ]))
        .expect("start");
        sim.advance(2_000, &mut (), None).expect("run");
        let bytes = sim.checkpoint().expect("snapshot").as_bytes().to_vec();
        assert_eq!(header(&bytes).chain, 0, "no checkpoint taken: no chain");
        let text = String::from_utf8(payload(&bytes, b"CONF")).expect("text");
        let forged = format!("{text}# forged\n");
        let mut h = header(&bytes);
        h.config_crc = crc32c::crc32c(forged.as_bytes());
        let forged = with_header(&with_section(&bytes, b"CONF", forged.as_bytes()), &h);
        let ck = crate::checkpoint::Checkpoint::from_bytes(forged, "s.vmck").expect("read");
        let e = Simulation::restore(&ck, &[])
            .expect_err("comment")
            .to_string();
        assert!(e.contains("section CONF: not the text"), "{e}");
        // A checkpoint is taken of a started run only (its chain id is the
        // started scenario's hash).
        let mut fresh =
            Simulation::new(ConfigBuilder::preset(None).expect("p").build().expect("c"))
                .expect("machine");
        let e = fresh
            .take_checkpoint(None)
            .expect_err("not started")
            .to_string();
        assert!(e.contains("before start"), "{e}");
    }
}
