//! k-means over rows that stay where they are (on a cluster's executors, or too many for
//! the memory pool): a start fitted on a sample of the rows drawn by their content, then
//! Lloyd's iterations from it, each one pass of per-cluster sums (see
//! [`crate::model::pass`]). The sample is the same however the rows are split or ordered,
//! so the fit is too.

use datafusion::arrow::array::RecordBatch;
use datafusion::common::{DataFusionError, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::{Fit, SAMPLE_SEED, SILHOUETTE_SAMPLE, encode_batch};
use crate::kernels::cluster_quality::silhouette;
use crate::kernels::kmeans::{Clustering, KMeansOptions, kmeans, row_hash};
use crate::kernels::nearest::nearest_two;
use crate::kernels::points::Points;
use crate::model::pass::{Pass, run};
use crate::model::training::{Source, TrainingSet};

/// Rows of the sample the start is fitted on (the silhouette's sample is its first rows).
const SEED_SAMPLE: usize = 1 << 14;

/// The rows with the lowest content hashes.
#[derive(Debug, Serialize, Deserialize)]
pub struct SamplePass {
    set: TrainingSet,
    width: usize,
}

/// (hash, encoded row) of the rows kept, lowest hash first.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Sample {
    rows: Vec<(u64, Vec<f64>)>,
}

impl Sample {
    /// Keeps the [`SEED_SAMPLE`] lowest hashes (equal hashes in the order of their rows'
    /// values), whatever order the rows came in.
    fn shrink(&mut self) {
        self.rows.sort_by(|(a, x), (b, y)| {
            a.cmp(b).then_with(|| {
                x.iter()
                    .zip(y)
                    .map(|(u, v)| u.total_cmp(v))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        });
        self.rows.truncate(SEED_SAMPLE);
    }
}

impl Pass for SamplePass {
    const NAME: &'static str = "kmeans_sample";
    type State = Sample;

    fn zero(&self) -> Sample {
        Sample::default()
    }

    fn add(&self, state: &mut Sample, batch: &RecordBatch) -> Result<()> {
        let (data, _) = encode_batch(&self.set, batch, self.width)?;
        state.rows.extend(
            data.chunks_exact(self.width)
                .map(|row| (row_hash(row, SAMPLE_SEED), row.to_vec())),
        );
        state.shrink();
        Ok(())
    }

    fn merge(&self, state: &mut Sample, other: Sample) {
        state.rows.extend(other.rows);
        state.shrink();
    }
}

/// One Lloyd iteration at `centres` (row-major, `k × width`).
#[derive(Debug, Serialize, Deserialize)]
pub struct LloydPass {
    set: TrainingSet,
    width: usize,
    centres: Vec<f64>,
}

/// Per cluster the sum of its rows, their count and the sum of their distances to the
/// centre; the sum of squared distances; per column the sum and sum of squares; and the
/// rows with a NULL feature.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sums {
    sums: Vec<f64>,
    counts: Vec<u64>,
    distances: Vec<f64>,
    inertia: f64,
    column_sums: Vec<f64>,
    column_squares: Vec<f64>,
    rows_with_nulls: u64,
}

impl Pass for LloydPass {
    const NAME: &'static str = "kmeans_lloyd";
    type State = Sums;

    fn zero(&self) -> Sums {
        let k = self.centres.len() / self.width;
        Sums {
            sums: vec![0.0; self.centres.len()],
            counts: vec![0; k],
            distances: vec![0.0; k],
            inertia: 0.0,
            column_sums: vec![0.0; self.width],
            column_squares: vec![0.0; self.width],
            rows_with_nulls: 0,
        }
    }

    fn add(&self, state: &mut Sums, batch: &RecordBatch) -> Result<()> {
        let w = self.width;
        let (data, with_nulls) = encode_batch(&self.set, batch, w)?;
        state.rows_with_nulls += with_nulls;
        for row in data.chunks_exact(w) {
            let (j, d, _) = nearest_two(row, &self.centres);
            state.counts[j] += 1;
            state.inertia += d;
            state.distances[j] += d.sqrt();
            for (c, x) in row.iter().enumerate() {
                state.sums[j * w + c] += x;
                state.column_sums[c] += x;
                state.column_squares[c] += x * x;
            }
        }
        Ok(())
    }

    fn merge(&self, state: &mut Sums, other: Sums) {
        let add = |a: &mut Vec<f64>, b: Vec<f64>| a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        add(&mut state.sums, other.sums);
        add(&mut state.distances, other.distances);
        add(&mut state.column_sums, other.column_sums);
        add(&mut state.column_squares, other.column_squares);
        for (a, b) in state.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        state.inertia += other.inertia;
        state.rows_with_nulls += other.rows_with_nulls;
    }
}

/// A clustering fitted in passes, with what the model and report need of the rows.
pub(super) struct Fitted {
    pub clustering: Clustering,
    pub silhouette: f64,
    /// Per cluster, the mean distance of its rows to its centre.
    pub scatter: Vec<f64>,
    pub column_mean: Vec<f64>,
    pub column_std: Vec<f64>,
    pub rows_with_nulls: u64,
}

/// The rows' sample, drawn in one pass, for [`fit`].
pub(super) fn sample(source: &dyn Source, set: &TrainingSet, width: usize) -> Result<Vec<f64>> {
    let pass = SamplePass {
        set: set.clone(),
        width,
    };
    Ok(run(source, &pass)?
        .rows
        .into_iter()
        .flat_map(|(_, row)| row)
        .collect())
}

/// k-means with `options` over the rows of `source`, from the start k-means gives on
/// `sample`: Lloyd's iterations until the centres move less than the tolerance (relative
/// to the columns' mean variance, as in memory) or `max_iterations`.
pub(super) fn fit(
    source: &dyn Source,
    set: &TrainingSet,
    width: usize,
    sample: &[f64],
    options: &KMeansOptions,
) -> Result<Fitted, Fit> {
    let points = Points::new(sample, width);
    let start = kmeans(&points, options).map_err(Fit::Kernel)?;
    let k = options.k;
    let mut centres: Vec<f64> = start.centroids.iter().copied().collect();
    let mut tolerance = None;
    let mut iterations = 0;
    let mut converged = false;
    let lloyd = |centres: &[f64]| {
        let pass = LloydPass {
            set: set.clone(),
            width,
            centres: centres.to_vec(),
        };
        run(source, &pass).map_err(Fit::Other)
    };
    let mut at = lloyd(&centres)?;
    while iterations < options.max_iterations {
        let n = at.counts.iter().sum::<u64>() as f64;
        let tol = *tolerance.get_or_insert_with(|| {
            let variance: f64 = at
                .column_sums
                .iter()
                .zip(&at.column_squares)
                .map(|(s, q)| q / n - (s / n) * (s / n))
                .sum();
            options.tolerance * variance / width as f64
        });
        // An empty cluster keeps its centre.
        let next: Vec<f64> = (0..k * width)
            .map(|i| match at.counts[i / width] {
                0 => centres[i],
                c => at.sums[i] / c as f64,
            })
            .collect();
        let shift: f64 = next
            .iter()
            .zip(&centres)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        centres = next;
        iterations += 1;
        at = lloyd(&centres)?;
        if shift <= tol {
            converged = true;
            break;
        }
    }
    let n = at.counts.iter().sum::<u64>() as f64;
    let column_mean: Vec<f64> = at.column_sums.iter().map(|s| s / n).collect();
    let column_std = at
        .column_squares
        .iter()
        .zip(&column_mean)
        .map(|(q, m)| (q / n - m * m).max(0.0).sqrt())
        .collect();
    let scatter = at
        .distances
        .iter()
        .zip(&at.counts)
        .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
        .collect();
    let judged = &sample[..sample.len().min(SILHOUETTE_SAMPLE * width)];
    let labels: Vec<u32> = judged
        .chunks_exact(width)
        .map(|row| nearest_two(row, &centres).0 as u32)
        .collect();
    let silhouette = silhouette(&Points::new(judged, width), &labels, k);
    let centroids = Array2::from_shape_vec((k, width), centres)
        .map_err(|e| Fit::Other(DataFusionError::Internal(e.to_string())))?;
    Ok(Fitted {
        clustering: Clustering {
            centroids,
            labels: vec![],
            sizes: at.counts,
            inertia: at.inertia,
            iterations,
            converged,
        },
        silhouette,
        scatter,
        column_mean,
        column_std,
        rows_with_nulls: at.rows_with_nulls,
    })
}
