//! The physical-memory trait: what the page-table walker, the MMU and the
//! page-table builders need from RAM, so that they can work over memory
//! someone else owns.
//!
//! An emulator or a kernel project that already has its guest RAM (a
//! `Vec<u8>`, an `mmap`ed region, a device model) implements
//! [`PhysMemory`] for it — two required methods, [`PhysMemory::read`] and
//! [`PhysMemory::write`], plus [`PhysMemory::size`] — and can then put
//! vmsim's [`Mmu`](crate::mmu::Mmu), TLBs, page-walk caches and
//! [`RadixTable`](crate::paging::RadixTable) in front of it, walking the
//! page tables where they live instead of copying them. This is the role of
//! rust-vmm's `GuestMemory`/`Bytes` traits: the simulator's own sparse
//! [`PhysMem`] is just one implementation.
//!
//! Every user of the trait is generic over it (`M: PhysMemory + ?Sized`), so
//! each memory type gets its own monomorphised walker: no dynamic dispatch
//! on the walk or the TLB-hit path. Plain byte slices and `Vec<u8>`
//! implement it (byte `i` is physical address `i`).
//!
//! ```
//! use vmsim::addr::PhysAddr;
//! use vmsim::memory::PhysMemory;
//!
//! let mut ram = vec![0u8; 8192];
//! ram.write_le(PhysAddr::new(0x1000)?, 8, 0x2003)?;
//! assert_eq!(ram.read_le(PhysAddr::new(0x1000)?, 8)?, 0x2003);
//! assert!(ram.read_le(PhysAddr::new(0x1ffc)?, 8).is_err()); // crosses the end
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::addr::PhysAddr;
use crate::phys::{Bitmap, MemError, PhysMem};
use crate::shared_page::{SharedChunk, SharedPage};
use crate::swap::{Loan, LoanReturn};

/// Byte-addressed physical memory of a fixed size, read and written at
/// physical addresses. Accesses that reach past [`PhysMemory::size`] fail
/// with [`MemError::OutOfRange`] and change nothing.
///
/// Page-table entries are little-endian values of 1, 2, 4 or 8 bytes
/// ([`PhysMemory::read_le`], [`PhysMemory::write_le`]); the default methods
/// build them from [`PhysMemory::read`] and [`PhysMemory::write`], and an
/// implementation may override them with a faster path.
pub trait PhysMemory {
    /// The size in bytes: valid addresses are `0..size`.
    fn size(&self) -> u64;

    /// Reads `buf.len()` bytes starting at `addr`.
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if the range reaches past the end; `buf` is
    /// then unspecified.
    fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError>;

    /// Writes `data` starting at `addr`.
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if the range reaches past the end; memory is
    /// then unchanged.
    fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), MemError>;

    /// Whether `[addr, addr+len)` lies inside memory.
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if it does not.
    #[inline]
    fn check(&self, addr: PhysAddr, len: u64) -> Result<(), MemError> {
        check_range(self.size(), addr, len)
    }

    /// Reads a little-endian unsigned value of `width` bytes (1, 2, 4 or 8;
    /// wider is read as 8): how every supported format stores its entries.
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if the value reaches past the end.
    #[inline]
    fn read_le(&self, addr: PhysAddr, width: u32) -> Result<u64, MemError> {
        let mut v = [0u8; 8];
        self.read(addr, &mut v[..(width as usize).min(8)])?;
        Ok(u64::from_le_bytes(v))
    }

    /// Writes the low `width` bytes (1, 2, 4 or 8; wider is written as 8) of
    /// `value`, little-endian.
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if the value reaches past the end.
    #[inline]
    fn write_le(&mut self, addr: PhysAddr, width: u32, value: u64) -> Result<(), MemError> {
        self.write(addr, &value.to_le_bytes()[..(width as usize).min(8)])
    }

    /// Reads the 8-byte little-endian entry at `addr` and, when it passes
    /// the test (`old & mask == value`) and has one of the bits `clear`
    /// set, writes it back with those bits cleared; returns the entry as it
    /// was read. What [`PhysMemory::read_le`] then [`PhysMemory::write_le`]
    /// of the same entry do, which is the default: how the reclaimer's scan
    /// tests and clears a page's accessed bit. An implementation that holds
    /// its bytes may look the entry up once for both.
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if the entry reaches past the end (nothing
    /// is written).
    #[inline]
    fn clear_le_bits_if(
        &mut self,
        addr: PhysAddr,
        mask: u64,
        value: u64,
        clear: u64,
    ) -> Result<u64, MemError> {
        clear_le_bits_by_read_write(self, addr, mask, value, clear)
    }

    /// Reads the little-endian entry of `width` bytes at `addr` and, when
    /// it passes the test (`old & mask == value`), writes `new` there;
    /// returns the entry as it was read. What [`PhysMemory::read_le`] then
    /// [`PhysMemory::write_le`] of the same entry do, which is the default:
    /// how a map fills an entry it expects empty. An implementation that
    /// holds its bytes may look the entry up once for both.
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if the entry reaches past the end (nothing
    /// is written).
    #[inline]
    fn write_le_if(
        &mut self,
        addr: PhysAddr,
        width: u32,
        mask: u64,
        value: u64,
        new: u64,
    ) -> Result<u64, MemError> {
        write_le_if_by_read_write(self, addr, width, mask, value, new)
    }

    /// Sets `[addr, addr+len)` to zero (a new page table is cleared so).
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if the range reaches past the end; memory is
    /// then unchanged.
    fn zero(&mut self, addr: PhysAddr, len: u64) -> Result<(), MemError> {
        self.check(addr, len)?;
        const ZEROS: [u8; 4096] = [0; 4096];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(ZEROS.len() as u64);
            self.write(addr.add(done), &ZEROS[..n as usize])?;
            done += n;
        }
        Ok(())
    }

    /// Whether every byte of `[addr, addr+len)` is zero: how the page-table
    /// code asks whether a table became empty. The default reads a piece at
    /// a time into the stack and stops at the first non-zero piece; an
    /// implementation that holds its bytes may look at them in place.
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if the range reaches past the end (checked
    /// whole before anything is read).
    fn is_zero(&self, addr: PhysAddr, len: u64) -> Result<bool, MemError> {
        self.check(addr, len)?;
        let mut buf = [0u8; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            self.read(addr.add(done), &mut buf[..n])?;
            if !all_zero(&buf[..n]) {
                return Ok(false);
            }
            done += n as u64;
        }
        Ok(true)
    }

    /// Copies `len` bytes from `src` to `dst` (the ranges must not
    /// overlap): how a kernel copies a page (copy-on-write, migration).
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if either range reaches past the end;
    /// memory is then unchanged.
    fn copy(&mut self, src: PhysAddr, dst: PhysAddr, len: u64) -> Result<(), MemError> {
        self.check(src, len)?;
        self.check(dst, len)?;
        let mut buf = [0u8; 4096];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            self.read(src.add(done), &mut buf[..n])?;
            self.write(dst.add(done), &buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }

    /// The page of `len` bytes at `addr` as a [`SharedPage`], if this
    /// memory can give it without copying its bytes (how a swap-out hands
    /// a page to the swap cache); `None`: the caller reads a copy. The
    /// default never can.
    fn share_page(&self, addr: PhysAddr, len: u64) -> Option<SharedPage> {
        let _ = (addr, len);
        None
    }

    /// The `len` bytes at `addr` in place, if this memory holds them as one
    /// piece it can lend (how a swap-out copies a written page into the swap
    /// cache once, with no buffer of its own in between); `None`: the
    /// caller reads a copy. The default never can.
    fn page_in_place(&self, addr: PhysAddr, len: u64) -> Option<&[u8]> {
        let _ = (addr, len);
        None
    }

    /// Writes `page` at `addr`: the same bytes as [`PhysMemory::write`] of
    /// [`SharedPage::bytes`], which is what the default does; a memory may
    /// keep a reference to the page's buffer instead (how a swap-in puts a
    /// page back without a copy).
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if the page reaches past the end; memory is
    /// then unchanged.
    fn write_shared(&mut self, addr: PhysAddr, page: SharedPage) -> Result<(), MemError> {
        self.write(addr, page.bytes())
    }

    /// Takes a page buffer no one else needs (the swap cache's, once a
    /// swap-out handed it the frame's own), to be filled by the next copy
    /// on first write instead of a new one. The default lets it go.
    fn give_spare_page(&mut self, page: SharedChunk) {
        drop(page);
    }

    /// Whether this memory takes swap pages on loan
    /// ([`PhysMemory::write_lent`], `swap/loan.rs`). The default does not:
    /// the kernel then never lends it one.
    fn takes_loans(&self) -> bool {
        false
    }

    /// Installs a lent swap page at `addr` (only asked of a memory that
    /// [`PhysMemory::takes_loans`]). The default writes its bytes and hands
    /// the page straight back.
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if the page reaches past the end.
    fn write_lent(&mut self, addr: PhysAddr, loan: Loan) -> Result<Option<LoanReturn>, MemError> {
        self.write(addr, &loan.page[..])?;
        Ok(Some(loan.into_return()))
    }

    /// Whether the `len` bytes at `addr` (a data page whose frame is being
    /// allocated to be overwritten whole: a swap-in) may stay as they are
    /// until [`PhysMemory::write_lent_over`] or a later
    /// [`PhysMemory::zero`], with the same outcome as zeroing them now.
    /// The default says no: the kernel then zeroes at once, as for any
    /// page.
    fn defers_zero(&self, addr: PhysAddr, len: u64) -> bool {
        let _ = (addr, len);
        false
    }

    /// [`PhysMemory::zero`] of the `len` bytes at `addr` and then
    /// [`PhysMemory::write_lent`] of `loan` there: how a swap-in installs
    /// a lent page in a frame whose zeroing was deferred
    /// ([`PhysMemory::defers_zero`]). The default does exactly that.
    ///
    /// # Errors
    /// [`MemError::OutOfRange`] if the page reaches past the end.
    fn write_lent_over(
        &mut self,
        addr: PhysAddr,
        len: u64,
        loan: Loan,
    ) -> Result<Option<LoanReturn>, MemError> {
        // (As the allocation's zero, whose failure was ignored: the
        // install reports a page past the end.)
        let _ = self.zero(addr, len);
        self.write_lent(addr, loan)
    }

    /// The page at `addr` went out dirty to its slot: its loan, if any,
    /// ends with nothing to give back.
    fn end_loan(&mut self, addr: PhysAddr) {
        let _ = addr;
    }

    /// Closes the page at `addr`'s loan, if any: the slot's old bytes.
    fn close_loan(&mut self, addr: PhysAddr) -> Option<LoanReturn> {
        let _ = addr;
        None
    }

    /// Closes every open loan; the old bytes wait in
    /// [`PhysMemory::pop_loan_return`]. Memory's bytes stay as they are.
    fn close_all_loans(&mut self) {}

    /// One closed loan's old bytes, for the swap device.
    fn pop_loan_return(&mut self) -> Option<LoanReturn> {
        None
    }
}

/// [`PhysMemory::clear_le_bits_if`] as a [`PhysMemory::read_le`] then,
/// when the entry passes the test and has a bit of `clear` set, a
/// [`PhysMemory::write_le`]: the trait's default, and `PhysMem`'s for an
/// entry not in an owned chunk.
#[inline]
pub(crate) fn clear_le_bits_by_read_write<M: PhysMemory + ?Sized>(
    mem: &mut M,
    addr: PhysAddr,
    mask: u64,
    value: u64,
    clear: u64,
) -> Result<u64, MemError> {
    let old = mem.read_le(addr, 8)?;
    if old & mask == value && old & clear != 0 {
        mem.write_le(addr, 8, old & !clear)?;
    }
    Ok(old)
}

/// [`PhysMemory::write_le_if`] as a read and a conditional write: the
/// trait's default, and what an implementation falls back to when it
/// cannot look the entry up once.
pub(crate) fn write_le_if_by_read_write<M: PhysMemory + ?Sized>(
    mem: &mut M,
    addr: PhysAddr,
    width: u32,
    mask: u64,
    value: u64,
    new: u64,
) -> Result<u64, MemError> {
    let old = mem.read_le(addr, width)?;
    if old & mask == value {
        mem.write_le(addr, width, new)?;
    }
    Ok(old)
}

/// Whether every byte of `bytes` is zero: 128 bytes at a time OR-ed
/// together (the compiler makes that a few vector instructions), so a zero
/// page coming back from swap costs a few hundred instructions, not a
/// compare and branch per word; a non-zero page still stops at the first
/// block that has a set bit.
#[inline]
pub(crate) fn all_zero(bytes: &[u8]) -> bool {
    let (blocks, rest) = bytes.as_chunks::<128>();
    for b in blocks {
        let (words, _) = b.as_chunks::<8>();
        if words.iter().fold(0, |acc, w| acc | u64::from_ne_bytes(*w)) != 0 {
            return false;
        }
    }
    let (words, tail) = rest.as_chunks::<8>();
    words.iter().all(|w| u64::from_ne_bytes(*w) == 0) && tail.iter().all(|&b| b == 0)
}

/// [`MemError::OutOfRange`] unless `[addr, addr+len)` fits in `size` bytes.
#[inline]
fn check_range(size: u64, addr: PhysAddr, len: u64) -> Result<(), MemError> {
    let a = addr.as_u64();
    match a.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(MemError::OutOfRange { addr: a, len, size }),
    }
}

/// The simulator's own sparse memory: the inherent methods, unchanged (they
/// have fast paths for entries and for never-written chunks).
impl<B: Bitmap> PhysMemory for PhysMem<B> {
    #[inline(always)]
    fn size(&self) -> u64 {
        PhysMem::size(self)
    }

    #[inline(always)]
    fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        PhysMem::read(self, addr, buf)
    }

    #[inline(always)]
    fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        PhysMem::write(self, addr, data)
    }

    #[inline(always)]
    fn check(&self, addr: PhysAddr, len: u64) -> Result<(), MemError> {
        PhysMem::check(self, addr, len)
    }

    #[inline(always)]
    fn read_le(&self, addr: PhysAddr, width: u32) -> Result<u64, MemError> {
        PhysMem::read_le(self, addr, width)
    }

    #[inline(always)]
    fn write_le(&mut self, addr: PhysAddr, width: u32, value: u64) -> Result<(), MemError> {
        PhysMem::write_le(self, addr, width, value)
    }

    #[inline(always)]
    fn clear_le_bits_if(
        &mut self,
        addr: PhysAddr,
        mask: u64,
        value: u64,
        clear: u64,
    ) -> Result<u64, MemError> {
        PhysMem::clear_le_bits_if(self, addr, mask, value, clear)
    }

    #[inline(always)]
    fn write_le_if(
        &mut self,
        addr: PhysAddr,
        width: u32,
        mask: u64,
        value: u64,
        new: u64,
    ) -> Result<u64, MemError> {
        PhysMem::write_le_if(self, addr, width, mask, value, new)
    }

    #[inline(always)]
    fn zero(&mut self, addr: PhysAddr, len: u64) -> Result<(), MemError> {
        PhysMem::zero(self, addr, len)
    }

    #[inline(always)]
    fn copy(&mut self, src: PhysAddr, dst: PhysAddr, len: u64) -> Result<(), MemError> {
        PhysMem::copy(self, src, dst, len)
    }

    #[inline(always)]
    fn is_zero(&self, addr: PhysAddr, len: u64) -> Result<bool, MemError> {
        PhysMem::is_zero(self, addr, len)
    }

    #[inline(always)]
    fn share_page(&self, addr: PhysAddr, len: u64) -> Option<SharedPage> {
        PhysMem::share_page(self, addr, len)
    }

    #[inline(always)]
    fn page_in_place(&self, addr: PhysAddr, len: u64) -> Option<&[u8]> {
        PhysMem::page_in_place(self, addr, len)
    }

    #[inline(always)]
    fn write_shared(&mut self, addr: PhysAddr, page: SharedPage) -> Result<(), MemError> {
        PhysMem::write_shared(self, addr, page)
    }

    #[inline(always)]
    fn give_spare_page(&mut self, page: SharedChunk) {
        PhysMem::give_spare_page(self, page);
    }

    #[inline(always)]
    fn takes_loans(&self) -> bool {
        true
    }

    #[inline(always)]
    fn write_lent(&mut self, addr: PhysAddr, loan: Loan) -> Result<Option<LoanReturn>, MemError> {
        PhysMem::write_lent(self, addr, loan).map(|()| None)
    }

    #[inline(always)]
    fn defers_zero(&self, addr: PhysAddr, len: u64) -> bool {
        PhysMem::defers_zero(self, addr, len)
    }

    #[inline(always)]
    fn write_lent_over(
        &mut self,
        addr: PhysAddr,
        len: u64,
        loan: Loan,
    ) -> Result<Option<LoanReturn>, MemError> {
        PhysMem::write_lent_over(self, addr, len, loan).map(|()| None)
    }

    #[inline(always)]
    fn end_loan(&mut self, addr: PhysAddr) {
        PhysMem::end_loan(self, addr);
    }

    #[inline(always)]
    fn close_loan(&mut self, addr: PhysAddr) -> Option<LoanReturn> {
        PhysMem::close_loan(self, addr)
    }

    fn close_all_loans(&mut self) {
        PhysMem::close_all_loans(self);
    }

    #[inline(always)]
    fn pop_loan_return(&mut self) -> Option<LoanReturn> {
        PhysMem::pop_loan_return(self)
    }
}

/// A plain byte buffer as physical memory: byte `i` is address `i`.
impl PhysMemory for [u8] {
    #[inline]
    fn size(&self) -> u64 {
        self.len() as u64
    }

    #[inline]
    fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        check_range(self.size(), addr, buf.len() as u64)?;
        let a = addr.as_u64() as usize;
        buf.copy_from_slice(&self[a..a + buf.len()]);
        Ok(())
    }

    #[inline]
    fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        check_range(self.size(), addr, data.len() as u64)?;
        let a = addr.as_u64() as usize;
        self[a..a + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn zero(&mut self, addr: PhysAddr, len: u64) -> Result<(), MemError> {
        check_range(self.size(), addr, len)?;
        let a = addr.as_u64() as usize;
        self[a..a + len as usize].fill(0);
        Ok(())
    }

    fn is_zero(&self, addr: PhysAddr, len: u64) -> Result<bool, MemError> {
        check_range(self.size(), addr, len)?;
        let a = addr.as_u64() as usize;
        Ok(all_zero(&self[a..a + len as usize]))
    }
}

/// A `Vec<u8>` as physical memory: its length is the memory's size (it is
/// never grown).
impl PhysMemory for Vec<u8> {
    #[inline]
    fn size(&self) -> u64 {
        self.len() as u64
    }

    #[inline]
    fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        self.as_slice().read(addr, buf)
    }

    #[inline]
    fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        self.as_mut_slice().write(addr, data)
    }

    fn zero(&mut self, addr: PhysAddr, len: u64) -> Result<(), MemError> {
        self.as_mut_slice().zero(addr, len)
    }

    fn is_zero(&self, addr: PhysAddr, len: u64) -> Result<bool, MemError> {
        self.as_slice().is_zero(addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pa(x: u64) -> PhysAddr {
        PhysAddr::new_unchecked(x)
    }

    /// Every length and every position of a single set byte: blocks,
    /// words and the byte tail are all looked at.
    #[test]
    fn all_zero_sees_any_set_byte() {
        for len in [0usize, 1, 7, 8, 9, 127, 128, 129, 300, 4096] {
            let mut v = vec![0u8; len];
            assert!(all_zero(&v), "{len} zero bytes");
            for i in 0..len {
                v[i] = 0x10;
                assert!(!all_zero(&v), "byte {i} of {len} set");
                v[i] = 0;
            }
        }
    }

    /// The same operations on a byte vector and on the sparse memory give
    /// the same bytes and the same errors.
    #[test]
    fn a_vec_and_physmem_agree() {
        let mut v = vec![0u8; 3 * 4096];
        let mut p: PhysMem = PhysMem::new(3 * 4096).expect("size");
        fn ops<M: PhysMemory + ?Sized>(m: &mut M) -> Vec<Result<u64, MemError>> {
            let mut buf = [0u8; 16];
            vec![
                m.write_le(pa(4094), 4, 0xdead_beef).map(|()| 0),
                m.read_le(pa(4094), 4),
                m.read_le(pa(4096), 2),
                m.write(pa(100), &[7; 5000]).map(|()| 0),
                m.zero(pa(4090), 20).map(|()| 0),
                m.read_le(pa(4088), 8),
                m.read_le(pa(3 * 4096 - 4), 8),
                m.write_le(pa(3 * 4096 - 1), 2, 1).map(|()| 0),
                m.zero(pa(3 * 4096), 1).map(|()| 0),
                m.check(pa((1 << 56) - 2), 4).map(|()| 0),
                m.read(pa(5090), &mut buf).map(|()| u64::from(buf[9])),
                m.copy(pa(4000), pa(9000), 200).map(|()| 0),
                m.read_le(pa(9092), 8),
                m.copy(pa(4000), pa(3 * 4096 - 100), 200).map(|()| 0),
                m.is_zero(pa(4090), 20).map(u64::from),
                m.is_zero(pa(4080), 40).map(u64::from),
                m.is_zero(pa(0), 100).map(u64::from),
                m.is_zero(pa(0), 101).map(u64::from),
                m.is_zero(pa(8192), 4096).map(u64::from),
                m.is_zero(pa(8192), 4097).map(u64::from),
            ]
        }
        assert_eq!(ops(&mut v), ops(&mut p));
        let mut back = vec![0u8; 3 * 4096];
        p.read(pa(0), &mut back).expect("read");
        assert_eq!(back, v);
    }

    #[test]
    fn out_of_range_writes_change_nothing() {
        let mut v = vec![1u8; 16];
        assert_eq!(
            v.write(pa(12), &[9; 8]),
            Err(MemError::OutOfRange {
                addr: 12,
                len: 8,
                size: 16
            })
        );
        assert_eq!(v, vec![1u8; 16]);
        assert!(v.zero(pa(8), 9).is_err());
        assert_eq!(v, vec![1u8; 16]);
    }
}
