//! One process's state taken out of the machine-wide state: its VMAs, its
//! pages by virtual address (contents, rights, dirty bit), its pages in
//! swap, where it stands in its trace, and its counters. What live
//! migration sends (it lands in whatever frames the destination gives it),
//! what `vmsim checkpoint show --pid` prints, and what tests compare.
//!
//! Owns the extraction only; nothing here changes the simulation.

use serde::{Deserialize, Serialize};

use crate::addr::{Pid, VirtAddr};
use crate::kernel::Vma;
use crate::paging::PteFlags;
use crate::report::ProcessReport;
use crate::sim::inputs::InputPosition;
use crate::sim::{SimError, Simulation};

/// A 64-bit hash of a page's contents (two CRC-32C passes), the same for
/// the same bytes wherever they live.
#[must_use]
pub fn content_hash(data: &[u8]) -> u64 {
    let a = crc32c::crc32c(data);
    let b = crc32c::crc32c_append(!a, data);
    (u64::from(b) << 32) | u64::from(a)
}

/// One page of a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageImage {
    /// Its virtual address.
    pub page: VirtAddr,
    /// Its contents; `None` if all zero (nothing to send).
    pub data: Option<Vec<u8>>,
    /// [`content_hash`] of its contents (zeros included).
    pub hash: u64,
    /// Whether it is mapped writable now (false for copy-on-write sharing
    /// or write protection), if resident.
    pub writable: bool,
    /// Whether its dirty bit is set, if resident.
    pub dirty: bool,
}

/// A process as a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessImage {
    /// Its pid on the machine it was taken from.
    pub pid: Pid,
    /// Its scenario name.
    pub name: String,
    /// Its VMAs, in address order.
    pub vmas: Vec<Vma>,
    /// Where its heap starts, and the program break.
    pub brk_start: VirtAddr,
    /// The program break.
    pub brk: VirtAddr,
    /// Its resident pages, in address order.
    pub resident: Vec<PageImage>,
    /// Its pages in swap, in address order.
    pub swapped: Vec<PageImage>,
    /// Where it stands in its input (scenario processes with a trace).
    pub input: Option<InputPosition>,
    /// References it has made.
    pub references: u64,
    /// Its counters (faults by kind, peaks).
    pub counters: Option<ProcessReport>,
}

impl ProcessImage {
    /// Every page, resident or swapped, with its content hash, in address
    /// order: what must be equal after a migration.
    #[must_use]
    pub fn page_hashes(&self) -> Vec<(VirtAddr, u64)> {
        let mut v: Vec<(VirtAddr, u64)> = self
            .resident
            .iter()
            .chain(&self.swapped)
            .map(|p| (p.page, p.hash))
            .collect();
        v.sort();
        v
    }
}

impl Simulation {
    /// The contents of the page at `page` of `pid`, resident or in swap;
    /// `None` if nothing is mapped there.
    ///
    /// # Errors
    /// No such process, or the swap device cannot be read.
    pub fn page_contents(&self, pid: Pid, page: VirtAddr) -> Result<Option<Vec<u8>>, SimError> {
        let mut buf = vec![0u8; self.m.kernel.page_size().bytes() as usize];
        Ok(self.read_page(pid, page, &mut buf)?.then_some(buf))
    }

    /// Reads the page at `page` of `pid`, resident or in swap, into `buf`
    /// (one page long): `false` (and `buf` untouched) if nothing is mapped
    /// there. No allocation: what migration streams pages with.
    ///
    /// # Errors
    /// No such process, `buf` is not one page long, or the swap device
    /// cannot be read.
    pub fn read_page(&self, pid: Pid, page: VirtAddr, buf: &mut [u8]) -> Result<bool, SimError> {
        let k = &self.m.kernel;
        let err = |source| SimError::Kernel {
            process: pid.to_string(),
            source,
        };
        let space = k.space_of(pid).map_err(err)?;
        let size = k.page_size();
        if buf.len() as u64 != size.bytes() {
            return Err(err(crate::kernel::KernelError::Invalid {
                call: "read_page",
                why: format!(
                    "a buffer of {} bytes for a {}-byte page",
                    buf.len(),
                    size.bytes()
                ),
            }));
        }
        let page = page.align_down(size);
        if let Ok(t) = k
            .tables()
            .translate(k.format(), &self.mem, space.asid, page)
        {
            self.mem.read(t.frame, buf).map_err(SimError::Memory)?;
            return Ok(true);
        }
        if let Some(&slot) = space.swapped.get(&page.as_u64())
            && let Some(dev) = k.swap_device()
        {
            dev.peek(slot, buf)
                .map_err(|e| err(crate::kernel::KernelError::Swap(e)))?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Takes process `pid` out of the machine-wide state, as a value.
    ///
    /// # Errors
    /// No such process, or its pages cannot be read.
    pub fn process_image(&mut self, pid: Pid) -> Result<ProcessImage, SimError> {
        let positions = self.input_positions()?;
        let k = &self.m.kernel;
        let err = |source| SimError::Kernel {
            process: pid.to_string(),
            source,
        };
        let space = k.space_of(pid).map_err(err)?;
        let vmas: Vec<Vma> = space.vmas().copied().collect();
        let (brk_start, brk) = (space.brk_start, space.brk);
        let leaves = k
            .tables()
            .leaves(k.format(), &self.mem, space.asid)
            .map_err(|e| err(e.into()))?;
        let swapped_vas: Vec<u64> = space.swapped.keys().collect();
        let page = |p: VirtAddr, writable: bool, dirty: bool| -> Result<PageImage, SimError> {
            let data = self.page_contents(pid, p)?.unwrap_or_default();
            let hash = content_hash(&data);
            Ok(PageImage {
                page: p,
                data: data.iter().any(|&b| b != 0).then_some(data),
                hash,
                writable,
                dirty,
            })
        };
        let mut resident = Vec::with_capacity(leaves.len());
        for l in &leaves {
            resident.push(page(
                l.page,
                l.flags.contains(PteFlags::WRITE),
                l.flags.contains(PteFlags::DIRTY),
            )?);
        }
        let mut swapped = Vec::with_capacity(swapped_vas.len());
        for va in swapped_vas {
            swapped.push(page(VirtAddr::new(va), false, false)?);
        }
        let proc = self.m.schedule.procs.iter().find(|p| p.pid == Some(pid));
        let input = proc.and_then(|p| positions.get(p.spec).cloned().flatten());
        let counters = self.m.processes.get(&pid).cloned();
        let references =
            proc.map_or_else(|| counters.as_ref().map_or(0, |c| c.references), |p| p.refs);
        Ok(ProcessImage {
            pid,
            name: counters
                .as_ref()
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            vmas,
            brk_start,
            brk,
            resident,
            swapped,
            input,
            references,
            counters,
        })
    }
}
