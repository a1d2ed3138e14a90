//! The segmentation unit: the course example, faults, flat mode, and the
//! command-line forms.

use proptest::prelude::*;
use vmsim::segment::{
    Access, LINUX_USER_CS, LINUX_USER_DS, LogicalAddress, Ring, SegmentDescriptor,
    SegmentExplanation, SegmentFault, SegmentPerms, SegmentSpec, SegmentTable, Selector,
    SelectorMode,
};

fn course_table() -> SegmentTable {
    let spec: SegmentSpec = "1:0x2000:0x1ff".parse().unwrap_or_else(|e| panic!("{e}"));
    SegmentTable::from_specs(SelectorMode::Course, &[spec]).unwrap_or_else(|e| panic!("{e}"))
}

fn explain(t: &SegmentTable, addr: &str, access: Access) -> SegmentExplanation {
    let addr: LogicalAddress = addr.parse().unwrap_or_else(|e| panic!("{e}"));
    t.explain(addr, 1, access, Ring::USER)
}

#[test]
fn course_example_translates_to_0x20ff() {
    let e = explain(&course_table(), "0x1:0xff", Access::Read);
    assert_eq!(e.linear, Some(0x20FF));
    let json = serde_json::to_value(&e).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json["linear"], "0x20ff");
    assert_eq!(json["selector"], "0x1");
    assert_eq!(json["offset"], "0xff");
    assert_eq!(json["base"], "0x2000");
    assert_eq!(json["limit"], "0x1ff");
    assert!(json["fault"].is_null());
}

#[test]
fn course_example_offset_0x200_is_a_limit_fault() {
    let e = explain(&course_table(), "0x1:0x200", Access::Read);
    assert_eq!(e.linear, None);
    let json = serde_json::to_value(&e).unwrap_or_else(|e| panic!("{e}"));
    assert!(json["linear"].is_null());
    assert_eq!(json["fault"]["kind"], "limit_exceeded");
    assert_eq!(json["fault"]["offset"], "0x200");
    assert_eq!(json["fault"]["limit"], "0x1ff");
    let detail = json["fault"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("segmentation fault: offset 0x200"),
        "{detail}"
    );
    let last = e.steps.last().cloned().unwrap_or_default();
    assert!(
        last.contains("segmentation fault") && last.contains("0x200"),
        "{last}"
    );
}

#[test]
fn write_to_read_only_segment_is_a_permission_fault() {
    let spec: SegmentSpec = "1:0x2000:0x1ff:r".parse().unwrap_or_else(|e| panic!("{e}"));
    let t =
        SegmentTable::from_specs(SelectorMode::Course, &[spec]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.translate(Selector::new(1), 0x10, Access::Read, Ring::USER),
        Ok(0x2010)
    );
    let fault = t.translate(Selector::new(1), 0x10, Access::Write, Ring::USER);
    assert_eq!(
        fault,
        Err(SegmentFault::Permission {
            selector: Selector::new(1),
            access: Access::Write,
            perms: SegmentPerms::READ,
        })
    );
    let json = serde_json::to_value(fault.err()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json["kind"], "permission");
    assert_eq!(json["perms"], "r--");
}

#[test]
fn duplicate_segments_are_rejected() {
    let a: SegmentSpec = "1:0:1".parse().unwrap_or_else(|e| panic!("{e}"));
    let b: SegmentSpec = "0x1:0x100:1".parse().unwrap_or_else(|e| panic!("{e}"));
    let err = SegmentTable::from_specs(SelectorMode::Course, &[a, b]).expect_err("duplicate");
    assert!(err.to_string().contains("defined twice"), "{err}");
}

proptest! {
    #[test]
    fn flat_mode_is_identity(offset in any::<u64>(), user in any::<bool>()) {
        let t = SegmentTable::flat();
        prop_assert_eq!(t.translate(LINUX_USER_DS, offset, Access::Write, Ring::USER), Ok(offset));
        prop_assert_eq!(t.translate(LINUX_USER_CS, offset, Access::Execute, Ring::USER), Ok(offset));
        let ring = if user { Ring::USER } else { Ring::KERNEL };
        prop_assert_eq!(t.translate(LINUX_USER_DS, offset, Access::Read, ring), Ok(offset));
    }

    /// Against the definition: offsets 0..=limit map to base + offset, all others fault.
    #[test]
    fn limit_model(base in any::<u64>(), limit in any::<u64>(), offset in any::<u64>(), size in 1u64..16) {
        let mut t = SegmentTable::new(SelectorMode::Course);
        t.insert(Selector::new(9), SegmentDescriptor::new(base, limit, SegmentPerms::DATA))
            .unwrap_or_else(|e| panic!("{e}"));
        let got = t.translate_range(Selector::new(9), offset, size, Access::Read, Ring::USER);
        let inside = offset.checked_add(size - 1).is_some_and(|end| end <= limit);
        if inside {
            prop_assert_eq!(got, Ok(base.wrapping_add(offset)));
        } else {
            let is_limit_fault = matches!(got, Err(SegmentFault::LimitExceeded { .. }));
            prop_assert!(is_limit_fault, "{:?}", got);
        }
    }
}
