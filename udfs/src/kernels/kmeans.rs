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

use std::ops::Range;

use rayon::prelude::*;

use super::gram::{MulAdd, Plain};
use super::rng::Rng;

/// Rows per chunk of a parallel pass.
const CHUNK: usize = 2048;

/// Points as the rows of a row-major `len × dim` matrix.
#[derive(Debug, Clone, Copy)]
pub struct Points<'a> {
    pub data: &'a [f64],
    pub dim: usize,
}

impl<'a> Points<'a> {
    pub fn new(data: &'a [f64], dim: usize) -> Self {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "a row-major matrix"
        );
        Self { data, dim }
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn row(&self, i: usize) -> &'a [f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows of a chunk.
    fn rows(&self, range: Range<usize>) -> &'a [f64] {
        &self.data[range.start * self.dim..range.end * self.dim]
    }
}

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
    /// Row-major `k × dim`.
    pub centroids: Vec<f64>,
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
    let k = options.k;
    if k == 0 {
        return Err(KMeansError::NoClusters);
    }
    let distinct = distinct_rows(points, k);
    if distinct < k {
        return Err(KMeansError::TooFewDistinct { k, distinct });
    }
    let tolerance = options.tolerance * mean_variance(points);
    let mut best: Option<Clustering> = None;
    for run in 0..options.n_init.max(1) {
        let mut rng = Rng::keyed(options.seed, 0x6B6D_6561_6E73, run as u64);
        let start = plus_plus(points, k, &mut rng);
        let fit = lloyd(points, start, options.max_iterations, tolerance);
        if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
            best = Some(fit);
        }
    }
    best.ok_or(KMeansError::NoClusters)
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

/// The mean over columns of each column's variance.
fn mean_variance(points: &Points) -> f64 {
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
    squares.iter().sum::<f64>() / (n as f64 * dim as f64)
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
fn plus_plus(points: &Points, k: usize, rng: &mut Rng) -> Vec<f64> {
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
    centres
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

/// Per-point state of Lloyd's passes.
struct Bounds {
    labels: Vec<u32>,
    /// Upper bound on the distance to the point's centre.
    upper: Vec<f64>,
    /// Lower bound on the distance to every other centre.
    lower: Vec<f64>,
}

/// What one assignment pass adds up: per-cluster sums and counts, and labels changed.
struct PassSums {
    sums: Vec<f64>,
    counts: Vec<u64>,
    changed: u64,
}

/// Lloyd's iterations from `centres` until no label changes, the centres move less than
/// `tolerance`, or `max_iterations` updates.
fn lloyd(
    points: &Points,
    mut centres: Vec<f64>,
    max_iterations: usize,
    tolerance: f64,
) -> Clustering {
    let (n, dim) = (points.len(), points.dim);
    let k = centres.len() / dim;
    let mut bounds = Bounds {
        labels: vec![0; n],
        upper: vec![f64::INFINITY; n],
        lower: vec![0.0; n],
    };
    let mut pass = assign(
        points,
        &centres,
        &half_gaps(&centres, dim),
        &mut bounds,
        true,
    );
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iterations {
        relocate_empty(points, &centres, &mut bounds, &mut pass);
        let updated = means(&pass, &centres, dim);
        let shifts: Vec<f64> = (0..k)
            .map(|j| {
                sq_dist(
                    &updated[j * dim..(j + 1) * dim],
                    &centres[j * dim..(j + 1) * dim],
                )
                .sqrt()
            })
            .collect();
        centres = updated;
        iterations += 1;
        let moved: f64 = shifts.iter().map(|s| s * s).sum();
        let gaps = half_gaps(&centres, dim);
        if moved <= tolerance {
            // Labels for the final centres, as scikit-learn does after stopping.
            converged = true;
            pass = assign(points, &centres, &gaps, &mut bounds, true);
            break;
        }
        widen(&mut bounds, &shifts);
        pass = assign(points, &centres, &gaps, &mut bounds, false);
        if pass.changed == 0 {
            converged = true;
            break;
        }
    }
    let inertia = chunk_sums(n, 1, |range, acc| {
        for i in range {
            let j = bounds.labels[i] as usize;
            acc[0] += sq_dist(points.row(i), &centres[j * dim..(j + 1) * dim]);
        }
    })[0];
    Clustering {
        centroids: centres,
        labels: bounds.labels,
        sizes: pass.counts,
        inertia,
        iterations,
        converged,
    }
}

/// The mean of each cluster; a cluster with no points keeps its centre.
fn means(pass: &PassSums, centres: &[f64], dim: usize) -> Vec<f64> {
    let mut out = centres.to_vec();
    for (j, &count) in pass.counts.iter().enumerate() {
        if count > 0 {
            for d in 0..dim {
                out[j * dim + d] = pass.sums[j * dim + d] / count as f64;
            }
        }
    }
    out
}

/// Half the distance from each centre to its nearest other centre: a point closer than
/// that to its centre is closer to it than to any other.
fn half_gaps(centres: &[f64], dim: usize) -> Vec<f64> {
    let k = centres.len() / dim;
    (0..k)
        .map(|j| {
            let c = &centres[j * dim..(j + 1) * dim];
            (0..k)
                .filter(|&o| o != j)
                .map(|o| sq_dist(c, &centres[o * dim..(o + 1) * dim]))
                .fold(f64::INFINITY, f64::min)
                .sqrt()
                / 2.0
        })
        .collect()
}

/// Loosens the bounds by how far the centres moved.
fn widen(bounds: &mut Bounds, shifts: &[f64]) {
    let (mut first, mut second, mut arg) = (0.0f64, 0.0f64, usize::MAX);
    for (j, &s) in shifts.iter().enumerate() {
        if s > first {
            (second, first, arg) = (first, s, j);
        } else if s > second {
            second = s;
        }
    }
    bounds
        .labels
        .par_iter()
        .zip(bounds.upper.par_iter_mut())
        .zip(bounds.lower.par_iter_mut())
        .with_min_len(CHUNK)
        .for_each(|((&a, u), l)| {
            *u += shifts[a as usize];
            *l -= if a as usize == arg { second } else { first };
        });
}

/// Assigns every point to its nearest centre, computing distances only where the bounds
/// cannot tell (every point when `full`), and sums the clusters.
fn assign(
    points: &Points,
    centres: &[f64],
    gaps: &[f64],
    bounds: &mut Bounds,
    full: bool,
) -> PassSums {
    let dim = points.dim;
    let k = gaps.len();
    let norms: Vec<f64> = centres.chunks_exact(dim).map(|c| dot(c, c)).collect();
    let parts: Vec<PassSums> = bounds
        .labels
        .par_chunks_mut(CHUNK)
        .zip(bounds.upper.par_chunks_mut(CHUNK))
        .zip(bounds.lower.par_chunks_mut(CHUNK))
        .enumerate()
        .map(|(c, ((labels, upper), lower))| {
            let rows = points.rows(c * CHUNK..c * CHUNK + labels.len());
            let mut part = PassSums {
                sums: vec![0.0; k * dim],
                counts: vec![0; k],
                changed: 0,
            };
            for (r, x) in rows.chunks_exact(dim).enumerate() {
                let a = labels[r] as usize;
                let bound = gaps[a].max(lower[r]);
                let mut label = a;
                if full || upper[r] > bound {
                    let tight = if full {
                        f64::INFINITY
                    } else {
                        sq_dist(x, &centres[a * dim..(a + 1) * dim]).sqrt()
                    };
                    upper[r] = tight;
                    if full || tight > bound {
                        let (j, d2) = nearest_by_dots(x, centres, &norms);
                        label = j;
                        upper[r] = sq_dist(x, &centres[j * dim..(j + 1) * dim]).sqrt();
                        // Dot products round differently from differences: keep the lower
                        // bound below the true distance.
                        lower[r] = d2.max(0.0).sqrt() * (1.0 - 1e-9);
                    }
                }
                if label != a || full {
                    part.changed += u64::from(label != a);
                    labels[r] = label as u32;
                }
                part.counts[label] += 1;
                for (s, v) in part.sums[label * dim..(label + 1) * dim].iter_mut().zip(x) {
                    *s += v;
                }
            }
            part
        })
        .collect();
    let mut total = PassSums {
        sums: vec![0.0; k * dim],
        counts: vec![0; k],
        changed: 0,
    };
    for part in parts {
        for (t, p) in total.sums.iter_mut().zip(&part.sums) {
            *t += p;
        }
        for (t, p) in total.counts.iter_mut().zip(&part.counts) {
            *t += p;
        }
        total.changed += part.changed;
    }
    total
}

/// Gives each empty cluster the point farthest from its centre (as scikit-learn does),
/// moving that point's contribution to the sums; the bounds are reset.
fn relocate_empty(points: &Points, centres: &[f64], bounds: &mut Bounds, pass: &mut PassSums) {
    let empty: Vec<usize> = (0..pass.counts.len())
        .filter(|&j| pass.counts[j] == 0)
        .collect();
    if empty.is_empty() {
        return;
    }
    let dim = points.dim;
    let mut far: Vec<(f64, usize)> = (0..points.len())
        .into_par_iter()
        .with_min_len(CHUNK)
        .map(|i| {
            let a = bounds.labels[i] as usize;
            (sq_dist(points.row(i), &centres[a * dim..(a + 1) * dim]), i)
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
        pass.counts[old] -= 1;
        pass.counts[j] = 1;
        for (s, v) in pass.sums[old * dim..(old + 1) * dim].iter_mut().zip(x) {
            *s -= v;
        }
        pass.sums[j * dim..(j + 1) * dim].copy_from_slice(x);
        bounds.labels[i] = j as u32;
    }
    bounds.upper.fill(f64::INFINITY);
    bounds.lower.fill(0.0);
}

/// Squared Euclidean distance.
pub fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if fused() {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { sq_dist_fma(a, b) };
    }
    sq_dist_with::<Plain>(a, b)
}

/// The nearest centre of `x`, its squared distance and the squared distance to the second
/// nearest (infinite with one centre).
pub fn nearest_two(x: &[f64], centres: &[f64]) -> (usize, f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if fused() {
        // SAFETY: as in `sq_dist`.
        return unsafe { nearest_two_fma(x, centres) };
    }
    nearest_two_with(x, centres, sq_dist_with::<Plain>)
}

/// Calls `f(r, t, d)` with the squared distance `d` of each row `r` of the row-major `rows`
/// to each of `targets`, the kernel chosen once for all of them.
fn each_distance(
    rows: &[f64],
    dim: usize,
    targets: &[&[f64]],
    mut f: impl FnMut(usize, usize, f64),
) {
    #[cfg(target_arch = "x86_64")]
    if fused() {
        // SAFETY: as in `sq_dist`.
        unsafe { each_distance_fma(rows, dim, targets, &mut f) };
        return;
    }
    each_distance_with(rows, dim, targets, &mut f, sq_dist_with::<Plain>);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn each_distance_fma(
    rows: &[f64],
    dim: usize,
    targets: &[&[f64]],
    f: &mut impl FnMut(usize, usize, f64),
) {
    each_distance_with(rows, dim, targets, f, |a, b| avx2::sq_dist(a, b));
}

#[inline(always)]
fn each_distance_with(
    rows: &[f64],
    dim: usize,
    targets: &[&[f64]],
    f: &mut impl FnMut(usize, usize, f64),
    sq_dist: impl Fn(&[f64], &[f64]) -> f64,
) {
    for (r, x) in rows.chunks_exact(dim).enumerate() {
        for (t, target) in targets.iter().enumerate() {
            f(r, t, sq_dist(x, target));
        }
    }
}

/// The nearest centre of `x` and the squared distance to the second nearest, from
/// `|x|² - 2 x·c + |c|²` with the centres' squared norms given: one multiply-add per value
/// instead of a subtraction and a multiply-add, eight centres at a time so each value of `x`
/// is loaded once for eight and eight independent sums keep both FMA units busy. For the full scans of Lloyd's passes, where speed matters and
/// the caller recomputes the distance it keeps.
fn nearest_by_dots(x: &[f64], centres: &[f64], norms: &[f64]) -> (usize, f64) {
    #[cfg(target_arch = "x86_64")]
    if fused() {
        // SAFETY: as in `sq_dist`.
        return unsafe { nearest_by_dots_fma(x, centres, norms) };
    }
    nearest_by_dots_with(
        x,
        centres,
        norms,
        |x, block| {
            let (low, high) = block.split_at(4 * x.len());
            let (a, b) = (dots4::<Plain>(x, low), dots4::<Plain>(x, high));
            std::array::from_fn(|i| if i < 4 { a[i] } else { b[i - 4] })
        },
        dot_with::<Plain>,
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn nearest_by_dots_fma(x: &[f64], centres: &[f64], norms: &[f64]) -> (usize, f64) {
    nearest_by_dots_with(
        x,
        centres,
        norms,
        |a, b| avx2::dots::<8>(a, b),
        |a, b| avx2::dot(a, b),
    )
}

#[inline(always)]
fn nearest_by_dots_with(
    x: &[f64],
    centres: &[f64],
    norms: &[f64],
    dots8: impl Fn(&[f64], &[f64]) -> [f64; 8],
    dot: impl Fn(&[f64], &[f64]) -> f64,
) -> (usize, f64) {
    let dim = x.len();
    let (mut best, mut d1, mut d2) = (0, f64::INFINITY, f64::INFINITY);
    let mut consider = |j: usize, xc: f64| {
        let d = norms[j] - 2.0 * xc;
        if d < d1 {
            (best, d2, d1) = (j, d1, d);
        } else if d < d2 {
            d2 = d;
        }
    };
    let mut blocks = centres.chunks_exact(8 * dim);
    let mut j = 0;
    for block in &mut blocks {
        let dots = dots8(x, block);
        for (b, xc) in dots.into_iter().enumerate() {
            consider(j + b, xc);
        }
        j += 8;
    }
    for c in blocks.remainder().chunks_exact(dim) {
        consider(j, dot(x, c));
        j += 1;
    }
    // The ranking needs no |x|²; the distance does.
    let xx = dot(x, x);
    (best, d2 + xx)
}

/// `x · c` for four centres stored one after another.
#[inline(always)]
fn dots4<M: MulAdd>(x: &[f64], block: &[f64]) -> [f64; 4] {
    let dim = x.len();
    let c: [&[f64]; 4] = std::array::from_fn(|b| &block[b * dim..(b + 1) * dim]);
    let mut acc = [[0.0; 4]; 4];
    let (x4, x_rest) = x.as_chunks::<4>();
    for (i, xs) in x4.iter().enumerate() {
        for b in 0..4 {
            let cs = &c[b][i * 4..i * 4 + 4];
            for l in 0..4 {
                acc[b][l] = M::mul_add(xs[l], cs[l], acc[b][l]);
            }
        }
    }
    let tail = x4.len() * 4;
    std::array::from_fn(|b| {
        let mut sum = (acc[b][0] + acc[b][2]) + (acc[b][1] + acc[b][3]);
        for (i, v) in x_rest.iter().enumerate() {
            sum = M::mul_add(*v, c[b][tail + i], sum);
        }
        sum
    })
}

/// `a · b`.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if fused() {
        // SAFETY: as in `sq_dist`.
        return unsafe { dot_fma(a, b) };
    }
    dot_with::<Plain>(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_fma(a: &[f64], b: &[f64]) -> f64 {
    avx2::dot(a, b)
}

#[inline(always)]
fn dot_with<M: MulAdd>(a: &[f64], b: &[f64]) -> f64 {
    let (a4, a_rest) = a.as_chunks::<4>();
    let (b4, b_rest) = b.as_chunks::<4>();
    let mut acc = [0.0; 4];
    for (x, y) in a4.iter().zip(b4) {
        for l in 0..4 {
            acc[l] = M::mul_add(x[l], y[l], acc[l]);
        }
    }
    let mut sum = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum = M::mul_add(*x, *y, sum);
    }
    sum
}

#[cfg(target_arch = "x86_64")]
fn fused() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sq_dist_fma(a: &[f64], b: &[f64]) -> f64 {
    avx2::sq_dist(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn nearest_two_fma(x: &[f64], centres: &[f64]) -> (usize, f64, f64) {
    nearest_two_with(x, centres, |a, b| avx2::sq_dist(a, b))
}

#[inline(always)]
fn nearest_two_with(
    x: &[f64],
    centres: &[f64],
    sq_dist: impl Fn(&[f64], &[f64]) -> f64,
) -> (usize, f64, f64) {
    let (mut best, mut d1, mut d2) = (0, f64::INFINITY, f64::INFINITY);
    for (j, c) in centres.chunks_exact(x.len()).enumerate() {
        let d = sq_dist(x, c);
        if d < d1 {
            (best, d2, d1) = (j, d1, d);
        } else if d < d2 {
            d2 = d;
        }
    }
    (best, d1, d2)
}

/// Four independent partial sums, so the loop vectorises.
#[inline(always)]
fn sq_dist_with<M: MulAdd>(a: &[f64], b: &[f64]) -> f64 {
    let (a4, a_rest) = a.as_chunks::<4>();
    let (b4, b_rest) = b.as_chunks::<4>();
    let mut acc = [0.0; 4];
    for (x, y) in a4.iter().zip(b4) {
        for l in 0..4 {
            let d = x[l] - y[l];
            acc[l] = M::mul_add(d, d, acc[l]);
        }
    }
    let mut sum = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for (x, y) in a_rest.iter().zip(b_rest) {
        let d = x - y;
        sum = M::mul_add(d, d, sum);
    }
    sum
}

/// The distance kernels with explicit AVX2 registers: the compiler's own vectorisation of
/// the generic ones leaves them several times slower than the FMA units allow.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// The sum of the four lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn lanes(v: __m256d) -> f64 {
        let halves = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        _mm_cvtsd_f64(_mm_add_sd(halves, _mm_unpackhi_pd(halves, halves)))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len().min(b.len());
        let (mut acc0, mut acc1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n, the length of both slices.
            let (d0, d1) = unsafe {
                (
                    _mm256_sub_pd(
                        _mm256_loadu_pd(a.as_ptr().add(i)),
                        _mm256_loadu_pd(b.as_ptr().add(i)),
                    ),
                    _mm256_sub_pd(
                        _mm256_loadu_pd(a.as_ptr().add(i + 4)),
                        _mm256_loadu_pd(b.as_ptr().add(i + 4)),
                    ),
                )
            };
            acc0 = _mm256_fmadd_pd(d0, d0, acc0);
            acc1 = _mm256_fmadd_pd(d1, d1, acc1);
            i += 8;
        }
        let mut sum = lanes(_mm256_add_pd(acc0, acc1));
        while i < n {
            let d = a[i] - b[i];
            sum = d.mul_add(d, sum);
            i += 1;
        }
        sum
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len().min(b.len());
        let (mut acc0, mut acc1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n, the length of both slices.
            unsafe {
                acc0 = _mm256_fmadd_pd(
                    _mm256_loadu_pd(a.as_ptr().add(i)),
                    _mm256_loadu_pd(b.as_ptr().add(i)),
                    acc0,
                );
                acc1 = _mm256_fmadd_pd(
                    _mm256_loadu_pd(a.as_ptr().add(i + 4)),
                    _mm256_loadu_pd(b.as_ptr().add(i + 4)),
                    acc1,
                );
            }
            i += 8;
        }
        let mut sum = lanes(_mm256_add_pd(acc0, acc1));
        while i < n {
            sum = a[i].mul_add(b[i], sum);
            i += 1;
        }
        sum
    }

    /// `x · c` for `N` centres stored one after another in `block`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dots<const N: usize>(x: &[f64], block: &[f64]) -> [f64; N] {
        let dim = x.len();
        assert!(block.len() >= N * dim, "N centres");
        let mut acc = [_mm256_setzero_pd(); N];
        let mut i = 0;
        while i + 4 <= dim {
            // SAFETY: i + 4 <= dim; centre b spans block[b * dim..(b + 1) * dim].
            unsafe {
                let xv = _mm256_loadu_pd(x.as_ptr().add(i));
                for (b, a) in acc.iter_mut().enumerate() {
                    let cv = _mm256_loadu_pd(block.as_ptr().add(b * dim + i));
                    *a = _mm256_fmadd_pd(xv, cv, *a);
                }
            }
            i += 4;
        }
        let mut out = acc.map(|v| lanes(v));
        for (b, o) in out.iter_mut().enumerate() {
            for t in i..dim {
                *o = x[t].mul_add(block[b * dim + t], *o);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // The pruned passes give what full passes give.
        let mut rng = Rng::keyed(5, 5, 5);
        let data: Vec<f64> = (0..5_000 * 4).map(|_| rng.normal()).collect();
        let points = Points::new(&data, 4);
        let fit = kmeans(
            &points,
            &KMeansOptions {
                k: 6,
                n_init: 1,
                ..Default::default()
            },
        )
        .unwrap();
        for i in 0..points.len() {
            let (j, _, _) = nearest_two(points.row(i), &fit.centroids);
            assert_eq!(fit.labels[i] as usize, j);
        }
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
