//! k-means segmentation as a stored model: training over Arrow batches, assigning rows to
//! segments, and the segment profile.
//!
//! Features are encoded as for regression (numbers standardised unless `standardize` is
//! false, in which case only centred; text one-hot; NULL numbers as the training mean), and
//! clustered in that space. Segments are numbered 1..k from the largest.

use std::mem::MaybeUninit;
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
use crate::kernels::kmeans::{KMeansError, KMeansOptions, Prepared, scatter};
use crate::kernels::nearest::nearest_two;
use crate::kernels::points::Points;
use crate::kernels::vector::sq_dist;
use crate::kernels::{row_major, split_lengths};
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
            let prepared = Prepared::new(&points);
            let column_std: Vec<f64> = prepared.column_variance.iter().map(|v| v.sqrt()).collect();
            let fit_k = |k| -> Result<passes::Fitted, Fit> {
                let clustering = prepared.fit(&options(k)).map_err(Fit::Kernel)?;
                let labels: Vec<u32> = sample.iter().map(|&i| clustering.labels[i]).collect();
                Ok(passes::Fitted {
                    silhouette: silhouette(&Points::new(&sampled, width), &labels, k),
                    scatter: scatter(&points, &clustering),
                    clustering,
                    column_mean: prepared.column_mean.clone(),
                    column_std: column_std.clone(),
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
        let used = group
            .par_iter()
            .map(|batch| UsedRows::of(set, batch))
            .collect::<Result<Vec<_>>>()?;
        // Every batch's rows are encoded straight into their place in the matrix, in
        // parallel: no copy of each batch's rows to gather them.
        let lengths = used.iter().map(|u| u.len() * width);
        let total: usize = lengths.clone().sum();
        let Some(spare) = design.data.spare_capacity_mut().get_mut(..total) else {
            return Err(DataFusionError::Internal(
                "kmeans read more training rows than its encoding pass counted".to_string(),
            ));
        };
        split_lengths(spare, lengths)
            .into_par_iter()
            .zip(&used)
            .try_for_each(|(place, used)| used.write(&set.features, place))?;
        // SAFETY: the `total` values after the matrix's were each written above (each
        // batch's place in full by `UsedRows::write`, or an error returned).
        unsafe { design.data.set_len(design.data.len() + total) };
        design.rows_with_nulls += used.iter().map(|u| u.with_nulls).sum::<u64>();
        Ok(())
    })?;
    Ok(design)
}

/// The used rows of one batch: its feature columns, which of their rows are used (all
/// when `None`), and how many of those had a NULL feature.
struct UsedRows {
    columns: Vec<ArrayRef>,
    keep: Option<Vec<usize>>,
    with_nulls: u64,
}

impl UsedRows {
    fn of(set: &TrainingSet, batch: &RecordBatch) -> Result<Self> {
        let rows = set.rows(batch)?;
        let columns = set.feature_columns(batch);
        let nulls = null_rows(&columns);
        let keep = rows.kept(0..batch.num_rows());
        let with_nulls = keep
            .iter()
            .filter(|&&r| nulls.get(r).copied().unwrap_or(false))
            .count() as u64;
        Ok(Self {
            columns,
            keep: (keep.len() < batch.num_rows()).then_some(keep),
            with_nulls,
        })
    }

    fn len(&self) -> usize {
        self.keep
            .as_ref()
            .map_or_else(|| self.columns.first().map_or(0, |c| c.len()), Vec::len)
    }

    /// The rows, encoded, into `out` (all of it).
    fn write(&self, features: &[FeatureEncoding], out: &mut [MaybeUninit<f64>]) -> Result<()> {
        write_rows(features, &self.columns, self.keep.as_deref(), out)
    }
}

/// The used rows of `batch`, encoded, row-major, and how many of them had a NULL feature.
fn encode_batch(set: &TrainingSet, batch: &RecordBatch, width: usize) -> Result<(Vec<f64>, u64)> {
    let used = UsedRows::of(set, batch)?;
    let data = encoded(used.len() * width, |out| used.write(&set.features, out))?;
    Ok((data, used.with_nulls))
}

/// `len` values that `write` writes in full.
fn encoded(
    len: usize,
    write: impl FnOnce(&mut [MaybeUninit<f64>]) -> Result<()>,
) -> Result<Vec<f64>> {
    let mut data = Vec::with_capacity(len);
    write(&mut data.spare_capacity_mut()[..len])?;
    // SAFETY: `write` wrote all `len` values, or returned an error.
    unsafe { data.set_len(len) };
    Ok(data)
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

/// Rows per tile of [`write_rows`]: 64 rows of 32 design columns are 16 KB, in L1.
const TILE: usize = 64;

/// Writes the rows `keep` (every row without) of `columns`, encoded, row-major, into
/// `out`, every value of it. A tile of rows at a time, column by column: each column is
/// read in order, and the writes across a row land in the cache.
fn write_rows(
    features: &[FeatureEncoding],
    columns: &[ArrayRef],
    keep: Option<&[usize]>,
    out: &mut [MaybeUninit<f64>],
) -> Result<()> {
    // Each design column's values, and the mean and scale they are standardised with: a
    // number without NULLs straight from its Arrow buffer, the rest through its encoded
    // columns (already standardised).
    let mut design: Vec<(Float64Array, f64, f64)> = Vec::new();
    for (f, c) in features.iter().zip(columns) {
        if let FeatureEncoding::Numeric {
            mean, std, name, ..
        } = f
            && c.null_count() == 0
        {
            let x = as_f64(c, name)?.as_primitive::<Float64Type>().clone();
            design.push((x, *mean, 1.0 / std));
            continue;
        }
        let mut encoded = Vec::new();
        f.encode(c, &mut encoded)?;
        design.extend(
            encoded
                .into_iter()
                .map(|v| (Float64Array::from(v), 0.0, 1.0)),
        );
    }
    let width = design.len();
    let rows = keep.map_or_else(|| columns.first().map_or(0, |c| c.len()), <[usize]>::len);
    assert_eq!(out.len(), rows * width, "room for every value");
    if width == 0 {
        return Ok(());
    }
    for (t, tile) in out.chunks_mut(TILE * width).enumerate() {
        let first = t * TILE;
        for (d, (x, mean, scale)) in design.iter().enumerate() {
            let x = x.values();
            for (i, slot) in tile[d..].iter_mut().step_by(width).enumerate() {
                let r = keep.map_or(first + i, |k| k[first + i]);
                slot.write((x[r] - mean) * scale);
            }
        }
    }
    Ok(())
}

/// The rows of `columns` encoded (rows × design columns), and per row whether every
/// number is finite.
pub fn encode_columns(
    features: &[FeatureEncoding],
    columns: &[ArrayRef],
) -> Result<(Array2<f64>, Vec<bool>)> {
    let n = columns.first().map_or(0, |c| c.len());
    let width: usize = features.iter().map(FeatureEncoding::width).sum();
    let rows = encoded(n * width, |out| write_rows(features, columns, None, out))?;
    let valid = (0..n)
        .map(|r| {
            rows[r * width..(r + 1) * width]
                .iter()
                .all(|v| v.is_finite())
        })
        .collect();
    let matrix = Array2::from_shape_vec((n, width), rows).expect("n rows of width values");
    Ok((matrix, valid))
}

/// The rows `sample` of `points`, copied.
fn sample_points(points: &Points, sample: &[usize]) -> Vec<f64> {
    sample
        .iter()
        .flat_map(|&i| points.row(i).to_vec())
        .collect()
}
