//! Zipf ranks found in a table, bit for bit the ranks [`Zipf::sample`] draws.
//!
//! Each try of the rejection-inversion sampler draws one uniform `u` and
//! turns it into a real `x = H^-1(u)` with a `log1p` and an `exp` (some 120
//! of the 190 instructions a sample takes); the rank is `x` rounded, and the
//! try is accepted outright when `x` is at least `rank - threshold`. Both
//! answers change only where `x` crosses `k + 0.5` or `k - threshold`, that
//! is where `u` crosses `H(k + 0.5)` or `H(k - threshold)`: values that
//! depend only on the configuration. [`ZipfTable`] works them out once per
//! rank and answers a try from `u` alone by a guided search, with no library
//! call. The sampler's rounded `log1p` and `exp` change their answer within
//! a few units in the last place of those values, not exactly at them, so
//! a try whose `u` lies within a margin of any of its rank's values (about
//! 2^-30 of `u`'s scale, some ten thousand times the rounding error of the
//! two routines and of `H`) is decided by the sampler's own `Zipf::decide`: the
//! random draws, the ranks and every report stay exactly as they were.
//! Tries that are not accepted outright take the sampler's own second
//! test, which depends on the rank and `u` only.
//!
//! Most tries need no search at all: a guide cell that lies wholly inside
//! one rank's sure acceptance, margins and all (with a slack of a
//! sixteenth of a cell on each side, some hundred million times the
//! rounding error of working out the cell from `u`), is marked *pure*, and
//! a try that lands in it is that rank, accepted, from the cell alone. On
//! the zipf row (65,536 ranks, `s = 0.9`) 84.5% of the tries land in a
//! pure cell and skip the search, the bound loads and the margin tests
//! (marking the cells adds about 38 instructions a cell to the building).
//! With eight cells a rank (two until the twenty-ninth round: two tries in
//! three pure) the test of the cell, a branch on random data, is
//! mispredicted about half as often, and the tries that search (some 45
//! instructions more than a pure one's, and a search loop whose exit is
//! mispredicted too) are fewer: see `CELLS_PER_RANK`.
//!
//! The table holds about 24.5 bytes a rank (two bounds, 16 bytes, and
//! eight guide cells packed a byte each, sixty to a cache line; 32 bytes
//! more for a table some of whose lines span too many ranks), so it
//! is built only up to [`MAX_TABLE_RANKS`] ranks, and its building (two
//! evaluations of `H` a rank) is worth it only for a workload that draws
//! [`DRAWS_PER_RANK`] samples a rank or more; otherwise every try goes to
//! the sampler as before.

use crate::rng::Rng;
use crate::zipf::Zipf;

/// The most ranks a table is built for (6 MiB of table, 14 MiB with the
/// wide guide).
pub const MAX_TABLE_RANKS: u64 = 1 << 18;

/// A try whose `u` is this close (relative to `u`'s range) to a bound is
/// left to the sampler's own arithmetic.
const MARGIN: f64 = 1.0 / (1u64 << 30) as f64;

/// Guide cells per rank.
///
/// Why eight: the share of tries in pure cells on the zipf row is 66.1%
/// with two cells a rank, 75.0% with four and 84.5% with eight (the cells
/// that hold a rank's end or the start of its sure acceptance are fewer
/// of the tries as the cells narrow). Under cachegrind's models the row's
/// steady state went from 628.6 instructions, 6.41 L1 data misses and
/// 3.38 mispredicted branches a reference to 619.2, 6.18 and 3.00 (see
/// docs/speed.md, twenty-ninth round): fewer searches, fewer mispredicted
/// tests of the cell and of the search's loop, for about 230 instructions
/// a rank more in the building.
const CELLS_PER_RANK: usize = 8;

/// A guide cell's mark that every `u` in it is its rank, accepted outright
/// (the rest of the cell is the rank's index, below 2^18): in the guide
/// as it is built, before it is packed into [`GuideLine`]s.
const PURE: u32 = 1 << 31;

/// Guide cells a [`GuideLine`] holds: 60 one-byte cells after a 4-byte
/// base fill one 64-byte cache line.
const LINE_CELLS: usize = 60;

/// A packed cell's mark that it is pure (see [`PURE`]); the low seven bits
/// are the cell's rank index less its line's base.
const PURE8: u8 = 0x80;

/// A packed cell that is not pure and whose rank index is too far above its
/// line's base for seven bits: its entry is in the wide guide.
const WIDE: u8 = 0x7f;

/// Sixty guide cells in one cache line: the rank index of the line's first
/// cell, then per cell its rank index less that base (below [`WIDE`]) with
/// [`PURE8`] when the cell is pure, or [`WIDE`].
///
/// Why: the guide is read at a uniformly random cell on every try. As a
/// `u32` a cell it was 4 bytes a cell, 32 a rank: 2 MiB on the zipf row
/// (65,536 ranks), twice this Zen 4's 1 MiB L2 a core, so most tries
/// missed L2 and evicted the simulation's own lines from it. The ranks
/// along the cells never decrease and sixty cells span few ranks (at most
/// some fifty on the zipf row), so a byte a cell holds the offset from a
/// base stored in the same line: one line a try, as before, and 1.07 bytes
/// a cell (546 KiB on the zipf row). A line whose cells span more ranks
/// (steep exponents, whose tail ranks crowd into a few cells) marks the far
/// cells [`WIDE`]: those are never pure and take their entry from the full
/// guide, kept only for such tables.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct GuideLine {
    /// The rank index of the line's first cell.
    base: u32,
    /// Per cell: the rank index less `base`, with [`PURE8`]; or [`WIDE`].
    cells: [u8; LINE_CELLS],
}

/// The slack, in cells, by which a pure cell's bounds are widened on each
/// side before they are tested against its rank's: working out a cell from
/// `u` (a subtraction, a product and a truncation) is off by far less than
/// 2^-30 of a cell, so a `u` that lands in the cell lies inside the
/// widened bounds.
const PURE_SLACK: f64 = 1.0 / 16.0;

/// A table is built for a workload that draws at least this many samples
/// a rank: its building costs about as many instructions a rank (two
/// evaluations of `H`, some 360) as it saves on three samples.
pub const DRAWS_PER_RANK: u64 = 4;

/// What the table says of a try at `u`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    /// Rank `k`, accepted outright.
    Accept(u64),
    /// Rank `k`, below its sure acceptance: the second test decides.
    Test(u64),
    /// Too close to a bound to tell: the sampler's arithmetic decides.
    Unsure,
}

/// A [`Zipf`] sampler with its ranks' bounds in a table (see the module
/// documentation): same draws, same ranks, fewer instructions. The table is
/// built by [`ZipfTable::prepare`] (before the first batch), not when the workload is
/// parsed (a spec is also parsed just to count its references).
#[derive(Debug, Clone)]
pub struct ZipfTable {
    zipf: Zipf,
    /// Whether a table is to be built (see [`ZipfTable::new`]).
    wanted: bool,
    /// The low end of `u`'s range, where cell 0 starts (the tries' cells
    /// are worked out from their draws' bits, see [`ZipfBatch::cell_at`]).
    #[cfg(test)]
    lo: f64,
    /// Cells per unit of `u`.
    cells_per_u: f64,
    /// The margin, in units of `u`.
    margin: f64,
    /// Per rank `k` (at `k - 1`): `[H(k + 0.5), H(k - threshold)]` (see
    /// [`Zipf::rank_bounds`]). Empty until built, and when not wanted.
    bounds: Vec<[f64; 2]>,
    /// Per cell of `u`'s range, packed sixty to a line: the index of the
    /// first rank whose end is beyond the cell's start (a search from there
    /// finds `u`'s rank), marked when the whole cell is that rank's sure
    /// acceptance; and a line after the last, whose first cell is a copy of
    /// the last cell (see [`ZipfBatch::cell_at`]).
    lines: Vec<GuideLine>,
    /// The guide unpacked, a `u32` a cell (the rank indexes, unmarked, and
    /// the copy past the last cell): kept only when a cell is [`WIDE`].
    wide: Vec<u32>,
}

/// A [`ZipfTable`] ready to draw (see [`ZipfTable::batch`]): its fields
/// copied out, so that a loop of draws keeps them at hand instead of
/// reading them again through the table for every sample.
#[derive(Debug, Clone, Copy)]
pub struct ZipfBatch<'a> {
    zipf: Zipf,
    /// The cell of a `u` (for the tests' [`ZipfBatch::decision`]).
    #[cfg(test)]
    lo: f64,
    #[cfg(test)]
    cells_per_u: f64,
    margin: f64,
    #[cfg(test)]
    last_cell: i64,
    /// The guide's lines (0 without a table; the guide holds one more,
    /// see [`ZipfBatch::cell_at`]).
    line_count: u64,
    bounds: &'a [[f64; 2]],
    lines: &'a [GuideLine],
    wide: &'a [u32],
}

impl ZipfTable {
    /// The sampler `zipf`, to have a table when it has at most
    /// [`MAX_TABLE_RANKS`] ranks and `draws` (the samples the caller
    /// expects to take) is at least [`DRAWS_PER_RANK`] times the rank
    /// count; otherwise it samples with `zipf`'s arithmetic (the same ranks
    /// either way).
    #[must_use]
    pub fn new(zipf: Zipf, draws: u64) -> Self {
        let n = zipf.ranks();
        let (lo, hi) = zipf.u_range();
        let span = hi - lo;
        Self {
            zipf,
            wanted: n <= MAX_TABLE_RANKS
                && draws / DRAWS_PER_RANK >= n
                && span.is_finite()
                && span > 0.0,
            #[cfg(test)]
            lo,
            cells_per_u: 0.0,
            margin: MARGIN * lo.abs().max(hi.abs()).max(1.0),
            bounds: Vec::new(),
            lines: Vec::new(),
            wide: Vec::new(),
        }
    }

    /// Builds the table (once: on the first batch).
    #[cold]
    fn build(&mut self) {
        let n = self.zipf.ranks();
        let (lo, hi) = self.zipf.u_range();
        let span = hi - lo;
        self.bounds = (1..=n).map(|k| self.zipf.rank_bounds(k)).collect();
        // A whole number of lines.
        let cells = (n as usize * CELLS_PER_RANK).div_ceil(LINE_CELLS) * LINE_CELLS;
        self.cells_per_u = cells as f64 / span;
        let guide = self.guide(cells);
        self.pack(&guide);
    }

    /// The guide of `cells` cells (a whole number of lines) over the
    /// built bounds: per cell the index of the first rank whose end is
    /// beyond the cell's start, [`PURE`] marked when the whole cell is that
    /// rank's sure acceptance; and a copy of the last cell's entry after it.
    ///
    /// Bit for bit [`ZipfTable::guide_reference`] (the per-cell closure it
    /// replaced), with less work a cell: the cell's number as a float is
    /// counted up by ones (exact below 2^53, so the same value as
    /// `c as f64`, and every product and sum is the same expression, in
    /// the same order); the rank's bounds and the previous rank's end are
    /// kept in registers and reloaded only when the search moves on; the
    /// first and last cells (never pure) are taken out of the loop; and the
    /// three margin tests are evaluated together, without a branch each
    /// (none has a side effect, and each compares as before, so a bound
    /// that is not a number still leaves the cell unmarked).
    fn guide(&self, cells: usize) -> Vec<u32> {
        let bounds = &self.bounds;
        let Some(last) = bounds.len().checked_sub(1) else {
            return self.guide_without_bounds(cells);
        };
        let (lo, hi) = self.zipf.u_range();
        let width = (hi - lo) / cells as f64;
        let twice = 2.0 * self.margin;
        let mut guide = vec![0u32; cells + 1];
        // The search's state: rank `i`, its bounds, the previous rank's
        // end (minus infinity before the first rank).
        let mut i = 0usize;
        let [mut end, mut sure] = bounds[0];
        let mut start = f64::NEG_INFINITY;
        // Moves the search past the ranks that end at or before `at` (as
        // the reference's `while`: a bound that is not a number stops it).
        macro_rules! seek {
            ($at:expr) => {
                let at = $at;
                while i < last && end <= at {
                    start = end;
                    i += 1;
                    [end, sure] = bounds[i];
                }
            };
        }
        if cells > 0 {
            seek!(lo + 0.0 * width);
            guide[0] = i as u32;
        }
        if cells > 2 {
            let mut cf = 1.0f64;
            for g in &mut guide[1..cells - 1] {
                seek!(lo + cf * width);
                let from = lo + (cf - PURE_SLACK) * width;
                let to = lo + (cf + 1.0 + PURE_SLACK) * width;
                let pure = (from - start >= twice) & (from - sure >= twice) & (end - to >= twice);
                *g = i as u32 | (u32::from(pure) << 31);
                cf += 1.0;
            }
        }
        if cells > 1 {
            // (The rank alone: the last cell is never pure.)
            let at = lo + (cells - 1) as f64 * width;
            while i < last && end <= at {
                i += 1;
                end = bounds[i][0];
            }
            guide[cells - 1] = i as u32;
        }
        // The cell one past the last: where `ZipfBatch::cell_at` puts the
        // draw of bits 0 (`u = hi`), the last cell's entry again, so that a
        // try's cell needs no clamp.
        guide[cells] = if cells > 0 { guide[cells - 1] } else { 0 };
        guide
    }

    /// [`ZipfTable::guide`] with no rank at all: every cell's search stops
    /// at rank 0 at once, and the pure test would index a rank that is not
    /// there (the reference panics there, as this does).
    #[cold]
    fn guide_without_bounds(&self, cells: usize) -> Vec<u32> {
        assert!(cells <= 2, "a guide of {cells} cells over no rank");
        vec![0; cells + 1]
    }

    /// [`ZipfTable::guide`] as it was first written, one closure a cell
    /// (the reference the tests hold the building to). The guide of `cells` cells over the
    /// built bounds: per cell the index of the first rank whose end is
    /// beyond the cell's start, [`PURE`] marked when the whole cell is that
    /// rank's sure acceptance; and a copy of the last cell's entry after it.
    #[cfg(test)]
    fn guide_reference(&self, cells: usize) -> Vec<u32> {
        let (lo, hi) = self.zipf.u_range();
        let width = (hi - lo) / cells as f64;
        let bounds = &self.bounds;
        let margin = self.margin;
        let mut i = 0usize;
        // One pass: each cell's first rank, then whether the cell is pure.
        let mut guide: Vec<u32> = (0..cells)
            .map(|c| {
                // A rank ends after the cell's start when its end is beyond
                // it (a bound that is not a number stops the search; a wrong
                // start only makes the tries there unsure).
                let start = lo + c as f64 * width;
                while i + 1 < bounds.len() && bounds[i][0] <= start {
                    i += 1;
                }
                // The first and last cells also take the tries that fall
                // out of range: never pure.
                if c == 0 || c + 1 == cells {
                    return i as u32;
                }
                let from = lo + (c as f64 - PURE_SLACK) * width;
                let to = lo + (c as f64 + 1.0 + PURE_SLACK) * width;
                let start = if i == 0 {
                    f64::NEG_INFINITY
                } else {
                    bounds[i - 1][0]
                };
                let [end, sure] = bounds[i];
                // Twice the margins `decision` tests, so that its rounded
                // differences pass too. Written so that a bound that is not
                // a number leaves the cell unmarked.
                if from - start >= 2.0 * margin
                    && from - sure >= 2.0 * margin
                    && end - to >= 2.0 * margin
                {
                    i as u32 | PURE
                } else {
                    i as u32
                }
            })
            .collect();
        // The cell one past the last: where `ZipfBatch::cell_at` puts the
        // draw of bits 0 (`u = hi`), the last cell's entry again, so that a
        // try's cell needs no clamp.
        let last = guide.last().copied().unwrap_or(0);
        guide.push(last);
        guide
    }

    /// Packs the guide (`u32` entries, [`PURE`] marked, one past the last
    /// cell) into lines, and keeps it unpacked (unmarked) if a cell is too
    /// far above its line's base for a byte.
    fn pack(&mut self, guide: &[u32]) {
        let mut wide = false;
        self.lines = guide
            .chunks(LINE_CELLS)
            .map(|chunk| {
                let base = chunk[0] & !PURE;
                let mut cells = [0u8; LINE_CELLS];
                for (cell, &g) in cells.iter_mut().zip(chunk) {
                    let off = (g & !PURE) - base;
                    *cell = if off < u32::from(WIDE) {
                        // Below 127: fits the low seven bits.
                        let off = off as u8;
                        if g & PURE != 0 { off | PURE8 } else { off }
                    } else {
                        wide = true;
                        WIDE
                    };
                }
                GuideLine { base, cells }
            })
            .collect();
        self.wide = if wide {
            guide.iter().map(|g| g & !PURE).collect()
        } else {
            Vec::new()
        };
    }

    /// The guide's entry for cell `cell` as it was built (the rank index,
    /// [`PURE`] marked), from its packed line.
    #[cfg(test)]
    fn entry(&self, cell: usize) -> u32 {
        let line = &self.lines[cell / LINE_CELLS];
        let e = line.cells[cell % LINE_CELLS];
        if e == WIDE {
            self.wide[cell]
        } else if e & PURE8 != 0 {
            (line.base + u32::from(e & !PURE8)) | PURE
        } else {
            line.base + u32::from(e)
        }
    }

    /// Every cell's [`ZipfTable::entry`], and the one past the last cell.
    #[cfg(test)]
    fn entries(&self) -> Vec<u32> {
        (0..=self.cells()).map(|c| self.entry(c)).collect()
    }

    /// The guide's cells (without the one past the last).
    #[cfg(test)]
    fn cells(&self) -> usize {
        self.lines.len().saturating_sub(1) * LINE_CELLS
    }

    /// Whether the ranks come from a table (else from the sampler's
    /// arithmetic): after the first batch, when one was wanted.
    #[must_use]
    pub fn has_table(&self) -> bool {
        !self.bounds.is_empty()
    }

    /// Builds the table if one is wanted and not yet built: before the
    /// first batch.
    #[inline]
    pub fn prepare(&mut self) {
        if self.wanted && self.bounds.is_empty() {
            self.build();
        }
    }

    /// The sampler ready for a batch of draws (from the table once
    /// [`ZipfTable::prepare`] built it).
    #[inline]
    #[must_use]
    pub fn batch(&self) -> ZipfBatch<'_> {
        ZipfBatch {
            zipf: self.zipf,
            #[cfg(test)]
            lo: self.lo,
            #[cfg(test)]
            cells_per_u: self.cells_per_u,
            margin: self.margin,
            #[cfg(test)]
            last_cell: self.cells() as i64 - 1,
            line_count: self.lines.len().saturating_sub(1) as u64,
            bounds: &self.bounds,
            lines: &self.lines,
            wide: &self.wide,
        }
    }
}

impl ZipfBatch<'_> {
    /// Draws one rank in `1..=n`: the same rank, from the same random draws,
    /// as [`Zipf::sample`].
    #[inline(always)]
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        if self.bounds.is_empty() {
            return self.zipf.sample(rng);
        }
        loop {
            // The try's cell from its draw's bits: a pure cell answers
            // without `u`.
            let bits = rng.next_bits53();
            let (at, within) = self.cell_at(bits);
            let line = &self.lines[at];
            let e = line.cells[within];
            if e & PURE8 != 0 {
                return u64::from(line.base + u32::from(e & !PURE8)) + 1;
            }
            let g = if e == WIDE {
                self.wide[at * LINE_CELLS + within]
            } else {
                line.base + u32::from(e)
            };
            let u = self.zipf.draw_at(bits);
            let k = match self.search(u, g) {
                Decision::Accept(k) => Some(k),
                // The rank's end, `H(k + 0.5)`, is the first half of the
                // second test: taken from the table, not worked out again.
                Decision::Test(k) => self
                    .zipf
                    .accepts_at_end(k, u, self.bounds[k as usize - 1][0])
                    .then_some(k),
                Decision::Unsure => self.zipf.decide(u),
            };
            if let Some(k) = k {
                return k;
            }
        }
    }

    /// The guide cell of a try whose draw's 53 bits are `bits` (a table
    /// must have been built): the cell that holds its `u` in exact
    /// arithmetic. [`Zipf::draw_at`] makes `u = hi - f * (hi - lo)` of
    /// `f = bits / 2^53`, so `u` lies `(1 - f) * cells` cells above `lo`:
    /// `(2^53 - bits) * cells / 2^53`, worked out in integers (exactly,
    /// rounded down). `bits` 0, `u = hi`, gives `cells`, one past the last
    /// cell: the guide's entry there is the last cell's (which is never
    /// pure), so that try is answered as the clamped cell of `u` was,
    /// without a clamp (two instructions and a register a try). The rounded
    /// `u` lies within a few units in the last place of `max(|lo|, |hi|)`
    /// of that exact value, some 2^-22 of the margin by which every pure
    /// cell's bounds clear its rank's (see `ZipfTable::build`): a pure
    /// cell's answer holds for the rounded `u`. For any other cell the
    /// search below tests `u` itself, and a wrong start only makes a try
    /// unsure. No conversion of a float to an integer (with its range and
    /// not-a-number tests), no clamp of a signed cell, and no `u` at all in
    /// a pure cell.
    ///
    /// The cell is given as its line and its place in the line: with
    /// `cells = 60 * lines`, `floor(above * 60 * lines / 2^53)` is `60 *
    /// floor(x / 2^53) + floor(60 * (x mod 2^53) / 2^53)` of `x = above *
    /// lines`, so the line is the product's high part and the place the
    /// low part's sixtieths, with no division.
    #[inline(always)]
    fn cell_at(&self, bits: u64) -> (usize, usize) {
        const LOW: u64 = (1 << 53) - 1;
        let above = (1u64 << 53) - bits;
        let x = u128::from(above) * u128::from(self.line_count);
        let within = ((x as u64 & LOW) * LINE_CELLS as u64) >> 53;
        ((x >> 53) as usize, within as usize)
    }

    /// [`ZipfBatch::cell_at`]'s cell counted from the guide's first.
    #[cfg(test)]
    fn flat_cell(&self, bits: u64) -> usize {
        let (line, within) = self.cell_at(bits);
        line * LINE_CELLS + within
    }

    /// The table's answer for a try at `u` (a table must have been built),
    /// its cell worked out from `u`.
    #[cfg(test)]
    fn decision(&self, u: f64) -> Decision {
        // A cell out of range, or not a number, saturates into the table;
        // a wrong cell only makes the try unsure below.
        let cell = (((u - self.lo) * self.cells_per_u) as i64).clamp(0, self.last_cell) as usize;
        let line = &self.lines[cell / LINE_CELLS];
        let e = line.cells[cell % LINE_CELLS];
        if e & PURE8 != 0 {
            return Decision::Accept(u64::from(line.base + u32::from(e & !PURE8)) + 1);
        }
        let g = if e == WIDE {
            self.wide[cell]
        } else {
            line.base + u32::from(e)
        };
        self.search(u, g)
    }

    /// The table's answer for a try at `u` in a cell that is not pure,
    /// whose guide entry is `g`: the search from the rank `g` names.
    #[inline(always)]
    fn search(&self, u: f64, g: u32) -> Decision {
        let bounds = self.bounds;
        let mut i = g as usize;
        // The last rank's end is infinite: the search stops there.
        while i + 1 < bounds.len() && u >= bounds[i][0] {
            i += 1;
        }
        let [end, sure] = bounds[i];
        let start = if i == 0 {
            f64::NEG_INFINITY
        } else {
            bounds[i - 1][0]
        };
        let m = self.margin;
        // Written so that a bound that is not a number fails the test.
        if u - start >= m && end - u >= m {
            let k = i as u64 + 1;
            if u - sure >= m {
                return Decision::Accept(k);
            }
            if sure - u >= m {
                return Decision::Test(k);
            }
        }
        Decision::Unsure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configurations the tests sweep: rank counts from 1 to a few
    /// hundred thousand, exponents from uniform to steep.
    fn configs() -> Vec<(u64, f64)> {
        let mut v = Vec::new();
        for n in [1u64, 2, 3, 7, 100, 1000, 20000, 65536, 200_000] {
            for s in [
                0.0, 0.1, 0.5, 0.8, 0.9, 0.99, 1.0, 1.01, 1.3, 2.0, 3.5, 12.0,
            ] {
                v.push((n, s));
            }
        }
        v
    }

    #[test]
    fn same_ranks_as_the_sampler_over_many_seeds_and_configurations() {
        for (n, s) in configs() {
            let zipf = Zipf::new(n, s).expect("valid");
            let mut table = ZipfTable::new(zipf, u64::MAX);
            table.prepare();
            let table = table.batch();
            assert!(!table.bounds.is_empty(), "n={n} s={s}");
            let draws = 4_000;
            for seed in [1u64, 2, 77, 0xdead_beef] {
                let (mut a, mut b) = (Rng::new(seed), Rng::new(seed));
                for j in 0..draws {
                    let (x, y) = (zipf.sample(&mut a), table.sample(&mut b));
                    assert_eq!(x, y, "n={n} s={s} seed={seed} draw {j}");
                }
                assert_eq!(a, b, "n={n} s={s} seed={seed}: the draws differ");
            }
        }
    }

    /// Every answer the table gives agrees with the sampler's arithmetic,
    /// at random points and at points a few units in the last place from
    /// every bound (where a margin too small would show), and it leaves
    /// few tries to the arithmetic.
    #[test]
    fn the_table_agrees_with_the_arithmetic_and_decides_most_tries() {
        for (n, s) in configs() {
            let zipf = Zipf::new(n, s).expect("valid");
            let mut table = ZipfTable::new(zipf, u64::MAX);
            table.prepare();
            let table = table.batch();
            let check = |u: f64| {
                let d = table.decision(u);
                match d {
                    Decision::Accept(k) => {
                        assert_eq!(zipf.decide(u), Some(k), "n={n} s={s} u={u:e}");
                    }
                    Decision::Test(k) => {
                        let want = zipf.accepts_at(k, u).then_some(k);
                        assert_eq!(zipf.decide(u), want, "n={n} s={s} u={u:e}");
                    }
                    Decision::Unsure => {}
                }
                d == Decision::Unsure
            };
            let mut rng = Rng::new(n ^ s.to_bits());
            let tries = 20_000;
            let unsure = (0..tries).filter(|_| check(zipf.draw(&mut rng))).count();
            // Steep exponents crowd the far ranks' bounds within the
            // margin; those ranks are rarely drawn.
            assert!(unsure * 100 <= tries, "n={n} s={s}: {unsure} unsure");
            let (lo, hi) = zipf.u_range();
            let step = (n / 500).max(1);
            for k in (1..=n).step_by(step as usize) {
                for b in zipf.rank_bounds(k) {
                    if !b.is_finite() {
                        continue;
                    }
                    for d in 0..80u64 {
                        let u = f64::from_bits(b.to_bits().wrapping_sub(40).wrapping_add(d));
                        if (lo..=hi).contains(&u) {
                            check(u);
                        }
                    }
                }
            }
        }
    }

    /// A try in a pure cell is its rank accepted outright, by the sampler's
    /// own arithmetic too: at each pure cell's edges (the `u` a few units
    /// in the last place either side of where the cell starts and ends),
    /// its middle and random points in it. And pure cells take most tries
    /// on the zipf row's configuration, so that the fast answer is the one
    /// usually taken (the two tests above check it at random points too).
    #[test]
    fn pure_cells_are_their_rank_accepted() {
        for (n, s) in configs() {
            let zipf = Zipf::new(n, s).expect("valid");
            let mut table = ZipfTable::new(zipf, u64::MAX);
            table.prepare();
            let batch = table.batch();
            let width = 1.0 / table.cells_per_u;
            let mut rng = Rng::new(n.wrapping_mul(31) ^ s.to_bits());
            let mut pure = 0usize;
            let guide = table.entries();
            for (c, &g) in guide.iter().enumerate() {
                if g & PURE == 0 {
                    continue;
                }
                pure += 1;
                let k = u64::from(g & !PURE) + 1;
                let at = |f: f64| table.lo + (c as f64 + f) * width;
                let mut points = vec![at(0.5)];
                for edge in [at(0.0), at(1.0)] {
                    // (Wrapping: an edge at 0.0 has the bits 0; the
                    // points that are then not numbers land in no cell.)
                    points.extend(
                        (0..16u64).map(|d| {
                            f64::from_bits(edge.to_bits().wrapping_sub(8).wrapping_add(d))
                        }),
                    );
                }
                points.extend((0..4).map(|_| at(rng.next_f64())));
                for u in points {
                    let cell = ((u - table.lo) * table.cells_per_u) as i64;
                    if cell != c as i64 {
                        continue;
                    }
                    assert_eq!(
                        batch.decision(u),
                        Decision::Accept(k),
                        "n={n} s={s} u={u:e}"
                    );
                    assert_eq!(zipf.decide(u), Some(k), "n={n} s={s} u={u:e} cell {c}");
                }
            }
            if n == 65536 && s == 0.9 {
                let mut rng = Rng::new(5);
                let tries = 100_000;
                let fast = (0..tries)
                    .filter(|_| {
                        let u = zipf.draw(&mut rng);
                        let cell = (((u - table.lo) * table.cells_per_u) as i64)
                            .clamp(0, batch.last_cell) as usize;
                        guide[cell] & PURE != 0
                    })
                    .count();
                assert!(fast * 2 >= tries, "{fast} of {tries} tries in pure cells");
                assert!(pure > 0);
            }
        }
    }

    /// The sampler's path: a try's cell from its draw's bits
    /// (`cell_at`). At both ends of every pure cell's run of bits (the
    /// first and last eight values of the 53 bits that `cell_at` puts in
    /// it, worked out exactly) and at its middle, the cell is that one and
    /// the sampler's own arithmetic takes the try as the cell's rank,
    /// accepted outright: the answer `sample` gives without `u`.
    #[test]
    fn pure_cells_by_bits_are_their_rank_accepted() {
        const ONE: u128 = 1 << 53;
        for (n, s) in configs() {
            let zipf = Zipf::new(n, s).expect("valid");
            let mut table = ZipfTable::new(zipf, u64::MAX);
            table.prepare();
            let batch = table.batch();
            // (The guide's last entry is the copy past the last cell.)
            let guide = table.entries();
            let cells = guide.len() as u128 - 1;
            for (c, &g) in guide.iter().enumerate() {
                if g & PURE == 0 {
                    continue;
                }
                let k = u64::from(g & !PURE) + 1;
                // The cell holds the bits whose `2^53 - bits` is in
                // `[ceil(c * 2^53 / cells), ceil((c + 1) * 2^53 / cells))`.
                let c = c as u128;
                let first = (c * ONE).div_ceil(cells);
                let end = ((c + 1) * ONE).div_ceil(cells);
                let mut above: Vec<u128> = (first..(first + 8).min(end)).collect();
                above.extend(end.saturating_sub(8).max(first)..end);
                above.push(first + (end - first) / 2);
                for a in above {
                    let bits = (ONE - a) as u64;
                    assert_eq!(batch.flat_cell(bits), c as usize, "n={n} s={s} bits={bits}");
                    let u = zipf.draw_at(bits);
                    assert_eq!(zipf.decide(u), Some(k), "n={n} s={s} bits={bits} cell {c}");
                }
            }
        }
    }

    /// The building's guide is the reference's, entry for entry, for every
    /// configuration at the building's cell count and at small and odd ones
    /// (none, one, two and three cells: the first and last cells taken out
    /// of the loop; fewer cells than ranks; more).
    #[test]
    fn the_guide_is_the_reference_guide() {
        for (n, s) in configs() {
            let zipf = Zipf::new(n, s).expect("valid");
            let mut table = ZipfTable::new(zipf, u64::MAX);
            table.prepare();
            if !table.has_table() {
                continue;
            }
            let built = table.cells();
            for cells in [0, 1, 2, 3, 4, 60, n as usize, 3 * n as usize + 7, built] {
                assert_eq!(
                    table.guide(cells),
                    table.guide_reference(cells),
                    "n={n} s={s} cells={cells}"
                );
            }
        }
    }

    /// The same over random bounds the sampler never gives: ends in and
    /// out of `u`'s range, unsorted, repeated, infinite and not a number,
    /// random sure starts, margins from none to large, 1 to 400 ranks and
    /// 0 to 500 cells.
    #[test]
    fn the_guide_is_the_reference_guide_over_any_bounds() {
        let mut rng = Rng::new(0x5eed_f1c5);
        let zipf = Zipf::new(1000, 0.9).expect("valid");
        let (lo, hi) = zipf.u_range();
        let span = hi - lo;
        let odd = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, lo, hi, 0.0];
        for round in 0..3000 {
            let mut table = ZipfTable::new(zipf, u64::MAX);
            let ranks = 1 + rng.below(400) as usize;
            let mut at = lo - span * 0.1;
            table.bounds = (0..ranks)
                .map(|_| {
                    let mut draw = |rng: &mut Rng| match rng.below(20) {
                        0 => odd[rng.below(odd.len() as u64) as usize],
                        1 => lo - span * rng.next_f64(),
                        2 => at,
                        _ => {
                            at += span * rng.next_f64() * 2.0 / ranks as f64;
                            at
                        }
                    };
                    let end = draw(&mut rng);
                    let sure = if rng.below(2) == 0 {
                        end - span * rng.next_f64() / ranks as f64
                    } else {
                        draw(&mut rng)
                    };
                    [end, sure]
                })
                .collect();
            table.margin = match rng.below(4) {
                0 => 0.0,
                1 => span * rng.next_f64() * 0.3,
                _ => MARGIN * span * rng.next_f64(),
            };
            let cells = rng.below(501) as usize;
            assert_eq!(
                table.guide(cells),
                table.guide_reference(cells),
                "round {round}: {ranks} ranks, {cells} cells"
            );
        }
    }

    /// The packed lines hold the guide as built: every cell's rank index,
    /// and its pure mark, except in a cell too far above its line's base
    /// for a byte ([`WIDE`]: its rank from the wide guide, never pure). The
    /// zipf row's configuration needs no wide guide; steep exponents do
    /// (their tail ranks crowd into a few cells), so both paths are swept.
    #[test]
    fn packed_lines_hold_the_guide() {
        let mut wide_tables = 0;
        for (n, s) in configs() {
            let zipf = Zipf::new(n, s).expect("valid");
            let mut table = ZipfTable::new(zipf, u64::MAX);
            table.prepare();
            let guide = table.guide(table.cells());
            assert_eq!(table.lines.len(), guide.len().div_ceil(LINE_CELLS));
            for (c, (&g, e)) in guide.iter().zip(table.entries()).enumerate() {
                let line = &table.lines[c / LINE_CELLS];
                if line.cells[c % LINE_CELLS] == WIDE {
                    assert!((g & !PURE) - line.base >= u32::from(WIDE));
                    assert_eq!(e, g & !PURE, "n={n} s={s} cell {c}");
                } else {
                    assert_eq!(e, g, "n={n} s={s} cell {c}");
                }
            }
            if table.wide.is_empty() {
                assert!(table.lines.iter().all(|l| !l.cells.contains(&WIDE)));
            } else {
                wide_tables += 1;
            }
            if n == 65536 && s == 0.9 {
                assert!(table.wide.is_empty(), "the zipf row's guide is all packed");
            }
        }
        assert!(wide_tables > 0, "no configuration took the wide guide");
    }

    /// Packing keeps every entry at the edges of a byte's reach: guides
    /// whose second line's largest offset from its base is 125 to 129 (and
    /// one far beyond), pure and not, with and without a wide guide.
    #[test]
    fn packing_keeps_offsets_at_the_edge_of_a_byte() {
        let zipf = Zipf::new(1000, 0.9).expect("valid");
        for top in [125u32, 126, 127, 128, 129, 5000] {
            for mark in [0, PURE] {
                // Line 0 all rank 0; line 1 from rank 10 up to 10 + `top`
                // in its last cells (marked or not); the copy past the end.
                let mut guide = vec![0u32; LINE_CELLS];
                guide.extend((0..LINE_CELLS as u32).map(|c| match c {
                    0 => 10,
                    c if c + 3 >= LINE_CELLS as u32 => (10 + top - (59 - c)) | mark,
                    c => (10 + c) | mark,
                }));
                guide.push(guide[guide.len() - 1] & !PURE);
                let mut table = ZipfTable::new(zipf, u64::MAX);
                table.pack(&guide);
                for (c, &g) in guide.iter().enumerate() {
                    let e = table.entry(c);
                    let off = (g & !PURE) - table.lines[c / LINE_CELLS].base;
                    if off >= u32::from(WIDE) {
                        assert_eq!(e, g & !PURE, "top {top} cell {c}: wide, unmarked");
                    } else {
                        assert_eq!(e, g, "top {top} cell {c}");
                    }
                }
                assert_eq!(table.wide.is_empty(), top < u32::from(WIDE), "top {top}");
            }
        }
    }

    /// The draw of bits 0 (`u = hi`) lands one past the last cell, whose
    /// guide entry is the last cell's: the answer of the clamped cell.
    #[test]
    fn the_draw_past_the_last_cell_is_the_last_cells() {
        for (n, s) in configs() {
            let zipf = Zipf::new(n, s).expect("valid");
            let mut table = ZipfTable::new(zipf, u64::MAX);
            table.prepare();
            let batch = table.batch();
            let guide = table.entries();
            let cells = guide.len() - 1;
            assert_eq!(batch.flat_cell(0), cells, "n={n} s={s}");
            assert_eq!(batch.flat_cell(1), cells - 1, "n={n} s={s}");
            assert_eq!(guide[cells], guide[cells - 1], "n={n} s={s}");
            assert_eq!(guide[cells] & PURE, 0, "n={n} s={s}");
        }
    }

    #[test]
    fn no_table_when_too_large_or_too_few_draws() {
        let built = |n: u64, draws: u64| {
            let zipf = Zipf::new(n, 0.9).expect("valid");
            let mut t = ZipfTable::new(zipf, draws);
            assert!(!t.has_table(), "built before the first batch");
            t.prepare();
            t.has_table()
        };
        assert!(!built(MAX_TABLE_RANKS + 1, u64::MAX));
        assert!(!built(1000, 3999));
        assert!(built(1000, 4000));
        // Without a table, the sampler's ranks.
        let zipf = Zipf::new(1000, 0.9).expect("valid");
        let mut table = ZipfTable::new(zipf, 10);
        table.prepare();
        let table = table.batch();
        let (mut a, mut b) = (Rng::new(9), Rng::new(9));
        for _ in 0..1000 {
            assert_eq!(zipf.sample(&mut a), table.sample(&mut b));
        }
    }
}
