//! Least squares from mergeable moments: coefficients, standard errors, t statistics,
//! p-values and R², with constant and collinear features detected and dropped.

use ndarray::{Array1, Array2};

use super::cholesky::{cholesky, independent_columns, invert, solve};
use super::coordinate_descent::{Penalty, minimise};
use super::distributions::student_t_two_sided;
use super::moments::Moments;

/// Fit settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearOptions {
    /// Ridge penalty on the coefficients (not the intercept), in the units of the features:
    /// the fit minimises `½ RSS + l1 Σ|β| + ½ l2 Σβ²`.
    pub l2: f64,
    /// Lasso penalty on the coefficients (not the intercept); with `l2`, the elastic net.
    pub l1: f64,
    pub fit_intercept: bool,
}

impl Default for LinearOptions {
    fn default() -> Self {
        Self {
            l2: 0.0,
            l1: 0.0,
            fit_intercept: true,
        }
    }
}

/// Why a feature took no part in the fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The feature has (numerically) one value.
    Constant,
    /// The feature is a linear combination of the features before it.
    Collinear,
}

/// A fitted linear model. Per-feature vectors have one entry per feature; a dropped feature
/// has coefficient 0 and NaN statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearFit {
    pub rows: f64,
    /// 0 when fitted without an intercept.
    pub intercept: f64,
    /// NaN when fitted without an intercept.
    pub intercept_std_err: f64,
    pub coef: Array1<f64>,
    pub std_err: Vec<f64>,
    pub t: Vec<f64>,
    pub p: Vec<f64>,
    pub dropped: Vec<(usize, Dropped)>,
    /// Covariance of the coefficients, `d × d`; rows and columns of dropped features are 0.
    pub cov: Array2<f64>,
    /// Covariance of the intercept with each coefficient (0 without an intercept).
    pub intercept_cov: Vec<f64>,
    pub r2: f64,
    pub adj_r2: f64,
    /// Residual sum of squares.
    pub rss: f64,
    pub df_resid: f64,
}

impl LinearFit {
    pub fn intercept_t(&self) -> f64 {
        self.intercept / self.intercept_std_err
    }

    pub fn intercept_p(&self) -> f64 {
        student_t_two_sided(self.intercept_t(), self.df_resid)
    }
}

/// Why no model could be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("no rows to train on")]
    NoRows,
    /// Fewer rows than parameters: the fit would be exact and carry no information.
    #[error(
        "{rows} {} too few for {parameters} parameters; at least {} are needed",
        rows_are(*.rows),
        .parameters + 1
    )]
    TooFewRows { rows: f64, parameters: usize },
    /// The label has one value, so there is nothing to explain.
    #[error("the label has a single value")]
    ConstantLabel,
}

fn rows_are(rows: f64) -> &'static str {
    if rows == 1.0 { "row is" } else { "rows are" }
}

/// A feature whose variance is below this fraction of its raw second moment is constant.
const CONSTANT_TOL: f64 = 1e-12;
/// A feature explained by the earlier ones up to this fraction of its variance is collinear.
const COLLINEAR_TOL: f64 = 1e-9;

/// Fits `label ~ features` from `moments` over the columns `(features..., label)`.
pub fn fit_linear(moments: &Moments, options: LinearOptions) -> Result<LinearFit, FitError> {
    let k = moments.width();
    let d = k - 1;
    let n = moments.count();
    if n == 0.0 {
        return Err(FitError::NoRows);
    }
    let mean = moments.mean();
    // Centred moments with an intercept, raw (uncentred) ones without.
    let raw = |i: usize, j: usize| {
        let c = moments.comoment(i, j);
        if options.fit_intercept {
            c
        } else {
            c + n * mean[i] * mean[j]
        }
    };
    let yy = raw(d, d);
    // Checked on the features given, before any are dropped: that is what the user wrote.
    let given = d + usize::from(options.fit_intercept);
    if n <= given as f64 {
        return Err(FitError::TooFewRows {
            rows: n,
            parameters: given,
        });
    }
    if moments.comoment(d, d) <= CONSTANT_TOL * (moments.comoment(d, d) + n * mean[d] * mean[d]) {
        return Err(FitError::ConstantLabel);
    }

    // Constant features first, then a greedy pass for collinear ones.
    let mut dropped = Vec::new();
    let mut candidates = Vec::with_capacity(d);
    for (j, &mean_j) in mean.iter().enumerate().take(d) {
        let var = moments.comoment(j, j);
        if var <= CONSTANT_TOL * (var + n * mean_j * mean_j) {
            dropped.push((j, Dropped::Constant));
        } else {
            candidates.push(j);
        }
    }
    let (chol, kept, collinear) = independent_columns(candidates, raw, COLLINEAR_TOL);
    dropped.extend(collinear.into_iter().map(|j| (j, Dropped::Collinear)));
    dropped.sort_by_key(|(j, _)| *j);
    let parameters = kept.len() + usize::from(options.fit_intercept);

    // Solve (A + λI) β = c on the kept features.
    let a = Array2::from_shape_fn((kept.len(), kept.len()), |(i, j)| raw(kept[i], kept[j]));
    let c: Array1<f64> = kept.iter().map(|&i| raw(i, d)).collect();
    let factor = if options.l2 > 0.0 {
        let mut penalised = a.clone();
        penalised
            .diag_mut()
            .iter_mut()
            .for_each(|v| *v += options.l2);
        cholesky(penalised.view()).ok_or(FitError::ConstantLabel)?
    } else {
        chol
    };
    let beta = if options.l1 > 0.0 {
        let ridge = solve(factor.view(), c.view());
        let penalty = Penalty {
            l1: vec![options.l1; kept.len()],
            l2: vec![options.l2; kept.len()],
        };
        Array1::from(minimise(
            a.view(),
            c.as_slice().unwrap_or(&c.to_vec()),
            &penalty,
            ridge.as_slice().unwrap_or(&ridge.to_vec()),
        ))
    } else {
        solve(factor.view(), c.view())
    };
    let inverse = invert(factor.view());

    let rss = (yy - 2.0 * beta.dot(&c) + beta.dot(&a.dot(&beta))).max(0.0);
    let df_resid = n - parameters as f64;
    let sigma2 = rss / df_resid;
    // Cov(β) = σ² (A+λI)⁻¹ A (A+λI)⁻¹, which is σ² A⁻¹ without a penalty. An L1 penalty
    // leaves no sampling distribution to speak of: no standard errors then.
    let cov = if options.l1 > 0.0 {
        Array2::from_elem(a.raw_dim(), f64::NAN)
    } else if options.l2 > 0.0 {
        inverse.dot(&a).dot(&inverse).mapv_into(|v| v * sigma2)
    } else {
        inverse.mapv_into(|v| v * sigma2)
    };

    let mut cov_full = Array2::zeros((d, d));
    for (a, &i) in kept.iter().enumerate() {
        for (b, &j) in kept.iter().enumerate() {
            cov_full[[i, j]] = cov[[a, b]];
        }
    }
    let mut coef = Array1::zeros(d);
    let mut std_err = vec![f64::NAN; d];
    let mut t = vec![f64::NAN; d];
    let mut pv = vec![f64::NAN; d];
    for (slot, &j) in kept.iter().enumerate() {
        coef[j] = beta[slot];
        std_err[j] = cov[[slot, slot]].sqrt();
        t[j] = coef[j] / std_err[j];
        pv[j] = student_t_two_sided(t[j], df_resid);
    }
    // b0 = ȳ - x̄ᵀβ, so Cov(b0, β) = -Cov(β) x̄ and Var(b0) = σ²/n + x̄ᵀ Cov(β) x̄.
    let mut intercept_cov = vec![0.0; d];
    let (intercept, intercept_std_err) = if options.fit_intercept {
        let xm: Array1<f64> = kept.iter().map(|&j| mean[j]).collect();
        let cov_xm = cov.dot(&xm);
        for (slot, &j) in kept.iter().enumerate() {
            intercept_cov[j] = -cov_xm[slot];
        }
        (
            mean[d] - beta.dot(&xm),
            (sigma2 / n + xm.dot(&cov_xm)).sqrt(),
        )
    } else {
        (0.0, f64::NAN)
    };
    let r2 = 1.0 - rss / yy;
    let adj_r2 = if options.fit_intercept {
        1.0 - (1.0 - r2) * (n - 1.0) / df_resid
    } else {
        1.0 - (1.0 - r2) * n / df_resid
    };
    Ok(LinearFit {
        rows: n,
        intercept,
        intercept_std_err,
        coef,
        std_err,
        t,
        p: pv,
        dropped,
        cov: cov_full,
        intercept_cov,
        r2,
        adj_r2,
        rss,
        df_resid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(columns: &[Vec<f64>]) -> Moments {
        let mut m = Moments::new(columns.len());
        m.update(&columns.iter().map(|c| c.as_slice()).collect::<Vec<_>>());
        m
    }

    #[test]
    fn recovers_an_exact_plane() {
        let x1: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let x2: Vec<f64> = (0..50).map(|i| ((i * 7) % 11) as f64).collect();
        let y: Vec<f64> = x1
            .iter()
            .zip(&x2)
            .map(|(a, b)| 3.0 + 2.0 * a - 0.5 * b)
            .collect();
        let fit = fit_linear(&moments(&[x1, x2, y]), LinearOptions::default()).unwrap();
        assert!((fit.intercept - 3.0).abs() < 1e-9);
        assert!((fit.coef[0] - 2.0).abs() < 1e-12 && (fit.coef[1] + 0.5).abs() < 1e-12);
        assert!((fit.r2 - 1.0).abs() < 1e-12);
        assert!(fit.dropped.is_empty());
    }

    #[test]
    fn drops_constant_and_collinear_features() {
        let x1: Vec<f64> = (0..40).map(|i| (i as f64).sqrt()).collect();
        let constant = vec![7.0; 40];
        let twice: Vec<f64> = x1.iter().map(|v| 2.0 * v + 1.0).collect();
        let x3: Vec<f64> = (0..40).map(|i| ((i * 13) % 7) as f64).collect();
        let y: Vec<f64> = x1
            .iter()
            .zip(&x3)
            .enumerate()
            .map(|(i, (a, b))| 1.0 + a - b + 0.01 * ((i % 3) as f64))
            .collect();
        let fit = fit_linear(
            &moments(&[x1, constant, twice, x3, y]),
            LinearOptions::default(),
        )
        .unwrap();
        assert_eq!(
            fit.dropped,
            vec![(1, Dropped::Constant), (2, Dropped::Collinear)]
        );
        assert_eq!((fit.coef[1], fit.coef[2]), (0.0, 0.0));
        assert!(fit.std_err[1].is_nan() && fit.p[2].is_nan());
        assert!(fit.coef.iter().all(|c| c.is_finite()));
        assert!((fit.coef[0] - 1.0).abs() < 0.05 && (fit.coef[3] + 1.0).abs() < 0.01);
        assert_eq!(fit.df_resid, 40.0 - 3.0);
    }

    #[test]
    fn ridge_shrinks_and_no_intercept_goes_through_the_origin() {
        let x: Vec<f64> = (1..=30).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| 4.0 * v + (v * 0.9).sin()).collect();
        let m = moments(&[x, y]);
        let ols = fit_linear(&m, LinearOptions::default()).unwrap();
        let ridge = fit_linear(
            &m,
            LinearOptions {
                l2: 1000.0,
                ..LinearOptions::default()
            },
        )
        .unwrap();
        assert!(ridge.coef[0].abs() < ols.coef[0].abs());
        let origin = fit_linear(
            &m,
            LinearOptions {
                fit_intercept: false,
                ..LinearOptions::default()
            },
        )
        .unwrap();
        assert_eq!(origin.intercept, 0.0);
        assert!(origin.intercept_std_err.is_nan());
        assert_eq!(origin.df_resid, 29.0);
    }

    #[test]
    fn bad_inputs_are_errors_not_nans() {
        assert_eq!(
            fit_linear(&Moments::new(3), LinearOptions::default()),
            Err(FitError::NoRows)
        );
        let constant = moments(&[vec![1.0, 2.0, 3.0], vec![5.0, 5.0, 5.0]]);
        assert_eq!(
            fit_linear(&constant, LinearOptions::default()),
            Err(FitError::ConstantLabel)
        );
        let one = moments(&[vec![1.0], vec![2.0]]);
        assert_eq!(
            fit_linear(&one, LinearOptions::default()),
            Err(FitError::TooFewRows {
                rows: 1.0,
                parameters: 2
            })
        );
        let two = moments(&[vec![1.0, 2.0], vec![2.0, 5.0]]);
        assert_eq!(
            fit_linear(&two, LinearOptions::default()),
            Err(FitError::TooFewRows {
                rows: 2.0,
                parameters: 2
            })
        );
    }
}
