//! Checking a restored kernel's allocators against the configuration.
//!
//! The slab caches and the buddy allocator read back from a checkpoint
//! carry their own geometry (object sizes, slab orders, the managed
//! region), which their own checks only hold to itself. Here, on restore
//! only, they are held to a kernel built fresh from the configuration: a
//! forged slab order that its arithmetic accepts handed slabs back to the
//! buddy allocator at an order they were not taken at, a forged object
//! size or an extra cache made the report's slab figures lie, and a forged
//! region moved the allocator over the page tables' reserved frames.

use super::Kernel;
use crate::config::MachineSpec;

impl Kernel {
    /// The slab registry's and the buddy allocator's geometry against a
    /// kernel built fresh from `spec` (see the module's documentation).
    /// `Err` names the allocator and the field.
    pub(crate) fn check_restored_geometry(&self, spec: &MachineSpec) -> Result<(), String> {
        let fmt = spec.format();
        let fresh = Self::reserved_frames(spec.structure(), spec.frames(), fmt.page_size())
            .and_then(|reserved| {
                Self::build(
                    fmt.clone(),
                    spec.frames(),
                    spec.page_size(),
                    spec.config().kernel.clone(),
                    reserved,
                )
            })
            .map_err(|e| format!("kernel: the configuration gives no kernel: {e}"))?;
        self.slab
            .check_same_geometry(&fresh.slab)
            .map_err(|e| format!("slab allocator: {e}"))?;
        if self.caches != fresh.caches {
            return Err(format!(
                "slab allocator: the kernel's caches are {:?}, not {:?}",
                self.caches, fresh.caches
            ));
        }
        self.frames
            .buddy()
            .check_same_region(fresh.frames.buddy())
            .map_err(|e| format!("buddy allocator: {e}"))
    }

    /// Test hook: the slab registry (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge_slab(&mut self) -> &mut crate::alloc::Slab {
        &mut self.slab
    }

    /// Test hook: the buddy allocator (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge_buddy(&mut self) -> &mut crate::alloc::Buddy {
        self.frames.buddy_mut()
    }
}
