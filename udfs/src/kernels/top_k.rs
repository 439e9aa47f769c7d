//! The `k` best of many scores: one list by a heap ([`top_k`]), and the best columns of
//! every row of a matrix product ([`best_products`]), as recommending for every user needs.
//!
//! Ranking every user against every item is a product `users × items` and a selection in
//! each row. The product here only screens, in f32: twice the values per register and half
//! the memory of f64. An f32 score is within a proven bound of the exact one, so an item
//! whose f32 score is more than twice that bound below the k-th best f32 score cannot be
//! among the best k. The few items that pass are scored again by the caller's own exact
//! function and ranked on those scores: the result is the one scoring every item exactly
//! would give, at the cost of the f32 product.
//!
//! The product is laid out like [`super::distance`]'s nearest-centre scan: items in blocks
//! of [`LANES`], stored coordinate by coordinate, meet [`GROUP`] users at a time, each
//! user's coordinate broadcast against a block's values, so every load feeds several
//! multiply-adds and the scores come out one item per lane, ready to compare with each
//! user's bar in a vector. On x86-64 with AVX-512, or AVX2 and FMA (checked at run time),
//! the kernel uses those registers explicitly.

use ndarray::{Array2, ArrayView2, ArrayViewMut1};
use rayon::prelude::*;

use super::simd::{Kernel, Simd, dispatch};
use super::{row, row_major};

/// Users scored together: `GROUP × 2` accumulator registers and two for the items.
const GROUP: usize = 6;
/// Items per block: two AVX-512 registers of f32 (two halves of two AVX2 registers each).
const LANES: usize = 32;
/// Blocks per tile: a tile of 256 items of 65 coordinates is 65 KiB of f32, kept in a
/// core's L2 cache while every user of a chunk goes through it.
const TILE: usize = 8;
/// Users per parallel chunk: each tile is read from memory once per chunk.
const CHUNK: usize = 16 * GROUP;
/// Largest magnitude screened in f32: products and sums stay far inside its range.
const SCREENABLE: f64 = 1e15;

/// The `k` best `(score, index)` of `scores` that `keep` accepts, best first; among equal
/// scores the lower index. A heap of `k`, so the cost is one pass over the scores; a `k`
/// past the number of scores is taken as that number, so the heap is never sized by a
/// `k` alone.
pub fn top_k(
    scores: impl Iterator<Item = f64>,
    k: usize,
    keep: impl Fn(usize) -> bool,
) -> Vec<(f64, usize)> {
    let mut top = TopK::new(scores.size_hint().1.map_or(k, |n| k.min(n)));
    for (i, s) in scores.enumerate() {
        top.push(s, i, &keep);
    }
    top.finish()
}

/// Item vectors laid out for [`best_products`]: each item's `dim` values, then its bias
/// where there is one (scored against a user value of 1).
pub struct Items {
    /// Blocks of [`LANES`] items, coordinate-major within a block: coordinate `d` of the
    /// block's item `l` at `d * LANES + l`; zero past the last item.
    blocks: Vec<f32>,
    /// Coordinates per item, the bias included.
    width: usize,
    count: usize,
    /// The largest Euclidean norm of an item's coordinates (bias included).
    largest_norm: f64,
    /// Whether every value is small enough for the f32 screen.
    screenable: bool,
}

impl Items {
    /// The `count × dim` `vectors`, one item per row, and an optional bias per item (empty
    /// for none).
    pub fn new(vectors: ArrayView2<f64>, bias: &[f64]) -> Self {
        let (count, dim) = vectors.dim();
        let vectors = row_major(vectors);
        let width = dim + usize::from(!bias.is_empty());
        let row = |i: usize| {
            let v = &vectors[i * dim..(i + 1) * dim];
            v.iter().chain(bias.get(i))
        };
        let mut blocks = vec![0.0f32; count.div_ceil(LANES) * LANES * width];
        let (mut largest_norm, mut largest) = (0.0f64, 0.0f64);
        for i in 0..count {
            let block = &mut blocks[(i / LANES) * LANES * width..][..LANES * width];
            let mut norm = 0.0;
            for (d, &v) in row(i).enumerate() {
                block[d * LANES + i % LANES] = v as f32;
                norm += v * v;
                largest = largest.max(v.abs());
            }
            largest_norm = largest_norm.max(norm.sqrt());
        }
        Self {
            blocks,
            width,
            count,
            largest_norm,
            // The error bound holds for up to 10⁵ coordinates.
            screenable: largest.is_finite() && largest < SCREENABLE && width < 100_000,
        }
    }
}

/// For each row index in `rows`, the `k` columns `j` of highest `exact(row, j)` that
/// `keep(row, j)` accepts, best first, among equal scores the lower `j` (as [`top_k`]).
///
/// `user(row)` gives the row's vector (the items' `dim` long) and `offset`, a term that
/// `exact` adds to every score of the row (a mean and user bias); `exact(row, j)` must be
/// `offset + user · item_j + bias_j`, rounded in f64. Rows are screened in f32 as the
/// module describes; a row whose values are too large for f32 is scored exactly throughout.
pub fn best_products<'a>(
    rows: &[usize],
    user: impl Fn(usize) -> (&'a [f64], f64) + Sync,
    items: &Items,
    k: usize,
    exact: impl Fn(usize, usize) -> f64 + Sync,
    keep: impl Fn(usize, usize) -> bool + Sync,
) -> Vec<Vec<(f64, usize)>> {
    // No row can have more than every item.
    let k = k.min(items.count);
    rows.par_chunks(CHUNK)
        .flat_map_iter(|chunk| {
            // The rows' f32 vectors, one per row, with a 1 for the items' bias.
            let mut vectors = Array2::ones((chunk.len(), items.width));
            let mut screens: Vec<Screen> = chunk
                .iter()
                .zip(vectors.rows_mut())
                .map(|(&r, vector32)| {
                    let (vector, offset) = user(r);
                    Screen::new(vector, offset, items, k, vector32)
                })
                .collect();
            let screened: Vec<usize> = (0..chunk.len())
                .filter(|&s| screens[s].screenable)
                .collect();
            let blocks = items.count.div_ceil(LANES);
            for tile in (0..blocks).step_by(TILE) {
                for group in screened.chunks(GROUP) {
                    let rows = Rows {
                        group,
                        chunk,
                        vectors: vectors.view(),
                    };
                    rows.scan(&mut screens, items, tile..(tile + TILE).min(blocks), &keep);
                }
            }
            screens
                .into_iter()
                .zip(chunk)
                .map(|(screen, &r)| screen.finish(r, items.count, &exact, &keep))
        })
        .collect()
}

/// A bound on `|f32 score + offset − exact score|` for vectors of `width` values (up to
/// 10⁵) and norms at most `user_norm` and `item_norm`: rounding to f32 and a chain of
/// `width` multiply-adds err by at most (width + 3) units of 2⁻²⁴ of Σ|uᵢvᵢ| ≤ |u||v|
/// (Cauchy–Schwarz), and the exact f64 score by a far smaller share of that and of the
/// offset; values below f32's normal range add at most 2⁻¹⁴⁸ per operation. Doubled for
/// slack.
fn error_bound(width: usize, user_norm: f64, item_norm: f64, offset: f64) -> f64 {
    let width = width as f64;
    2.0 * (width + 4.0) * 2f64.powi(-24) * (user_norm * item_norm + offset.abs())
        + width * 2f64.powi(-140) * (1.0 + user_norm + item_norm)
}

/// One row's screen: the best f32 scores so far and the items that passed.
struct Screen {
    /// Twice the bound on `|f32 score + offset − exact score|`.
    margin: f64,
    /// The `k` best f32 scores seen (as f64, exact).
    top: TopK,
    /// Items whose f32 score was within `margin` of the k-th best when they were seen.
    passed: Vec<(f32, u32)>,
    /// How many passed items prompt dropping those under the current bar.
    prune_at: usize,
    /// The lowest f32 score that can still pass: the k-th best less `margin`, rounded
    /// down.
    bar: f32,
    screenable: bool,
}

impl Screen {
    /// The row's screen; writes its f32 vector into `vector32`, whose values past the
    /// vector's stay as they are (a 1 for the items' bias).
    fn new(
        vector: &[f64],
        offset: f64,
        items: &Items,
        k: usize,
        mut vector32: ArrayViewMut1<f32>,
    ) -> Self {
        for (o, &v) in vector32.iter_mut().zip(vector) {
            *o = v as f32;
        }
        // The norm of the vector with the 1 for the bias, or more.
        let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt() + 1.0;
        let screenable =
            items.screenable && vector.iter().all(|v| v.abs() < SCREENABLE) && offset.is_finite();
        Self {
            // Twice the bound for the two scores a comparison involves.
            margin: 2.0 * error_bound(items.width, norm, items.largest_norm, offset),
            top: TopK::new(k),
            passed: Vec::new(),
            prune_at: 64 * k.max(16),
            bar: if k == 0 {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            },
            screenable,
        }
    }

    /// Takes item `i` with f32 score `s`, at or above the bar, if `keep` accepts it.
    #[inline]
    fn offer(&mut self, s: f32, i: usize, keep: impl Fn(usize) -> bool) {
        if s < self.bar || !keep(i) {
            return;
        }
        self.passed.push((s, i as u32));
        self.top.push(f64::from(s), i, |_| true);
        if let Some(worst) = self.top.worst() {
            let bar = worst - self.margin;
            let mut bar32 = bar as f32;
            if f64::from(bar32) > bar {
                bar32 = bar32.next_down();
            }
            self.bar = bar32;
            // Many passes under an old, lower bar: drop those the bar now excludes (and
            // wait for twice as many again where ties keep them).
            if self.passed.len() >= self.prune_at {
                self.passed.retain(|(s, _)| *s >= bar32);
                self.prune_at = self.prune_at.max(2 * self.passed.len());
            }
        }
    }

    /// The exact ranking of the items that passed, or of every item where the row could not
    /// be screened.
    fn finish(
        self,
        r: usize,
        count: usize,
        exact: impl Fn(usize, usize) -> f64,
        keep: impl Fn(usize, usize) -> bool,
    ) -> Vec<(f64, usize)> {
        if !self.screenable {
            return top_k((0..count).map(|i| exact(r, i)), self.top.k, |i| keep(r, i));
        }
        let bar = self
            .top
            .worst()
            .map_or(f64::NEG_INFINITY, |w| w - self.margin);
        let mut top = TopK::new(self.top.k);
        for &(s, i) in &self.passed {
            if f64::from(s) >= bar {
                top.push(exact(r, i as usize), i as usize, |_| true);
            }
        }
        top.finish()
    }
}

/// A group of up to [`GROUP`] rows of a chunk: indices into `chunk` (the rows' numbers)
/// and the rows of `vectors` (their f32 vectors).
struct Rows<'a> {
    group: &'a [usize],
    chunk: &'a [usize],
    vectors: ArrayView2<'a, f32>,
}

impl Rows<'_> {
    /// Runs the group through the item `blocks`, offering each screen what passes its bar.
    fn scan(
        &self,
        screens: &mut [Screen],
        items: &Items,
        blocks: std::ops::Range<usize>,
        keep: impl Fn(usize, usize) -> bool,
    ) {
        let group = self.group;
        // A short last group repeats its first row, under a bar nothing passes.
        let vectors: [&[f32]; GROUP] =
            std::array::from_fn(|p| row(self.vectors, group[p.min(group.len() - 1)]));
        let mut bars: [f32; GROUP] = std::array::from_fn(|p| match group.get(p) {
            Some(&s) => screens[s].bar,
            None => f32::INFINITY,
        });
        // The precondition of the vector kernels in `block_scores`, once per group.
        assert!(
            vectors.iter().all(|v| v.len() == items.width),
            "user vectors as wide as the items"
        );
        let mut scores = [[0.0f32; LANES]; GROUP];
        for b in blocks {
            let block = &items.blocks[b * LANES * items.width..][..LANES * items.width];
            let passes = block_scores(&vectors, block, &bars, &mut scores);
            for (p, mut mask) in passes.into_iter().enumerate() {
                while mask != 0 {
                    let l = mask.trailing_zeros() as usize;
                    mask &= mask - 1;
                    let i = b * LANES + l;
                    if i < items.count {
                        let screen = &mut screens[group[p]];
                        let row = self.chunk[group[p]];
                        screen.offer(scores[p][l], i, |i| keep(row, i));
                        bars[p] = screen.bar;
                    }
                }
            }
        }
    }
}

/// The f32 scores of `GROUP` users against one block of items, and for each user the mask
/// of lanes at or above its bar. (`scores` is only written for users with a lane set.)
#[inline]
fn block_scores(
    users: &[&[f32]; GROUP],
    block: &[f32],
    bars: &[f32; GROUP],
    scores: &mut [[f32; LANES]; GROUP],
) -> [u32; GROUP] {
    dispatch(BlockScores {
        users,
        block,
        bars,
        scores,
    })
}

/// [`block_scores`]' body, for every SIMD level.
struct BlockScores<'a> {
    users: &'a [&'a [f32]; GROUP],
    block: &'a [f32],
    bars: &'a [f32; GROUP],
    scores: &'a mut [[f32; LANES]; GROUP],
}

impl Kernel for BlockScores<'_> {
    type Output = [u32; GROUP];

    #[inline(always)]
    fn run<S: Simd>(self) -> [u32; GROUP] {
        let Self {
            users,
            block,
            bars,
            scores,
        } = self;
        // The vector kernels read `users[p][d]` for every coordinate `d` of the block
        // unchecked.
        debug_assert!(block.len().is_multiple_of(LANES));
        debug_assert!(users.iter().all(|u| u.len() == block.len() / LANES));
        #[cfg(target_arch = "x86_64")]
        if S::LEVEL.avx512() {
            // SAFETY: code runs at this level only on a CPU with AVX-512F (see `simd`);
            // every user vector is as long as the block has coordinates (asserted by
            // `Rows::scan`, the only caller, and above in debug builds).
            return unsafe { avx512::block_scores(users, block, bars, scores) };
        }
        #[cfg(target_arch = "x86_64")]
        if S::LEVEL.avx2_fma() {
            // SAFETY: as above, with AVX2 and FMA.
            return unsafe { avx2::block_scores(users, block, bars, scores) };
        }
        block_scores_plain(users, block, bars, scores)
    }
}

/// [`block_scores`] on plain arrays, for CPUs without the vector kernels.
fn block_scores_plain(
    users: &[&[f32]; GROUP],
    block: &[f32],
    bars: &[f32; GROUP],
    scores: &mut [[f32; LANES]; GROUP],
) -> [u32; GROUP] {
    let mut acc = [[0.0f32; LANES]; GROUP];
    for (d, values) in block.chunks_exact(LANES).enumerate() {
        for (sums, user) in acc.iter_mut().zip(users) {
            for (a, v) in sums.iter_mut().zip(values) {
                *a += user[d] * v;
            }
        }
    }
    std::array::from_fn(|p| {
        scores[p] = acc[p];
        (0..LANES).fold(0, |m, l| m | (u32::from(acc[p][l] >= bars[p]) << l))
    })
}

/// The kernel with AVX-512 registers: a block's values in two per coordinate and the
/// `GROUP × 2` sums in twelve more.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{GROUP, LANES};

    /// [`super::block_scores`] in AVX-512 registers.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and every user vector `block.len() / LANES` long.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn block_scores(
        users: &[&[f32]; GROUP],
        block: &[f32],
        bars: &[f32; GROUP],
        scores: &mut [[f32; LANES]; GROUP],
    ) -> [u32; GROUP] {
        let mut acc = [[_mm512_setzero_ps(); 2]; GROUP];
        let u = users.map(|u| u.as_ptr());
        for (d, values) in block.chunks_exact(LANES).enumerate() {
            // SAFETY: a chunk holds LANES = 32 values; `d` is below every user's length.
            unsafe {
                let c0 = _mm512_loadu_ps(values.as_ptr());
                let c1 = _mm512_loadu_ps(values.as_ptr().add(16));
                for p in 0..GROUP {
                    let v = _mm512_set1_ps(*u[p].add(d));
                    acc[p][0] = _mm512_fmadd_ps(v, c0, acc[p][0]);
                    acc[p][1] = _mm512_fmadd_ps(v, c1, acc[p][1]);
                }
            }
        }
        std::array::from_fn(|p| {
            let bar = _mm512_set1_ps(bars[p]);
            let low = u32::from(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(acc[p][0], bar));
            let high = u32::from(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(acc[p][1], bar));
            let mask = low | (high << 16);
            if mask != 0 {
                // SAFETY: a row of `scores` holds 32 f32.
                unsafe {
                    _mm512_storeu_ps(scores[p].as_mut_ptr(), acc[p][0]);
                    _mm512_storeu_ps(scores[p].as_mut_ptr().add(16), acc[p][1]);
                }
            }
            mask
        })
    }
}

/// The kernel with AVX2 registers: each half of a block in turn, its values in two
/// registers per coordinate and the `GROUP × 2` sums in twelve more.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{GROUP, LANES};

    /// [`super::block_scores`] in AVX2 registers.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA, and every user vector `block.len() / LANES` long.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_scores(
        users: &[&[f32]; GROUP],
        block: &[f32],
        bars: &[f32; GROUP],
        scores: &mut [[f32; LANES]; GROUP],
    ) -> [u32; GROUP] {
        let u = users.map(|u| u.as_ptr());
        let mut masks = [0u32; GROUP];
        for half in 0..2 {
            let mut acc = [[_mm256_setzero_ps(); 2]; GROUP];
            for (d, values) in block.chunks_exact(LANES).enumerate() {
                // SAFETY: a chunk holds LANES = 32 values; `d` is below every user's length.
                unsafe {
                    let c = values.as_ptr().add(16 * half);
                    let (c0, c1) = (_mm256_loadu_ps(c), _mm256_loadu_ps(c.add(8)));
                    for p in 0..GROUP {
                        let v = _mm256_broadcast_ss(&*u[p].add(d));
                        acc[p][0] = _mm256_fmadd_ps(v, c0, acc[p][0]);
                        acc[p][1] = _mm256_fmadd_ps(v, c1, acc[p][1]);
                    }
                }
            }
            for p in 0..GROUP {
                let bar = _mm256_set1_ps(bars[p]);
                let ge = |a| _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(a, bar)) as u32;
                let mask = ge(acc[p][0]) | (ge(acc[p][1]) << 8);
                // SAFETY: a row of `scores` holds 32 f32, so 16 * half + 16 fit.
                unsafe {
                    let out = scores[p].as_mut_ptr().add(16 * half);
                    _mm256_storeu_ps(out, acc[p][0]);
                    _mm256_storeu_ps(out.add(8), acc[p][1]);
                }
                masks[p] |= mask << (16 * half);
            }
        }
        masks
    }
}

/// Orders by score, then by lower index first.
#[derive(PartialEq)]
struct Ranked(f64, usize);
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// The best `k` seen so far, worst on top of the heap.
struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Ranked>>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: std::collections::BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Offers item `i` with score `s`; `keep` is asked only of an item that would enter.
    #[inline]
    fn push(&mut self, s: f64, i: usize, keep: impl Fn(usize) -> bool) {
        use std::cmp::Reverse;
        if s.is_nan() || self.k == 0 {
            return;
        }
        let candidate = Ranked(s, i);
        let full = self.heap.len() >= self.k;
        if full
            && self
                .heap
                .peek()
                .is_some_and(|Reverse(worst)| candidate <= *worst)
        {
            return;
        }
        if !keep(i) {
            return;
        }
        if full {
            self.heap.pop();
        }
        self.heap.push(Reverse(candidate));
    }

    /// The k-th best score, once `k` have been taken.
    fn worst(&self) -> Option<f64> {
        (self.heap.len() >= self.k)
            .then(|| self.heap.peek().map(|r| r.0.0))
            .flatten()
    }

    fn finish(self) -> Vec<(f64, usize)> {
        let mut best: Vec<(f64, usize)> = self
            .heap
            .into_iter()
            .map(|std::cmp::Reverse(r)| (r.0, r.1))
            .collect();
        best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::rng::Rng;
    use crate::kernels::simd;
    use crate::kernels::vector::dot;

    #[test]
    fn top_k_orders_and_filters() {
        let scores = [0.5, 2.0, f64::NAN, 2.0, 1.0, 3.0];
        assert_eq!(
            top_k(scores.into_iter(), 3, |i| i != 5),
            vec![(2.0, 1), (2.0, 3), (1.0, 4)]
        );
        assert_eq!(top_k(scores.into_iter(), 10, |_| true).len(), 5);
        assert!(top_k(scores.into_iter(), 0, |_| true).is_empty());
    }

    /// Users and items with factors and biases, the exact score of a pair, and the ranking
    /// by scoring every item exactly.
    struct Case {
        dim: usize,
        users: Vec<f64>,
        items: Vec<f64>,
        item_bias: Vec<f64>,
        offset: Vec<f64>,
    }

    impl Case {
        fn new(users: usize, items: usize, dim: usize, scale: f64, biased: bool) -> Self {
            let mut rng = Rng::keyed(5, 5, (users * items * dim) as u64);
            let mut draw =
                |n: usize| -> Vec<f64> { (0..n).map(|_| rng.normal() * scale).collect() };
            let users_v = draw(users * dim);
            let items_v = draw(items * dim);
            let (item_bias, offset) = if biased {
                (draw(items), draw(users).iter().map(|b| 3.5 + b).collect())
            } else {
                (vec![], vec![0.0; users])
            };
            Self {
                dim,
                users: users_v,
                items: items_v,
                item_bias,
                offset,
            }
        }

        fn exact(&self, u: usize, i: usize) -> f64 {
            let d = self.dim;
            self.offset[u]
                + self.item_bias.get(i).copied().unwrap_or(0.0)
                + dot(
                    &self.users[u * d..(u + 1) * d],
                    &self.items[i * d..(i + 1) * d],
                )
        }

        fn check(&self, k: usize, keep: impl Fn(usize, usize) -> bool + Sync) {
            let d = self.dim;
            let count = self.items.len() / d;
            let rows: Vec<usize> = (0..self.users.len() / d).collect();
            let table = Items::new(
                ArrayView2::from_shape((count, d), &self.items).unwrap(),
                &self.item_bias,
            );
            let got = best_products(
                &rows,
                |u| (&self.users[u * d..(u + 1) * d], self.offset[u]),
                &table,
                k,
                |u, i| self.exact(u, i),
                &keep,
            );
            for (u, got) in got.iter().enumerate() {
                let want = top_k((0..count).map(|i| self.exact(u, i)), k, |i| keep(u, i));
                assert_eq!(got, &want, "user {u}");
            }
        }
    }

    #[test]
    fn screening_gives_the_exact_ranking() {
        // Users in full and partial groups, items in full and partial blocks, with and
        // without biases, k from none to more than there are items.
        for (users, items, dim, biased) in
            [(13, 37, 5, false), (20, 300, 64, true), (7, 16, 1, true)]
        {
            let case = Case::new(users, items, dim, 1.0, biased);
            for k in [0, 1, 10, items + 3] {
                case.check(k, |u, i| (u + i) % 7 != 0);
            }
        }
    }

    #[test]
    fn near_ties_are_decided_by_the_exact_scores() {
        // Items that differ from each other below f32's resolution: only the exact scores
        // can order them.
        let mut case = Case::new(9, 200, 8, 1.0, false);
        let first = case.items[..8].to_vec();
        for (i, item) in case.items.chunks_exact_mut(8).enumerate() {
            for (v, f) in item.iter_mut().zip(&first) {
                *v = f * (1.0 + i as f64 * 1e-12);
            }
        }
        case.check(5, |_, _| true);
        // All-zero users: every item ties, the lower index first.
        case.users.iter_mut().for_each(|v| *v = 0.0);
        case.check(3, |_, i| i != 0);
    }

    fn kernel(
        level: simd::Level,
        users: &[&[f32]; GROUP],
        block: &[f32],
        bars: &[f32; GROUP],
        scores: &mut [[f32; LANES]; GROUP],
    ) -> [u32; GROUP] {
        let kernel = BlockScores {
            users,
            block,
            bars,
            scores,
        };
        simd::dispatch_at(level, kernel)
    }

    #[test]
    fn kernel_scores_are_within_the_bound_and_masks_match_the_bars() {
        let mut rng = Rng::keyed(6, 6, 6);
        for width in [1, 7, 65] {
            let users = Array2::from_shape_simple_fn((GROUP, width), || rng.normal() * 3.0);
            let items = Array2::from_shape_simple_fn((LANES, width), || rng.normal());
            let mut block = vec![0.0f32; LANES * width];
            for (l, item) in items.rows().into_iter().enumerate() {
                for (d, v) in item.iter().enumerate() {
                    block[d * LANES + l] = *v as f32;
                }
            }
            let users32 = users.mapv(|v| v as f32);
            let vectors: [&[f32]; GROUP] = std::array::from_fn(|p| row(users32.view(), p));
            let (user, item) = (|p| row(users.view(), p), |l| row(items.view(), l));
            let norm = |v: &[f64]| dot(v, v).sqrt();
            let largest = (0..LANES).map(|l| norm(item(l))).fold(0.0, f64::max);
            // Users alternately under a bar everything passes and one at the middle item.
            let bars: [f32; GROUP] = std::array::from_fn(|p| {
                if p % 2 == 0 {
                    f32::NEG_INFINITY
                } else {
                    dot(user(p), item(LANES / 2)) as f32
                }
            });
            for level in simd::levels() {
                let mut scores = [[f32::NAN; LANES]; GROUP];
                let masks = kernel(level, &vectors, &block, &bars, &mut scores);
                for p in 0..GROUP {
                    let bound = error_bound(width, norm(user(p)), largest, 0.0);
                    for (l, &s) in scores[p].iter().enumerate() {
                        assert!((f64::from(s) - dot(user(p), item(l))).abs() <= bound / 2.0);
                        assert_eq!(masks[p] >> l & 1 == 1, s >= bars[p], "user {p} item {l}");
                    }
                }
                let none = kernel(
                    level,
                    &vectors,
                    &block,
                    &[f32::INFINITY; GROUP],
                    &mut scores,
                );
                assert_eq!(none, [0; GROUP]);
            }
        }
    }

    #[test]
    fn values_too_large_for_f32_are_ranked_exactly() {
        let case = Case::new(8, 40, 3, 1e20, false);
        case.check(4, |_, _| true);
    }
}
