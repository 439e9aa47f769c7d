//! k-means: greedy k-means++ starts, then Lloyd iterations that skip most distance
//! computations with Hamerly's bounds.
//!
//! Points are the rows of a row-major matrix. Every pass works on fixed-size chunks of rows
//! in parallel and merges the chunks' per-cluster sums in chunk order, so a result depends on
//! the seed alone, never on the thread count; those sums are also what partitions would
//! exchange if training were spread over machines.
//!
//! The bounds (Hamerly, "Making k-means even faster", 2010): per point an upper bound on the
//! distance to its centre and a lower bound on the distance to any other; per centre half
//! the distance to its nearest other centre. A point whose upper bound is below both needs
//! no distance computed, which after the first few passes is most points.
//!
//! On large data a pass is bound by memory, not arithmetic. So the points the bounds leave
//! open are first screened, a block at a time, on a 16-bit copy of the data
//! ([`super::quantised`], a quarter of the bytes), which proves the nearest centre of all
//! but near ties; those, and blocks with too few open points to pay for a screen, are
//! scanned in f64. Labels and sums stay those of exact Lloyd: a point's f64 row is read
//! only when it changes cluster, to move it between the sums.

use std::ops::Range;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::interrupt::interrupted;
use super::nearest::{CentreTable, POINTS, each_distance};
use super::points::Points;
use super::prefetch::prefetch;
use super::quantised::{Found, LANES, Quantised, Screen};
use super::rng::Rng;
use super::simd::{self, Kernel, Level, Simd};
use super::vector::{dot, sq_dist};
use super::{row, row_major};

/// How many blocks ahead of the screen a pass asks the cache for the copy's.
const PREFETCH_BLOCKS: usize = 8;
/// Rows per chunk of a parallel pass.
const CHUNK: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KMeansOptions {
    pub k: usize,
    /// Restarts from different seeds; the lowest inertia wins.
    pub n_init: usize,
    pub max_iterations: usize,
    pub seed: u64,
    /// Stop when the centres move less than this times the mean variance of the columns
    /// (squared, summed over centres), as scikit-learn's `tol`.
    pub tolerance: f64,
}

impl Default for KMeansOptions {
    fn default() -> Self {
        Self {
            k: 8,
            n_init: 4,
            max_iterations: 100,
            seed: 42,
            tolerance: 1e-4,
        }
    }
}

/// A fitted clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// `k × dim`, one centre per row.
    pub centroids: Array2<f64>,
    pub labels: Vec<u32>,
    pub sizes: Vec<u64>,
    /// Sum of squared distances to the nearest centre.
    pub inertia: f64,
    /// Centre updates made (scikit-learn's `n_iter_`).
    pub iterations: usize,
    pub converged: bool,
}

/// Why points cannot be clustered into `k` groups.
#[derive(Debug, Clone, PartialEq)]
pub enum KMeansError {
    NoClusters,
    TooFewDistinct { k: usize, distinct: usize },
}

/// Clusters `points` into `options.k` groups: `n_init` runs from k-means++ starts, keeping
/// the lowest inertia (the first of equals).
pub fn kmeans(points: &Points, options: &KMeansOptions) -> Result<Clustering, KMeansError> {
    Prepared::new(points).fit(options)
}

/// Points made ready for any number of fits: the columns' moments (the tolerance is
/// relative to their mean variance) and the 16-bit copy that screens the passes.
pub struct Prepared<'a> {
    points: Points<'a>,
    pub column_mean: Vec<f64>,
    /// Each column's population variance.
    pub column_variance: Vec<f64>,
    copy: Option<Quantised>,
}

impl<'a> Prepared<'a> {
    pub fn new(points: &Points<'a>) -> Self {
        let (column_mean, column_variance) = column_moments(points);
        Self {
            points: *points,
            column_mean,
            column_variance,
            copy: Quantised::new(points),
        }
    }

    /// As [`kmeans`].
    pub fn fit(&self, options: &KMeansOptions) -> Result<Clustering, KMeansError> {
        let points = &self.points;
        let k = options.k;
        if k == 0 {
            return Err(KMeansError::NoClusters);
        }
        let distinct = distinct_rows(points, k);
        if distinct < k {
            return Err(KMeansError::TooFewDistinct { k, distinct });
        }
        let mean_variance =
            self.column_variance.iter().sum::<f64>() / self.column_variance.len() as f64;
        let tolerance = options.tolerance * mean_variance;
        let mut best: Option<Clustering> = None;
        for run in 0..options.n_init.max(1) {
            if run > 0 && interrupted() {
                break;
            }
            let mut rng = Rng::keyed(options.seed, 0x6B6D_6561_6E73, run as u64);
            let start = plus_plus(points, k, &mut rng);
            let fit = lloyd(
                points,
                self.copy.as_ref(),
                start,
                options.max_iterations,
                tolerance,
            );
            if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
                best = Some(fit);
            }
        }
        best.ok_or(KMeansError::NoClusters)
    }
}

/// The number of distinct rows, counted up to `enough`.
fn distinct_rows(points: &Points, enough: usize) -> usize {
    use std::collections::HashMap;
    let mut seen: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut count = 0;
    for i in 0..points.len() {
        let row = points.row(i);
        let same = seen.entry(row_hash(row, 0)).or_default();
        if !same.iter().any(|&j| points.row(j) == row) {
            same.push(i);
            count += 1;
            if count >= enough {
                break;
            }
        }
    }
    count
}

/// A hash of a row's values, for sampling rows by content and finding duplicates.
pub fn row_hash(row: &[f64], seed: u64) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for v in row {
        // -0.0 and 0.0 are the same point.
        let bits = if *v == 0.0 { 0 } else { v.to_bits() };
        h = (h ^ bits).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 31;
    }
    h ^ (h >> 29)
}

/// Each column's mean and population variance, in two parallel reads of the points.
pub fn column_moments(points: &Points) -> (Vec<f64>, Vec<f64>) {
    let (n, dim) = (points.len(), points.dim);
    let sums = chunk_sums(n, dim, |range, acc| {
        for row in points.rows(range).chunks_exact(dim) {
            for (a, x) in acc.iter_mut().zip(row) {
                *a += x;
            }
        }
    });
    let mean: Vec<f64> = sums.iter().map(|s| s / n as f64).collect();
    let squares = chunk_sums(n, dim, |range, acc| {
        for row in points.rows(range).chunks_exact(dim) {
            for ((a, x), m) in acc.iter_mut().zip(row).zip(&mean) {
                *a += (x - m) * (x - m);
            }
        }
    });
    let variance = squares.iter().map(|s| s / n as f64).collect();
    (mean, variance)
}

/// Each cluster's mean distance of its points to its centre (0 for an empty cluster).
pub fn scatter(points: &Points, fit: &Clustering) -> Vec<f64> {
    let dim = points.dim;
    let centres = row_major(fit.centroids.view());
    let sums = chunk_sums(points.len(), fit.sizes.len(), |range, acc| {
        for i in range {
            let l = fit.labels[i] as usize;
            acc[l] += sq_dist(points.row(i), &centres[l * dim..(l + 1) * dim]).sqrt();
        }
    });
    sums.iter()
        .zip(&fit.sizes)
        .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
        .collect()
}

/// Per-chunk sums of `width` values, merged in chunk order.
fn chunk_sums(n: usize, width: usize, f: impl Fn(Range<usize>, &mut [f64]) + Sync) -> Vec<f64> {
    let parts: Vec<Vec<f64>> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut acc = vec![0.0; width];
            f(c * CHUNK..n.min((c + 1) * CHUNK), &mut acc);
            acc
        })
        .collect();
    let mut total = vec![0.0; width];
    for part in parts {
        for (t, p) in total.iter_mut().zip(part) {
            *t += p;
        }
    }
    total
}

/// Greedy k-means++ (Arthur and Vassilvitskii; as scikit-learn): each new centre is the
/// best of `2 + ln k` candidates drawn in proportion to the squared distance to the nearest
/// centre so far, the one that lowers the total most.
fn plus_plus(points: &Points, k: usize, rng: &mut Rng) -> Array2<f64> {
    let n = points.len();
    let trials = 2 + (k as f64).ln() as usize;
    let mut centres = Vec::with_capacity(k * points.dim);
    centres.extend_from_slice(points.row(rng.below(n as u64) as usize));
    let dim = points.dim;
    let mut closest = vec![f64::INFINITY; n];
    let lower = |closest: &mut [f64], centre: &[f64]| {
        closest
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, ds)| {
                let rows = points.rows(c * CHUNK..c * CHUNK + ds.len());
                each_distance(rows, dim, &[centre], |r, _, d| ds[r] = ds[r].min(d));
            })
    };
    lower(&mut closest, &centres);
    for _ in 1..k {
        let chunk_totals: Vec<f64> = closest.par_chunks(CHUNK).map(|c| c.iter().sum()).collect();
        let potential: f64 = chunk_totals.iter().sum();
        let candidates: Vec<&[f64]> = (0..trials)
            .map(|_| {
                points.row(weighted_pick(
                    &closest,
                    &chunk_totals,
                    rng.uniform() * potential,
                ))
            })
            .collect();
        // The total each candidate would leave.
        let totals = chunk_sums(n, trials, |range, acc| {
            let start = range.start;
            each_distance(points.rows(range), dim, &candidates, |r, c, d| {
                acc[c] += d.min(closest[start + r])
            });
        });
        let mut best = 0;
        for t in 1..trials {
            if totals[t] < totals[best] {
                best = t;
            }
        }
        centres.extend_from_slice(candidates[best]);
        lower(&mut closest, candidates[best]);
    }
    Array2::from_shape_vec((k, dim), centres).expect("k centres of dim values")
}

/// The first index whose running total of `weights` reaches `target`.
fn weighted_pick(weights: &[f64], chunk_totals: &[f64], target: f64) -> usize {
    let mut acc = 0.0;
    for (c, total) in chunk_totals.iter().enumerate() {
        if acc + total >= target {
            for (i, w) in weights[c * CHUNK..].iter().take(CHUNK).enumerate() {
                acc += w;
                if acc >= target && *w > 0.0 {
                    return c * CHUNK + i;
                }
            }
        } else {
            acc += total;
        }
    }
    // Rounding left the target just past the total: the last point with any weight.
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
}

/// Per-point state of Lloyd's passes. The bounds are kept in f32, rounded outward, as
/// they are read and written by every pass: half the memory traffic of f64.
struct Bounds {
    labels: Vec<u32>,
    /// Upper bound on the distance to the point's centre.
    upper: Vec<f32>,
    /// Lower bound on the distance to every other centre.
    lower: Vec<f32>,
}

/// Per-cluster sums and counts of an assignment pass, and the labels it changed. A full
/// pass sums every point; a bounded pass only the changes (each moved point taken from its
/// old cluster and added to its new one), so points that stay are not read at all.
struct PassSums {
    sums: Vec<f64>,
    counts: Vec<i64>,
    changed: u64,
}

impl PassSums {
    fn zero(k: usize, dim: usize) -> Self {
        Self {
            sums: vec![0.0; k * dim],
            counts: vec![0; k],
            changed: 0,
        }
    }

    /// Adds `x` to cluster `j` (`sign` 1) or takes it away (`sign` -1).
    fn add(&mut self, j: usize, x: &[f64], sign: i64) {
        let dim = x.len();
        self.counts[j] += sign;
        for (s, v) in self.sums[j * dim..(j + 1) * dim].iter_mut().zip(x) {
            *s += sign as f64 * v;
        }
    }

    /// Adds `other`'s sums, counts and changes.
    fn merge(&mut self, other: &PassSums) {
        for (t, p) in self.sums.iter_mut().zip(&other.sums) {
            *t += p;
        }
        for (t, p) in self.counts.iter_mut().zip(&other.counts) {
            *t += p;
        }
        self.changed += other.changed;
    }
}

/// Lloyd's iterations from `centres` until no label changes, the centres move less than
/// `tolerance`, or `max_iterations` updates; `copy` screens the passes where there is one.
fn lloyd(
    points: &Points,
    copy: Option<&Quantised>,
    mut centres: Array2<f64>,
    max_iterations: usize,
    tolerance: f64,
) -> Clustering {
    let n = points.len();
    let mut bounds = Bounds {
        labels: vec![0; n],
        upper: vec![f32::INFINITY; n],
        lower: vec![0.0; n],
    };
    let mut pass = assign(
        points,
        copy,
        centres.view(),
        &half_gaps(centres.view()),
        &mut bounds,
        None,
    );
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iterations && !interrupted() {
        super::progress::pass(super::progress::Stage::Lloyd);
        relocate_empty(points, centres.view(), &mut bounds, &mut pass);
        let updated = means(&pass, centres.view());
        let shifts: Vec<f64> = rows(updated.view())
            .zip(rows(centres.view()))
            .map(|(u, c)| sq_dist(u, c).sqrt())
            .collect();
        centres = updated;
        iterations += 1;
        let gaps = half_gaps(centres.view());
        // Labels for the new centres; after the last update too, as scikit-learn does.
        let changes = assign(
            points,
            copy,
            centres.view(),
            &gaps,
            &mut bounds,
            Some(&shifts),
        );
        pass.changed = 0;
        pass.merge(&changes);
        if pass.changed == 0 || shifts.iter().map(|s| s * s).sum::<f64>() <= tolerance {
            converged = true;
            break;
        }
    }
    let (values, dim) = (row_major(centres.view()), centres.ncols());
    let inertia = chunk_sums(n, 1, |range, acc| {
        for i in range {
            let j = bounds.labels[i] as usize;
            acc[0] += sq_dist(points.row(i), &values[j * dim..(j + 1) * dim]);
        }
    })[0];
    Clustering {
        centroids: centres,
        labels: bounds.labels,
        sizes: pass.counts.iter().map(|&c| c as u64).collect(),
        inertia,
        iterations,
        converged,
    }
}

/// The mean of each cluster; a cluster with no points keeps its centre.
fn means(pass: &PassSums, centres: ArrayView2<f64>) -> Array2<f64> {
    let mut out = centres.to_owned();
    for ((mut centre, sums), &count) in out
        .rows_mut()
        .into_iter()
        .zip(pass.sums.chunks_exact(centres.ncols()))
        .zip(&pass.counts)
    {
        if count > 0 {
            for (c, s) in centre.iter_mut().zip(sums) {
                *c = s / count as f64;
            }
        }
    }
    out
}

/// Half the distance from each centre to its nearest other centre: a point closer than
/// that to its centre is closer to it than to any other.
fn half_gaps(centres: ArrayView2<f64>) -> Vec<f64> {
    let k = centres.nrows();
    (0..k)
        .map(|j| {
            let c = row(centres, j);
            (0..k)
                .filter(|&o| o != j)
                .map(|o| sq_dist(c, row(centres, o)))
                .fold(f64::INFINITY, f64::min)
                .sqrt()
                / 2.0
        })
        .collect()
}

/// The rows of a matrix in standard layout, as slices.
fn rows(m: ArrayView2<'_, f64>) -> impl Iterator<Item = &[f64]> {
    (0..m.nrows()).map(move |i| row(m, i))
}

/// How far each centre's bounds drop when the centres move by `shifts`: the largest shift
/// of the other centres.
fn drops(shifts: &[f64]) -> Vec<f64> {
    let (mut first, mut second, mut arg) = (0.0f64, 0.0f64, usize::MAX);
    for (j, &s) in shifts.iter().enumerate() {
        if s > first {
            (second, first, arg) = (first, s, j);
        } else if s > second {
            second = s;
        }
    }
    (0..shifts.len())
        .map(|j| if j == arg { second } else { first })
        .collect()
}

/// Assigns every point to its nearest centre. With `shifts`, how far each centre moved
/// since the last pass, the bounds are loosened by them and only the points they cannot
/// settle are looked at, and the changes to the clusters' sums are returned; without, every
/// point is, and the sums themselves. A block of points with enough to look at is first
/// screened on `copy`; what that cannot settle, and the points of other blocks, are
/// scanned in f64.
fn assign(
    points: &Points,
    copy: Option<&Quantised>,
    centres: ArrayView2<'_, f64>,
    gaps: &[f64],
    bounds: &mut Bounds,
    shifts: Option<&[f64]>,
) -> PassSums {
    let table = CentreTable::new(centres);
    let pass = Pass {
        points: *points,
        centres: centres.to_slice().expect("centres in standard layout"),
        gaps,
        screen: copy.map(|copy| Screen::new(copy, centres)),
        widening: shifts.map(|s| (s, drops(s))),
        // How far `|x|² + |c|² - 2 x·c` can round from the squared distance, relative to
        // (|x| + |c|)²: the bounds must stay on their side of the true distances.
        rounding: (points.dim as f64 + 2.0) * f64::EPSILON,
        reach: table.largest_norm().sqrt(),
        one_block: table.blocks() == 1,
        table,
    };
    let parts: Vec<PassSums> = bounds
        .labels
        .par_chunks_mut(CHUNK)
        .zip(bounds.upper.par_chunks_mut(CHUNK))
        .zip(bounds.lower.par_chunks_mut(CHUNK))
        .enumerate()
        .map(|(c, ((labels, upper), lower))| {
            pass.chunk(
                c * CHUNK,
                ChunkBounds {
                    labels,
                    upper,
                    lower,
                },
            )
        })
        .collect();
    let mut total = PassSums::zero(gaps.len(), points.dim);
    for part in &parts {
        total.merge(part);
    }
    total
}

/// One assignment pass's centres and what it derives from them.
struct Pass<'a> {
    points: Points<'a>,
    /// The centres' values row by row, for the hot loop.
    centres: &'a [f64],
    gaps: &'a [f64],
    table: CentreTable,
    screen: Option<Screen<'a>>,
    /// In a bounded pass, each centre's shift and how far its points' lower bounds drop.
    widening: Option<(&'a [f64], Vec<f64>)>,
    /// How far the f64 scan's squared distances can round, relative to `(|x| + |c|)²`.
    rounding: f64,
    /// The largest `|c|`.
    reach: f64,
    /// Whether the centres fit one block of the f64 scan.
    one_block: bool,
}

/// [`Pass::chunk`]'s body.
struct Chunk<'a, 'b, 'c> {
    pass: &'a Pass<'b>,
    first: usize,
    bounds: ChunkBounds<'c>,
}

impl Kernel for Chunk<'_, '_, '_> {
    type Output = PassSums;

    #[inline(always)]
    fn run<S: Simd>(self) -> PassSums {
        self.pass.chunk_with(self.first, self.bounds)
    }
}

/// The per-point state of one chunk's rows.
struct ChunkBounds<'b> {
    labels: &'b mut [u32],
    upper: &'b mut [f32],
    lower: &'b mut [f32],
}

impl Pass<'_> {
    /// The pass over the rows from `first` on, whose state `bounds` is.
    fn chunk(&self, first: usize, bounds: ChunkBounds) -> PassSums {
        // With AVX-512 a block's bounds stay in vector registers; otherwise the baseline
        // build, whose loops have no multiply-adds to fuse.
        let level = if simd::level().avx512() {
            Level::Avx512
        } else {
            Level::Plain
        };
        simd::dispatch_at(
            level,
            Chunk {
                pass: self,
                first,
                bounds,
            },
        )
    }

    /// Plain loops over the lanes of [`Block`]s, compiled twice: with AVX-512, where a
    /// block's bounds stay in vector registers, and without.
    #[inline(always)]
    fn chunk_with(&self, first: usize, bounds: ChunkBounds) -> PassSums {
        let ChunkBounds {
            labels,
            upper,
            lower,
        } = bounds;
        let dim = self.points.dim;
        let rows = self.points.rows(first..first + labels.len());
        let mut part = PassSums::zero(self.gaps.len(), dim);
        // Rows that changed cluster, as (row, old, new). Their f64 rows are asked for as they
        // are found and added in at the end of the chunk, by when they are in the cache: a
        // bounded pass reads no other f64 rows, and waiting for each in turn would leave it
        // bound by memory latency.
        let mut moves = Vec::new();
        // Rows left to the f64 scan.
        let mut exact = Vec::new();
        let mut values = vec![[0.0f32; LANES]; dim];
        for start in (0..labels.len()).step_by(LANES) {
            if let Some(screen) = &self.screen {
                screen.prefetch((first + start) / LANES + PREFETCH_BLOCKS);
            }
            let lanes = start..labels.len().min(start + LANES);
            let mut block = Block::load(
                &labels[lanes.clone()],
                &upper[lanes.clone()],
                &lower[lanes.clone()],
            );
            let mut open = match &self.widening {
                Some((shifts, drops)) => block.widen(shifts, drops, self.gaps),
                None => block.valid,
            };
            // With one block of centres a scan costs what this one distance does.
            if !self.one_block {
                for l in bits(open) {
                    let a = block.labels[l] as usize;
                    let x = &rows[(start + l) * dim..(start + l + 1) * dim];
                    block.upper[l] = sq_dist(x, &self.centres[a * dim..(a + 1) * dim]).sqrt();
                    if block.upper[l] <= self.gaps[a].max(block.lower[l]) {
                        open &= !(1 << l);
                    }
                }
            }
            let screen = self
                .screen
                .as_ref()
                .filter(|s| open.count_ones() as usize >= s.worth_from());
            if let Some(screen) = screen {
                let found = screen.scan((first + start) / LANES, &mut values);
                let old = block.labels;
                let proven = block.settle(&found);
                for l in bits(block.valid & proven) {
                    if old[l] != block.labels[l] {
                        let r = start + l;
                        prefetch(&rows[r * dim..(r + 1) * dim]);
                        moves.push((r, old[l] as usize, block.labels[l] as usize));
                    }
                }
                open &= !proven;
            }
            exact.extend(bits(open).map(|l| start + l));
            block.store(
                &mut labels[lanes.clone()],
                &mut upper[lanes.clone()],
                &mut lower[lanes],
            );
        }
        for tile in exact.chunks(POINTS) {
            // A short last tile repeats its last row.
            let found = self.table.nearest(std::array::from_fn(|p| {
                let r = tile[p.min(tile.len() - 1)];
                &rows[r * dim..(r + 1) * dim]
            }));
            for (&r, near) in tile.iter().zip(found) {
                let x = &rows[r * dim..(r + 1) * dim];
                let square = dot(x, x);
                let slack = self.rounding * (square.sqrt() + self.reach).powi(2);
                upper[r] = outward_up((near.first + square + slack).max(0.0).sqrt());
                lower[r] = outward_down((near.second + square - slack).max(0.0).sqrt());
                let old = labels[r] as usize;
                if old != near.centre {
                    labels[r] = near.centre as u32;
                    moves.push((r, old, near.centre));
                }
            }
        }
        part.changed = moves.len() as u64;
        if self.widening.is_some() {
            for (r, old, new) in moves {
                let x = &rows[r * dim..(r + 1) * dim];
                part.add(old, x, -1);
                part.add(new, x, 1);
            }
        } else {
            for (r, x) in rows.chunks_exact(dim).enumerate() {
                part.add(labels[r] as usize, x, 1);
            }
        }
        part
    }
}

/// How far a bound is moved outward when stored in f32: more than its rounding, 2⁻²⁴
/// relative, and f32's smallest normal number absolute, for distances in its subnormal
/// range. Bounds loosen by at most 2⁻²² relative per pass, far less than centres move.
const OUTWARD: f64 = 1.0 / (1u64 << 22) as f64;

/// An upper bound `x ≥ 0` in f32, at or above it (infinite past f32's range).
#[inline(always)]
fn outward_up(x: f64) -> f32 {
    (x * (1.0 + OUTWARD) + f64::from(f32::MIN_POSITIVE)) as f32
}

/// A lower bound in f32, at or below it: never negative, as distances are not, and never
/// past f32's range.
#[inline(always)]
fn outward_down(x: f64) -> f32 {
    let x = x * (1.0 - OUTWARD) - f64::from(f32::MIN_POSITIVE);
    let x = if x > 0.0 { x } else { 0.0 };
    (if x < f64::from(f32::MAX) {
        x
    } else {
        f64::from(f32::MAX)
    }) as f32
}

/// The lanes set in `mask`, lowest first.
#[inline(always)]
fn bits(mut mask: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let l = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            l
        })
    })
}

/// The state of up to [`LANES`] consecutive points in fixed arrays, which the compiler
/// keeps in vector registers; lanes past the end of the rows are padding, never valid.
struct Block {
    labels: [u32; LANES],
    upper: [f64; LANES],
    lower: [f64; LANES],
    /// The mask of the lanes that hold points.
    valid: u32,
}

impl Block {
    #[inline(always)]
    fn load(labels: &[u32], upper: &[f32], lower: &[f32]) -> Self {
        let mut block = Block {
            labels: [0; LANES],
            upper: [f64::INFINITY; LANES],
            lower: [0.0; LANES],
            valid: u32::MAX >> (32 - labels.len()),
        };
        block.labels[..labels.len()].copy_from_slice(labels);
        for (b, u) in block.upper.iter_mut().zip(upper) {
            *b = f64::from(*u);
        }
        for (b, l) in block.lower.iter_mut().zip(lower) {
            *b = f64::from(*l);
        }
        block
    }

    #[inline(always)]
    fn store(&self, labels: &mut [u32], upper: &mut [f32], lower: &mut [f32]) {
        labels.copy_from_slice(&self.labels[..labels.len()]);
        for (u, b) in upper.iter_mut().zip(&self.upper) {
            *u = outward_up(*b);
        }
        for (l, b) in lower.iter_mut().zip(&self.lower) {
            *l = outward_down(*b);
        }
    }

    /// Loosens the bounds by the centres' `shifts` and `drops`; the mask of the lanes they
    /// no longer settle.
    #[inline(always)]
    fn widen(&mut self, shifts: &[f64], drops: &[f64], gaps: &[f64]) -> u32 {
        let k = shifts.len();
        assert!(drops.len() == k && gaps.len() == k, "a value per centre");
        assert!(
            self.labels.iter().all(|&a| (a as usize) < k),
            "labels of centres"
        );
        let mut open = 0;
        for l in 0..LANES {
            let a = self.labels[l] as usize;
            // SAFETY: every label is below `k`, the length of the three, as checked above.
            let (shift, drop, gap) = unsafe {
                (
                    *shifts.get_unchecked(a),
                    *drops.get_unchecked(a),
                    *gaps.get_unchecked(a),
                )
            };
            self.upper[l] += shift;
            self.lower[l] -= drop;
            let bound = if gap > self.lower[l] {
                gap
            } else {
                self.lower[l]
            };
            open |= u32::from(self.upper[l] > bound) << l;
        }
        open & self.valid
    }

    /// Takes the screen's answers where they are proven: label and bounds, the tighter of
    /// old and new where the label stays. The mask of the proven lanes.
    #[inline(always)]
    fn settle(&mut self, found: &Found) -> u32 {
        let mut proven = 0;
        for l in 0..LANES {
            let (near, far) = (found.upper[l], found.lower[l]);
            let same = self.labels[l] == found.centre[l];
            let up = if same && self.upper[l] < near {
                self.upper[l]
            } else {
                near
            };
            let low = if same && self.lower[l] > far {
                self.lower[l]
            } else {
                far
            };
            let take = near < far;
            self.upper[l] = if take { up } else { self.upper[l] };
            self.lower[l] = if take { low } else { self.lower[l] };
            self.labels[l] = if take {
                found.centre[l]
            } else {
                self.labels[l]
            };
            proven |= u32::from(take) << l;
        }
        proven
    }
}

/// Gives each empty cluster the point farthest from its centre (as scikit-learn does),
/// moving that point's contribution to the sums; the bounds are reset.
fn relocate_empty(
    points: &Points,
    centres: ArrayView2<f64>,
    bounds: &mut Bounds,
    pass: &mut PassSums,
) {
    let empty: Vec<usize> = (0..pass.counts.len())
        .filter(|&j| pass.counts[j] == 0)
        .collect();
    if empty.is_empty() {
        return;
    }
    let (values, dim) = (row_major(centres), points.dim);
    let mut far: Vec<(f64, usize)> = (0..points.len())
        .into_par_iter()
        .with_min_len(CHUNK)
        .map(|i| {
            let a = bounds.labels[i] as usize;
            (sq_dist(points.row(i), &values[a * dim..(a + 1) * dim]), i)
        })
        .collect();
    // Farthest first; the lower index among equals.
    far.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    let mut moved = 0;
    for j in empty {
        // A point that is alone in its cluster stays, or that cluster would empty.
        while pass.counts[bounds.labels[far[moved].1] as usize] < 2 {
            moved += 1;
        }
        let i = far[moved].1;
        moved += 1;
        let old = bounds.labels[i] as usize;
        let x = points.row(i);
        pass.add(old, x, -1);
        pass.counts[j] = 1;
        pass.sums[j * dim..(j + 1) * dim].copy_from_slice(x);
        bounds.labels[i] = j as u32;
    }
    bounds.upper.fill(f32::INFINITY);
    bounds.lower.fill(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::interrupt::Interrupt;
    use crate::kernels::nearest::nearest_two;

    /// Three tight, well separated groups of 100 points in 2-D.
    fn blobs() -> Vec<f64> {
        let mut rng = Rng::keyed(1, 2, 3);
        let mut data = Vec::new();
        for centre in [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]] {
            for _ in 0..100 {
                data.push(centre[0] + rng.normal() * 0.5);
                data.push(centre[1] + rng.normal() * 0.5);
            }
        }
        data
    }

    #[test]
    fn finds_planted_groups() {
        let data = blobs();
        let points = Points::new(&data, 2);
        let fit = kmeans(
            &points,
            &KMeansOptions {
                k: 3,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(fit.converged);
        let mut sizes = fit.sizes.clone();
        sizes.sort();
        assert_eq!(sizes, vec![100, 100, 100]);
        for g in 0..3 {
            let first = fit.labels[g * 100];
            assert!(
                fit.labels[g * 100..(g + 1) * 100]
                    .iter()
                    .all(|&l| l == first)
            );
        }
    }

    #[test]
    fn same_result_with_one_thread() {
        let mut rng = Rng::keyed(9, 9, 9);
        let data: Vec<f64> = (0..20_000 * 3).map(|_| rng.normal()).collect();
        let points = Points::new(&data, 3);
        let options = KMeansOptions {
            k: 7,
            ..Default::default()
        };
        let many = kmeans(&points, &options).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let one = pool.install(|| kmeans(&points, &options).unwrap());
        assert_eq!(many, one);
    }

    #[test]
    fn bounds_change_nothing() {
        // The pruned passes give what full passes give, with one block of centres and more.
        let mut rng = Rng::keyed(5, 5, 5);
        let data: Vec<f64> = (0..5_000 * 4).map(|_| rng.normal()).collect();
        let points = Points::new(&data, 4);
        for k in [6, 13] {
            let fit = kmeans(
                &points,
                &KMeansOptions {
                    k,
                    n_init: 1,
                    ..Default::default()
                },
            )
            .unwrap();
            assert!(fit.iterations > 3, "the bounds were used");
            for i in 0..points.len() {
                let (j, _, _) = nearest_two(points.row(i), fit.centroids.as_slice().unwrap());
                assert_eq!(fit.labels[i] as usize, j);
            }
        }
    }

    #[test]
    fn an_interrupted_fit_stops_at_its_next_pass() {
        let mut rng = Rng::keyed(3, 3, 3);
        let data: Vec<f64> = (0..2_000 * 2).map(|_| rng.normal()).collect();
        let points = Points::new(&data, 2);
        let options = KMeansOptions {
            k: 20,
            n_init: 100,
            ..Default::default()
        };
        let interrupt = Interrupt::default();
        interrupt.raise();
        let fit = interrupt.during(|| kmeans(&points, &options)).unwrap();
        assert_eq!(fit.iterations, 0);
        assert!(!fit.converged);
    }

    #[test]
    fn too_few_distinct_rows() {
        let data = vec![1.0, 2.0, 1.0, 2.0, 3.0, 4.0];
        let points = Points::new(&data, 2);
        let e = kmeans(
            &points,
            &KMeansOptions {
                k: 3,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e, KMeansError::TooFewDistinct { k: 3, distinct: 2 });
        let fit = kmeans(
            &points,
            &KMeansOptions {
                k: 2,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(fit.inertia, 0.0);
    }
}
