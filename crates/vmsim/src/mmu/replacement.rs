//! Which way of a set a TLB (or walk cache) evicts: [`Replacement`] names the
//! policy in configs; [`Victims`] keeps the per-set state it needs.
//!
//! Three policies, as hardware implements them:
//! - true LRU: every way carries an age stamp from a per-array clock; the
//!   victim is the oldest. Exact, and the reference the others approximate.
//!   Sets of many ways (fully associative TLBs) keep the same order as a
//!   recency list, so a touch and a victim cost O(1) instead of a scan;
//!   until their first victim or forget they keep stamps (a touch is one
//!   store), and build the lists then.
//! - tree pseudo-LRU: one bit per internal node of a binary tree over the
//!   ways, pointing at the half to evict next; a touch points every node on
//!   its path away from it. A way count that is not a power of two is padded
//!   to the next one, and the victim search never descends into a subtree
//!   made only of padding, so only real ways are ever chosen.
//! - random: a private xorshift64* generator seeded from the config (see
//!   [`XorShift64Star`]), so runs are reproducible.
//!
//! Empty ways are always filled before any policy is consulted; that choice
//! belongs to the array, not to this module. This module owns no entries.

use serde::{Deserialize, Serialize};

/// A replacement policy, as written in a config (`"lru"`, `"tree-plru"`, `"random"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Replacement {
    /// Evict the least recently used way.
    #[default]
    Lru,
    /// Evict the way a binary tree of "evict this half next" bits points to.
    TreePlru,
    /// Evict a way chosen by a seeded pseudo-random generator.
    Random,
}

impl Replacement {
    /// The config spelling of the policy.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Lru => "lru",
            Self::TreePlru => "tree-plru",
            Self::Random => "random",
        }
    }
}

/// Marsaglia's xorshift64 followed by Vigna's multiplication (xorshift64*):
/// a ten-line generator, good enough to pick eviction victims, chosen so the
/// TLB needs no dependency. The seed goes through splitmix64 first so that
/// nearby seeds (0, 1, 2, ...) give unrelated streams and zero is allowed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct XorShift64Star(u64);

impl XorShift64Star {
    /// A generator whose stream is fixed by `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Self(z | 1) // the all-zero state is the one fixed point
    }

    /// The next 64 pseudo-random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (n > 0), by multiply-shift of the high bits.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// Tree-PLRU sets of at most this many ways find their victim in a table
/// indexed by the set's node bits (at most 15 of them: 32 KiB for 16 ways)
/// instead of walking the tree: the walk's branches depend on the bits, so
/// they mispredict, and a TLB-miss-heavy workload evicts on every fill.
const PLRU_TABLE_MAX_WAYS: usize = 16;

/// The entries of a [`PlruTable`]'s victim table: one per value of the
/// node bits of a set of [`PLRU_TABLE_MAX_WAYS`] ways (15 nodes).
const PLRU_TABLE_LEN: usize = 1 << (PLRU_TABLE_MAX_WAYS - 1);

/// What an eviction from a tree-PLRU set of one way count (1 to
/// [`PLRU_TABLE_MAX_WAYS`]) reads: the victim for every value of the set's
/// node bits, and the touch of each way. Fixed-size arrays indexed through
/// masks (no bounds checks: a miss-heavy run evicts on most fills, and the
/// four checks of the slices cost each about a third of its 35
/// instructions).
struct PlruTable {
    /// Entry `b` is the way the walk from the root picks when node `n`
    /// (1-based heap order) is bit `n - 1` of `b`; entries past the way
    /// count's `2^(padded - 1)` are never read.
    victim: [u8; PLRU_TABLE_LEN],
    /// The node bits of a set word, shifted down by one (`(word >> 1) &
    /// node_mask` indexes `victim`).
    node_mask: u64,
    /// Per way: [`Victims::path_mask`] and [`Victims::path_bits`] of the way
    /// count (the same values: a restored `Victims` must equal a fresh one).
    path_mask: [u64; PLRU_TABLE_MAX_WAYS],
    path_bits: [u64; PLRU_TABLE_MAX_WAYS],
    /// Per way: `!path_mask`, the bits a touch keeps (a touch is then an
    /// `and` and an `or` from the table, without the `not` of the mask).
    path_keep: [u64; PLRU_TABLE_MAX_WAYS],
    /// Per way: [`Victims::plru_plan`]'s mask and bits (the paths of at
    /// most 16 leaves, whose nodes are bits 1 to 15: they fit a `u32`).
    plans: [(u32, u32); PLRU_TABLE_MAX_WAYS],
}

impl std::fmt::Debug for PlruTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // (Not the 32 KiB of victims: a function of the way count.)
        f.debug_struct("PlruTable")
            .field("node_mask", &self.node_mask)
            .finish_non_exhaustive()
    }
}

impl PlruTable {
    /// The way to evict from a set whose word is `word`, and the word after
    /// that way's touch.
    #[inline(always)]
    fn evict(&self, word: u64) -> (usize, u64) {
        let nodes = ((word >> 1) & self.node_mask) as usize;
        let way = usize::from(self.victim[nodes & (PLRU_TABLE_LEN - 1)]);
        let w = way & (PLRU_TABLE_MAX_WAYS - 1);
        (way, (word & self.path_keep[w]) | self.path_bits[w])
    }

    /// The victim of a set whose word is `word` (no touch).
    #[inline(always)]
    fn victim(&self, word: u64) -> usize {
        let nodes = ((word >> 1) & self.node_mask) as usize;
        usize::from(self.victim[nodes & (PLRU_TABLE_LEN - 1)])
    }
}

/// The [`PlruTable`] of sets of `ways` (1 to [`PLRU_TABLE_MAX_WAYS`]),
/// built once per way count by the same walk as
/// [`Victims::plru_victim_scan`] and the same paths as [`Victims::build`],
/// so it makes the same choices.
fn plru_table(ways: usize) -> &'static PlruTable {
    static TABLES: [std::sync::OnceLock<Box<PlruTable>>; PLRU_TABLE_MAX_WAYS + 1] =
        [const { std::sync::OnceLock::new() }; PLRU_TABLE_MAX_WAYS + 1];
    TABLES[ways].get_or_init(|| {
        let padded = ways.next_power_of_two();
        let mut table = Box::new(PlruTable {
            victim: [0; PLRU_TABLE_LEN],
            node_mask: (1u64 << (padded - 1)) - 1,
            path_mask: [0; PLRU_TABLE_MAX_WAYS],
            path_bits: [0; PLRU_TABLE_MAX_WAYS],
            path_keep: [!0; PLRU_TABLE_MAX_WAYS],
            plans: [(0, 0); PLRU_TABLE_MAX_WAYS],
        });
        for (nodes, victim) in table.victim[..1 << (padded - 1)].iter_mut().enumerate() {
            let bits = (nodes as u64) << 1;
            let (mut node, mut low, mut half) = (1, 0, padded / 2);
            while half > 0 {
                let right = bits >> node & 1 == 1 && low + half < ways;
                if right {
                    low += half;
                }
                node = 2 * node + usize::from(right);
                half /= 2;
            }
            *victim = low as u8;
        }
        for way in 0..ways {
            let (mask, bits) = plru_path(padded, way);
            table.path_mask[way] = mask;
            table.path_bits[way] = bits;
            table.path_keep[way] = !mask;
            table.plans[way] = (
                u32::try_from(mask).expect("16 leaves: 15 nodes"),
                u32::try_from(bits).expect("16 leaves: 15 nodes"),
            );
        }
        table
    })
}

/// The nodes of a tree-PLRU set of `ways` (padded to a power of two of at
/// most 64 leaves) whose bit the victim search obeys: those whose right
/// half holds a real way. The search from the root never goes right at
/// any other node (that half is all padding), whatever its bit says (a
/// touch of a way in its left half does set it), so clearing those bits
/// first lets the search follow the bits alone ([`plru_walk`]).
const fn plru_obeyed_nodes(ways: usize) -> u64 {
    let padded = ways.next_power_of_two();
    let mut mask = 0u64;
    let mut node = 1;
    while node < padded {
        // Node `node` is at depth `d` (2^d <= node < 2^(d+1)); its subtree
        // starts at leaf `(node - 2^d) * (padded >> d)` and its right
        // half `padded >> (d + 1)` leaves further on.
        let d = usize::BITS - 1 - node.leading_zeros();
        let low = (node - (1 << d)) * (padded >> d);
        if low + (padded >> (d + 1)) < ways {
            mask |= 1 << node;
        }
        node += 1;
    }
    mask
}

/// The first three steps of the victim search in a full tree of 16
/// leaves, for every value of its nodes 1 to 7 (bit `n - 1` of the index
/// is node `n`'s): the pair of leaves (0 to 7) the search reaches. 128
/// bytes, two cache lines: [`plru_walk`]'s table, where the victim table
/// of 9 to 16 ways spans 8 to 32 KiB.
const PLRU_PAIRS: [u8; 128] = {
    let mut pairs = [0u8; 128];
    let mut nodes = 0;
    while nodes < 128 {
        let mut node = 1;
        while node < 8 {
            node = 2 * node + ((nodes >> (node - 1)) & 1);
        }
        pairs[nodes] = (node - 8) as u8;
        nodes += 1;
    }
    pairs
};

/// The tree-PLRU victim of a set of `W` ways (9 to 16: a tree of 16
/// leaves) whose word is `word`: the search from the root, each node's
/// bit the step (left 0, right 1) once [`plru_obeyed_nodes`] has cleared
/// the bits the search passes over; its first three steps read from
/// [`PLRU_PAIRS`] (always in cache), the last from the pair's node. (All
/// four steps as shifts and adds cost about 20 instructions an
/// eviction, twice the table's.)
#[inline(always)]
fn plru_walk<const W: usize>(word: u64) -> usize {
    debug_assert!(W > 8 && W <= 16, "a tree of 16 leaves");
    let bits = word & const { plru_obeyed_nodes(W) };
    // (The pairs' nodes, 8 to 15, shifted down before the table is read:
    // off the load's chain, and no `8 +` on the pair after it.)
    // (Of an even way count, the pair's node is always obeyed: a pair the
    // search reaches has a real left leaf, so a real right one. Its bit
    // then read from the word, without the mask.)
    let last = if W.is_multiple_of(2) {
        word >> 8
    } else {
        bits >> 8
    };
    let pair = usize::from(PLRU_PAIRS[(bits >> 1) as usize & 127]);
    2 * pair + ((last >> pair) & 1) as usize
}

/// The node bits on the path to `way` in a tree of `padded` leaves (a
/// one-word tree: at most 64), and the values a touch of `way` writes
/// there (each node pointed at the other half).
const fn plru_path(padded: usize, way: usize) -> (u64, u64) {
    let (mut mask, mut bits) = (0u64, 0u64);
    let (mut node, mut half) = (1, padded / 2);
    while half > 0 {
        let went_right = way & half != 0;
        mask |= 1 << node;
        bits |= ((!went_right) as u64) << node;
        node = 2 * node + went_right as usize;
        half /= 2;
    }
    (mask, bits)
}

/// The tree-PLRU constants of a set of `W` ways (1 to
/// [`PLRU_TABLE_MAX_WAYS`]; a tree of `W.next_power_of_two()` leaves), the
/// same values as [`plru_table`]'s: per way (the arrays padded to 16,
/// indexed through `& 15`), the bits a touch keeps and those it writes;
/// and for a tree of at most 8 leaves the victim of every value of its
/// nodes with the victim's path. In the
/// binary, not behind [`Victims::table`]'s `Option`:
/// [`Victims::evict_plru`] reads them with no test of a fetched table.
struct PlruConst<const W: usize>;

impl<const W: usize> PlruConst<W> {
    /// Per way, the bits a touch keeps and those it writes, side by side
    /// (one address for both).
    const TOUCH: [[u64; 2]; PLRU_TABLE_MAX_WAYS] = Self::touches();
    const fn touches() -> [[u64; 2]; PLRU_TABLE_MAX_WAYS] {
        let (_, keep, bits) = Self::paths();
        let mut touch = [[!0, 0]; PLRU_TABLE_MAX_WAYS];
        let mut way = 0;
        while way < PLRU_TABLE_MAX_WAYS {
            touch[way] = [keep[way], bits[way]];
            way += 1;
        }
        touch
    }

    /// For a tree of at most 8 leaves, per value of its nodes (bit `n - 1`
    /// of the index is node `n`'s): the victim in the low byte, its path's mask above it
    /// (one table read for both: one address fewer in a register).
    const FLIP: [u32; 128] = Self::flips();

    /// For an even way count of 10 to 16 (a tree of 16 leaves), per value
    /// of nodes 1 to 7 (bit `n - 1` of the index is node `n`'s; the
    /// pairs' nodes 8 to 15 taken as 0): the pair of leaves the victim
    /// search reaches ([`PLRU_PAIRS`] of the obeyed nodes, as
    /// [`plru_walk`]) in the low byte, and above it the node bits the
    /// touch of the victim flips (`word ^ touched`). The touch writes the
    /// victim's path: its obeyed nodes each pointed at the other half
    /// (the search followed them: a flip), an unobeyed one (the right
    /// half all padding: the search went left whatever it said) set to
    /// the right (a flip only if it pointed left, which the index says),
    /// and the pair's node, which the search followed too (of an even way
    /// count a pair the search reaches has two real leaves): a flip
    /// whichever leaf is the victim, so the mask is the pair's, not the
    /// leaf's, and is in the table. With at most 12 ways node 7 (leaves
    /// 12 to 15, all padding) is on no way's path and never obeyed: the
    /// index is nodes 1 to 6 (64 entries, four lines). One table read for
    /// the victim and its touch, where [`plru_walk`] and [`Self::TOUCH`]
    /// read three, and the set's new word waits on the one read alone.
    const PAIR_FLIP: [u32; 128] = Self::pair_flips();

    /// The index mask of [`Self::PAIR_FLIP`]: nodes 1 to 6, or 1 to 7
    /// past 12 ways.
    const PAIR_FLIP_INDEX: usize = if W > 12 { 127 } else { 63 };

    const fn pair_flips() -> [u32; 128] {
        let mut flip = [0u32; 128];
        if W <= 8 || !W.is_multiple_of(2) {
            return flip;
        }
        let (_, keep, bits) = Self::paths();
        let obeyed = plru_obeyed_nodes(W);
        let mut nodes = 0;
        while nodes < 128 {
            let word = (nodes as u64) << 1;
            let pair = PLRU_PAIRS[((word & obeyed) >> 1) as usize & 127] as usize;
            // (The pair's node 0: its left leaf is the victim. The right
            // one's touch flips the same bits.)
            let way = 2 * pair;
            assert!(way + 1 < W);
            let mask = word ^ ((word & keep[way]) | bits[way]);
            assert!(mask < 1 << 16 && mask & 1 << (8 + pair) != 0);
            flip[nodes] = (mask as u32) << 8 | pair as u32;
            nodes += 1;
        }
        flip
    }

    const fn paths() -> (
        [u64; PLRU_TABLE_MAX_WAYS],
        [u64; PLRU_TABLE_MAX_WAYS],
        [u64; PLRU_TABLE_MAX_WAYS],
    ) {
        assert!(W >= 1 && W <= PLRU_TABLE_MAX_WAYS);
        let padded = W.next_power_of_two();
        let (mut mask, mut keep, mut bits) = (
            [0; PLRU_TABLE_MAX_WAYS],
            [!0; PLRU_TABLE_MAX_WAYS],
            [0; PLRU_TABLE_MAX_WAYS],
        );
        let mut way = 0;
        while way < W {
            let (m, b) = plru_path(padded, way);
            mask[way] = m;
            keep[way] = !m;
            bits[way] = b;
            way += 1;
        }
        (mask, keep, bits)
    }

    const fn flips() -> [u32; 128] {
        let mut flip = [0u32; 128];
        let (victim, mask) = (Self::victims(), Self::paths().0);
        let mut nodes = 0;
        while nodes < 128 {
            let way = victim[nodes] as usize;
            assert!(mask[way] < 1 << 24);
            flip[nodes] = (mask[way] as u32) << 8 | way as u32;
            nodes += 1;
        }
        flip
    }

    /// The walk of [`plru_table`] from the root, for trees of at most 8
    /// leaves (entries past `2^(padded - 1)` are never read; none are
    /// for more leaves).
    const fn victims() -> [u8; 128] {
        let mut victim = [0u8; 128];
        let padded = W.next_power_of_two();
        if padded > 8 {
            return victim;
        }
        let mut nodes = 0;
        while nodes < 1 << (padded - 1) {
            let bits = (nodes as u64) << 1;
            let (mut node, mut low, mut half) = (1, 0, padded / 2);
            while half > 0 {
                let right = bits >> node & 1 == 1 && low + half < W;
                if right {
                    low += half;
                }
                node = 2 * node + right as usize;
                half /= 2;
            }
            victim[nodes] = low as u8;
            nodes += 1;
        }
        victim
    }
}

/// Sets with more ways than this keep true LRU as a recency list rather than
/// as stamps: a fully associative TLB of 1536 entries must not scan 1536
/// stamps to find its victim. (They keep stamps until the first victim is
/// asked for, or a way forgotten: see `Victims::lists_later`.)
const LIST_MIN_WAYS: usize = 17;

/// "No slot" in the LRU lists.
const NIL: u32 = u32::MAX;

/// Per-set replacement state of one array of `sets x ways` slots.
///
/// Saved through `SavedVictims`: LRU over many ways still in stamps
/// (`lists_later`) is saved as the recency lists it stands for.
#[derive(Clone, Debug, Deserialize)]
pub struct Victims {
    policy: Replacement,
    ways: usize,
    /// LRU with few ways: one stamp per slot, from `clock`. Also LRU with
    /// many ways until its first victim or forget (`lists_later`).
    stamps: Vec<u64>,
    clock: u64,
    /// LRU with many ways: the same order as a recency list.
    order: Option<LruOrder>,
    /// Tree-PLRU: ways padded to a power of two; node `n` (1-based heap
    /// order) of set `s` is bit `n % 64` of word `s * words + n / 64`.
    padded: usize,
    words: usize,
    bits: Vec<u64>,
    /// Tree-PLRU with at most 64 leaves: per way, the node bits on its path
    /// (`path_mask`) and the values a touch writes there (`path_bits`), so a
    /// touch is one masked store.
    path_mask: Vec<u64>,
    path_bits: Vec<u64>,
    rng: XorShift64Star,
    /// Tree-PLRU with at most [`PLRU_TABLE_MAX_WAYS`] ways: the victim
    /// table of its way count (see [`plru_table`]), fetched on the first
    /// eviction rather than on every one (nor when the array is built: most
    /// arrays of a short run never evict). Not saved: fetched on use.
    #[serde(skip)]
    table: Option<&'static PlruTable>,
    /// LRU with many ways whose order is still kept as stamps (`stamps`
    /// and `clock`, `order` none): the recency lists are built from them
    /// on the first victim or forget ([`Victims::list_stamps`]) and kept
    /// from then on. A touch in stamps is one store, where moving a way
    /// to the end of its list is a dozen loads and stores, and a fully
    /// associative TLB larger than the run's pages never evicts:
    /// lsR_linux touches 338 pages, and with one 1536-entry array the
    /// touches (one per probe and per replayed recent hit, see
    /// `Tlb::settle`) were most of what its row paid above the default
    /// preset. Never saved (the lists are, see [`SavedVictims`]): a
    /// restored state keeps lists.
    #[serde(skip)]
    lists_later: bool,
}

/// What a [`Victims`] saves, field for field in its order: its own fields,
/// but for LRU over many ways still in stamps (`Victims::lists_later`),
/// the recency lists those stamps stand for, with no stamps and the clock
/// at 0. These are the bytes a state that kept lists from the start would
/// save: the stamps' order is the lists' order, and a way only leaves the
/// stamps by a forget, which builds the lists first (so no forgotten way's
/// stale links are lost).
#[derive(Serialize)]
struct SavedVictims<'a> {
    policy: Replacement,
    ways: usize,
    stamps: &'a [u64],
    clock: u64,
    order: &'a Option<LruOrder>,
    padded: usize,
    words: usize,
    bits: &'a [u64],
    path_mask: &'a [u64],
    path_bits: &'a [u64],
    rng: &'a XorShift64Star,
}

impl Serialize for Victims {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.as_saved();
        SavedVictims {
            policy: v.policy,
            ways: v.ways,
            stamps: &v.stamps,
            clock: v.clock,
            order: &v.order,
            padded: v.padded,
            words: v.words,
            bits: &v.bits,
            path_mask: &v.path_mask,
            path_bits: &v.path_bits,
            rng: &v.rng,
        }
        .serialize(serializer)
    }
}

/// True LRU over many ways, in O(1) per touch and per victim, making exactly
/// the choices of the stamps: a way whose stamp would be 0 (never used since
/// the array was built, or forgotten) is "unstamped" and kept in a bitmap,
/// outside the list; every other way is in its set's list, least recently
/// used first. The victim is the lowest unstamped way if there is one (the
/// stamps' tie: the first of the equal oldest), else the head of the list.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LruOrder {
    /// Per slot (`set * ways + way`): its neighbours in its set's list.
    prev: Vec<u32>,
    next: Vec<u32>,
    /// Per set: the least and the most recently used slot of the list.
    head: Vec<u32>,
    tail: Vec<u32>,
    /// Per set, `words` words: bit `way` set when the way is unstamped.
    unstamped: Vec<u64>,
    words: usize,
}

impl LruOrder {
    fn new(sets: usize, ways: usize) -> Self {
        let words = ways.div_ceil(64);
        let mut unstamped = vec![0u64; sets * words];
        for set in 0..sets {
            for way in 0..ways {
                unstamped[set * words + way / 64] |= 1 << (way % 64);
            }
        }
        Self {
            prev: vec![NIL; sets * ways],
            next: vec![NIL; sets * ways],
            head: vec![NIL; sets],
            tail: vec![NIL; sets],
            unstamped,
            words,
        }
    }

    #[inline(always)]
    fn is_unstamped(&self, set: usize, way: usize) -> bool {
        self.unstamped[set * self.words + way / 64] >> (way % 64) & 1 == 1
    }

    #[inline(always)]
    fn unlink(&mut self, set: usize, slot: u32) {
        let (p, n) = (self.prev[slot as usize], self.next[slot as usize]);
        if p == NIL {
            self.head[set] = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NIL {
            self.tail[set] = p;
        } else {
            self.prev[n as usize] = p;
        }
    }

    /// Makes `way` of `set` the most recently used. The tail is tested
    /// first (a way touched twice in a row stays), and the lists are
    /// borrowed as slices once: a fully associative TLB touches on every
    /// probe and on every replayed recent hit (see `Tlb::settle`), and
    /// reloading each list's pointer and length per access cost it about
    /// a third of the touch.
    #[inline(always)]
    fn touch(&mut self, set: usize, ways: usize, way: usize) {
        let slot = set * ways + way;
        let Self {
            prev,
            next,
            head,
            tail,
            unstamped,
            words,
        } = self;
        let (prev, next, head, tail) = (&mut prev[..], &mut next[..], &mut head[..], &mut tail[..]);
        let last = tail[set];
        if last == slot as u32 {
            return;
        }
        let word = &mut unstamped[set * *words + way / 64];
        let bit = 1u64 << (way % 64);
        if *word & bit != 0 {
            *word &= !bit;
        } else {
            // In the list and not its tail: it has a successor.
            let (p, n) = (prev[slot], next[slot]);
            if p == NIL {
                head[set] = n;
            } else {
                next[p as usize] = n;
            }
            if let Some(after) = prev.get_mut(n as usize) {
                *after = p;
            }
        }
        prev[slot] = last;
        next[slot] = NIL;
        if last == NIL {
            head[set] = slot as u32;
        } else {
            next[last as usize] = slot as u32;
        }
        tail[set] = slot as u32;
    }

    /// [`LruOrder::touch`], out of line (see [`Victims::touch`]).
    #[inline(never)]
    fn touch_out_of_line(&mut self, set: usize, ways: usize, way: usize) {
        self.touch(set, ways, way);
    }

    #[inline]
    fn forget(&mut self, set: usize, ways: usize, way: usize) {
        if !self.is_unstamped(set, way) {
            self.unlink(set, (set * ways + way) as u32);
            self.unstamped[set * self.words + way / 64] |= 1 << (way % 64);
        }
    }

    #[inline]
    fn victim(&self, set: usize, ways: usize) -> usize {
        let words = &self.unstamped[set * self.words..(set + 1) * self.words];
        if let Some((i, w)) = words.iter().enumerate().find(|(_, w)| **w != 0) {
            return i * 64 + w.trailing_zeros() as usize;
        }
        self.head[set] as usize - set * ways
    }
}

impl Victims {
    /// State for `sets` sets of `ways` ways under `policy`; `seed` feeds the
    /// random policy and is ignored by the others.
    #[must_use]
    pub fn new(policy: Replacement, sets: usize, ways: usize, seed: u64) -> Self {
        Self::build(policy, sets, ways, seed, ways >= LIST_MIN_WAYS)
    }

    /// [`Victims::new`], with LRU kept as a recency list (`listed`) or as stamps.
    fn build(policy: Replacement, sets: usize, ways: usize, seed: u64, listed: bool) -> Self {
        let padded = ways.next_power_of_two();
        let words = padded.div_ceil(64);
        let (mut path_mask, mut path_bits) = (Vec::new(), Vec::new());
        if policy == Replacement::TreePlru && padded <= 64 {
            for way in 0..ways {
                let (mask, bits) = plru_path(padded, way);
                path_mask.push(mask);
                path_bits.push(bits);
            }
        }
        let lru = policy == Replacement::Lru;
        let listed = lru && listed;
        Self {
            policy,
            ways,
            // (An array of many ways too: its lists come later.)
            stamps: if lru {
                vec![0; sets * ways]
            } else {
                Vec::new()
            },
            clock: 0,
            order: None,
            padded,
            words,
            bits: if policy == Replacement::TreePlru {
                vec![0; sets * words]
            } else {
                Vec::new()
            },
            path_mask,
            path_bits,
            rng: XorShift64Star::new(seed),
            // Fetched (and built, once per way count) on the first eviction:
            // a run that never evicts from this array never builds it.
            table: None,
            lists_later: listed,
        }
    }

    /// Builds the recency lists of LRU over many ways from its stamps
    /// (nothing if the state is not [`Victims::lists_later`]): per set,
    /// the ways with a stamp linked in stamp order (the least recently
    /// used first), the others unstamped; then no stamps and the clock at
    /// 0, as a state that kept lists from the start has. Once per array,
    /// on its first victim or forget (or a copy's, to save it).
    #[cold]
    #[inline(never)]
    fn list_stamps(&mut self) {
        if !self.lists_later {
            return;
        }
        self.lists_later = false;
        let ways = self.ways;
        let stamps = std::mem::take(&mut self.stamps);
        let sets = stamps.len() / ways.max(1);
        let mut order = LruOrder::new(sets, ways);
        let mut used: Vec<(u64, usize)> = Vec::with_capacity(ways);
        for set in 0..sets {
            used.clear();
            used.extend(
                (0..ways)
                    .filter(|&way| stamps[set * ways + way] != 0)
                    .map(|way| (stamps[set * ways + way], way)),
            );
            // (Stamps are distinct: each touch takes the next tick.)
            used.sort_unstable();
            for &(_, way) in &used {
                order.touch(set, ways, way);
            }
        }
        self.clock = 0;
        self.order = Some(order);
    }

    /// The state as it is saved: itself, or for LRU over many ways still
    /// in stamps (`lists_later`) a copy with its lists built (see
    /// [`SavedVictims`]).
    fn as_saved(&self) -> std::borrow::Cow<'_, Self> {
        if self.lists_later {
            let mut copy = self.clone();
            copy.list_stamps();
            std::borrow::Cow::Owned(copy)
        } else {
            std::borrow::Cow::Borrowed(self)
        }
    }

    /// The policy in force.
    #[must_use]
    pub const fn policy(&self) -> Replacement {
        self.policy
    }

    /// Records a use (hit or fill) of `way` in `set`. A recency list (sets
    /// of many ways) is touched out of line here: its touch in line made
    /// the split first levels' `Tlb::touch_recent` save two more registers
    /// on every call (+0.5% on the default preset), where it never runs.
    #[inline(always)]
    pub fn touch(&mut self, set: usize, way: usize) {
        self.touch_with::<false>(set, way);
    }

    /// [`Victims::touch`] with a recency list's touch in line: for the
    /// paths that touch arrays of many ways on every call (a probe of an
    /// indexed array, a replayed recent hit of a shared first level).
    #[inline(always)]
    pub fn touch_in_line(&mut self, set: usize, way: usize) {
        self.touch_with::<true>(set, way);
    }

    #[inline(always)]
    fn touch_with<const LIST_IN_LINE: bool>(&mut self, set: usize, way: usize) {
        match self.policy {
            Replacement::Lru => match &mut self.order {
                None => {
                    self.clock += 1;
                    self.stamps[set * self.ways + way] = self.clock;
                }
                Some(order) if LIST_IN_LINE => order.touch(set, self.ways, way),
                Some(order) => order.touch_out_of_line(set, self.ways, way),
            },
            Replacement::TreePlru => self.plru_touch(set, way),
            Replacement::Random => {}
        }
    }

    /// Whether this is LRU over many ways still keeping its order as
    /// stamps (`Victims::lists_later`): then [`Victims::stamp_ahead`] and
    /// [`Victims::advance_stamps`] may stand for touches in order.
    #[inline(always)]
    #[must_use]
    pub fn lru_in_stamps(&self) -> bool {
        self.lists_later
    }

    /// For LRU still in stamps ([`Victims::lru_in_stamps`]): stamps `way`
    /// of `set` `ahead` (at least 1) ticks past the clock, unless it holds
    /// a later stamp already; the clock is not moved (see
    /// [`Victims::advance_stamps`]). Touches at distinct `ahead`s, then the
    /// clock advanced past the largest, leave the order touches made in
    /// the order of their `ahead`s leave (stamps are only compared).
    /// Anything else: nothing.
    #[inline(always)]
    pub fn stamp_ahead(&mut self, set: usize, way: usize, ahead: u64) {
        debug_assert!(ahead >= 1 && self.lists_later);
        let stamp = self.clock + ahead;
        if let Some(s) = self.stamps.get_mut(set * self.ways + way) {
            *s = (*s).max(stamp);
        }
    }

    /// Moves the clock of LRU in stamps `by` ticks, past the stamps
    /// [`Victims::stamp_ahead`] gave (its largest `ahead`).
    #[inline(always)]
    pub fn advance_stamps(&mut self, by: u64) {
        self.clock += by;
    }

    /// What a [`Victims::touch`] of `way` in `set` writes, worked out in
    /// advance for a tree-PLRU set held in one word whose path bits fit in
    /// 32: the word's index, the mask of the nodes on the way's path and
    /// the values written there (a pure function of the set and way, so it
    /// never goes stale). `None` for anything else: touch it instead.
    ///
    /// With the victim table fetched (a tree-PLRU of at most 16 ways that
    /// has evicted once: the first level of a miss-heavy run), the plan is
    /// the table's, where the policy and word tests, two bound checks and
    /// two range checks cost the memo of a first-level hit (266K of the
    /// zipf row's probes) about twenty instructions.
    #[must_use]
    pub fn plru_plan(&self, set: usize, way: usize) -> Option<(u32, u32, u32)> {
        // (The policy first: an LRU array's memo, the fully associative
        // rows', answers `None` after one test, as before the table.)
        if self.policy != Replacement::TreePlru {
            return None;
        }
        if let Some(table) = self.table {
            // (`way` is below the way count, at most 16.)
            let (mask, bits) = table.plans[way & (PLRU_TABLE_MAX_WAYS - 1)];
            return Some((u32::try_from(set).ok()?, mask, bits));
        }
        self.plru_plan_worked_out(set, way)
    }

    /// [`Victims::touch`] of `way` in `set`, and [`Victims::plru_plan`] of
    /// it: with the victim table fetched, the plan is worked out first and
    /// the touch is the plan applied (`apply_plru`, exactly what the touch
    /// writes: `!mask` is the table's `path_keep`, `bits` its `path_bits`),
    /// one test of the policy and the table for both. For the walking
    /// probe's first-level hit, whose record keeps the plan.
    #[inline(always)]
    pub fn touch_planned(&mut self, set: u32, way: usize) -> Option<(u32, u32, u32)> {
        if self.policy == Replacement::TreePlru
            && let Some(table) = self.table
        {
            // (`way` is below the way count, at most 16.)
            let (mask, bits) = table.plans[way & (PLRU_TABLE_MAX_WAYS - 1)];
            self.apply_plru(set, mask, bits);
            return Some((set, mask, bits));
        }
        self.touch_planned_slow(set as usize, way)
    }

    /// [`Victims::touch_planned`] before the victim table is fetched, or
    /// of any other policy: the touch, then the plan.
    #[inline(never)]
    fn touch_planned_slow(&mut self, set: usize, way: usize) -> Option<(u32, u32, u32)> {
        self.touch(set, way);
        self.plru_plan(set, way)
    }

    /// [`Victims::plru_plan`] from the paths (before the victim table is
    /// fetched, and for every array without one).
    fn plru_plan_worked_out(&self, set: usize, way: usize) -> Option<(u32, u32, u32)> {
        if self.policy != Replacement::TreePlru || self.words != 1 {
            return None;
        }
        let mask = u32::try_from(*self.path_mask.get(way)?).ok()?;
        let bits = u32::try_from(*self.path_bits.get(way)?).ok()?;
        Some((u32::try_from(set).ok()?, mask, bits))
    }

    /// The touch [`Victims::plru_plan`] planned: exactly what `touch` of
    /// that set and way does.
    #[inline(always)]
    pub fn apply_plru(&mut self, word: u32, mask: u32, bits: u32) {
        if let Some(w) = self.bits.get_mut(word as usize) {
            *w = (*w & !u64::from(mask)) | u64::from(bits);
        }
    }

    /// Marks `way` of `set` as the least recently used (after an
    /// invalidation), so LRU-ordered searches treat it as oldest.
    #[inline]
    pub fn forget(&mut self, set: usize, way: usize) {
        if self.policy == Replacement::Lru {
            // (Lists later: built now, so that the forgotten way keeps the
            // links the lists give it, as a state that kept lists would.)
            if self.lists_later {
                self.list_stamps();
            }
            match &mut self.order {
                None => self.stamps[set * self.ways + way] = 0,
                Some(order) => order.forget(set, self.ways, way),
            }
        }
    }

    /// The way of `set` to evict when every way is in use.
    #[inline(always)]
    pub fn victim(&mut self, set: usize) -> usize {
        match self.policy {
            Replacement::Lru => {
                if let Some(order) = &self.order {
                    return order.victim(set, self.ways);
                }
                if self.lists_later {
                    return self.list_victim(set);
                }
                let row = &self.stamps[set * self.ways..(set + 1) * self.ways];
                let mut best = 0;
                for (way, &stamp) in row.iter().enumerate() {
                    if stamp < row[best] {
                        best = way;
                    }
                }
                best
            }
            Replacement::TreePlru => self.plru_victim(set),
            Replacement::Random => self.rng.below(self.ways),
        }
    }

    /// [`Victims::victim`] of LRU over many ways still in stamps: its
    /// lists built ([`Victims::list_stamps`]), then their victim.
    #[cold]
    #[inline(never)]
    fn list_victim(&mut self, set: usize) -> usize {
        self.list_stamps();
        match &self.order {
            Some(order) => order.victim(set, self.ways),
            None => 0,
        }
    }

    /// [`Victims::victim`] of `set`, then [`Victims::touch`] of that way:
    /// what a fill of a full set does. A tree-PLRU set with a victim table
    /// loads and stores its word once (a miss-heavy run evicts on most
    /// fills, and the two calls each matched the policy and read the word).
    #[inline(always)]
    pub fn evict(&mut self, set: usize) -> usize {
        // (A fetched table means a tree-PLRU of at most 16 ways: every
        // node in one word.)
        let table = match self.table {
            Some(table) => Some(table),
            None if self.policy == Replacement::TreePlru && self.ways <= PLRU_TABLE_MAX_WAYS => {
                Some(self.fetch_table())
            }
            None => None,
        };
        if let Some(table) = table
            && let Some(word) = self.bits.get_mut(set)
        {
            let (way, touched) = table.evict(*word);
            *word = touched;
            return way;
        }
        let way = self.victim(set);
        self.touch(set, way);
        way
    }

    /// [`Victims::evict`] from an array whose way count is `W` (a
    /// constant: the presets' 4, 8 or 12, or 0 when not known). A
    /// tree-PLRU of 9 to 16 ways that has fetched its victim table finds
    /// the victim by [`plru_walk`] on the set's word, not in the table:
    /// for those way counts the table's victims span 8 to 32 KiB, read at
    /// an index as random as the set's history, and on the walk-heavy
    /// zipf row cachegrind counted 71% of the second level's reads of it
    /// missing the L1 (0.4 a reference, on the chain of the fill). The
    /// walk reads nothing but the word, and makes the table's choice (it
    /// is the walk the table was built by: `walked_victims_equal_the_table`).
    /// The touch is the table's path, as in `evict`. Smaller way counts
    /// keep the table: theirs fits in two lines or fewer.
    ///
    /// A tree-PLRU of 2, 4 or 8 ways (a tree with no padding: the first
    /// level's arrays) with its table fetched reads the victim from the
    /// table with the node mask a constant (not loaded from the table), and
    /// its touch is a flip of the victim's path: the walk to the victim
    /// goes the way each node's bit points, and the touch points each node
    /// of that path at the other half, so every bit of the path is
    /// inverted (`word ^ path_mask`; the table's `path_bits` is then
    /// `path_mask & !word`). Three instructions fewer an eviction than the
    /// masked store of [`Victims::evict`]; the same victim and word
    /// (`flipped_victims_equal_the_table`).
    ///
    /// With the table fetched, the set's word is indexed (`set` is below
    /// the set count: the caller's set of a slot), not looked up with a
    /// fallback: the table's test and the bound's then stay two branches,
    /// where the two tests with one fallback were merged into eight
    /// instructions of flags.
    ///
    /// # Panics
    ///
    /// If `set` is not a set of the array.
    #[inline(always)]
    pub(super) fn evict_ways<const W: usize>(&mut self, set: usize) -> usize {
        if W >= 2
            && W <= PLRU_TABLE_MAX_WAYS / 2
            && W.is_power_of_two()
            && let Some(table) = self.table
        {
            debug_assert_eq!(self.ways, W);
            let word = &mut self.bits[set];
            let nodes = (*word >> 1) & const { if W >= 2 { (1u64 << (W - 1)) - 1 } else { 0 } };
            let way = usize::from(table.victim[nodes as usize & (PLRU_TABLE_LEN - 1)]) & (W - 1);
            *word ^= table.path_mask[way];
            return way;
        }
        if W > PLRU_TABLE_MAX_WAYS / 2
            && W <= PLRU_TABLE_MAX_WAYS
            && let Some(table) = self.table
        {
            debug_assert_eq!(self.ways, W);
            // (A fetched table means a tree-PLRU of at most 16 ways: every
            // node in one word.)
            let word = &mut self.bits[set];
            let way = plru_walk::<W>(*word);
            let w = way & (PLRU_TABLE_MAX_WAYS - 1);
            *word = (*word & table.path_keep[w]) | table.path_bits[w];
            return way;
        }
        self.evict(set)
    }

    /// [`Victims::evict`] of a tree-PLRU array of `W` ways (2, 4 or 8, or
    /// 9 to 16), whatever its table: the victim and the touch from the
    /// constants of its tree ([`PlruConst`]: 2, 4 or 8 ways as
    /// [`Victims::evict_ways`] flips the victim's path, an even count of
    /// 10 to 16 from [`PlruConst::PAIR_FLIP`] (the pair and the touch's
    /// flips in one read, the leaf from the pair's node), 9, 11, 13 or 15
    /// by [`plru_walk`] and the masked store). The caller knows the policy
    /// and the way count (the TLB's pair fill, [`PlruConst`]'s values are
    /// the table's): no test of the fetched table, no load of its address
    /// (three instructions a level of the walk-heavy row's fill). Same
    /// victim, same word (`constant_victims_equal_the_table`).
    ///
    /// # Panics
    ///
    /// If `set` is not a set of the array.
    #[inline(always)]
    pub(super) fn evict_plru<const W: usize>(&mut self, set: usize) -> usize {
        const {
            assert!(W == 2 || W == 4 || W == 8 || (W > 8 && W <= PLRU_TABLE_MAX_WAYS));
        }
        debug_assert!(self.policy == Replacement::TreePlru && self.ways == W);
        let word = &mut self.bits[set];
        if W <= 8 {
            let nodes = (*word >> 1) & const { (1u64 << (W - 1)) - 1 };
            let flip = PlruConst::<W>::FLIP[nodes as usize & 127];
            *word ^= u64::from(flip >> 8);
            flip as usize & (W - 1)
        } else if W.is_multiple_of(2) {
            // (The victim's pair and the touch's flips from one read; the
            // leaf from the pair's node, read before the flip.)
            let old = *word;
            let e =
                PlruConst::<W>::PAIR_FLIP[(old >> 1) as usize & PlruConst::<W>::PAIR_FLIP_INDEX];
            let pair = e as usize & 7;
            *word = old ^ u64::from(e >> 8);
            2 * pair + ((old >> 8 >> pair) & 1) as usize
        } else {
            let way = plru_walk::<W>(*word);
            let w = way & (PLRU_TABLE_MAX_WAYS - 1);
            let [keep, bits] = PlruConst::<W>::TOUCH[w];
            *word = (*word & keep) | bits;
            way
        }
    }

    /// [`Victims::touch`] of `way` in `set` of a tree-PLRU array of `W`
    /// ways (1 to [`PLRU_TABLE_MAX_WAYS`]), whatever its table: the masked
    /// store of the way's path from the constants of its tree
    /// ([`PlruConst::TOUCH`], the table's values), with no test of the
    /// policy or of the fetched table (the caller knows both: the TLB's
    /// pair). Same word (`constant_touches_equal_the_touches`).
    ///
    /// # Panics
    ///
    /// If `set` is not a set of the array.
    #[inline(always)]
    pub(super) fn touch_plru<const W: usize>(&mut self, set: usize, way: usize) {
        const {
            assert!(W >= 1 && W <= PLRU_TABLE_MAX_WAYS);
        }
        debug_assert!(self.policy == Replacement::TreePlru && self.ways == W && way < W);
        let [keep, bits] = PlruConst::<W>::TOUCH[way & (PLRU_TABLE_MAX_WAYS - 1)];
        let word = &mut self.bits[set];
        *word = (*word & keep) | bits;
    }

    /// Fetches the victim table if this is a tree-PLRU of at most
    /// [`PLRU_TABLE_MAX_WAYS`] ways that has not yet: an array whose
    /// evictions take [`Victims::evict_plru`] (which reads no table) still
    /// has its hits' touches take the table's path ([`Self::plru_touch`]).
    #[cold]
    pub(super) fn fetch_plru_table(&mut self) {
        if self.table.is_none()
            && self.policy == Replacement::TreePlru
            && self.ways <= PLRU_TABLE_MAX_WAYS
        {
            self.fetch_table();
        }
    }

    #[inline(always)]
    fn plru_bit(&self, set: usize, node: usize) -> bool {
        self.bits[set * self.words + node / 64] >> (node % 64) & 1 == 1
    }

    #[inline(always)]
    fn plru_set(&mut self, set: usize, node: usize, right: bool) {
        let word = &mut self.bits[set * self.words + node / 64];
        let bit = 1u64 << (node % 64);
        if right {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    /// Points every node on the path to `way` at the other half.
    ///
    /// With the victim table fetched (a tree-PLRU of at most 16 ways that
    /// has evicted once: both levels of a walk-heavy run), the path is the
    /// table's, indexed through a mask: the test of the word count and the
    /// bounds tests of the two path vectors (about six instructions of a
    /// hit's touch, on each first- and second-level hit of the walking
    /// probe) are not made. The same values: the table's paths are these.
    #[inline(always)]
    fn plru_touch(&mut self, set: usize, way: usize) {
        if let Some(table) = self.table {
            // (A fetched table means every node in one word; `way` is
            // below the way count, at most 16.)
            let w = way & (PLRU_TABLE_MAX_WAYS - 1);
            if let Some(word) = self.bits.get_mut(set) {
                *word = (*word & table.path_keep[w]) | table.path_bits[w];
            }
            return;
        }
        if self.words == 1 {
            let word = &mut self.bits[set];
            *word = (*word & !self.path_mask[way]) | self.path_bits[way];
        } else {
            self.plru_touch_walk(set, way);
        }
    }

    /// The same as [`Self::plru_touch`], node by node (trees over 64 leaves).
    fn plru_touch_walk(&mut self, set: usize, way: usize) {
        let mut node = 1;
        let mut half = self.padded / 2;
        while half > 0 {
            let went_right = way & half != 0;
            self.plru_set(set, node, !went_right);
            node = 2 * node + usize::from(went_right);
            half /= 2;
        }
    }

    /// Follows the bits from the root, never entering an all-padding subtree.
    /// Sets of up to [`PLRU_TABLE_MAX_WAYS`] ways read the answer from a
    /// table built by this same walk (see [`plru_table`]).
    #[inline(always)]
    fn plru_victim(&mut self, set: usize) -> usize {
        if self.ways <= PLRU_TABLE_MAX_WAYS {
            let table = match self.table {
                Some(table) => table,
                None => self.fetch_table(),
            };
            return table.victim(self.bits[set]);
        }
        self.plru_victim_scan(set)
    }

    /// The victim table, on the first eviction (see `Victims::table`).
    #[cold]
    #[inline(never)]
    fn fetch_table(&mut self) -> &'static PlruTable {
        let table = plru_table(self.ways);
        self.table = Some(table);
        table
    }

    /// [`Self::plru_victim`] without the table: the walk from the root.
    fn plru_victim_scan(&self, set: usize) -> usize {
        if self.words == 1 {
            // Every node of the set in one word (at most 64 leaves).
            let bits = self.bits[set];
            let mut node = 1;
            let mut low = 0;
            let mut half = self.padded / 2;
            while half > 0 {
                let right = bits >> node & 1 == 1 && low + half < self.ways;
                if right {
                    low += half;
                }
                node = 2 * node + usize::from(right);
                half /= 2;
            }
            return low;
        }
        self.plru_victim_walk(set)
    }

    /// The same as [`Self::plru_victim`], bit by bit through `plru_bit`
    /// (trees over 64 leaves).
    fn plru_victim_walk(&self, set: usize) -> usize {
        let mut node = 1;
        let mut low = 0;
        let mut half = self.padded / 2;
        while half > 0 {
            let right = self.plru_bit(set, node) && low + half < self.ways;
            if right {
                low += half;
            }
            node = 2 * node + usize::from(right);
            half /= 2;
        }
        low
    }
}

impl Victims {
    /// Checks replacement state read back from a checkpoint against the
    /// state `fresh` that the configuration builds (same policy and shape),
    /// and that every LRU stamp and list is one `touch`/`victim` can use:
    /// stamps not after the clock, each set's list holding exactly its
    /// stamped ways, in range, linked both ways, without a cycle.
    pub(crate) fn check_restored(&self, fresh: &Self) -> Result<(), String> {
        // (Against the shape a fresh state saves: lists, if it keeps
        // stamps until later.)
        let fresh = &*fresh.as_saved();
        if self.policy != fresh.policy
            || self.ways != fresh.ways
            || self.padded != fresh.padded
            || self.words != fresh.words
            || self.path_mask != fresh.path_mask
            || self.path_bits != fresh.path_bits
            || self.stamps.len() != fresh.stamps.len()
            || self.bits.len() != fresh.bits.len()
            || self.order.is_some() != fresh.order.is_some()
        {
            return Err(format!(
                "replacement state is not the configuration's ({} over {} ways)",
                fresh.policy.name(),
                fresh.ways
            ));
        }
        if let Some(stamp) = self.stamps.iter().find(|&&s| s > self.clock) {
            return Err(format!(
                "replacement state: stamp {stamp} is after the clock {}",
                self.clock
            ));
        }
        if let (Some(order), Some(fresh_order)) = (&self.order, &fresh.order) {
            order.check_restored(fresh_order, self.ways)?;
        }
        Ok(())
    }
}

impl LruOrder {
    fn check_restored(&self, fresh: &Self, ways: usize) -> Result<(), String> {
        if self.words != fresh.words
            || self.prev.len() != fresh.prev.len()
            || self.next.len() != fresh.next.len()
            || self.head.len() != fresh.head.len()
            || self.tail.len() != fresh.tail.len()
            || self.unstamped.len() != fresh.unstamped.len()
        {
            return Err("replacement state: LRU order is not the configuration's shape".into());
        }
        let sets = self.head.len();
        for set in 0..sets {
            let bad =
                |what: &str| Err(format!("replacement state: LRU order of set {set}: {what}"));
            let row = &self.unstamped[set * self.words..(set + 1) * self.words];
            let mut unstamped = 0;
            for (i, w) in row.iter().enumerate() {
                let valid = if (i + 1) * 64 <= ways {
                    u64::MAX
                } else if i * 64 >= ways {
                    0
                } else {
                    (1u64 << (ways - i * 64)) - 1
                };
                if w & !valid != 0 {
                    return bad("marks a way past the last one");
                }
                unstamped += w.count_ones() as usize;
            }
            let first = set * ways;
            let mut at = self.head[set];
            let mut before = NIL;
            let mut seen = 0;
            while at != NIL {
                let slot = at as usize;
                if slot < first || slot >= first + ways {
                    return bad(&format!("slot {slot} is not in the set"));
                }
                if self.is_unstamped(set, slot - first) {
                    return bad(&format!("slot {slot} is listed but unused"));
                }
                if self.prev[slot] != before {
                    return bad(&format!("slot {slot} is linked back to the wrong slot"));
                }
                seen += 1;
                if seen > ways {
                    return bad("the list has a cycle");
                }
                before = at;
                at = self.next[slot];
            }
            if self.tail[set] != before {
                return bad("the list's tail is not its last slot");
            }
            if seen + unstamped != ways {
                return bad("the list does not hold exactly the used ways");
            }
        }
        Ok(())
    }
}

/// Raw access for tests that forge restored states.
#[cfg(test)]
impl Victims {
    /// (The state as saved: lists built first, see [`SavedVictims`].)
    pub(crate) fn forge_stamps(&mut self) -> (&mut Vec<u64>, &mut u64) {
        self.list_stamps();
        (&mut self.stamps, &mut self.clock)
    }
    pub(crate) fn forge_order(&mut self) -> Option<(&mut Vec<u32>, &mut Vec<u32>, &mut Vec<u32>)> {
        self.list_stamps();
        self.order
            .as_mut()
            .map(|o| (&mut o.prev, &mut o.next, &mut o.head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_oldest() {
        let mut v = Victims::new(Replacement::Lru, 2, 4, 0);
        for way in [0, 1, 2, 3, 0, 2] {
            v.touch(1, way);
        }
        assert_eq!(v.victim(1), 1);
        v.touch(1, 1);
        assert_eq!(v.victim(1), 3);
        v.forget(1, 2);
        assert_eq!(v.victim(1), 2);
        // Set 0 untouched: first way.
        assert_eq!(v.victim(0), 0);
    }

    /// The victim table's plans answer `plru_plan` as the paths do, for
    /// every way count the table serves (and the policies and way counts
    /// it does not, which never fetch one), sets up to the `u32` limit,
    /// before and after the first eviction fetches the table.
    #[test]
    fn table_plans_equal_the_worked_out_ones() {
        for policy in [Replacement::TreePlru, Replacement::Lru, Replacement::Random] {
            for ways in 1..=20 {
                let mut v = Victims::new(policy, 4, ways, 1);
                for fetched in [false, true] {
                    if fetched {
                        v.evict(1);
                        let tabled = policy == Replacement::TreePlru && ways <= PLRU_TABLE_MAX_WAYS;
                        assert_eq!(v.table.is_some(), tabled, "{policy:?} {ways} ways");
                    }
                    for set in [0, 3, u32::MAX as usize, u32::MAX as usize + 1] {
                        for way in 0..ways {
                            assert_eq!(
                                v.plru_plan(set, way),
                                v.plru_plan_worked_out(set, way),
                                "{policy:?} {ways} ways, set {set} way {way}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// [`Victims::touch_planned`] (the walking probe's first-level hit)
    /// touches as [`Victims::touch`] does and answers
    /// [`Victims::plru_plan`] of the way: every policy, way counts 1 to
    /// 20, before and after the first eviction fetches the table, random
    /// touches and evictions of a few sets against a copy touched by
    /// `touch`, the whole state compared after every step.
    #[test]
    fn planned_touches_equal_the_touches() {
        for policy in [Replacement::TreePlru, Replacement::Lru, Replacement::Random] {
            for ways in 1..=20 {
                let mut planned = Victims::new(policy, 3, ways, 5);
                let mut plain = planned.clone();
                let mut rng = XorShift64Star::new(ways as u64 + 11);
                for step in 0..300 {
                    let set = rng.below(3);
                    if step > 100 && rng.below(4) == 0 {
                        assert_eq!(planned.evict(set), plain.evict(set));
                    } else {
                        let way = rng.below(ways);
                        let plan = planned.touch_planned(set as u32, way);
                        assert_eq!(plan, plain.plru_plan(set, way), "{policy:?} {ways} ways");
                        plain.touch(set, way);
                    }
                    assert_eq!(
                        format!("{planned:?}"),
                        format!("{plain:?}"),
                        "{policy:?} {ways} ways, step {step}"
                    );
                    assert_eq!(
                        planned.bits, plain.bits,
                        "{policy:?} {ways} ways, step {step}"
                    );
                }
            }
        }
    }

    /// A tree-PLRU touch through the fetched victim table (its paths,
    /// indexed through a mask) writes what the touch through the
    /// `Victims`' own paths writes: for every way count the table serves,
    /// random touches and evictions of a few sets, against a copy whose
    /// table is dropped before each touch (so it touches through the
    /// paths, and fetches the table again to evict), the set words
    /// compared after every step.
    #[test]
    fn table_touches_equal_the_paths() {
        for ways in 1..=PLRU_TABLE_MAX_WAYS {
            let mut tabled = Victims::new(Replacement::TreePlru, 3, ways, 0);
            tabled.evict(0);
            assert!(tabled.table.is_some(), "{ways} ways");
            let mut plain = tabled.clone();
            let mut rng = XorShift64Star::new(ways as u64 + 7);
            for step in 0..400 {
                let set = rng.below(3);
                if rng.below(4) == 0 {
                    assert_eq!(
                        tabled.evict(set),
                        plain.evict(set),
                        "{ways} ways, step {step}"
                    );
                } else {
                    let way = rng.below(ways);
                    plain.table = None;
                    tabled.touch(set, way);
                    plain.touch(set, way);
                }
                assert_eq!(tabled.bits, plain.bits, "{ways} ways, step {step}");
            }
        }
    }

    /// [`plru_walk`] picks the victim the table (and the walk from the
    /// root it was built by) picks, for every value of the node bits of
    /// the way counts `Victims::evict_ways` walks, the node bits it never
    /// obeys set or clear alike; and `evict_ways` evicts and touches as
    /// `evict` does.
    #[test]
    fn walked_victims_equal_the_table() {
        fn check<const W: usize>() {
            let table = plru_table(W);
            let padded = W.next_power_of_two();
            for nodes in 0..1u64 << (padded - 1) {
                let word = nodes << 1;
                assert_eq!(
                    plru_walk::<W>(word),
                    table.victim(word),
                    "{W} ways, {word:#x}"
                );
                let mut v = Victims::new(Replacement::TreePlru, 1, W, 0);
                v.evict(0); // fetches the table
                v.bits[0] = word;
                let want = v.plru_victim_scan(0);
                assert_eq!(plru_walk::<W>(word), want, "{W} ways, {word:#x}");
                let mut fused = v.clone();
                assert_eq!(fused.evict_ways::<W>(0), v.evict(0), "{W} ways");
                assert_eq!(fused.evict_ways::<W>(0), v.evict(0), "{W} ways");
                assert_eq!(fused.bits, v.bits, "{W} ways, {word:#x}");
            }
        }
        check::<9>();
        check::<10>();
        check::<11>();
        check::<12>();
        check::<13>();
        check::<14>();
        check::<15>();
        check::<16>();
    }

    /// `Victims::evict_ways` of a tree with no padding (2, 4 and 8 ways:
    /// the victim read with a constant node mask, the touch a flip of its
    /// path) evicts and touches as `evict` does, from every node state,
    /// and on a run of evictions and touches of several sets.
    #[test]
    fn flipped_victims_equal_the_table() {
        fn check<const W: usize>() {
            for nodes in 0..1u64 << (W - 1) {
                let mut v = Victims::new(Replacement::TreePlru, 1, W, 0);
                v.evict(0); // fetches the table
                v.bits[0] = nodes << 1;
                let mut flipped = v.clone();
                for _ in 0..2 * W {
                    assert_eq!(flipped.evict_ways::<W>(0), v.evict(0), "{W} ways");
                    assert_eq!(flipped.bits, v.bits, "{W} ways, {nodes:#x}");
                }
            }
            let plain = Victims::new(Replacement::TreePlru, 8, W, 0);
            let flipped = plain.clone();
            run_evicts_as_the_table(plain, flipped, W, 7, Victims::evict_ways::<W>);
        }
        check::<2>();
        check::<4>();
        check::<8>();
    }

    /// A run of 4000 evictions and touches at random over `plain`'s sets:
    /// `other`, evicting by `evict`, chooses and touches as `plain.evict`
    /// does (the same victims, the same set words after every step).
    fn run_evicts_as_the_table(
        mut plain: Victims,
        mut other: Victims,
        ways: usize,
        seed: u64,
        evict: impl Fn(&mut Victims, usize) -> usize,
    ) {
        // (One tree word a set: these trees have at most 16 ways.)
        let sets = plain.bits.len();
        let mut rng = XorShift64Star::new(seed);
        for step in 0..4000 {
            let set = rng.below(sets);
            if rng.below(3) == 0 {
                let way = rng.below(ways);
                plain.touch(set, way);
                other.touch(set, way);
            } else {
                assert_eq!(
                    evict(&mut other, set),
                    plain.evict(set),
                    "{ways} ways, step {step}"
                );
            }
            assert_eq!(other.bits, plain.bits, "{ways} ways, step {step}");
        }
    }

    /// `Victims::evict_plru` (the constants, no table) evicts and touches
    /// as `evict` (the table, fetched on its first eviction) does, without
    /// and with the table fetched on its side: every node state of one
    /// set, then a run of evictions and touches over 8 sets.
    #[test]
    fn constant_victims_equal_the_table() {
        fn check<const W: usize>() {
            let padded = W.next_power_of_two();
            for nodes in 0..1u64 << (padded - 1) {
                let mut v = Victims::new(Replacement::TreePlru, 1, W, 0);
                v.bits[0] = nodes << 1;
                let mut constant = v.clone();
                for _ in 0..2 * W {
                    assert_eq!(constant.evict_plru::<W>(0), v.evict(0), "{W} ways");
                    assert_eq!(constant.bits, v.bits, "{W} ways, {nodes:#x}");
                }
                assert!(constant.table.is_none(), "evict_plru fetched the table");
            }
            let plain = Victims::new(Replacement::TreePlru, 8, W, 0);
            let mut constant = plain.clone();
            constant.fetch_plru_table();
            assert!(constant.table.is_some());
            run_evicts_as_the_table(plain, constant, W, W as u64, Victims::evict_plru::<W>);
        }
        check::<2>();
        check::<4>();
        check::<8>();
        check::<9>();
        check::<10>();
        check::<12>();
        check::<14>();
        check::<15>();
        check::<16>();
    }

    /// `Victims::touch_plru` (the constants, no table) touches as `touch`
    /// does, without and with the table fetched (on either side): every
    /// node state of one set and every way, then random touches and
    /// evictions over 8 sets, the set words compared after every step.
    #[test]
    fn constant_touches_equal_the_touches() {
        fn check<const W: usize>() {
            let padded = W.next_power_of_two();
            for fetched in [false, true] {
                for nodes in 0..1u64 << (padded - 1) {
                    for way in 0..W {
                        let mut v = Victims::new(Replacement::TreePlru, 1, W, 0);
                        v.bits[0] = nodes << 1;
                        if fetched {
                            v.fetch_plru_table();
                        }
                        let mut constant = v.clone();
                        constant.touch_plru::<W>(0, way);
                        v.touch(0, way);
                        assert_eq!(constant.bits, v.bits, "{W} ways, {nodes:#x}, way {way}");
                    }
                }
            }
            for fetched in [false, true] {
                let mut plain = Victims::new(Replacement::TreePlru, 8, W, 0);
                let mut constant = plain.clone();
                if fetched {
                    constant.fetch_plru_table();
                } else {
                    plain.fetch_plru_table();
                }
                let mut rng = XorShift64Star::new(W as u64 + 3);
                for step in 0..4000 {
                    let set = rng.below(8);
                    if rng.below(3) == 0 {
                        assert_eq!(
                            constant.evict(set),
                            plain.evict(set),
                            "{W} ways, step {step}"
                        );
                    } else {
                        let way = rng.below(W);
                        constant.touch_plru::<W>(set, way);
                        plain.touch(set, way);
                    }
                    assert_eq!(constant.bits, plain.bits, "{W} ways, step {step}");
                }
            }
        }
        check::<2>();
        check::<4>();
        check::<8>();
        check::<9>();
        check::<12>();
        check::<15>();
        check::<16>();
    }

    #[test]
    fn plru_power_of_two_matches_textbook() {
        // 4 ways: touching 0,1,2,3 in order leaves the tree pointing at way 0.
        let mut v = Victims::new(Replacement::TreePlru, 1, 4, 0);
        for way in 0..4 {
            v.touch(0, way);
        }
        assert_eq!(v.victim(0), 0);
        v.touch(0, 0);
        assert_eq!(v.victim(0), 2);
    }

    #[test]
    fn plru_never_picks_padding_and_never_the_last_touched() {
        for ways in 1..=40 {
            let mut v = Victims::new(Replacement::TreePlru, 3, ways, 0);
            let mut rng = XorShift64Star::new(ways as u64);
            for _ in 0..500 {
                let way = rng.below(ways);
                v.touch(2, way);
                let victim = v.victim(2);
                assert!(victim < ways, "{ways} ways gave victim {victim}");
                if ways > 1 {
                    assert_ne!(victim, way, "{ways} ways evicted the way just touched");
                }
            }
        }
    }

    #[test]
    fn plru_cycles_through_all_ways_when_each_victim_is_refilled() {
        for ways in [2, 3, 5, 8, 12] {
            let mut v = Victims::new(Replacement::TreePlru, 1, ways, 0);
            let mut seen = vec![false; ways];
            for _ in 0..4 * ways {
                let victim = v.victim(0);
                seen[victim] = true;
                v.touch(0, victim);
            }
            assert!(seen.iter().all(|&s| s), "{ways} ways: {seen:?}");
        }
    }

    #[test]
    fn plru_mask_touch_equals_the_node_walk() {
        for ways in 1..=64 {
            let mut fast = Victims::new(Replacement::TreePlru, 2, ways, 0);
            let mut slow = fast.clone();
            let mut rng = XorShift64Star::new(ways as u64);
            for _ in 0..200 {
                let way = rng.below(ways);
                fast.touch(1, way);
                slow.plru_touch_walk(1, way);
                assert_eq!(fast.bits, slow.bits, "{ways} ways after touching {way}");
            }
        }
    }

    #[test]
    fn plru_one_word_victim_equals_the_node_walk() {
        for ways in 1..=64 {
            let mut v = Victims::new(Replacement::TreePlru, 2, ways, 0);
            let mut rng = XorShift64Star::new(7 * ways as u64);
            for _ in 0..200 {
                v.touch(1, rng.below(ways));
                let walked = v.plru_victim_walk(1);
                assert_eq!(v.plru_victim(1), walked, "{ways} ways");
                assert_eq!(v.plru_victim_scan(1), walked, "{ways} ways");
                assert!(walked < ways);
            }
        }
    }

    #[test]
    fn plru_victim_table_equals_the_node_walk_for_every_state() {
        for ways in 1..=PLRU_TABLE_MAX_WAYS {
            let mut v = Victims::new(Replacement::TreePlru, 2, ways, 0);
            let padded = ways.next_power_of_two();
            for nodes in 0..1u64 << (padded - 1) {
                // Bit 0 and the bits above the tree are never read.
                v.bits[1] = nodes << 1 | 1 | (u64::MAX << padded);
                let walked = v.plru_victim_walk(1);
                assert_eq!(v.plru_victim(1), walked, "{ways} ways, nodes {nodes:#b}");
                assert!(walked < ways);
            }
            // The table's touches are the array's own.
            let table = plru_table(ways);
            assert_eq!(table.path_mask[..ways], v.path_mask[..], "{ways} ways");
            assert_eq!(table.path_bits[..ways], v.path_bits[..], "{ways} ways");
            for (keep, mask) in table.path_keep[..ways].iter().zip(&v.path_mask) {
                assert_eq!(*keep, !mask, "{ways} ways");
            }
        }
    }

    proptest::proptest! {
        /// `evict` chooses the way `victim` chooses and leaves the state
        /// `touch` of it leaves, for every policy and way count, from any
        /// history of touches and forgets.
        #[test]
        fn evict_is_victim_then_touch(
            policy in 0u8..3,
            ways in 1usize..40,
            ops in proptest::collection::vec((0u8..4, 0usize..2, 0usize..40), 1..300),
        ) {
            let policy = [Replacement::Lru, Replacement::TreePlru, Replacement::Random][usize::from(policy)];
            let mut fused = Victims::new(policy, 2, ways, 5);
            let mut plain = fused.clone();
            for (op, set, way) in ops {
                let way = way % ways;
                match op {
                    0 => {
                        fused.touch(set, way);
                        plain.touch(set, way);
                    }
                    1 => {
                        fused.forget(set, way);
                        plain.forget(set, way);
                    }
                    _ => {
                        let want = plain.victim(set);
                        plain.touch(set, want);
                        proptest::prop_assert_eq!(fused.evict(set), want);
                    }
                }
                proptest::prop_assert_eq!(&fused.bits, &plain.bits);
                proptest::prop_assert_eq!(&fused.stamps, &plain.stamps);
                proptest::prop_assert_eq!(fused.clock, plain.clock);
            }
            for set in 0..2 {
                proptest::prop_assert_eq!(fused.victim(set), plain.victim(set));
            }
        }

        /// The recency lists make exactly the stamps' choices, whatever the
        /// order of touches, forgets and victim queries; so do lists built
        /// later, from stamps, on the first victim or forget (what an array
        /// of many ways keeps), and at every step such a state saves the
        /// bytes the lists kept from the start save. Touches made out of
        /// order with their stamps ahead (`stamp_ahead`, as `Tlb::settle`
        /// replays a fully associative array still in stamps: a way owed
        /// by two places, another between, stamped newest first) equal
        /// touches in order.
        #[test]
        fn lru_lists_choose_as_stamps(
            ways in 1usize..80,
            ops in proptest::collection::vec((0u8..5, 0usize..2, 0usize..80), 1..600),
        ) {
            let mut stamps = Victims::build(Replacement::Lru, 2, ways, 0, false);
            let mut lists = Victims::build(Replacement::Lru, 2, ways, 0, true);
            lists.list_stamps();
            let mut later = Victims::build(Replacement::Lru, 2, ways, 0, true);
            proptest::prop_assert!(stamps.order.is_none() && lists.order.is_some());
            proptest::prop_assert!(later.order.is_none() && later.lists_later);
            let saved = |v: &Victims| postcard::to_allocvec(v).expect("saves");
            for (op, set, way) in ops {
                let way = way % ways;
                match op {
                    0 | 3 => {
                        stamps.touch(set, way);
                        lists.touch(set, way);
                        later.touch_in_line(set, way);
                    }
                    4 => {
                        // `way`, `first`, `way` again (two places of one
                        // way), replayed in another order: the later
                        // stamp of `way` must stay.
                        let first = (way * 7 + 3) % ways;
                        for v in [&mut stamps, &mut lists] {
                            v.touch(set, way);
                            v.touch(set, first);
                            v.touch(set, way);
                        }
                        if later.lru_in_stamps() {
                            later.stamp_ahead(set, way, 3);
                            later.stamp_ahead(set, first, 2);
                            later.stamp_ahead(set, way, 1);
                            later.advance_stamps(3);
                        } else {
                            later.touch(set, way);
                            later.touch(set, first);
                            later.touch(set, way);
                        }
                    }
                    1 => {
                        stamps.forget(set, way);
                        lists.forget(set, way);
                        later.forget(set, way);
                    }
                    _ => {
                        let want = stamps.victim(set);
                        proptest::prop_assert_eq!(lists.victim(set), want);
                        proptest::prop_assert_eq!(later.victim(set), want);
                    }
                }
                proptest::prop_assert_eq!(saved(&later), saved(&lists));
            }
            for set in 0..2 {
                let want = stamps.victim(set);
                proptest::prop_assert_eq!(lists.victim(set), want);
                proptest::prop_assert_eq!(later.victim(set), want);
            }
            proptest::prop_assert!(!later.lists_later && later.order.is_some());
        }
    }

    #[test]
    fn random_is_seeded_and_in_range() {
        let mut a = Victims::new(Replacement::Random, 1, 12, 7);
        let mut b = Victims::new(Replacement::Random, 1, 12, 7);
        let mut c = Victims::new(Replacement::Random, 1, 12, 8);
        let xs: Vec<usize> = (0..64).map(|_| a.victim(0)).collect();
        let ys: Vec<usize> = (0..64).map(|_| b.victim(0)).collect();
        let zs: Vec<usize> = (0..64).map(|_| c.victim(0)).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert!(xs.iter().all(|&w| w < 12));
        let distinct: std::collections::BTreeSet<_> = xs.iter().collect();
        assert!(
            distinct.len() > 6,
            "random victims cover the ways: {distinct:?}"
        );
    }
}
