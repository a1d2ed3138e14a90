//! A segmentation translation told step by step, for `vmsim explain`.
//!
//! The outcome comes from [`SegmentTable::translate_range`], the one
//! implementation of the checks; this module only narrates it.

use std::fmt;

use serde::{Serialize, Serializer};

use super::SegmentTable;
use super::descriptor::{Direction, Ring, SegmentPerms};
use super::fault::{Access, SegmentFault, entry_name, hex};
use super::selector::{Selector, SelectorMode, TableKind};
use super::spec::LogicalAddress;

/// A fault as JSON: its `kind` tag and fields, plus `detail`, the sentence
/// a student reads (as `vmsim explain`'s paging faults carry).
#[derive(Serialize)]
struct FaultJson<'a> {
    #[serde(flatten)]
    fault: &'a SegmentFault,
    detail: String,
}

#[allow(clippy::ref_option)] // serde's serialize_with hands us `&Option<T>`.
fn fault_json<S: Serializer>(v: &Option<SegmentFault>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(fault) => FaultJson {
            fault,
            detail: fault.to_string(),
        }
        .serialize(s),
        None => s.serialize_none(),
    }
}

#[allow(clippy::ref_option)] // serde's serialize_with hands us `&Option<T>`.
fn opt_hex<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => hex(v, s),
        None => s.serialize_none(),
    }
}

/// The result of translating one logical address, with the reasoning.
///
/// JSON (stable keys): `mode` (`course` or `x86`), `selector`, `table`
/// (`global`/`local`, `null` in course mode), `index`, `rpl`, `offset`, `size`, `access`, `ring`,
/// `base`, `limit` (in bytes, after granularity), `perms` (`rw-`), `linear`,
/// `fault` (`null`, or an object with `kind`, the fault's fields and
/// `detail`, the fault in words), and
/// `steps` (the sentences of the human output), `linear_bits` (32 or 64:
/// where `base + offset` wraps). Addresses are hex strings;
/// `base`, `limit` and `perms` are `null` when no usable descriptor was
/// found, `linear` is `null` when the access faults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentExplanation {
    /// How the selector was read.
    pub mode: SelectorMode,
    /// The selector as given.
    pub selector: Selector,
    /// The x86 table the selector names (`null` in course mode: one table).
    pub table: Option<TableKind>,
    /// The index the selector names.
    pub index: u16,
    /// The requested privilege level (0 in course mode).
    pub rpl: Ring,
    /// The offset as given.
    #[serde(serialize_with = "hex")]
    pub offset: u64,
    /// The access size in bytes.
    pub size: u64,
    /// The kind of access.
    pub access: Access,
    /// The privilege level the access ran at.
    pub ring: Ring,
    /// The segment base, if a usable descriptor was found.
    #[serde(serialize_with = "opt_hex")]
    pub base: Option<u64>,
    /// The segment limit in bytes, if a usable descriptor was found.
    #[serde(serialize_with = "opt_hex")]
    pub limit: Option<u64>,
    /// The segment permissions, if a usable descriptor was found.
    pub perms: Option<SegmentPerms>,
    /// The linear address, if the access is allowed.
    #[serde(serialize_with = "opt_hex")]
    pub linear: Option<u64>,
    /// Why the access faults, if it does.
    #[serde(serialize_with = "fault_json")]
    pub fault: Option<SegmentFault>,
    /// Each step in words.
    pub steps: Vec<String>,
    /// Where `base + offset` wraps: 32 or 64 bits.
    pub linear_bits: u32,
}

impl fmt::Display for SegmentExplanation {
    /// The steps, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            writeln!(f, "{step}")?;
        }
        Ok(())
    }
}

pub(super) fn explain(
    table: &SegmentTable,
    addr: LogicalAddress,
    size: u64,
    access: Access,
    ring: Ring,
) -> SegmentExplanation {
    let size = size.max(1);
    let LogicalAddress { selector, offset } = addr;
    let mode = table.mode();
    let decoded = selector.decode(mode);
    let outcome = table.translate_range(selector, offset, size, access, ring);
    let mut steps = Vec::new();
    let bytes = if size == 1 {
        "1 byte".to_owned()
    } else {
        format!("{size} bytes")
    };
    steps.push(format!(
        "logical address {addr}: {access} of {bytes} at privilege {ring}"
    ));
    steps.push(match mode {
        SelectorMode::Course => format!(
            "selector {selector} names segment {} (the selector is the descriptor table index)",
            decoded.index
        ),
        SelectorMode::X86 => format!(
            "selector {selector} = index {} << 3 | TI {} << 2 | RPL {}: {} entry {}",
            decoded.index,
            u8::from(decoded.table == TableKind::Local),
            decoded.rpl,
            decoded.table,
            decoded.index
        ),
    });
    let mut out = SegmentExplanation {
        mode,
        selector,
        table: (mode == SelectorMode::X86).then_some(decoded.table),
        index: decoded.index,
        rpl: decoded.rpl,
        offset,
        size,
        access,
        ring,
        base: None,
        limit: None,
        perms: None,
        linear: outcome.ok(),
        fault: outcome.err(),
        steps: Vec::new(),
        linear_bits: table.width().bits(),
    };
    let finish = |mut out: SegmentExplanation, mut steps: Vec<String>| {
        if let Some(fault) = &out.fault {
            steps.push(format!("=> {fault}"));
        }
        out.steps = steps;
        out
    };
    let Ok(desc) = table.descriptor(selector) else {
        return finish(out, steps);
    };
    out.base = Some(desc.base());
    out.limit = Some(desc.effective_limit());
    out.perms = Some(desc.perms());
    steps.push(format!("{}: {desc}", entry_name(out.table, decoded.index)));

    let effective = ring.weaker(decoded.rpl);
    if mode == SelectorMode::X86 || desc.dpl() != Ring::USER {
        let verdict = if effective <= desc.dpl() {
            "allowed"
        } else {
            "refused"
        };
        steps.push(format!(
            "privilege check: the access runs at privilege {effective} (the weaker of privilege {ring} and RPL {}), the segment needs {} or better: {verdict}",
            decoded.rpl,
            desc.dpl()
        ));
    }
    if matches!(out.fault, Some(SegmentFault::Privilege { .. })) {
        return finish(out, steps);
    }

    let last = offset.checked_add(size - 1);
    let span = match last {
        Some(last) if size > 1 => format!("offsets {offset:#x}..={last:#x}"),
        Some(_) => format!("offset {offset:#x}"),
        None => format!("offset {offset:#x} + {size} bytes (past 2^64)"),
    };
    let (first_valid, last_valid) = desc.valid_offsets();
    let ok = desc.admits(offset, size);
    let verdict = if ok { "ok" } else { "outside the segment" };
    steps.push(match desc.direction() {
        Direction::Up => format!(
            "limit check: {span} must be <= limit {:#x}: {verdict}",
            desc.effective_limit()
        ),
        Direction::Down { .. } => format!(
            "limit check (expand-down): {span} must lie in {first_valid:#x}..={last_valid:#x}: {verdict}"
        ),
    });
    if !ok {
        return finish(out, steps);
    }

    let allowed = desc.perms().contains(super::fault::needs(access));
    steps.push(format!(
        "permission check: a {access} needs {}, the segment allows {}: {}",
        access.letter(),
        desc.perms(),
        if allowed { "ok" } else { "refused" }
    ));
    if !allowed {
        return finish(out, steps);
    }

    if let Some(linear) = out.linear {
        let wrapped = if desc.base().checked_add(offset) == Some(linear) {
            String::new()
        } else {
            format!(
                " (the sum {:#x} wraps at 2^{})",
                u128::from(desc.base()) + u128::from(offset),
                table.width().bits()
            )
        };
        steps.push(format!(
            "linear address = base + offset = {:#x} + {offset:#x} = {linear:#x}{wrapped}",
            desc.base()
        ));
    }
    finish(out, steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{SegmentDescriptor, SegmentSpec};

    fn course() -> SegmentTable {
        let spec: SegmentSpec = "1:0x2000:0x1ff".parse().expect("spec");
        SegmentTable::from_specs(SelectorMode::Course, &[spec]).expect("table")
    }

    #[test]
    fn narrates_success() {
        let e = course().explain(
            "0x1:0xff".parse().expect("addr"),
            1,
            Access::Read,
            Ring::USER,
        );
        assert_eq!(e.linear, Some(0x20FF));
        assert_eq!(e.fault, None);
        let text = e.to_string();
        assert!(
            text.contains("0x2000 + 0xff = 0x20ff"),
            "missing final step:\n{text}"
        );
        assert!(!text.contains("privilege check"), "{text}");
    }

    #[test]
    fn narrates_each_fault() {
        let t = course();
        let limit = t.explain(
            "1:0x200".parse().expect("addr"),
            1,
            Access::Read,
            Ring::USER,
        );
        assert_eq!(limit.linear, None);
        assert_eq!(limit.base, Some(0x2000));
        assert!(limit.to_string().contains("outside the segment"));
        assert!(
            limit
                .steps
                .last()
                .is_some_and(|s| s.starts_with("=> segmentation fault"))
        );

        let unknown = t.explain("7:0".parse().expect("addr"), 1, Access::Read, Ring::USER);
        assert_eq!(unknown.base, None);
        assert_eq!(unknown.fault.map(|f| f.kind()), Some("unknown_selector"));

        let mut ro = SegmentTable::new(SelectorMode::Course);
        ro.insert(
            Selector::new(1),
            SegmentDescriptor::new(0x2000, 0x1FF, SegmentPerms::READ),
        )
        .expect("insert");
        let w = ro.explain("1:0".parse().expect("addr"), 1, Access::Write, Ring::USER);
        assert_eq!(w.fault.map(|f| f.kind()), Some("permission"));
        assert!(w.to_string().contains("refused"));
    }
}
