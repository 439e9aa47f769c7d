//! How good a clustering is: the silhouette and the Davies–Bouldin index, defined as
//! scikit-learn's `silhouette_score` and `davies_bouldin_score`.

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::points::Points;
use super::row;
use super::vector::sq_dist;

/// Mean silhouette of the points: for each, `(b - a) / max(a, b)` where `a` is the mean
/// distance to the other points of its cluster and `b` the least mean distance to the
/// points of another cluster; 0 for a point alone in its cluster. Quadratic in the number
/// of points: callers pass a sample.
pub fn silhouette(points: &Points, labels: &[u32], k: usize) -> f64 {
    let n = points.len();
    if n == 0 {
        return f64::NAN;
    }
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l as usize] += 1;
    }
    let total: f64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let own = labels[i] as usize;
            if sizes[own] < 2 {
                return 0.0;
            }
            let mut sums = vec![0.0; k];
            let x = points.row(i);
            for j in 0..n {
                sums[labels[j] as usize] += sq_dist(x, points.row(j)).sqrt();
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            if b.is_infinite() {
                return 0.0;
            }
            (b - a) / a.max(b)
        })
        .collect::<Vec<f64>>()
        .iter()
        .sum();
    total / n as f64
}

/// Davies–Bouldin index from each cluster's centre and mean distance of its points to that
/// centre (`scatter`): the mean over clusters of the worst `(s_i + s_j) / d(c_i, c_j)`.
/// Lower is better; clusters without points are left out.
pub fn davies_bouldin(centres: ArrayView2<f64>, scatter: &[f64], sizes: &[u64]) -> f64 {
    let used: Vec<usize> = (0..sizes.len()).filter(|&j| sizes[j] > 0).collect();
    if used.len() < 2 {
        return f64::NAN;
    }
    let centre = |j: usize| row(centres, j);
    let worst: f64 = used
        .iter()
        .map(|&i| {
            used.iter()
                .filter(|&&j| j != i)
                .map(|&j| {
                    let d = sq_dist(centre(i), centre(j)).sqrt();
                    if d == 0.0 {
                        f64::INFINITY
                    } else {
                        (scatter[i] + scatter[j]) / d
                    }
                })
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .sum();
    worst / used.len() as f64
}

/// The indices of up to `m` rows chosen by the smallest content hashes: the same rows
/// whatever their order, so a sample drawn in parts and merged is the sample drawn whole.
pub fn sample_by_hash(points: &Points, m: usize, seed: u64) -> Vec<usize> {
    let mut keyed: Vec<(u64, usize)> = (0..points.len())
        .into_par_iter()
        .with_min_len(4096)
        .map(|i| (super::kmeans::row_hash(points.row(i), seed), i))
        .collect();
    if keyed.len() > m {
        keyed.select_nth_unstable(m);
        keyed.truncate(m);
    }
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silhouette_of_a_small_case() {
        // Two pairs: a = 1, b = mean of the distances to the other pair.
        let data = [0.0, 1.0, 10.0, 11.0];
        let points = Points::new(&data, 1);
        let s = silhouette(&points, &[0, 0, 1, 1], 2);
        let per = |a: f64, b: f64| (b - a) / a.max(b);
        let expected = (per(1.0, 10.5) + per(1.0, 9.5) + per(1.0, 9.5) + per(1.0, 10.5)) / 4.0;
        assert!((s - expected).abs() < 1e-15);
    }

    #[test]
    fn davies_bouldin_of_two_clusters() {
        let centres = ndarray::arr2(&[[0.0, 0.0], [3.0, 4.0]]);
        let db = davies_bouldin(centres.view(), &[1.0, 2.0], &[5, 5]);
        assert!((db - 3.0 / 5.0).abs() < 1e-15);
    }
}
