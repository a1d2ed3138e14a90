//! External-fragmentation figures, computed exactly as Linux does.
//!
//! Linux summarises a zone's free memory for a request of order `k` in
//! `struct contig_page_info` (mm/vmstat.c, `fill_contig_page_info`): the
//! free pages, the free blocks of any order, and the number of blocks of
//! `2^k` pages the free blocks of order `>= k` could be cut into. From it:
//!
//! - the **fragmentation index** (`__fragmentation_index`, shown in
//!   `/sys/kernel/debug/extfrag/extfrag_index`): `-1.000` when a block of the
//!   order is free (the request would succeed); otherwise
//!   `1000 - (1000 + free_pages * 1000 / requested) / free_blocks_total`
//!   thousandths, with integer division: towards `0` an allocation fails for
//!   lack of memory, towards `1` because the free memory is in too small
//!   pieces. `0` when nothing at all is free. With very few free blocks the
//!   kernel's formula dips below zero (one free frame, order 3: `-0.125`);
//!   this module returns the same value (the kernel's `%d.%03d` would print
//!   it as `0.-125`);
//! - the **unusable free space index** (`unusable_free_index`,
//!   `/sys/kernel/debug/extfrag/unusable_index`): the fraction of free pages
//!   that sit in blocks too small for the request,
//!   `(free_pages - suitable << k) * 1000 / free_pages`, and `1.000` when
//!   nothing is free.
//!
//! The same two formulas apply to any allocator that can list its holes, for
//! a request of any number of frames (not just a power of two): see
//! [`ContigInfo::from_holes`]. This module only computes; it owns no state.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value in thousandths, as the kernel reports its indices (`-1000` is
/// `-1.000`). Displays as the kernel prints it (`0.438`, `-1.000`) and
/// serialises as a number (`0.438`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Milli(i32);

impl Milli {
    /// "A block of this size is free": the fragmentation index's `-1.000`.
    pub const REQUEST_SUCCEEDS: Self = Self(-1000);

    /// `num / den` in thousandths, rounded down (0 when `den` is 0), for
    /// ratios between 0 and 1 such as external fragmentation,
    /// `(free - largest) / free`.
    #[must_use]
    pub fn ratio(num: u64, den: u64) -> Self {
        if den == 0 {
            return Self(0);
        }
        let v = u128::from(num.min(den)) * 1000 / u128::from(den);
        Self(v as i32)
    }

    /// The value in thousandths.
    #[must_use]
    pub const fn thousandths(self) -> i32 {
        self.0
    }

    /// The value as a fraction.
    #[must_use]
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1000.0
    }
}

impl fmt::Display for Milli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:03}", a / 1000, a % 1000)
    }
}

/// A number for people (`-1.0`), the exact thousandths for machines.
impl Serialize for Milli {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_f64(self.as_f64())
        } else {
            s.serialize_i32(self.0)
        }
    }
}

/// Reads back what [`Serialize`] wrote for machines (thousandths).
impl<'de> Deserialize<'de> for Milli {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let v = f64::deserialize(d)?;
            Ok(Self((v * 1000.0).round() as i32))
        } else {
            i32::deserialize(d).map(Self)
        }
    }
}

/// Linux's `struct contig_page_info`: free memory summarised for one request size.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ContigInfo {
    /// Free frames in total.
    pub free_pages: u64,
    /// Free blocks (or holes) of any size.
    pub free_blocks_total: u64,
    /// How many requests of the size in question the free blocks can satisfy.
    pub free_blocks_suitable: u64,
}

impl ContigInfo {
    /// `fill_contig_page_info`: `free_per_order[k]` free blocks of `2^k`
    /// frames, for a request of order `order`.
    #[must_use]
    pub fn from_orders(free_per_order: &[u64], order: u32) -> Self {
        let mut info = Self::default();
        for (o, &blocks) in free_per_order.iter().enumerate() {
            let o = o as u32;
            info.free_blocks_total += blocks;
            info.free_pages += blocks << o;
            if o >= order {
                info.free_blocks_suitable += blocks << (o - order);
            }
        }
        info
    }

    /// The same summary for an allocator of contiguous extents: `holes` are
    /// the lengths of the free runs, `request` the frames asked for (a run of
    /// `n` frames satisfies `n / request` requests).
    #[must_use]
    pub fn from_holes(holes: impl IntoIterator<Item = u64>, request: u64) -> Self {
        let mut info = Self::default();
        for len in holes {
            info.free_blocks_total += 1;
            info.free_pages += len;
            info.free_blocks_suitable += len.checked_div(request).unwrap_or(0);
        }
        info
    }

    /// `__fragmentation_index` for a request of `requested` frames (which the
    /// kernel writes `1 << order`). Zero requested frames gives 0.
    #[must_use]
    pub fn fragmentation_index(&self, requested: u64) -> Milli {
        if self.free_blocks_total == 0 || requested == 0 {
            return Milli(0);
        }
        if self.free_blocks_suitable > 0 {
            return Milli::REQUEST_SUCCEEDS;
        }
        let per_request = u128::from(self.free_pages) * 1000 / u128::from(requested);
        let q = (1000 + per_request) / u128::from(self.free_blocks_total);
        // With no suitable block every block is smaller than the request, so
        // free_pages < blocks * requested and q < 1000 + 1000 / blocks <= 2000:
        // the result fits, and is negative (as in the kernel) when a few
        // small blocks are far from the request.
        Milli(1000 - q as i32)
    }

    /// `unusable_free_index` for a request of `requested` frames.
    #[must_use]
    pub fn unusable_free_index(&self, requested: u64) -> Milli {
        if self.free_pages == 0 {
            return Milli(1000);
        }
        let usable = u128::from(self.free_blocks_suitable) * u128::from(requested);
        let unusable = u128::from(self.free_pages).saturating_sub(usable);
        Milli((unusable * 1000 / u128::from(self.free_pages)) as i32)
    }
}

/// Linux's fragmentation index for a request of `order`, from the free
/// blocks per order `0..=max_order` (`free_per_order.len() - 1`). An order
/// past `max_order` gives 0, as the kernel's `WARN_ON_ONCE` path does.
#[must_use]
pub fn fragmentation_index(free_per_order: &[u64], order: u32) -> Milli {
    if order as usize >= free_per_order.len() {
        return Milli(0);
    }
    ContigInfo::from_orders(free_per_order, order).fragmentation_index(1 << order)
}

/// Linux's unusable free space index for a request of `order`.
#[must_use]
pub fn unusable_free_index(free_per_order: &[u64], order: u32) -> Milli {
    let requested = 1u64.checked_shl(order).unwrap_or(0);
    ContigInfo::from_orders(free_per_order, order).unusable_free_index(requested)
}

/// Every figure for every order of a buddy allocator: one line of
/// `/proc/buddyinfo`, `extfrag_index` and `unusable_index`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct FragmentationReport {
    /// Free blocks per order (`/proc/buddyinfo`).
    pub free_blocks: Vec<u64>,
    /// Free frames.
    pub free_pages: u64,
    /// Fragmentation index per order (`-1.000`: a block of that order is free).
    pub extfrag_index: Vec<Milli>,
    /// Unusable free space index per order.
    pub unusable_index: Vec<Milli>,
}

impl FragmentationReport {
    /// The report for free blocks per order `0..=max_order`.
    #[must_use]
    pub fn from_free_blocks(free_per_order: &[u64]) -> Self {
        let orders = 0..free_per_order.len() as u32;
        Self {
            free_blocks: free_per_order.to_vec(),
            free_pages: ContigInfo::from_orders(free_per_order, 0).free_pages,
            extfrag_index: orders
                .clone()
                .map(|o| fragmentation_index(free_per_order, o))
                .collect(),
            unusable_index: orders
                .map(|o| unusable_free_index(free_per_order, o))
                .collect(),
        }
    }
}

impl FragmentationReport {
    /// The line `/proc/buddyinfo` shows for this zone:
    /// `Node 0, zone   Normal      1      0 ...` (`%6lu` per order).
    #[must_use]
    pub fn buddyinfo_line(&self, node: u32, zone: &str) -> String {
        let mut line = format!("Node {node}, zone {zone:>8} ");
        for n in &self.free_blocks {
            line.push_str(&format!("{n:6} "));
        }
        line
    }

    /// The line `extfrag_index` shows (`%2d.%03d` of the thousandths with
    /// C's truncating division, so a negative value other than `-1.000`
    /// prints as the kernel prints it, e.g. ` 0.-125`).
    #[must_use]
    pub fn extfrag_line(&self, node: u32, zone: &str) -> String {
        let mut line = format!("Node {node}, zone {zone:>8} ");
        for m in &self.extfrag_index {
            let v = m.thousandths();
            line.push_str(&format!("{:2}.{:03} ", v / 1000, v % 1000));
        }
        line
    }

    /// The line `unusable_index` shows (`%d.%03d`).
    #[must_use]
    pub fn unusable_line(&self, node: u32, zone: &str) -> String {
        let mut line = format!("Node {node}, zone {zone:>8} ");
        for m in &self.unusable_index {
            let v = m.thousandths();
            line.push_str(&format!("{}.{:03} ", v / 1000, v % 1000));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_small_example() {
        // Three single free frames and one free pair: 5 free pages, 4 blocks.
        let free = [3, 1, 0, 0];
        // Order 2 (4 frames): nothing suitable;
        // 1000 - (1000 + 5*1000/4) / 4 = 1000 - 2250/4 = 1000 - 562 = 438.
        assert_eq!(fragmentation_index(&free, 2), Milli(438));
        assert_eq!(fragmentation_index(&free, 2).to_string(), "0.438");
        // Order 1: the pair is free, so the request succeeds.
        assert_eq!(fragmentation_index(&free, 1), Milli::REQUEST_SUCCEEDS);
        assert_eq!(Milli::REQUEST_SUCCEEDS.to_string(), "-1.000");
        assert_eq!(fragmentation_index(&free, 0), Milli(-1000));
        // Unusable: order 0 none; order 1 the 3 singles of 5 = 0.600; order 2 all.
        assert_eq!(unusable_free_index(&free, 0), Milli(0));
        assert_eq!(unusable_free_index(&free, 1), Milli(600));
        assert_eq!(unusable_free_index(&free, 2), Milli(1000));
        // Past max_order: the kernel warns and returns 0.
        assert_eq!(fragmentation_index(&free, 4), Milli(0));
    }

    #[test]
    fn index_tends_to_one_with_many_small_blocks() {
        // 1000 free single frames, order 3 request:
        // 1000 - (1000 + 1000*1000/8)/1000 = 1000 - 126 = 874.
        assert_eq!(fragmentation_index(&[1000, 0, 0, 0], 3), Milli(874));
        // One single frame: lack of memory, not fragmentation. The kernel's
        // formula goes below zero here: 1000 - (1000 + 1000/8)/1 = -125.
        assert_eq!(fragmentation_index(&[1, 0, 0, 0], 3), Milli(-125));
        assert_eq!(Milli(-125).to_string(), "-0.125");
        // Two single frames: 1000 - (1000 + 2000/8)/2 = 1000 - 625.
        assert_eq!(fragmentation_index(&[2, 0, 0, 0], 3), Milli(375));
    }

    #[test]
    fn nothing_free() {
        assert_eq!(fragmentation_index(&[0, 0], 1), Milli(0));
        assert_eq!(unusable_free_index(&[0, 0], 1), Milli(1000));
    }

    #[test]
    fn holes_for_any_request_size() {
        // Holes of 2 and 2 frames, a request of 4: 4 free frames, all unusable.
        let info = ContigInfo::from_holes([2, 2], 4);
        assert_eq!(info.free_pages, 4);
        assert_eq!(info.free_blocks_suitable, 0);
        assert_eq!(info.unusable_free_index(4), Milli(1000));
        // 1000 - (1000 + 4000/4)/2 = 0: by Linux's measure, two holes are too
        // few to blame fragmentation.
        assert_eq!(info.fragmentation_index(4), Milli(0));
        // Holes of 3 and 5, a request of 3: 1 + 1 suitable.
        let info = ContigInfo::from_holes([3, 5], 3);
        assert_eq!(info.free_blocks_suitable, 2);
        assert_eq!(info.unusable_free_index(3), Milli(250));
    }

    #[test]
    fn report_covers_every_order() {
        let r = FragmentationReport::from_free_blocks(&[0, 0, 1, 1, 0, 1, 0]);
        assert_eq!(r.free_pages, 44);
        // Order 6: 1000 - (1000 + 44000/64)/3 = 1000 - 1687/3 = 1000 - 562.
        assert_eq!(r.extfrag_index[6], Milli(438));
        // Order 5: (44 - 32) * 1000 / 44 = 272.
        assert_eq!(r.unusable_index[5], Milli(272));
        assert_eq!(r.extfrag_index[5], Milli(-1000));
        assert_eq!(r.extfrag_index.len(), 7);
        assert_eq!(
            r.buddyinfo_line(0, "Normal"),
            "Node 0, zone   Normal      0      0      1      1      0      1      0 "
        );
        assert_eq!(
            r.extfrag_line(0, "Normal"),
            "Node 0, zone   Normal -1.000 -1.000 -1.000 -1.000 -1.000 -1.000  0.438 "
        );
        assert_eq!(
            r.unusable_line(0, "Normal"),
            "Node 0, zone   Normal 0.000 0.000 0.000 0.090 0.272 0.272 1.000 "
        );
        // The kernel's own rendering of a negative index.
        let few = FragmentationReport::from_free_blocks(&[1, 0, 0, 0]);
        assert!(few.extfrag_line(0, "DMA").ends_with(" 0.-125 "));
    }
}
