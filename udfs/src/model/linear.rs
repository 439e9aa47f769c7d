//! Linear regression as a stored model: training over Arrow batches and scoring.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Schema};
use datafusion::common::{Result, plan_err};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::encoding::{FeatureEncoding, FeatureStats, as_f64};
use crate::kernels::dist::student_t_two_sided;
use crate::kernels::linear::{Dropped, LinearFit, LinearOptions, fit_linear};
use crate::kernels::moments::Moments;

/// A fitted linear regression with the encoding of its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub label: String,
    pub features: Vec<FeatureEncoding>,
    pub intercept: f64,
    /// One weight per design column, in standardised units (0 for a dropped column).
    pub weights: Vec<f64>,
    /// Standard errors, t statistics and p-values of the weights (NaN where dropped).
    #[serde(with = "super::nan_as_null")]
    pub std_err: Vec<f64>,
    #[serde(with = "super::nan_as_null")]
    pub t: Vec<f64>,
    #[serde(with = "super::nan_as_null")]
    pub p: Vec<f64>,
    /// Covariance of the weights, row-major (0 for dropped columns).
    pub covariance: Vec<f64>,
    /// `None` without an intercept.
    pub intercept_std_err: Option<f64>,
    pub df_resid: f64,
}

/// One row of EXPLAIN_MODEL: a design column's weight in the units of its feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    /// The column name, `column=level` for a category, or `(intercept)`.
    pub feature: String,
    pub weight: f64,
    pub std_err: Option<f64>,
    pub t: Option<f64>,
    pub p: Option<f64>,
    /// |weight| in standardised units, comparable across features; `None` for the intercept.
    pub importance: Option<f64>,
}

/// What training saw and concluded, for CREATE MODEL's report.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingReport {
    pub rows_used: u64,
    pub rows_null_label: u64,
    pub rows_not_finite: u64,
    pub warnings: Vec<String>,
    pub r2: f64,
    pub adj_r2: f64,
    pub rmse: f64,
}

impl TrainingReport {
    pub fn rows_skipped(&self) -> u64 {
        self.rows_null_label + self.rows_not_finite
    }

    /// Why rows were skipped, in words; empty when none were.
    pub fn skipped_reason(&self) -> String {
        let mut parts = Vec::new();
        if self.rows_null_label > 0 {
            parts.push(format!("{} with a NULL label", self.rows_null_label));
        }
        if self.rows_not_finite > 0 {
            parts.push(format!(
                "{} with NaN or infinite values",
                self.rows_not_finite
            ));
        }
        parts.join("; ")
    }
}

impl LinearModel {
    /// Fits `label` on every other column of `batches` (in schema order).
    pub fn train(
        schema: &Schema,
        batches: &[RecordBatch],
        label: &str,
        options: LinearOptions,
    ) -> Result<(Self, TrainingReport)> {
        let Some((label_idx, label_field)) = schema.column_with_name(label) else {
            let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return plan_err!(
                "label column {label} is not in the training query; its columns are: {}",
                names.join(", ")
            );
        };
        if !label_field.data_type().is_numeric() {
            return plan_err!(
                "label {label} has type {}; linear_reg needs a numeric label (use \
                 model_type = 'logistic_reg' for a yes/no label)",
                label_field.data_type()
            );
        }
        let feature_idx: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| i != label_idx)
            .collect();
        if feature_idx.is_empty() {
            return plan_err!(
                "the training query has only the label {label}; add feature columns to it"
            );
        }

        // Pass 1: which rows count, and the statistics that fit each feature's encoding.
        let mut stats = feature_idx
            .iter()
            .map(|&i| {
                let f = schema.field(i);
                FeatureStats::for_type(f.data_type(), f.name())
            })
            .collect::<Result<Vec<_>>>()?;
        let mut keeps = Vec::with_capacity(batches.len());
        let (mut null_label, mut not_finite) = (0u64, 0u64);
        for batch in batches {
            let y = as_f64(batch.column(label_idx), label)?;
            let y = y.as_primitive::<Float64Type>();
            let mut keep: Vec<bool> = (0..batch.num_rows())
                .map(|r| {
                    if y.is_null(r) {
                        null_label += 1;
                        false
                    } else {
                        true
                    }
                })
                .collect();
            let mut finite: Vec<bool> = (0..batch.num_rows())
                .map(|r| y.is_null(r) || y.value(r).is_finite())
                .collect();
            for &i in &feature_idx {
                let f = schema.field(i);
                if f.data_type().is_numeric() {
                    let x = as_f64(batch.column(i), f.name())?;
                    let x = x.as_primitive::<Float64Type>();
                    for (r, ok) in finite.iter_mut().enumerate() {
                        *ok &= x.is_null(r) || x.value(r).is_finite();
                    }
                }
            }
            for (k, ok) in keep.iter_mut().zip(&finite) {
                if *k && !ok {
                    not_finite += 1;
                    *k = false;
                }
            }
            for (s, &i) in stats.iter_mut().zip(&feature_idx) {
                s.update(batch.column(i), &keep, schema.field(i).name())?;
            }
            keeps.push(keep);
        }
        let rows_used: u64 = keeps.iter().flatten().map(|&k| u64::from(k)).sum();
        if rows_used == 0 {
            let why = if null_label + not_finite == 0 {
                "the training query returned no rows".to_string()
            } else {
                format!(
                    "every row was skipped ({null_label} with a NULL label, {not_finite} with NaN or infinite values)"
                )
            };
            return plan_err!("nothing to train on: {why}");
        }
        let features = stats
            .into_iter()
            .zip(&feature_idx)
            .map(|(s, &i)| s.finish(schema.field(i).name(), schema.field(i).data_type()))
            .collect::<Result<Vec<_>>>()?;
        let design: Vec<String> = features.iter().flat_map(|f| f.design_names()).collect();

        // Pass 2: moments of (design..., label), one state per batch, merged.
        let width = design.len() + 1;
        let moments = batches
            .par_iter()
            .zip(&keeps)
            .map(|(batch, keep)| -> Result<Moments> {
                let mut columns = Vec::with_capacity(width);
                for (f, &i) in features.iter().zip(&feature_idx) {
                    f.encode(batch.column(i), &mut columns)?;
                }
                let y = as_f64(batch.column(label_idx), label)?;
                let y = y.as_primitive::<Float64Type>();
                columns.push(y.values().to_vec());
                let kept: Vec<Vec<f64>> = columns
                    .into_iter()
                    .map(|c| {
                        c.into_iter()
                            .zip(keep)
                            .filter(|(_, k)| **k)
                            .map(|(v, _)| v)
                            .collect()
                    })
                    .collect();
                let mut m = Moments::new(width);
                m.update(&kept.iter().map(|c| c.as_slice()).collect::<Vec<_>>());
                Ok(m)
            })
            .try_reduce(
                || Moments::new(width),
                |mut a, b| {
                    a.merge(&b);
                    Ok(a)
                },
            )?;

        let fit: LinearFit = fit_linear(&moments, options)
            .map_err(|e| datafusion::common::DataFusionError::Plan(e.to_string()))?;
        let warnings = fit
            .dropped
            .iter()
            .map(|(j, why)| match why {
                Dropped::Constant => format!(
                    "{} is constant in the training rows and was left out",
                    design[*j]
                ),
                Dropped::Collinear => format!(
                    "{} is a linear combination of the features before it and was left out",
                    design[*j]
                ),
            })
            .collect();
        let report = TrainingReport {
            rows_used,
            rows_null_label: null_label,
            rows_not_finite: not_finite,
            warnings,
            r2: fit.r2,
            adj_r2: fit.adj_r2,
            rmse: (fit.rss / fit.rows).sqrt(),
        };
        let model = LinearModel {
            label: label.to_string(),
            features,
            intercept: fit.intercept,
            weights: fit.coef,
            std_err: fit.std_err,
            t: fit.t,
            p: fit.p,
            covariance: fit.cov,
            intercept_std_err: options.fit_intercept.then_some(fit.intercept_std_err),
            df_resid: fit.df_resid,
        };
        Ok((model, report))
    }

    /// The weights in the original units of each feature, intercept first.
    pub fn explain(&self) -> Vec<Explained> {
        // Standardised weight w on (x - m)/s is w/s per unit of x, and moves m·w/s into the
        // intercept; `shift` holds m/s per design column (0 for categories).
        let mut scale = Vec::with_capacity(self.weights.len());
        let mut shift = Vec::with_capacity(self.weights.len());
        for f in &self.features {
            match f {
                FeatureEncoding::Numeric { mean, std, .. } => {
                    scale.push(1.0 / std);
                    shift.push(mean / std);
                }
                FeatureEncoding::OneHot { levels, .. } => {
                    scale.extend(std::iter::repeat_n(1.0, levels.len()));
                    shift.extend(std::iter::repeat_n(0.0, levels.len()));
                }
            }
        }
        let finite = |v: f64| v.is_finite().then_some(v);
        let d = self.weights.len();
        let mut rows = Vec::with_capacity(d + 1);
        if let Some(se0) = self.intercept_std_err {
            let intercept = self.intercept
                - self
                    .weights
                    .iter()
                    .zip(&shift)
                    .map(|(w, a)| w * a)
                    .sum::<f64>();
            // Var(b0 - aᵀw) = Var(b0) + aᵀ Cov(w) a: the design is centred, so b0 and w
            // are uncorrelated.
            let mut quad = 0.0;
            for i in 0..d {
                for j in 0..d {
                    quad += shift[i] * self.covariance[i * d + j] * shift[j];
                }
            }
            let se = (se0 * se0 + quad).sqrt();
            let t = intercept / se;
            rows.push(Explained {
                feature: "(intercept)".to_string(),
                weight: intercept,
                std_err: finite(se),
                t: finite(t),
                p: finite(student_t_two_sided(t, self.df_resid)),
                importance: None,
            });
        }
        let names = self.features.iter().flat_map(|f| f.design_names());
        for (j, name) in names.enumerate() {
            rows.push(Explained {
                feature: name,
                weight: self.weights[j] * scale[j],
                std_err: finite(self.std_err[j] * scale[j]),
                t: finite(self.t[j]),
                p: finite(self.p[j]),
                importance: Some(self.weights[j].abs()),
            });
        }
        rows
    }

    /// Predictions for feature columns given in training order. NULL features score as the
    /// training mean; NaN features give NaN.
    pub fn predict(&self, columns: &[ArrayRef]) -> Result<Float64Array> {
        let rows = columns.first().map_or(0, |c| c.len());
        let mut design = Vec::with_capacity(self.weights.len());
        for (f, c) in self.features.iter().zip(columns) {
            f.encode(c, &mut design)?;
        }
        let mut out = vec![self.intercept; rows];
        for (w, column) in self.weights.iter().zip(&design) {
            if *w != 0.0 {
                for (o, x) in out.iter_mut().zip(column) {
                    *o += w * x;
                }
            }
        }
        Ok(Float64Array::from(out))
    }
}
