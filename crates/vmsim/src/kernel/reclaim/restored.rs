//! Checking the pager's state read back from a checkpoint before it runs.
//!
//! [`Reclaim::check_ids`] and [`Kernel::check_swap`] hold the page ids,
//! the swap slots and the swap cache to each other. What they leave is
//! checked here, on restore only: the pager's settings against a pager
//! built fresh from the configuration (a forged swap path or overwrite
//! flag would let the restored run truncate a file the configuration
//! never named; a forged interval overflowed the timer's sum), the
//! per-frame table's length (indexed unchecked at every fault), the ids'
//! relations to the frames (a free id handed out again while in use, a
//! policy's victim that is not resident, a "resident" page in a frame
//! that holds none), the swap cache's ids, and the swap device's slots
//! against the slots the kernel tracks (freeing one the device holds free
//! panicked). The reverse map is held to the page tables in
//! [`Reclaim::check_rmap`] (from [`Kernel::check_invariants`]): eviction
//! unmaps every address it lists, whatever frame is there.

use crate::kernel::frames::{FrameMetas, FrameUse};
use crate::kernel::process::SpaceId;
use crate::sim::restored::COUNTER_LIMIT;

use super::{Kernel, Reclaim, ReclaimSetup};

impl Kernel {
    /// The pager's restored state against the configuration and the
    /// frames (see the module's documentation). `Err` names the field.
    pub(crate) fn check_restored_pager(&self) -> Result<(), String> {
        let meta = self.frames.all();
        let fresh = Reclaim::new(&ReclaimSetup {
            frames: meta.len() as u64,
            page_bytes: self.page.bytes() as usize,
            data_pages: self.frames.total_frames() >> self.frames.page_order(),
            cfg: &self.cfg,
        })
        .map_err(|e| format!("reclaim: the configuration gives no pager: {e}"))?;
        let r = &self.reclaim;
        r.check_settings(&fresh)
            .map_err(|e| format!("reclaim: {e}"))?;
        r.check_frames(&meta).map_err(|e| format!("reclaim: {e}"))?;
        r.check_device().map_err(|e| format!("swap device: {e}"))
    }
}

impl Reclaim {
    /// What the configuration fixes, as `fresh` (built from it) has it.
    fn check_settings(&self, fresh: &Self) -> Result<(), String> {
        let same = self.swap_slots == fresh.swap_slots
            && self.page_bytes == fresh.page_bytes
            && self.nobody == fresh.nobody
            && self.frames == fresh.frames
            && self.low == fresh.low
            && self.high == fresh.high
            && self.invalidate == fresh.invalidate
            && self.tick == fresh.tick
            && self.id_of_frame.len() == fresh.id_of_frame.len()
            && self.frame_of_id.len() == fresh.frame_of_id.len();
        if !same {
            return Err(format!(
                "its settings (swap slots {}, page bytes {}, {} data pages, watermarks {}/{}, \
                 tick {}, {} frames and {} ids tracked) are not the configuration's",
                self.swap_slots,
                self.page_bytes,
                self.frames,
                self.low,
                self.high,
                self.tick,
                self.id_of_frame.len(),
                self.frame_of_id.len()
            ));
        }
        // The file: the configuration's, or none (a copy's, which makes
        // a temporary file of its own).
        let file = (&self.swap_path, self.keep, self.overwrite);
        if file != (&fresh.swap_path, fresh.keep, fresh.overwrite) && file != (&None, false, false)
        {
            return Err(format!(
                "its swap file {:?} (keep {}, overwrite {}) is not the configuration's",
                self.swap_path, self.keep, self.overwrite
            ));
        }
        match (&self.policy, &fresh.policy) {
            (None, None) => {}
            (Some(p), Some(f)) => p.check_settings(f).map_err(|e| format!("policy: {e}"))?,
            _ => {
                return Err(
                    "a replacement policy where the configuration has none, or none where it has one"
                        .into(),
                );
            }
        }
        for (what, v) in [
            ("next tick", self.next_tick),
            ("evictions", self.evictions),
            ("ids in the policy", self.in_policy_count),
        ] {
            if v > COUNTER_LIMIT {
                return Err(format!("{what} = {v} is beyond any run (at most 2^56)"));
            }
        }
        Ok(())
    }

    /// The ids against the frames: a resident page's frame holds a data
    /// page, every id in the policy is resident, a free id is neither
    /// resident nor kept in a swap slot nor listed twice, a swap-cache
    /// link joins a frame to the slot of the same page, and the per-frame
    /// records name frames that exist.
    fn check_frames(&self, meta: &FrameMetas<'_>) -> Result<(), String> {
        if self.policy.is_none() {
            return Ok(());
        }
        let is_data = |f: u64| {
            meta.get(f as usize)
                .is_some_and(|m| m.use_ == FrameUse::Data)
        };
        for (id, &x) in self.frame_of_id.iter().enumerate() {
            if let Some(f) = x.checked_sub(1)
                && !is_data(f)
            {
                return Err(format!(
                    "page id {id} is in frame {f:#x}, which holds no data page"
                ));
            }
            if self.in_policy[id] && x == 0 {
                return Err(format!("page id {id} is in the policy but not resident"));
            }
        }
        // Ids a swap slot keeps, then the free ones seen.
        let mut taken = vec![false; self.frame_of_id.len()];
        for info in self.slots.values() {
            if let Some(f) = taken.get_mut(info.id as usize) {
                *f = true;
            }
        }
        for &id in &self.free_ids {
            let i = id as usize;
            if self.frame_of_id.get(i).is_none_or(|&x| x != 0)
                || taken.get(i).is_none_or(|&held| held)
            {
                return Err(format!(
                    "free page id {id} is resident, kept in swap or listed twice"
                ));
            }
            taken[i] = true;
        }
        for (&pfn, slot) in &self.slot_of_frame {
            let held = self
                .id_of_frame
                .get(pfn as usize)
                .and_then(|&x| x.checked_sub(1));
            if held.is_none() || self.slots.get(slot).map(|i| i.id) != held {
                return Err(format!(
                    "frame {pfn:#x} is cached as swap slot {}, which holds another page",
                    slot.index()
                ));
            }
        }
        if self.rmap.len() > meta.len() {
            return Err(format!(
                "the reverse map covers {} frames of {}",
                self.rmap.len(),
                meta.len()
            ));
        }
        if let Some(&f) = self.cleaned_dirty.iter().find(|&&f| !is_data(f)) {
            return Err(format!(
                "frame {f:#x} is recorded as cleaned but holds no data page"
            ));
        }
        Ok(())
    }

    /// The swap device against the kernel's books: as many slots as
    /// configured, its file the pager's (or a copy's temporary one), its
    /// slots in use the ones the kernel tracks, its peak not below its use.
    fn check_device(&self) -> Result<(), String> {
        let Some(dev) = &self.swap else {
            return Ok(());
        };
        dev.check_restored_settings(
            self.swap_slots,
            self.swap_path.as_deref(),
            self.keep,
            self.overwrite,
        )?;
        let mut tracked: Vec<u32> = self.slots.keys().map(|s| s.index()).collect();
        tracked.sort_unstable();
        if !tracked
            .iter()
            .copied()
            .eq(dev.used_slots().map(|s| s.index()))
        {
            return Err("the slots in use are not the slots the kernel tracks".into());
        }
        Ok(())
    }

    /// The reverse map against the mapped data pages `mapped` (space,
    /// page, frame; every leaf of every live space): each frame lists
    /// exactly the pages mapping it, once each. Eviction unmaps every
    /// address the list names in its space, whatever frame is there (a
    /// forged address unmapped another page), and leaves a mapping the
    /// list lacks pointing at the freed frame.
    pub(in crate::kernel) fn check_rmap(
        &self,
        mapped: &mut [(u32, u64, u64)],
    ) -> Result<(), String> {
        if self.policy.is_none() {
            return Ok(());
        }
        let mut listed: Vec<(u32, u64, u64)> = self
            .rmap
            .iter()
            .enumerate()
            .flat_map(|(f, maps)| {
                maps.iter()
                    .map(move |&(SpaceId(sid), va)| (sid, va, f as u64))
            })
            .collect();
        listed.sort_unstable();
        mapped.sort_unstable();
        match listed.iter().zip(mapped.iter()).find(|(a, b)| a != b) {
            None if listed.len() == mapped.len() => Ok(()),
            Some((&(sid, va, f), _)) => Err(format!(
                "reclaim: the reverse map lists page {va:#x} of space {sid} in frame {f:#x}, \
                 or misses a mapping there"
            )),
            None => Err(format!(
                "reclaim: the reverse map lists {} mappings but {} pages are mapped",
                listed.len(),
                mapped.len()
            )),
        }
    }
}

#[cfg(test)]
pub(crate) use forge::PagerForgery;

#[cfg(test)]
mod forge {
    //! Test hooks: one field of a restored pager made to lie.

    use crate::kernel::Kernel;
    use crate::kernel::frames::FrameUse;
    use crate::kernel::process::SpaceId;
    use crate::reclaim::ClockInsert;

    use super::super::KernelPolicy;

    /// Which lie [`Kernel::forge_pager`] tells.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum PagerForgery {
        /// The per-frame id table one entry shorter than the frames.
        ShortFrameTable,
        /// A resident page's id on the free list.
        FreeIdResident,
        /// A resident page moved (both ways) to a free frame.
        ResidentInFreeFrame,
        /// A resident page's frame forgotten (both ways), its id left in
        /// the policy.
        InPolicyNotResident,
        /// A slot only the swap cache holds, renamed in the kernel's
        /// books to one the device has free.
        CacheSlotRenamed,
        /// The device given 64 slots more than configured.
        DeviceSlots,
        /// The device's peak below its use.
        DevicePeak,
        /// A swap-cache slot said to hold another page.
        CacheOtherId,
        /// A reverse-map entry moved to another page of its space.
        RmapOtherPage,
        /// A reverse-map entry listed twice.
        RmapTwice,
        /// A reverse-map entry dropped.
        RmapDropped,
        /// The high watermark at the data pages.
        HighWatermark,
        /// The eviction count at `u64::MAX`.
        Evictions,
        /// A cleaned-dirty record of a frame past memory.
        CleanedPastMemory,
        /// Linux: every shadow entry past the age.
        LinuxShadowLate,
        /// Linux: the age at `u64::MAX`.
        LinuxAge,
        /// Aging: the next load's number at `u64::MAX`.
        AgingSeq,
        /// Aging: the tick interval at `u64::MAX`.
        AgingInterval,
        /// CLOCK: the other insert rule.
        ClockInsert,
        /// CLOCK-Pro: twice the frames.
        ClockProFrames,
        /// The swap file at `path`, to be overwritten.
        SwapFile(&'static std::path::Path),
    }

    impl Kernel {
        /// Tells `lie` in this kernel's pager (a decoded checkpoint's);
        /// false if this state has nothing to tell it about.
        pub(crate) fn forge_pager(&mut self, lie: PagerForgery) -> bool {
            let meta: Vec<_> = self.frames.all().iter().collect();
            let r = &mut self.reclaim;
            let resident = r
                .frame_of_id
                .iter()
                .position(|&x| x != 0)
                .map(|id| (id, r.frame_of_id[id] - 1));
            match lie {
                PagerForgery::ShortFrameTable => {
                    r.id_of_frame.pop();
                }
                PagerForgery::FreeIdResident => {
                    let Some((id, _)) = resident else {
                        return false;
                    };
                    r.free_ids.push(id as u32);
                }
                PagerForgery::ResidentInFreeFrame => {
                    let Some((id, f)) = resident else {
                        return false;
                    };
                    let Some(g) = meta.iter().position(|m| m.use_ == FrameUse::Free) else {
                        return false;
                    };
                    r.id_of_frame[f as usize] = 0;
                    r.id_of_frame[g] = id as u32 + 1;
                    r.frame_of_id[id] = g as u64 + 1;
                }
                PagerForgery::InPolicyNotResident => {
                    let Some((id, f)) = (0..r.frame_of_id.len())
                        .find(|&id| r.in_policy[id])
                        .map(|id| (id, r.frame_of_id[id].wrapping_sub(1)))
                    else {
                        return false;
                    };
                    if let Some(x) = r.id_of_frame.get_mut(f as usize) {
                        *x = 0;
                    }
                    r.frame_of_id[id] = 0;
                }
                PagerForgery::CacheSlotRenamed => {
                    // A slot only the swap cache holds, renamed in the
                    // kernel's books to one the device has free (every
                    // slot the device uses must have its page in the
                    // checkpoint: renaming the device's would be caught
                    // there).
                    let Some(dev) = r.swap.as_ref() else {
                        return false;
                    };
                    let Some((&s, info)) = r.slots.iter().find(|(_, i)| i.refs == 0) else {
                        return false;
                    };
                    let info = *info;
                    let used: Vec<u32> = dev.used_slots().map(|s| s.index()).collect();
                    let Some(t) = (0..dev.slots())
                        .find(|i| !used.contains(i))
                        .and_then(|i| dev.slot(i))
                    else {
                        return false;
                    };
                    r.slots.remove(&s);
                    r.slots.insert(t, info);
                    for v in r.slot_of_frame.values_mut() {
                        if *v == s {
                            *v = t;
                        }
                    }
                }
                PagerForgery::DeviceSlots => {
                    let Some(dev) = r.swap.as_mut() else {
                        return false;
                    };
                    dev.forge_grow(64);
                }
                PagerForgery::DevicePeak => {
                    let Some(dev) = r.swap.as_mut() else {
                        return false;
                    };
                    dev.forge_peak(0);
                }
                PagerForgery::CacheOtherId => {
                    let Some((_, &slot)) = r.slot_of_frame.iter().next() else {
                        return false;
                    };
                    let n = r.frame_of_id.len() as u32;
                    let Some(info) = r.slots.get_mut(&slot) else {
                        return false;
                    };
                    info.id = (info.id + 1) % n;
                }
                PagerForgery::RmapOtherPage
                | PagerForgery::RmapTwice
                | PagerForgery::RmapDropped => {
                    // Two frames mapped in one space: the first's entry
                    // moved to the second's page, duplicated or dropped.
                    let entries: Vec<(usize, SpaceId, u64)> = r
                        .rmap
                        .iter()
                        .enumerate()
                        .flat_map(|(f, m)| m.iter().map(move |&(s, va)| (f, s, va)))
                        .collect();
                    let Some(&(f, sid, va)) = entries.first() else {
                        return false;
                    };
                    let list = &mut r.rmap[f];
                    match lie {
                        PagerForgery::RmapOtherPage => {
                            let Some(&(_, _, other)) =
                                entries.iter().find(|&&(g, s, _)| g != f && s == sid)
                            else {
                                return false;
                            };
                            list.as_mut_slice()[0] = (sid, other);
                        }
                        PagerForgery::RmapTwice => list.push((sid, va)),
                        _ => {
                            list.swap_remove(0);
                        }
                    }
                }
                PagerForgery::HighWatermark => r.high = r.frames,
                PagerForgery::Evictions => r.evictions = u64::MAX,
                PagerForgery::CleanedPastMemory => {
                    r.cleaned_dirty.insert(meta.len() as u64 + 5);
                }
                PagerForgery::LinuxShadowLate | PagerForgery::LinuxAge => {
                    let Some(KernelPolicy::Linux(p)) = r.policy.as_mut() else {
                        return false;
                    };
                    let (shadow, age) = p.forge_shadow();
                    if matches!(lie, PagerForgery::LinuxAge) {
                        *age = u64::MAX;
                    } else {
                        let late = *age + 100;
                        for s in shadow.iter_mut() {
                            *s = late;
                        }
                    }
                }
                PagerForgery::AgingSeq | PagerForgery::AgingInterval => {
                    let Some(KernelPolicy::Aging(p)) = r.policy.as_mut() else {
                        return false;
                    };
                    let (seq, interval) = p.forge_seq();
                    if matches!(lie, PagerForgery::AgingSeq) {
                        *seq = u64::MAX;
                    } else {
                        *interval = std::num::NonZeroU64::MAX;
                    }
                }
                PagerForgery::ClockInsert => {
                    let Some(KernelPolicy::Clock(p)) = r.policy.as_mut() else {
                        return false;
                    };
                    let rule = p.forge_insert();
                    *rule = match *rule {
                        ClockInsert::Referenced => ClockInsert::Clear,
                        ClockInsert::Clear => ClockInsert::Referenced,
                    };
                }
                PagerForgery::ClockProFrames => {
                    let Some(KernelPolicy::ClockPro(p)) = r.policy.as_mut() else {
                        return false;
                    };
                    *p.forge_frames() *= 2;
                }
                PagerForgery::SwapFile(path) => {
                    let Some(dev) = r.swap.as_mut() else {
                        return false;
                    };
                    dev.forge_file(path);
                }
            }
            true
        }
    }
}
