//! k-means segmentation as a stored model: training over Arrow batches, assigning rows to
//! segments, and the segment profile.
//!
//! Features are encoded as for regression (numbers standardised unless `standardize` is
//! false, in which case only centred; text one-hot; NULL numbers as the training mean), and
//! clustered in that space. Segments are numbered 1..k from the largest.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{AggregateUDF, LogicalPlan};
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub mod passes;

use super::encoding::{FeatureEncoding, as_f64};
use super::options::Options;
use super::training::{Held, Source, TrainingSet};
use super::{Contributions, Explainer, Model, ModelKind, Report, Scored, Scoring, wrong_type};
use crate::error::{Error, bad_input, bad_input_err, store_err};
use crate::evaluate_kmeans::{self, EvaluateKMeans};
use crate::kernels::cluster_quality::{davies_bouldin, sample_by_hash, silhouette};
use crate::kernels::kmeans::{Clustering, KMeansError, KMeansOptions, kmeans};
use crate::kernels::nearest::nearest_two;
use crate::kernels::points::Points;
use crate::kernels::row_major;
use crate::kernels::vector::sq_dist;
use crate::sql::metrics_plan;

/// Rows the silhouette is computed on: it is quadratic in them.
pub const SILHOUETTE_SAMPLE: usize = 4000;
/// The numbers of clusters `num_clusters = 'auto'` tries.
pub const AUTO_K: std::ops::RangeInclusive<usize> = 2..=10;
/// Seed of the content hash that picks the silhouette sample.
const SAMPLE_SEED: u64 = 0x5EED;
/// The name of the centroid array in the store.
const CENTROIDS: &str = "centroids";

/// How many clusters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clusters {
    Fixed(usize),
    /// The k in [`AUTO_K`] with the highest (sampled) silhouette.
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KMeansSettings {
    pub clusters: Clusters,
    pub standardize: bool,
    pub n_init: usize,
    pub max_iterations: usize,
    pub seed: u64,
}

impl Default for KMeansSettings {
    fn default() -> Self {
        Self {
            clusters: Clusters::Fixed(8),
            standardize: true,
            n_init: 4,
            max_iterations: 100,
            seed: 42,
        }
    }
}

/// A fitted k-means model with the encoding of its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansModel {
    pub features: Vec<FeatureEncoding>,
    pub standardize: bool,
    /// `k × design columns` in the clustering space, one centre per row, largest segment
    /// first. Stored as an Arrow array beside the description, not in it.
    #[serde(skip)]
    pub centroids: Array2<f64>,
    pub sizes: Vec<u64>,
    pub inertia: f64,
    pub iterations: usize,
    /// Mean and (population) standard deviation of each design column over the training
    /// rows, for the profile's z.
    pub column_mean: Vec<f64>,
    pub column_std: Vec<f64>,
    /// With `num_clusters = 'auto'`: each k tried and its silhouette.
    pub k_scores: Vec<(usize, f64)>,
}

/// The encoded rows of a source: a row-major matrix, with the counts behind the report.
struct Design {
    data: Vec<f64>,
    width: usize,
    rows_with_nulls: u64,
}

impl ModelKind for KMeansModel {
    const NAME: &'static str = "kmeans";
    const OPTIONS: &'static [&'static str] = &[
        "model_type",
        "num_clusters",
        "standardize",
        "n_init",
        "max_iterations",
        "seed",
    ];
    const SCORES: &'static [Scoring] = &[Scoring::Segment, Scoring::Distance];
    type Settings = KMeansSettings;
    const DISTRIBUTED: bool = true;

    fn settings(options: &Options) -> Result<KMeansSettings, Error> {
        let clusters = match options.get("num_clusters") {
            Some(v) if v.is_word("auto") => Clusters::Auto,
            None => {
                return Err(options.error(
                    "OPTIONS (num_clusters = <k>) is required for kmeans: a number of segments \
                     from 1 to 1000, or 'auto' to pick k in 2..10 by silhouette",
                ));
            }
            Some(_) => Clusters::Fixed(options.count("num_clusters", 1..=1000, 0)?),
        };
        Ok(KMeansSettings {
            clusters,
            standardize: options.boolean("standardize", true)?,
            n_init: options.count("n_init", 1..=100, 4)?,
            max_iterations: options.count("max_iterations", 1..=10_000, 100)?,
            seed: options.seed()?,
        })
    }

    /// Clusters the rows of the source on every column.
    fn train(source: &dyn Source, settings: &KMeansSettings) -> Result<(Self, Report)> {
        let mut set = TrainingSet::unlabelled(source.schema())?.fit(source)?;
        if !settings.standardize {
            for f in &mut set.features {
                if let FeatureEncoding::Numeric { std, .. } = f {
                    *std = 1.0;
                }
            }
        }
        // The clustering reads the encoded rows many times over, and n_init runs and the
        // bounds of each row keep them all in memory: take that from the pool first. Rows
        // left on a cluster, or too many for the pool, are clustered in passes instead.
        let width: usize = set.features.iter().map(FeatureEncoding::width).sum();
        let mut held = Held::new(source, Self::NAME, "the encoded training rows");
        let in_memory =
            source.remote().is_none() && held.grow(set.rows_used, row_bytes(width), 0).is_ok();
        let options = |k| KMeansOptions {
            k,
            n_init: settings.n_init,
            max_iterations: settings.max_iterations,
            seed: settings.seed,
            ..KMeansOptions::default()
        };
        let fitted = if in_memory {
            let design = encode_rows(source, &set, width)?;
            let points = Points::new(&design.data, design.width);
            let sample = sample_by_hash(&points, SILHOUETTE_SAMPLE, SAMPLE_SEED);
            let sampled = sample_points(&points, &sample);
            let fit_k = |k| -> Result<passes::Fitted, Fit> {
                let clustering = kmeans(&points, &options(k)).map_err(Fit::Kernel)?;
                let labels: Vec<u32> = sample.iter().map(|&i| clustering.labels[i]).collect();
                let (column_mean, column_std) = column_moments(&points);
                Ok(passes::Fitted {
                    silhouette: silhouette(&Points::new(&sampled, width), &labels, k),
                    scatter: scatter(&points, &clustering),
                    clustering,
                    column_mean,
                    column_std,
                    rows_with_nulls: design.rows_with_nulls,
                })
            };
            best_k(settings.clusters, fit_k)?
        } else {
            let sample = passes::sample(source, &set, width)?;
            best_k(settings.clusters, |k| {
                passes::fit(source, &set, width, &sample, &options(k))
            })?
        };
        let (
            passes::Fitted {
                clustering: fit,
                silhouette: silhouette_score,
                scatter,
                column_mean,
                column_std,
                rows_with_nulls,
            },
            k_scores,
        ) = fitted;
        let k = fit.sizes.len();
        let db = davies_bouldin(fit.centroids.view(), &scatter, &fit.sizes);

        // Largest segment first; equal sizes keep their order.
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| fit.sizes[b].cmp(&fit.sizes[a]));
        let model = KMeansModel {
            features: set.features.clone(),
            standardize: settings.standardize,
            centroids: fit.centroids.select(Axis(0), &order),
            sizes: order.iter().map(|&j| fit.sizes[j]).collect(),
            inertia: fit.inertia,
            iterations: fit.iterations,
            column_mean,
            column_std,
            k_scores,
        };
        let mut warnings = Vec::new();
        if rows_with_nulls > 0 {
            warnings.push(format!(
                "{rows_with_nulls} rows had NULL features, scored as the training mean"
            ));
        }
        if !in_memory {
            warnings.push(
                "clustered in passes over the rows (left on the cluster, or more than the \
                 memory pool holds), from a start fitted on a sample of them"
                    .to_string(),
            );
        }
        if !fit.converged {
            warnings.push(format!(
                "k-means did not converge in {} iterations; raise max_iterations",
                settings.max_iterations
            ));
        }
        let report = set.report(
            warnings,
            vec![
                ("inertia".to_string(), fit.inertia),
                ("davies_bouldin".to_string(), db),
                ("silhouette".to_string(), silhouette_score),
                ("k".to_string(), k as f64),
                ("iterations".to_string(), fit.iterations as f64),
            ]
            .into_iter()
            .chain(
                model
                    .k_scores
                    .iter()
                    .map(|(k, s)| (format!("silhouette k={k}"), *s)),
            )
            .collect(),
        );
        Ok((model, report))
    }

    fn with_arrays(self, read: &dyn Fn(&str) -> Result<Vec<RecordBatch>>) -> Result<Self> {
        self.with_centroids(&read(CENTROIDS)?)
    }
}

/// Why a row is in its segment, design column by design column (`column=level` for a
/// category), in the clustering space: column j contributes `(xⱼ - bⱼ)² - (xⱼ - aⱼ)²`, `a`
/// the row's centre and `b` the next nearest, so a positive contribution pulls the row
/// towards its own segment and a negative one towards the runner-up. The raw score is the
/// margin `|x - b|² - |x - a|²` and the base value 0; with one segment, `b` is taken as
/// the row itself, so each column contributes minus its part of the squared distance.
impl Explainer for KMeansModel {
    fn names(&self) -> Vec<String> {
        self.features
            .iter()
            .flat_map(|f| f.design_names())
            .collect()
    }

    fn prediction(&self) -> Scoring {
        Scoring::Segment
    }

    fn contributions(&self, columns: &[ArrayRef]) -> Result<Contributions> {
        let (rows, valid) = encode_columns(&self.features, columns)?;
        let dim = self.dim();
        let explained: Vec<Vec<f64>> = rows
            .outer_iter()
            .zip(&valid)
            .map(|(x, valid)| {
                if !valid {
                    return vec![f64::NAN; dim];
                }
                let x = x.as_slice().unwrap_or_default();
                let mut by_distance: Vec<(f64, usize)> = self
                    .centroids
                    .outer_iter()
                    .enumerate()
                    .map(|(j, c)| (sq_dist(x, c.as_slice().unwrap_or_default()), j))
                    .collect();
                by_distance.sort_by(|a, b| a.0.total_cmp(&b.0));
                let Some(&(_, nearest)) = by_distance.first() else {
                    return vec![f64::NAN; dim];
                };
                let own = self.centroids.row(nearest);
                let next = by_distance.get(1).map(|&(_, j)| self.centroids.row(j));
                (0..dim)
                    .map(|d| {
                        let to_next = next.map_or(0.0, |b| (x[d] - b[d]).powi(2));
                        to_next - (x[d] - own[d]).powi(2)
                    })
                    .collect()
            })
            .collect();
        Ok(Contributions {
            base: 0.0,
            raw: explained.iter().map(|r| r.iter().sum()).collect(),
            rows: explained,
        })
    }
}

impl Model for KMeansModel {
    fn features(&self) -> &[FeatureEncoding] {
        &self.features
    }

    fn explainer(&self) -> Option<&dyn Explainer> {
        Some(self)
    }

    fn arrays(&self) -> Result<Vec<(&'static str, Vec<RecordBatch>)>> {
        Ok(vec![(CENTROIDS, vec![self.centroid_batch()?])])
    }

    fn uses(&self, model: &str) -> String {
        format!(
            "segment({model}, ...), SELECT * FROM segment_profile({model}) or SELECT * FROM \
             evaluate({model}, ...)"
        )
    }

    /// Segments, or with [`Scoring::Distance`] the distance to the segment's centre.
    fn score(&self, scoring: Scoring, columns: &[ArrayRef]) -> Result<ArrayRef> {
        let (segments, distances) = self.assign(columns)?;
        Ok(if scoring == Scoring::Distance {
            Arc::new(distances)
        } else {
            Arc::new(segments)
        })
    }

    fn predict_plan(&self, _input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        Err(wrong_type(
            "predict",
            &Scoring::Predict.applies_to(),
            Some(scored.name),
            self,
        ))
    }

    /// Inertia, Davies-Bouldin and the silhouette of a sample, in the model's space.
    fn evaluate_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        let aggregate =
            AggregateUDF::new_from_impl(EvaluateKMeans::bound(scored.resolved.clone())?);
        metrics_plan(
            input,
            aggregate.call(scored.features.clone()),
            evaluate_kmeans::fields(),
        )
    }
}

impl KMeansModel {
    pub fn k(&self) -> usize {
        self.sizes.len()
    }

    /// The segments' centres in the clustering space, one per row, segment 1 first.
    pub fn centroids(&self) -> ArrayView2<'_, f64> {
        self.centroids.view()
    }

    /// Width of the clustering space.
    pub fn dim(&self) -> usize {
        self.features.iter().map(FeatureEncoding::width).sum()
    }

    /// The segment (1 = largest) and the distance to its centre of each row; NULL for a row
    /// with a NaN or infinite number.
    pub fn assign(&self, columns: &[ArrayRef]) -> Result<(Int64Array, Float64Array)> {
        let (rows, valid) = encode_columns(&self.features, columns)?;
        let (rows, dim) = (row_major(rows.view()), self.dim());
        let n = valid.len();
        let centroids = row_major(self.centroids.view());
        let (segments, distances): (Vec<Option<i64>>, Vec<Option<f64>>) = (0..n)
            .map(|i| {
                if !valid[i] {
                    return (None, None);
                }
                let (j, d, _) = nearest_two(&rows[i * dim..(i + 1) * dim], &centroids);
                (Some(j as i64 + 1), Some(d.sqrt()))
            })
            .unzip();
        Ok((Int64Array::from(segments), Float64Array::from(distances)))
    }

    /// The centroids as an Arrow batch (`segment`, then one column per design column), as
    /// the store keeps them.
    pub fn centroid_batch(&self) -> Result<RecordBatch> {
        let names: Vec<String> = self
            .features
            .iter()
            .flat_map(|f| f.design_names())
            .collect();
        let dim = names.len();
        let mut fields = vec![Field::new("segment", DataType::Int64, false)];
        fields.extend(
            names
                .iter()
                .map(|n| Field::new(n, DataType::Float64, false)),
        );
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(Int64Array::from_iter_values(1..=self.k() as i64))];
        for d in 0..dim {
            columns.push(Arc::new(Float64Array::from_iter_values(
                self.centroids.column(d).iter().copied(),
            )));
        }
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }

    /// Reads the centroids back from [`KMeansModel::centroid_batch`]'s batches.
    fn with_centroids(mut self, batches: &[RecordBatch]) -> Result<Self> {
        let dim = self.dim();
        let mut centroids = Array2::zeros((self.k(), dim));
        let mut rows = 0;
        for batch in batches {
            if batch.num_columns() != dim + 1 {
                return store_err!("the stored centroids have the wrong shape");
            }
            for d in 0..dim {
                let column = as_f64(batch.column(d + 1), "centroid")?;
                for (r, v) in column
                    .as_primitive::<Float64Type>()
                    .values()
                    .iter()
                    .enumerate()
                {
                    if let Some(slot) = centroids.get_mut((rows + r, d)) {
                        *slot = *v;
                    }
                }
            }
            rows += batch.num_rows();
        }
        if rows != self.k() {
            return bad_input_err!(
                "the stored centroids have {rows} rows for {} segments",
                self.k()
            );
        }
        self.centroids = centroids;
        Ok(self)
    }
}

/// Why a k could not be fitted: the kernel's reason (which `num_clusters = 'auto'` may
/// step past) or any other error.
enum Fit {
    Kernel(KMeansError),
    Other(DataFusionError),
}

/// The fit for a fixed k, or for `'auto'` the k in [`AUTO_K`] with the best silhouette, with
/// every k tried and its silhouette.
fn best_k(
    clusters: Clusters,
    fit_k: impl Fn(usize) -> Result<passes::Fitted, Fit>,
) -> Result<(passes::Fitted, Vec<(usize, f64)>)> {
    let fail = |e| match e {
        Fit::Kernel(e) => cluster_error(e),
        Fit::Other(e) => e,
    };
    match clusters {
        Clusters::Fixed(k) => Ok((fit_k(k).map_err(fail)?, vec![])),
        Clusters::Auto => {
            let mut best: Option<passes::Fitted> = None;
            let mut scores = Vec::new();
            for k in AUTO_K {
                let fit = match fit_k(k) {
                    Ok(fit) => fit,
                    Err(Fit::Kernel(KMeansError::TooFewDistinct { .. })) if k > *AUTO_K.start() => {
                        break;
                    }
                    Err(e) => return Err(fail(e)),
                };
                scores.push((k, fit.silhouette));
                if best.as_ref().is_none_or(|b| fit.silhouette > b.silhouette) {
                    best = Some(fit);
                }
            }
            match best {
                Some(fit) => Ok((fit, scores)),
                None => bad_input_err!("no k in 2..10 could be fitted"),
            }
        }
    }
}

fn cluster_error(e: KMeansError) -> datafusion::common::DataFusionError {
    let message = match e {
        KMeansError::NoClusters => "num_clusters must be at least 1".to_string(),
        KMeansError::TooFewDistinct { k, distinct } if distinct <= 1 => format!(
            "every training row has the same features, so there is nothing to segment into \
             {k} clusters; check the query's columns"
        ),
        KMeansError::TooFewDistinct { k, distinct } => format!(
            "num_clusters = {k} but the training rows hold only {distinct} distinct points; \
             use num_clusters <= {distinct}"
        ),
    };
    bad_input(message)
}

/// Bytes a clustering holds per row of `width` design columns: the row, its 16-bit copy,
/// the distances of k-means++ and the label and bounds of a run and of the best run.
fn row_bytes(width: usize) -> usize {
    width.saturating_mul(10).saturating_add(24)
}

/// The used rows of every batch, encoded, as one row-major matrix of `width` columns.
fn encode_rows(source: &dyn Source, set: &TrainingSet, width: usize) -> Result<Design> {
    let mut data = Vec::new();
    usize::try_from(set.rows_used)
        .ok()
        .and_then(|n| n.checked_mul(width))
        .and_then(|n| data.try_reserve_exact(n).ok())
        .ok_or_else(|| {
            DataFusionError::ResourcesExhausted(format!(
                "kmeans cannot hold {} encoded training rows in memory; train on a sample \
                 of the rows (e.g. WHERE id % 10 = 0)",
                set.rows_used
            ))
        })?;
    let mut design = Design {
        data,
        width,
        rows_with_nulls: 0,
    };
    source.scan(&mut |group| {
        let parts = group
            .par_iter()
            .map(|batch| encode_batch(set, batch, width))
            .collect::<Result<Vec<_>>>()?;
        for (data, nulls) in parts {
            design.data.extend(data);
            design.rows_with_nulls += nulls;
        }
        Ok(())
    })?;
    Ok(design)
}

/// The used rows of `batch`, encoded, row-major, and how many of them had a NULL feature.
fn encode_batch(set: &TrainingSet, batch: &RecordBatch, width: usize) -> Result<(Vec<f64>, u64)> {
    let rows = set.rows(batch)?;
    let features: Vec<ArrayRef> = set
        .feature_idx
        .iter()
        .map(|&i| batch.column(i).clone())
        .collect();
    let (encoded, _) = encode_columns(&set.features, &features)?;
    let nulls = null_rows(&features);
    let keep = rows.kept(0..batch.num_rows());
    let with_nulls = keep
        .iter()
        .filter(|&&r| nulls.get(r).copied().unwrap_or(false))
        .count();
    if keep.len() == batch.num_rows() {
        // Every row used: the encoded matrix (a new one, row-major) is the rows, uncopied.
        return Ok((encoded.into_raw_vec_and_offset().0, with_nulls as u64));
    }
    let encoded = row_major(encoded.view());
    let mut data = Vec::with_capacity(keep.len() * width);
    for r in keep {
        data.extend_from_slice(&encoded[r * width..(r + 1) * width]);
    }
    Ok((data, with_nulls as u64))
}

/// Per row, whether any of `columns` is NULL there.
fn null_rows(columns: &[ArrayRef]) -> Vec<bool> {
    let n = columns.first().map_or(0, |c| c.len());
    let mut out = vec![false; n];
    for c in columns {
        if let Some(nulls) = c.logical_nulls() {
            for (o, valid) in out.iter_mut().zip(nulls.iter()) {
                *o |= !valid;
            }
        }
    }
    out
}

/// The rows of `columns` encoded (rows × design columns), and per row whether every
/// number is finite.
pub fn encode_columns(
    features: &[FeatureEncoding],
    columns: &[ArrayRef],
) -> Result<(Array2<f64>, Vec<bool>)> {
    let n = columns.first().map_or(0, |c| c.len());
    let width: usize = features.iter().map(FeatureEncoding::width).sum();
    let mut matrix = Array2::zeros((n, width));
    let rows = matrix
        .as_slice_mut()
        .expect("a new matrix in standard layout");
    let mut d = 0;
    for (f, c) in features.iter().zip(columns) {
        // A number without NULLs goes straight from its Arrow buffer into the rows; the
        // rest through its encoded columns.
        if let FeatureEncoding::Numeric {
            mean, std, name, ..
        } = f
            && c.null_count() == 0
        {
            let x = as_f64(c, name)?;
            let scale = 1.0 / std;
            for (r, v) in x.as_primitive::<Float64Type>().values().iter().enumerate() {
                rows[r * width + d] = (v - mean) * scale;
            }
            d += 1;
            continue;
        }
        let mut encoded = Vec::new();
        f.encode(c, &mut encoded)?;
        for column in encoded {
            for (r, v) in column.iter().enumerate() {
                rows[r * width + d] = *v;
            }
            d += 1;
        }
    }
    let valid = (0..n)
        .map(|r| {
            rows[r * width..(r + 1) * width]
                .iter()
                .all(|v| v.is_finite())
        })
        .collect();
    Ok((matrix, valid))
}

/// The rows `sample` of `points`, copied.
fn sample_points(points: &Points, sample: &[usize]) -> Vec<f64> {
    sample
        .iter()
        .flat_map(|&i| points.row(i).to_vec())
        .collect()
}

/// Each column's mean and population standard deviation.
fn column_moments(points: &Points) -> (Vec<f64>, Vec<f64>) {
    let (n, dim) = (points.len() as f64, points.dim);
    let mut mean = vec![0.0; dim];
    for i in 0..points.len() {
        for (m, x) in mean.iter_mut().zip(points.row(i)) {
            *m += x;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0; dim];
    for i in 0..points.len() {
        for ((v, x), m) in var.iter_mut().zip(points.row(i)).zip(&mean) {
            *v += (x - m) * (x - m);
        }
    }
    let std = var.iter().map(|v| (v / n).sqrt()).collect();
    (mean, std)
}

/// Each cluster's mean distance of its points to its centre.
fn scatter(points: &Points, fit: &Clustering) -> Vec<f64> {
    let k = fit.sizes.len();
    let dim = points.dim;
    let centres = row_major(fit.centroids.view());
    let mut sums = vec![0.0; k];
    for (i, &l) in fit.labels.iter().enumerate() {
        let l = l as usize;
        sums[l] += sq_dist(points.row(i), &centres[l * dim..(l + 1) * dim]).sqrt();
    }
    sums.iter()
        .zip(&fit.sizes)
        .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
        .collect()
}
