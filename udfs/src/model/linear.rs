//! Linear regression as a stored model: training over Arrow batches and scoring.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast as arrow_cast, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use datafusion::logical_expr::{LogicalPlan, cast};
use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::coefficients::{CoefficientModel, Coefficients, Explained};
use super::encoding::{FeatureEncoding, is_numeric};
use super::options::Options;
use super::pass::{Pass, run};
use super::training::{Source, TrainingSet};
use super::{
    Explainer, Model, ModelKind, Report, Scored, Scoring, dropped_warnings, zeroed_warning,
};
use crate::error::{Error, bad_input};
use crate::evaluate::Metrics;
use crate::kernels::distributions::student_t_two_sided;
use crate::kernels::linear::{LinearOptions, fit_linear};
use crate::kernels::moments::Moments;
use crate::sql::{appended, labelled_metrics};

/// A fitted linear regression with the encoding of its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub label: String,
    pub features: Vec<FeatureEncoding>,
    pub coefficients: Coefficients,
    pub df_resid: f64,
}

/// The linear_reg options, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearSettings {
    pub label: String,
    pub options: LinearOptions,
}

impl ModelKind for LinearModel {
    const NAME: &'static str = "linear_reg";
    const OPTIONS: &'static [&'static str] =
        &["model_type", "label", "l1_reg", "l2_reg", "fit_intercept"];
    const SCORES: &'static [Scoring] = &[Scoring::Predict];
    type Settings = LinearSettings;
    const DISTRIBUTED: bool = true;

    fn settings(options: &Options) -> Result<LinearSettings, Error> {
        Ok(LinearSettings {
            label: options.label()?,
            options: LinearOptions {
                l2: options.penalty("l2_reg", 0.0)?,
                l1: options.penalty("l1_reg", 0.0)?,
                fit_intercept: options.boolean("fit_intercept", true)?,
            },
        })
    }

    /// Fits the label on every other column of the source (in schema order): two passes,
    /// one for the encoding of the features and one for the moments of the design.
    fn train(source: &dyn Source, settings: &LinearSettings) -> Result<(Self, Report)> {
        let (label, options) = (settings.label.as_str(), settings.options);
        if let Some((_, f)) = source.schema().column_with_name(label)
            && !f.data_type().is_numeric()
        {
            return Err(bad_input(format!(
                "label {label} has type {}; linear_reg needs a numeric label (use \
                 model_type = 'logistic_reg' for a yes/no label)",
                f.data_type()
            )));
        }
        let set = TrainingSet::new(source.schema(), label)?;
        if let Some(batches) = raw_batches(source, &set) {
            return Self::train_raw(set, source.schema(), batches, options);
        }
        let pass = MomentsPass {
            set: set.fit(source)?,
        };
        let moments = run(source, &pass)?;
        let set = pass.set;

        let (used, skipped, because) = (set.rows_used, set.rows_skipped(), set.skipped_reason());
        Self::fit(label, set.features, &moments, options, |report| {
            report.rows_used = used;
            report.rows_skipped = skipped;
            report.skipped_because = because;
        })
    }

    const FOLDS_IN_ONE_READ: bool = true;

    /// The moments of each fold's rows in one read; fit f is solved from the merged moments
    /// of the other folds, which equal those of its rows (Chan's exact merge). Where the
    /// fit's encoding depends on its rows (a category's levels, the means that impute a
    /// NULL), each fold fits on its own.
    fn train_folds(
        source: &dyn Source,
        settings: &LinearSettings,
        folds: usize,
    ) -> Option<Result<Vec<(Self, Report)>>> {
        let schema = source.schema();
        let fold = schema.fields().len().checked_sub(1)?;
        let features = schema.project(&(0..fold).collect::<Vec<_>>()).ok()?;
        let set = TrainingSet::new(&features, &settings.label).ok()?;
        if !features.field(set.label_idx?).data_type().is_numeric() {
            return None;
        }
        let batches = raw_batches(source, &set)?;
        Some(Self::train_raw_folds(
            set,
            &features,
            batches,
            fold,
            folds,
            settings.options,
        ))
    }
}

impl CoefficientModel for LinearModel {
    fn coefficients(&self) -> &Coefficients {
        &self.coefficients
    }
}

impl Model for LinearModel {
    fn label(&self) -> Option<&str> {
        Some(&self.label)
    }

    fn features(&self) -> &[FeatureEncoding] {
        &self.features
    }

    fn explain(&self) -> Option<Vec<Explained>> {
        Some(
            self.coefficients
                .explain(&self.features, |t| student_t_two_sided(t, self.df_resid)),
        )
    }

    fn explainer(&self) -> Option<&dyn Explainer> {
        Some(self)
    }

    fn uses(&self, model: &str) -> String {
        format!(
            "predict({model}, ...), explain_model({model}) or SELECT * FROM evaluate({model}, \
             ...)"
        )
    }

    /// Predictions for feature columns given in training order. NULL features score as the
    /// training mean; NaN features give NaN.
    fn score(&self, _scoring: Scoring, columns: &[ArrayRef]) -> Result<ArrayRef> {
        Ok(Arc::new(Float64Array::from(
            self.coefficients.score(&self.features, columns)?,
        )))
    }

    fn predict_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        let predicted = (scored.call)(Scoring::Predict).alias(format!("predicted_{}", self.label));
        appended(input, [predicted])
    }

    fn evaluate_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        let parameters = self
            .coefficients
            .std_err
            .iter()
            .filter(|s| s.is_finite())
            .count();
        labelled_metrics(
            input,
            scored,
            &self.label,
            Metrics::Regression { parameters },
            |label| Ok(cast(label, DataType::Float64)),
        )
    }
}

impl LinearModel {
    /// One pass straight over the Arrow columns (see [`raw_batches`]): the moments of the raw
    /// features and label, from which [`LinearModel::from_moments`] standardises.
    fn train_raw(
        set: TrainingSet,
        schema: &Schema,
        batches: &[RecordBatch],
        options: LinearOptions,
    ) -> Result<(Self, Report)> {
        let parts = batches
            .par_iter()
            .map(|batch| raw_moments(&set, batch))
            .collect::<Result<Vec<_>>>()?;
        Self::from_raw_parts(set, schema, &parts, options)
    }

    /// [`LinearModel::train_raw`] of each of `folds` folds, given by the Int64 column
    /// `fold` of the batches: fit f on the rows of the other folds.
    fn train_raw_folds(
        set: TrainingSet,
        schema: &Schema,
        batches: &[RecordBatch],
        fold: usize,
        folds: usize,
        options: LinearOptions,
    ) -> Result<Vec<(Self, Report)>> {
        // Per batch, per fold: the moments of the batch's rows in that fold.
        let parts = batches
            .par_iter()
            .map(|batch| {
                let fold = arrow_cast(batch.column(fold), &DataType::Int64)?;
                // The rows of each fold, in one pass over the fold column.
                let mut rows = vec![Vec::<u32>::new(); folds];
                for (r, f) in fold.as_primitive::<Int64Type>().iter().enumerate() {
                    if let Some(rows) = f.and_then(|f| rows.get_mut(usize::try_from(f).ok()?)) {
                        rows.push(r as u32);
                    }
                }
                rows.into_iter()
                    .map(|rows| {
                        raw_moments(&set, &take_record_batch(batch, &UInt32Array::from(rows))?)
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        (0..folds)
            .map(|f| {
                let others = parts
                    .iter()
                    .flat_map(|p| p.iter().enumerate().filter(move |(g, _)| *g != f))
                    .map(|(_, part)| part);
                Self::from_raw_parts(set.clone(), schema, others, options)
            })
            .collect()
    }

    /// The model and report from the moments and row counts of the parts of the rows.
    fn from_raw_parts<'p>(
        mut set: TrainingSet,
        schema: &Schema,
        parts: impl IntoIterator<Item = &'p RawMoments>,
        options: LinearOptions,
    ) -> Result<(Self, Report)> {
        let mut moments = Moments::new(set.feature_idx.len() + 1);
        for (m, (used, null_label, not_finite)) in parts {
            moments.merge(m);
            set.rows_used += used;
            set.rows_null_label += null_label;
            set.rows_not_finite += not_finite;
        }
        set.some_rows_used()?;
        let features: Vec<(String, String)> = set
            .feature_idx
            .iter()
            .map(|&i| {
                let f = schema.field(i);
                (f.name().clone(), f.data_type().to_string())
            })
            .collect();
        let (model, mut report) = Self::from_moments(&set.label, &features, &moments, options)?;
        report.rows_skipped = set.rows_skipped();
        report.skipped_because = set.skipped_reason();
        Ok((model, report))
    }

    /// Fits on moments of the standardised design columns of `features`, followed by the
    /// label; `finish` completes the report's row counts.
    fn fit(
        label: &str,
        features: Vec<FeatureEncoding>,
        moments: &Moments,
        options: LinearOptions,
        finish: impl FnOnce(&mut Report),
    ) -> Result<(Self, Report)> {
        let fit = fit_linear(moments, options).map_err(|e| bad_input(e.to_string()))?;
        let design: Vec<String> = features.iter().flat_map(|f| f.design_names()).collect();
        let mut report = Report {
            rows_used: fit.rows as u64,
            rows_skipped: 0,
            skipped_because: String::new(),
            warnings: dropped_warnings(&design, &fit.dropped)
                .into_iter()
                .chain(zeroed_warning(&design, &fit.coef, &fit.dropped, options.l1))
                .collect(),
            metrics: vec![
                ("r2".to_string(), fit.r2),
                ("adj_r2".to_string(), fit.adj_r2),
                ("rmse".to_string(), (fit.rss / fit.rows).sqrt()),
            ],
        };
        finish(&mut report);
        let model = LinearModel {
            label: label.to_string(),
            features,
            coefficients: Coefficients {
                intercept: fit.intercept,
                weights: fit.coef,
                std_err: fit.std_err,
                statistic: fit.t,
                p_value: fit.p,
                covariance: fit.cov,
                intercept_variance: options
                    .fit_intercept
                    .then_some(fit.intercept_std_err * fit.intercept_std_err),
                intercept_covariance: fit.intercept_cov,
            },
            df_resid: fit.df_resid,
        };
        Ok((model, report))
    }

    /// Fits on moments of raw numeric columns `(features..., label)`, as the inline
    /// TRAIN_REGRESSION aggregate accumulates them: the features (name and type) are
    /// standardised from the moments themselves, so the model is the one CREATE MODEL would
    /// store.
    pub fn from_moments(
        label: &str,
        features: &[(String, String)],
        moments: &Moments,
        options: LinearOptions,
    ) -> Result<(Self, Report)> {
        let n = moments.count();
        let features: Vec<FeatureEncoding> = features
            .iter()
            .enumerate()
            .map(|(j, (name, data_type))| {
                let std = (moments.comoment(j, j) / n).sqrt();
                FeatureEncoding::Numeric {
                    name: name.clone(),
                    data_type: data_type.clone(),
                    mean: moments.mean()[j],
                    std: if std > 0.0 { std } else { 1.0 },
                }
            })
            .collect();
        let scale: Vec<f64> = features
            .iter()
            .map(|f| match f {
                FeatureEncoding::Numeric { std, .. } => *std,
                FeatureEncoding::OneHot { .. } => 1.0,
            })
            .collect();
        Self::fit(
            label,
            features,
            &moments.standardized_features(&scale),
            options,
            |_| {},
        )
    }
}

/// The moments of the raw columns (features..., label) of a batch's used rows, and its
/// counts of rows used, with a NULL label and with a value that is not finite.
type RawMoments = (Moments, (u64, u64, u64));

/// [`RawMoments`] of `batch` for `set`.
fn raw_moments(set: &TrainingSet, batch: &RecordBatch) -> Result<RawMoments> {
    let columns = || {
        set.feature_idx
            .iter()
            .chain(&set.label_idx)
            .map(|&i| batch.column(i))
    };
    // The common case in one read of each column: Float64 without NULLs, and finite moments
    // saw only finite values, so the rows need no check of their own.
    if columns().all(|c| c.data_type() == &DataType::Float64 && c.logical_null_count() == 0) {
        let values: Vec<&[f64]> = columns()
            .map(|c| c.as_primitive::<Float64Type>().values().as_ref())
            .collect();
        let mut m = Moments::new(values.len());
        m.update(&values);
        if m.is_finite() {
            return Ok((m, (batch.num_rows() as u64, 0, 0)));
        }
    }
    let rows = set.rows(batch)?;
    let values = set
        .feature_idx
        .iter()
        .chain(&set.label_idx)
        .map(|&i| rows.numeric(i))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| DataFusionError::Internal("a numeric column".into()))?;
    let mut m = Moments::new(values.len());
    m.update(&values.iter().map(|c| c.as_ref()).collect::<Vec<_>>());
    Ok((m, rows.counts(batch.num_rows())))
}

/// The batches, when one pass over their raw columns can train: they are in memory, every
/// feature is numeric, and no feature value is NULL (a NULL is imputed with the training
/// mean, which takes a pass to know). Otherwise training prepares the encoding first.
fn raw_batches<'a>(source: &'a dyn Source, set: &TrainingSet) -> Option<&'a [RecordBatch]> {
    let batches = source.resident()?;
    let schema = source.schema();
    let raw = set
        .feature_idx
        .iter()
        .all(|&i| is_numeric(schema.field(i).data_type()))
        && batches.iter().all(|b| {
            set.feature_idx
                .iter()
                .all(|&i| b.column(i).logical_null_count() == 0)
        });
    raw.then_some(batches)
}

/// The pass of linear regression: the moments of (design..., label) over the used rows.
#[derive(Debug, Serialize, Deserialize)]
pub struct MomentsPass {
    set: TrainingSet,
}

impl Pass for MomentsPass {
    const NAME: &'static str = "moments";
    type State = Moments;

    fn zero(&self) -> Moments {
        Moments::new(self.set.design_names().len() + 1)
    }

    fn add(&self, state: &mut Moments, batch: &RecordBatch) -> Result<()> {
        let (rows, mut columns) = self.set.design(batch)?;
        columns.push(self.set.label_numbers(&rows)?);
        state.update(&columns.iter().map(|c| c.as_slice()).collect::<Vec<_>>());
        Ok(())
    }

    fn merge(&self, state: &mut Moments, other: Moments) {
        state.merge(&other);
    }
}
