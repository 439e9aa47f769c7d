//! Logistic regression (churn and other yes/no labels) as a stored model.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Schema};
use datafusion::common::{DataFusionError, Result, plan_err};
use serde::{Deserialize, Serialize};

use super::coefficients::{Coefficients, Explained};
use super::encoding::{FeatureEncoding, as_f64, as_text};
use super::training::TrainingSet;
use super::{Dropped, Report, dropped_warnings};
use crate::kernels::dist::normal_two_sided;
use crate::kernels::logistic::{LogisticOptions, fit_logistic};

/// Settings of a logistic_reg model, from CREATE MODEL's options.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticSettings {
    pub l2: f64,
    /// Weight the classes inversely to their frequency (`class_weight = 'balanced'`).
    pub balanced: bool,
    pub max_iterations: usize,
    /// For a string label: the value that counts as positive.
    pub positive_class: Option<String>,
}

impl Default for LogisticSettings {
    fn default() -> Self {
        Self {
            l2: 0.0,
            balanced: false,
            max_iterations: 50,
            positive_class: None,
        }
    }
}

/// A fitted logistic regression with the encoding of its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub label: String,
    /// The label's values; probabilities are of the positive one.
    pub classes: Classes,
    pub features: Vec<FeatureEncoding>,
    pub coefficients: Coefficients,
}

/// The two values of a label and which one is positive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Classes {
    /// true is positive.
    Boolean,
    /// 1 is positive, 0 negative.
    Numeric,
    Text {
        positive: String,
        negative: String,
    },
}

impl LogisticModel {
    /// Fits the yes/no `label` on every other column of `batches` (in schema order).
    pub fn train(
        schema: &Schema,
        batches: &[RecordBatch],
        label: &str,
        settings: &LogisticSettings,
    ) -> Result<(Self, Report)> {
        let set = TrainingSet::prepare(schema, batches, label)?;
        let label_type = schema.field(set.label_idx).data_type();
        let kind = label_kind(label_type, label, batches, &set, settings)?;

        // The design in memory, intercept first: IRLS passes over it several times.
        let design = set.design_names();
        let mut columns: Vec<Vec<f64>> = vec![Vec::new(); design.len() + 1];
        let mut y = Vec::new();
        for (i, batch) in batches.iter().enumerate() {
            let part = set.design(i, batch)?;
            let rows = set.keeps[i].iter().filter(|k| **k).count();
            columns[0].extend(std::iter::repeat_n(1.0, rows));
            for (c, p) in columns[1..].iter_mut().zip(part) {
                c.extend(p);
            }
            y.extend(set.kept(i, label_01(batch.column(set.label_idx), &kind, label)?));
        }
        if let Classes::Numeric = kind
            && let Some(bad) = y.iter().find(|v| **v != 0.0 && **v != 1.0)
        {
            return plan_err!(
                "label {label} has the value {bad}; logistic_reg needs 0/1, true/false or two \
                 strings (for a numeric target use model_type = 'linear_reg')"
            );
        }
        let positives = y.iter().sum::<f64>();
        let n = y.len() as f64;
        let weights: Option<Vec<f64>> = settings.balanced.then(|| {
            let (wp, wn) = (n / (2.0 * positives), n / (2.0 * (n - positives)));
            y.iter().map(|&v| if v == 1.0 { wp } else { wn }).collect()
        });
        let options = LogisticOptions {
            l2: settings.l2,
            intercept: true,
            max_iterations: settings.max_iterations,
        };
        let fit = fit_logistic(&columns, &y, weights.as_deref(), options)
            .map_err(|e| DataFusionError::Plan(e.to_string()))?;

        let dropped: Vec<(usize, Dropped)> = fit
            .dropped
            .iter()
            .filter(|&&j| j > 0)
            .map(|&j| {
                let c = &columns[j];
                let constant = c.iter().all(|v| *v == c[0]);
                (
                    j - 1,
                    if constant {
                        Dropped::Constant
                    } else {
                        Dropped::Collinear
                    },
                )
            })
            .collect();
        let mut warnings = dropped_warnings(&design, &dropped);
        if !fit.converged {
            warnings.push(format!(
                "did not converge in {} iterations; raise max_iterations",
                fit.iterations
            ));
        }
        let d = design.len();
        let k = d + 1;
        let coefficients = Coefficients {
            intercept: fit.coef[0],
            weights: fit.coef[1..].to_vec(),
            std_err: fit.std_err[1..].to_vec(),
            statistic: fit.z[1..].to_vec(),
            p_value: fit.p[1..].to_vec(),
            covariance: (1..k)
                .flat_map(|i| (1..k).map(move |j| (i, j)))
                .map(|(i, j)| fit.cov[i * k + j])
                .collect(),
            intercept_variance: Some(fit.cov[0]),
            intercept_covariance: (1..k).map(|j| fit.cov[j]).collect(),
        };
        let p: Vec<f64> = coefficients
            .linear_predictor(&columns[1..], y.len())
            .into_iter()
            .map(sigmoid)
            .collect();
        let report = Report {
            rows_used: set.rows_used,
            rows_skipped: set.rows_skipped(),
            skipped_because: set.skipped_reason(),
            warnings,
            metrics: vec![
                ("auc".to_string(), auc(&p, &y)),
                ("log_loss".to_string(), log_loss(&p, &y)),
                ("accuracy".to_string(), accuracy(&p, &y)),
            ],
        };
        let model = LogisticModel {
            label: label.to_string(),
            classes: kind,
            features: set.features,
            coefficients,
        };
        Ok((model, report))
    }

    /// The weights (log-odds) in the original units of each feature, intercept first.
    pub fn explain(&self) -> Vec<Explained> {
        self.coefficients.explain(&self.features, normal_two_sided)
    }

    /// Probabilities of the positive class for feature columns given in training order.
    pub fn predict(&self, columns: &[ArrayRef]) -> Result<Float64Array> {
        Ok(self
            .coefficients
            .score(&self.features, columns)?
            .into_iter()
            .map(sigmoid)
            .collect())
    }
}

fn label_kind(
    t: &DataType,
    label: &str,
    batches: &[RecordBatch],
    set: &TrainingSet,
    settings: &LogisticSettings,
) -> Result<Classes> {
    if matches!(t, DataType::Boolean) {
        return Ok(Classes::Boolean);
    }
    if t.is_numeric() {
        return Ok(Classes::Numeric);
    }
    if !super::encoding::is_categorical(t) {
        return plan_err!(
            "label {label} has type {t}; logistic_reg needs a boolean, 0/1 or two-valued \
             string label"
        );
    }
    let mut values = std::collections::BTreeSet::new();
    for (i, batch) in batches.iter().enumerate() {
        let text = as_text(batch.column(set.label_idx), label)?;
        let text = text.as_string::<i32>();
        for (r, k) in set.keeps[i].iter().enumerate() {
            if *k {
                values.insert(text.value(r).to_string());
            }
        }
    }
    let values: Vec<String> = values.into_iter().collect();
    if values.len() != 2 {
        return plan_err!(
            "label {label} has {} distinct values ({}); logistic_reg needs exactly two",
            values.len(),
            values
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match &settings.positive_class {
        Some(p) if values.contains(p) => Ok(Classes::Text {
            positive: p.clone(),
            negative: values.iter().find(|v| *v != p).cloned().unwrap_or_default(),
        }),
        Some(p) => plan_err!(
            "positive_class '{p}' is not a value of label {label}; its values are '{}' and '{}'",
            values[0],
            values[1]
        ),
        None => plan_err!(
            "label {label} has the values '{}' and '{}'; say which is positive with \
             positive_class = '{}' (or '{}')",
            values[0],
            values[1],
            values[1],
            values[0]
        ),
    }
}

/// The label as 0/1 (NULLs, which training skips, as 0).
fn label_01(column: &ArrayRef, kind: &Classes, label: &str) -> Result<Vec<f64>> {
    Ok(match kind {
        Classes::Boolean => {
            let b = column.as_boolean();
            (0..b.len())
                .map(|r| f64::from(u8::from(b.is_valid(r) && b.value(r))))
                .collect()
        }
        Classes::Numeric => {
            let v = as_f64(column, label)?;
            v.as_primitive::<Float64Type>().values().to_vec()
        }
        Classes::Text { positive, .. } => {
            let t = as_text(column, label)?;
            let t = t.as_string::<i32>();
            (0..t.len())
                .map(|r| f64::from(u8::from(t.is_valid(r) && t.value(r) == positive)))
                .collect()
        }
    })
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Area under the ROC curve (ties counted half), as scikit-learn's `roc_auc_score`.
pub fn auc(p: &[f64], y: &[f64]) -> f64 {
    // Sorting the pairs themselves keeps the sort in cache, unlike sorting indices.
    let mut pairs: Vec<(f64, f64)> = p.iter().copied().zip(y.iter().copied()).collect();
    pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    // Mann-Whitney U from average ranks.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j + 1 < pairs.len() && pairs[j + 1].0 == pairs[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += pairs[i..=j].iter().map(|(_, y)| y * rank).sum::<f64>();
        i = j + 1;
    }
    let pos = y.iter().sum::<f64>();
    let neg = y.len() as f64 - pos;
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Mean negative log-likelihood, probabilities clipped as scikit-learn's `log_loss`.
pub fn log_loss(p: &[f64], y: &[f64]) -> f64 {
    let eps = f64::EPSILON;
    p.iter()
        .zip(y)
        .map(|(&p, &y)| {
            let p = p.clamp(eps, 1.0 - eps);
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / p.len() as f64
}

/// Share of rows whose probability is on the right side of 0.5.
pub fn accuracy(p: &[f64], y: &[f64]) -> f64 {
    p.iter()
        .zip(y)
        .filter(|(p, y)| (**p >= 0.5) == (**y == 1.0))
        .count() as f64
        / p.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half() {
        assert_eq!(auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]), 0.75);
        assert_eq!(auc(&[0.5, 0.5], &[0.0, 1.0]), 0.5);
    }

    #[test]
    fn log_loss_and_accuracy() {
        let p = [0.9, 0.2, 0.6];
        let y = [1.0, 0.0, 0.0];
        let expected = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln()) / 3.0;
        assert!((log_loss(&p, &y) - expected).abs() < 1e-15);
        assert!((accuracy(&p, &y) - 2.0 / 3.0).abs() < 1e-15);
    }
}
