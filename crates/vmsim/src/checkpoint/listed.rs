//! What `checkpoint ls` verifies of a file beyond its header, cheaply: the
//! section table and the small parts of the sections that the header's
//! figures describe.
//!
//! A listing printed the header's counts as they were: a file whose `HEAD`
//! said 999 data chunks or 5 swap pages, a file cut short before its end,
//! a configuration changed under a kept CRC were listed `ok`, while
//! restore, show and merge refused them. Reading a whole file to list it
//! would read every page; instead each section header is read (its own
//! CRC checked) and the payload sought past, except the configuration
//! (small: its CRC-32C is held to the header's `config_crc`) and the first
//! 16 bytes of `PAGE` and `SWAP` (their counts, held to the header's, and
//! the section's length to what those counts take), and the scenario
//! (small: with the configuration, the chain id's hash). What is not read here
//! is checked by every command that reads the file whole: the payloads'
//! CRC-32Cs, the page data, and the machine state (`MACH`) the header's
//! references and number are held to (`restored_header.rs`).

use std::io::{Read, Seek};

use vmsim_trace::scenario::Scenario;

use super::Header;
use super::format::{self, Reader, tag};
use crate::phys::CHUNK_BYTES;

/// A section's payload length, as its counts say it must be: a 16-byte
/// prefix, then `items` records of `each` bytes (`None`: overflow).
fn length_of(items: u64, each: u64) -> Option<u64> {
    items.checked_mul(each)?.checked_add(16)
}

fn two_u64(b: &[u8]) -> (u64, u64) {
    let mut x = [0u8; 8];
    let mut y = [0u8; 8];
    x.copy_from_slice(&b[..8]);
    y.copy_from_slice(&b[8..16]);
    (u64::from_le_bytes(x), u64::from_le_bytes(y))
}

/// Walks the sections after `HEAD` (already read into `h`) to the file's
/// end: each once, none unknown, the required ones there; `CONF`'s text
/// of the header's CRC; `PAGE`'s and `SWAP`'s counts the header's, and
/// their lengths what the counts take; the `END` section last and ending
/// the file. `Err` is one line naming the section and the field (the
/// caller adds the file).
pub(crate) fn verify<R: Read + Seek>(r: &mut Reader<R>, h: &Header) -> Result<(), String> {
    let path = r.path().to_string();
    let strip = |e: super::CheckpointError| {
        let m = e.to_string();
        m.strip_prefix(&format!("{path}: "))
            .map_or_else(|| m.clone(), str::to_string)
    };
    let mut seen = vec![tag::HEAD];
    let mut conf = None;
    let mut scen = None;
    while let Some(s) = r.next().map_err(strip)? {
        let name = format::tag_name(s.tag);
        if seen.contains(&s.tag) {
            return Err(format!("section {name} appears twice"));
        }
        seen.push(s.tag);
        match s.tag {
            tag::CONF => {
                let text = r.payload(&s).map_err(strip)?;
                let crc = crc32c::crc32c(&text);
                if crc != h.config_crc {
                    return Err(format!(
                        "section CONF: its CRC-32C {crc:08x} is not the header's config_crc {:08x}",
                        h.config_crc
                    ));
                }
                conf = Some(String::from_utf8(text).map_err(|_| "section CONF is not UTF-8 text")?);
            }
            tag::SCEN => {
                // Small (the scenario and the input positions): the
                // scenario's bytes are the chain id's low half's.
                let raw = r.payload(&s).map_err(strip)?;
                let (sc, _): (Scenario, _) = postcard::take_from_bytes(&raw)
                    .map_err(|e| format!("section SCEN does not decode ({e})"))?;
                scen = Some(postcard::to_allocvec(&sc).map_err(|e| format!("section SCEN: {e}"))?);
            }
            tag::MACH => r.pass(&s).map_err(strip)?,
            tag::PAGE => {
                let (data, zero) = two_u64(&r.peek(&s, 16).map_err(strip)?);
                if (data, zero) != (h.data_chunks, h.zero_chunks) {
                    return Err(format!(
                        "section PAGE holds {data} data and {zero} zero chunks, but the header says {} and {}",
                        h.data_chunks, h.zero_chunks
                    ));
                }
                let need = data
                    .checked_add(zero)
                    .and_then(|n| length_of(n, 8))
                    .and_then(|x| x.checked_add(data.checked_mul(CHUNK_BYTES as u64)?));
                if need != Some(s.raw) {
                    return Err(format!(
                        "section PAGE: {data} data and {zero} zero chunks do not fill its {} bytes",
                        s.raw
                    ));
                }
            }
            tag::SWAP => {
                let (page, n) = two_u64(&r.peek(&s, 16).map_err(strip)?);
                if n != h.swap_pages {
                    return Err(format!(
                        "section SWAP holds {n} swap pages, but the header says {}",
                        h.swap_pages
                    ));
                }
                let need = page.checked_add(4).and_then(|each| length_of(n, each));
                if page == 0 || page > 1 << 30 || need != Some(s.raw) {
                    return Err(format!(
                        "section SWAP: {n} swap pages of {page} bytes do not fill its {} bytes",
                        s.raw
                    ));
                }
            }
            other => {
                return Err(format!("unknown section {}", format::tag_name(other)));
            }
        }
    }
    for need in [tag::CONF, tag::SCEN, tag::MACH, tag::PAGE] {
        if !seen.contains(&need) {
            return Err(format!("the {} section is missing", format::tag_name(need)));
        }
    }
    if h.swap_pages != 0 && !seen.contains(&tag::SWAP) {
        return Err(format!(
            "section HEAD: swap_pages = {} but the file has no SWAP section",
            h.swap_pages
        ));
    }
    // The chain id against what it is the hash of, as a restore holds it
    // (`restored_header::check_chain`, which also holds CONF to the text
    // its configuration writes back: not done here, it parses the TOML).
    if let (Some(conf), Some(scen)) = (conf, scen)
        && h.chain != 0
    {
        super::restored_header::check_chain_id(h.chain, &conf, &scen)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Each forgery: a real chain's file with one thing changed and every
    //! CRC-32C right (or the file cut), then listed: the entry is marked,
    //! the listing goes on.

    use vmsim_trace::scenario::Scenario;

    use crate::checkpoint::forged::{chain_in, header, payload, with_header, with_section};
    use crate::checkpoint::{Chain, Header, file_name};

    /// File 1 rewritten by `forge`; what the listing says of each file.
    fn listed(
        forge: impl FnOnce(Vec<u8>) -> Vec<u8>,
    ) -> Vec<(Result<Header, String>, Result<(), String>)> {
        let dir = tempfile::tempdir().expect("tempdir");
        chain_in(dir.path());
        let p = dir.path().join(file_name(1));
        let forged = forge(std::fs::read(&p).expect("file"));
        std::fs::write(&p, forged).expect("write");
        Chain::open(dir.path())
            .expect("listed")
            .iter()
            .map(|e| (e.header.clone(), e.verified.clone()))
            .collect()
    }

    /// File 1's entry is marked with a message containing `expect`, its
    /// header still listed; every other file verifies.
    fn marked(what: &str, expect: &str, forge: impl FnOnce(Vec<u8>) -> Vec<u8>) {
        let l = listed(forge);
        assert!(l.len() >= 4, "{what}: {} files", l.len());
        for (k, (h, v)) in l.iter().enumerate() {
            h.as_ref()
                .unwrap_or_else(|e| panic!("{what}: file {k}'s header: {e}"));
            if k == 1 {
                let e = v.as_ref().expect_err(what);
                assert!(!e.contains('\n') && e.contains(expect), "{what}: {e}");
            } else {
                v.as_ref()
                    .unwrap_or_else(|e| panic!("{what}: file {k}: {e}"));
            }
        }
    }

    #[test]
    fn an_unforged_chain_verifies() {
        for (k, (h, v)) in listed(|b| b).iter().enumerate() {
            assert!(h.is_ok() && v.is_ok(), "file {k}: {h:?} {v:?}");
        }
    }

    /// The counts `ls` prints against the sections they count.
    #[test]
    fn counts_the_sections_do_not_hold_are_marked() {
        for (what, expect, forge) in [
            (
                "data chunks",
                "section PAGE holds",
                (|h: &mut Header| h.data_chunks += 1) as fn(&mut Header),
            ),
            ("zero chunks", "section PAGE holds", |h| h.zero_chunks += 1),
            ("swap pages", "section SWAP holds", |h| h.swap_pages += 1),
        ] {
            marked(what, expect, |b| {
                let mut h = header(&b);
                forge(&mut h);
                with_header(&b, &h)
            });
        }
        // The header and PAGE's count both one more: the count agrees,
        // the section's length does not.
        marked("PAGE's length", "do not fill", |b| {
            let mut h = header(&b);
            h.data_chunks += 1;
            let mut page = payload(&b, b"PAGE");
            let n = u64::from_le_bytes(page[..8].try_into().expect("8")) + 1;
            page[..8].copy_from_slice(&n.to_le_bytes());
            with_header(&with_section(&b, b"PAGE", &page), &h)
        });
        marked("SWAP's length", "do not fill", |b| {
            let mut swap = payload(&b, b"SWAP");
            swap.extend_from_slice(&[0; 7]);
            with_section(&b, b"SWAP", &swap)
        });
    }

    /// The section table: cut short, grown past its end, a configuration
    /// changed under its kept CRC.
    #[test]
    fn a_file_cut_grown_or_changed_under_its_header_is_marked() {
        marked("cut before END", "truncated", |mut b| {
            b.truncate(b.len() - 32);
            b
        });
        marked("cut in PAGE", "truncated", |mut b| {
            b.truncate(b.len() / 2);
            b
        });
        marked("bytes after END", "follow the END section", |mut b| {
            b.extend_from_slice(b"forged");
            b
        });
        marked("SCEN", "the chain id", |b| {
            let raw = payload(&b, b"SCEN");
            let (mut sc, rest): (Scenario, &[u8]) = postcard::take_from_bytes(&raw).expect("SCEN");
            sc.description = "forged".into();
            let mut raw = postcard::to_allocvec(&sc).expect("encode");
            raw.extend_from_slice(rest);
            with_section(&b, b"SCEN", &raw)
        });
        marked("CONF", "config_crc", |b| {
            let text = String::from_utf8(payload(&b, b"CONF")).expect("text");
            with_section(
                &b,
                b"CONF",
                text.replace("latency = 100", "latency = 300").as_bytes(),
            )
        });
    }
}
