//! Page walks over arbitrary memory images, as `vmsim explain --mem` does:
//! byte 0 chooses the architecture, bytes 1-8 the root table's address,
//! bytes 9-16 the virtual address, the rest is physical memory. Never
//! panics, reads only inside memory, and a translation it returns lies in
//! a page of the size the walk found.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsim::addr::{PhysAddr, VirtAddr};
use vmsim::paging::{Format, record_walk};
use vmsim::phys::PhysMem;

fuzz_target!(|data: &[u8]| {
    if data.len() < 18 {
        return;
    }
    let names = Format::NAMES;
    let fmt = Format::by_name(names[usize::from(data[0]) % names.len()]).expect("built-in");
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let root = word(&data[1..9]);
    let va = VirtAddr::new(word(&data[9..17]));
    let image = &data[17..];
    let Ok(mut mem): Result<PhysMem, _> = PhysMem::new(image.len() as u64) else {
        return;
    };
    mem.write(PhysAddr::new_unchecked(0), image)
        .expect("the image fits the memory made for it");
    // The root is reduced into memory so most inputs reach real entries.
    let root = root % image.len() as u64;
    let Ok(root) = PhysAddr::new(root) else {
        return;
    };
    let walk = record_walk(&fmt, &mem, root, va);
    for s in &walk.steps {
        assert!(s.entry_addr.as_u64() < mem.size());
    }
    if let Ok(t) = walk.result {
        assert_eq!(t.pa.as_u64() - t.frame.as_u64(), va.page_offset(t.size));
        assert_eq!(walk.steps.len(), t.leaf_idx + 1);
    }
});
