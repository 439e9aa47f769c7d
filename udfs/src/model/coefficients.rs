//! The fitted coefficients of a linear predictor over the design columns, with their
//! covariance, shared by linear and logistic regression.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::buffer::ScalarBuffer;
use datafusion::arrow::datatypes::Float64Type;
use datafusion::common::Result;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, s};
use serde::{Deserialize, Serialize};

use super::encoding::{FeatureEncoding, as_f64};
use super::{Contributions, Explainer, Model};
use crate::kernels::fold::fold_columns;
use crate::kernels::simd::{Kernel, Simd, dispatch};

/// What one design column adds to a row's score: `scale · (value - mean)`.
struct Term {
    scale: f64,
    mean: f64,
    values: ScalarBuffer<f64>,
}

/// Adds every term to the scores in `out`, compiled for the CPU's vectors (the same
/// arithmetic at every level, in the terms' order: a subtraction, a multiply and an add,
/// not fused).
struct AddTerms<'a> {
    terms: &'a [Term],
    out: &'a mut [f64],
}

impl Kernel for AddTerms<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self) {
        fold_columns(
            self.out,
            self.terms,
            |t| &t.values,
            |score, t, v| score + t.scale * (v - t.mean),
        );
    }
}

/// Intercept and weights in standardised design units, with their uncertainty. Stored as
/// JSON with the weights and the covariance as plain arrays of numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coefficients {
    pub intercept: f64,
    /// One weight per design column (0 for a dropped column).
    #[serde(with = "super::flat_vector")]
    pub weights: Array1<f64>,
    /// Standard errors, test statistics (t or z) and p-values (NaN where dropped).
    #[serde(with = "super::nan_as_null")]
    pub std_err: Vec<f64>,
    #[serde(with = "super::nan_as_null")]
    pub statistic: Vec<f64>,
    #[serde(with = "super::nan_as_null")]
    pub p_value: Vec<f64>,
    /// Covariance of the weights, design columns × design columns (0 for dropped columns);
    /// stored row by row.
    #[serde(with = "super::flat_square")]
    pub covariance: Array2<f64>,
    /// Variance of the intercept and its covariance with each weight; `None` without one,
    /// NaN where unknown (under an L1 penalty).
    #[serde(with = "super::optional_nan", default)]
    pub intercept_variance: Option<f64>,
    #[serde(with = "super::nan_as_null")]
    pub intercept_covariance: Vec<f64>,
}

/// One row of EXPLAIN_MODEL: a design column's weight in the units of its feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    /// The column name, `column=level` for a category, or `(intercept)`.
    pub feature: String,
    pub weight: f64,
    pub std_err: Option<f64>,
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    /// |weight| in standardised units, comparable across features; `None` for the intercept.
    pub importance: Option<f64>,
}

impl Coefficients {
    /// The weights, one per design column, in standardised design units.
    pub fn weights(&self) -> ArrayView1<'_, f64> {
        self.weights.view()
    }

    /// The covariance of the weights, design columns × design columns.
    pub fn covariance(&self) -> ArrayView2<'_, f64> {
        self.covariance.view()
    }

    /// `intercept + Σ wⱼ xⱼ` for design columns `x`.
    pub fn linear_predictor(&self, design: &[Vec<f64>], rows: usize) -> Vec<f64> {
        let mut out = vec![self.intercept; rows];
        for (w, column) in self.weights.iter().zip(design) {
            if *w != 0.0 {
                for (o, x) in out.iter_mut().zip(column) {
                    *o += w * x;
                }
            }
        }
        out
    }

    /// `intercept + Σ wⱼ xⱼ` straight from feature columns given in training order: numeric
    /// columns are read from their Arrow buffers without building the design (a NULL adds
    /// nothing, as the mean it is imputed with); categories go through their encoding.
    pub fn score(&self, features: &[FeatureEncoding], columns: &[ArrayRef]) -> Result<Vec<f64>> {
        let rows = columns.first().map_or(0, |c| c.len());
        let mut terms = Vec::new();
        let mut j = 0;
        for (f, column) in features.iter().zip(columns) {
            match f {
                FeatureEncoding::Numeric {
                    mean, std, name, ..
                } => {
                    let w = self.weights[j];
                    j += 1;
                    if w != 0.0 {
                        let x = as_f64(column, name)?;
                        let x = x.as_primitive::<Float64Type>();
                        // A NULL adds nothing: its value is taken at the mean.
                        let values = if x.null_count() == 0 {
                            x.values().clone()
                        } else {
                            x.iter().map(|v| v.unwrap_or(*mean)).collect()
                        };
                        terms.push(Term {
                            scale: w / std,
                            mean: *mean,
                            values,
                        });
                    }
                }
                FeatureEncoding::OneHot { levels, .. } => {
                    let mut design = Vec::with_capacity(levels.len());
                    f.encode(column, &mut design)?;
                    let weights = self.weights.slice(s![j..j + levels.len()]);
                    terms.extend(weights.iter().zip(design).filter(|(w, _)| **w != 0.0).map(
                        |(w, values)| Term {
                            scale: *w,
                            mean: 0.0,
                            values: values.into(),
                        },
                    ));
                    j += levels.len();
                }
            }
        }
        let mut out = vec![self.intercept; rows];
        dispatch(AddTerms {
            terms: &terms,
            out: &mut out,
        });
        Ok(out)
    }

    /// Each row explained on the link scale: design column j contributes `wⱼ (xⱼ - mⱼ)`, mⱼ
    /// its training mean, which for a number is its weight in original units times the
    /// value's distance from the training mean (0 for a NULL, imputed with that mean). The
    /// base value is the score of the mean row, so it and a row's contributions add up to
    /// the row's score.
    pub fn contributions(
        &self,
        features: &[FeatureEncoding],
        columns: &[ArrayRef],
    ) -> Result<Contributions> {
        let rows = columns.first().map_or(0, |c| c.len());
        let mut design = Vec::with_capacity(self.weights.len());
        for (f, column) in features.iter().zip(columns) {
            f.encode(column, &mut design)?;
        }
        let means: Vec<f64> = features.iter().flat_map(|f| f.design_means()).collect();
        let base = self.intercept
            + self
                .weights
                .iter()
                .zip(&means)
                .map(|(w, m)| w * m)
                .sum::<f64>();
        let contributions = (0..rows)
            .map(|r| {
                self.weights
                    .iter()
                    .zip(&design)
                    .zip(&means)
                    .map(|((w, x), m)| w * (x[r] - m))
                    .collect()
            })
            .collect();
        Ok(Contributions {
            base,
            raw: self.linear_predictor(&design, rows),
            rows: contributions,
        })
    }

    /// The weights in the original units of each feature, intercept first. `p_of` turns the
    /// intercept's statistic into a p-value (t or normal).
    pub fn explain(
        &self,
        features: &[FeatureEncoding],
        p_of: impl Fn(f64) -> f64,
    ) -> Vec<Explained> {
        // A standardised weight w on (x - m)/s is w/s per unit of x and moves m·w/s into
        // the intercept; `shift` holds m/s per design column (0 for categories).
        let mut scale = Vec::with_capacity(self.weights.len());
        let mut shift = Vec::with_capacity(self.weights.len());
        for f in features {
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
        if let Some(var0) = self.intercept_variance {
            let intercept = self.intercept
                - self
                    .weights
                    .iter()
                    .zip(&shift)
                    .map(|(w, a)| w * a)
                    .sum::<f64>();
            // Var(b0 - aᵀw) = Var(b0) - 2 aᵀ Cov(w, b0) + aᵀ Cov(w) a.
            let mut var = var0;
            for (i, row) in self.covariance.rows().into_iter().enumerate() {
                var -= 2.0 * shift[i] * self.intercept_covariance[i];
                for (c, a) in row.iter().zip(&shift) {
                    var += shift[i] * c * a;
                }
            }
            let se = var.sqrt();
            let stat = intercept / se;
            rows.push(Explained {
                feature: "(intercept)".to_string(),
                weight: intercept,
                std_err: finite(se),
                statistic: finite(stat),
                p_value: finite(p_of(stat)),
                importance: None,
            });
        }
        let names = features.iter().flat_map(|f| f.design_names());
        for (j, name) in names.enumerate() {
            rows.push(Explained {
                feature: name,
                weight: self.weights[j] * scale[j],
                std_err: finite(self.std_err[j] * scale[j]),
                statistic: finite(self.statistic[j]),
                p_value: finite(self.p_value[j]),
                importance: Some(self.weights[j].abs()),
            });
        }
        rows
    }
}

/// A model that scores through [`Coefficients`] over the design columns of its features
/// (linear and logistic regression); it is explained by them.
pub trait CoefficientModel: Model {
    fn coefficients(&self) -> &Coefficients;
}

/// Rows explained on the link scale (log-odds for a classifier), one contribution per
/// design column (`column=level` for a category); see [`Coefficients::contributions`].
impl<M: CoefficientModel> Explainer for M {
    fn names(&self) -> Vec<String> {
        self.features()
            .iter()
            .flat_map(|f| f.design_names())
            .collect()
    }

    fn contributions(&self, columns: &[ArrayRef]) -> Result<Contributions> {
        self.coefficients().contributions(self.features(), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_with_plain_arrays() {
        // The form models have always been stored in: weights and covariance (row by row)
        // as plain arrays of numbers, NaN as null.
        let stored = serde_json::json!({
            "intercept": 0.5,
            "weights": [1.5, 0.0],
            "std_err": [0.1, null],
            "statistic": [15.0, null],
            "p_value": [0.001, null],
            "covariance": [0.01, 0.0, 0.0, 0.0],
            "intercept_variance": 0.02,
            "intercept_covariance": [0.003, 0.0],
        });
        let c: Coefficients = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(c.weights, ndarray::arr1(&[1.5, 0.0]));
        assert_eq!(c.covariance, ndarray::arr2(&[[0.01, 0.0], [0.0, 0.0]]));
        assert_eq!(serde_json::to_value(&c).unwrap(), stored);
        let mut not_square = stored;
        not_square["covariance"] = serde_json::json!([0.01, 0.0, 0.0]);
        assert!(serde_json::from_value::<Coefficients>(not_square).is_err());
    }
}
