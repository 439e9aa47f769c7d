//! Linear regression as a stored model: training over Arrow batches and scoring.

use datafusion::arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Schema};
use datafusion::common::{DataFusionError, Result, plan_err};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::coefficients::{Coefficients, Explained};
use super::encoding::FeatureEncoding;
use super::training::{TrainingSet, label_values};
use super::{Dropped, Report, dropped_warnings};
use crate::kernels::dist::student_t_two_sided;
use crate::kernels::linear::{LinearOptions, fit_linear};
use crate::kernels::moments::Moments;

/// A fitted linear regression with the encoding of its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub label: String,
    pub features: Vec<FeatureEncoding>,
    pub coefficients: Coefficients,
    pub df_resid: f64,
}

impl LinearModel {
    /// Fits `label` on every other column of `batches` (in schema order).
    pub fn train(
        schema: &Schema,
        batches: &[RecordBatch],
        label: &str,
        options: LinearOptions,
    ) -> Result<(Self, Report)> {
        if let Some((_, f)) = schema.column_with_name(label)
            && !f.data_type().is_numeric()
        {
            return plan_err!(
                "label {label} has type {}; linear_reg needs a numeric label (use \
                 model_type = 'logistic_reg' for a yes/no label)",
                f.data_type()
            );
        }
        let set = TrainingSet::prepare(schema, batches, label)?;
        let design = set.design_names();

        // Moments of (design..., label), one state per batch, merged.
        let width = design.len() + 1;
        let moments = batches
            .par_iter()
            .enumerate()
            .map(|(i, batch)| -> Result<Moments> {
                let mut columns = set.design(i, batch)?;
                let y = label_values(batch, &set)?;
                columns.push(set.kept(i, y.as_primitive::<Float64Type>().values().iter().copied()));
                let mut m = Moments::new(width);
                m.update(&columns.iter().map(|c| c.as_slice()).collect::<Vec<_>>());
                Ok(m)
            })
            .try_reduce(
                || Moments::new(width),
                |mut a, b| {
                    a.merge(&b);
                    Ok(a)
                },
            )?;

        let fit =
            fit_linear(&moments, options).map_err(|e| DataFusionError::Plan(e.to_string()))?;
        let dropped: Vec<(usize, Dropped)> = fit.dropped.clone();
        let report = Report {
            rows_used: set.rows_used,
            rows_skipped: set.rows_skipped(),
            skipped_because: set.skipped_reason(),
            warnings: dropped_warnings(&design, &dropped),
            metrics: vec![
                ("r2".to_string(), fit.r2),
                ("adj_r2".to_string(), fit.adj_r2),
                ("rmse".to_string(), (fit.rss / fit.rows).sqrt()),
            ],
        };
        let model = LinearModel {
            label: label.to_string(),
            features: set.features,
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

    /// The weights in the original units of each feature, intercept first.
    pub fn explain(&self) -> Vec<Explained> {
        self.coefficients
            .explain(&self.features, |t| student_t_two_sided(t, self.df_resid))
    }

    /// Predictions for feature columns given in training order. NULL features score as the
    /// training mean; NaN features give NaN.
    pub fn predict(&self, columns: &[ArrayRef]) -> Result<Float64Array> {
        let rows = columns.first().map_or(0, |c| c.len());
        let design = super::encode_all(&self.features, columns)?;
        Ok(Float64Array::from(
            self.coefficients.linear_predictor(&design, rows),
        ))
    }
}
