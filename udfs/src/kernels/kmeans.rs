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

use super::distance::{CentreTable, POINTS, dot, each_distance, sq_dist};
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
    /// `|x|²` per point, for distances from dot products.
    squares: Vec<f64>,
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
        squares: points
            .data
            .par_chunks(CHUNK * dim)
            .flat_map_iter(|rows| rows.chunks_exact(dim).map(|x| dot(x, x)))
            .collect(),
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
        let changes = assign(points, &centres, &gaps, &mut bounds, false);
        pass.changed = 0;
        pass.merge(&changes);
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
        sizes: pass.counts.iter().map(|&c| c as u64).collect(),
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
/// cannot tell (every point when `full`). A full pass returns the clusters' sums; a bounded
/// one the changes to them.
fn assign(
    points: &Points,
    centres: &[f64],
    gaps: &[f64],
    bounds: &mut Bounds,
    full: bool,
) -> PassSums {
    let dim = points.dim;
    let k = gaps.len();
    let table = CentreTable::new(centres, dim);
    let centre = |j: usize| &centres[j * dim..(j + 1) * dim];
    // How far `|x|² + |c|² - 2 x·c` can round from the squared distance, relative to
    // (|x| + |c|)²: the bounds must stay on their side of the true distances.
    let rounding = (dim as f64 + 2.0) * f64::EPSILON;
    let reach = table.largest_norm().sqrt();
    let squares = &bounds.squares;
    let one_block = table.blocks() == 1;
    let parts: Vec<PassSums> = bounds
        .labels
        .par_chunks_mut(CHUNK)
        .zip(bounds.upper.par_chunks_mut(CHUNK))
        .zip(bounds.lower.par_chunks_mut(CHUNK))
        .enumerate()
        .map(|(c, ((labels, upper), lower))| {
            let rows = points.rows(c * CHUNK..c * CHUNK + labels.len());
            let squares = &squares[c * CHUNK..c * CHUNK + labels.len()];
            let row = |r: usize| &rows[r * dim..(r + 1) * dim];
            // The rows the bounds cannot settle, scanned in tiles below.
            let mut unsettled = Vec::with_capacity(if full { labels.len() } else { 0 });
            for r in 0..labels.len() {
                if full {
                    unsettled.push(r);
                    continue;
                }
                let bound = gaps[labels[r] as usize].max(lower[r]);
                if upper[r] > bound {
                    // With one block of centres a scan costs what this one distance does.
                    if !one_block {
                        upper[r] = sq_dist(row(r), centre(labels[r] as usize)).sqrt();
                    }
                    if one_block || upper[r] > bound {
                        unsettled.push(r);
                    }
                }
            }
            let mut part = PassSums::zero(k, dim);
            for tile in unsettled.chunks(POINTS) {
                // A short last tile repeats its last row.
                let found =
                    table.nearest(std::array::from_fn(|p| row(tile[p.min(tile.len() - 1)])));
                for (&r, near) in tile.iter().zip(found) {
                    let x = row(r);
                    let old = labels[r] as usize;
                    let slack = rounding * (squares[r].sqrt() + reach).powi(2);
                    upper[r] = (near.first + squares[r] + slack).max(0.0).sqrt();
                    lower[r] = (near.second + squares[r] - slack).max(0.0).sqrt();
                    if old != near.centre {
                        part.changed += 1;
                        labels[r] = near.centre as u32;
                        if !full {
                            part.add(old, x, -1);
                            part.add(near.centre, x, 1);
                        }
                    }
                }
            }
            if full {
                for (r, &label) in labels.iter().enumerate() {
                    part.add(label as usize, row(r), 1);
                }
            }
            part
        })
        .collect();
    let mut total = PassSums::zero(k, dim);
    for part in &parts {
        total.merge(part);
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
        pass.add(old, x, -1);
        pass.counts[j] = 1;
        pass.sums[j * dim..(j + 1) * dim].copy_from_slice(x);
        bounds.labels[i] = j as u32;
    }
    bounds.upper.fill(f64::INFINITY);
    bounds.lower.fill(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::distance::nearest_two;

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
                let (j, _, _) = nearest_two(points.row(i), &fit.centroids);
                assert_eq!(fit.labels[i] as usize, j);
            }
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
