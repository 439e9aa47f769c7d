//! Logistic regression by Newton's method (IRLS).
//!
//! Each iteration is one parallel pass over the rows that yields the gradient, the Hessian
//! and the log-likelihood as sums, so partial states from any split of the rows merge
//! exactly. Standard errors come from the Hessian at the final coefficients, as in
//! statsmodels' `Logit`.

use rayon::prelude::*;

use super::cholesky::{cholesky, independent_columns, invert, solve};
use super::dist::normal_two_sided;
use super::moments::dot;

/// Fit settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogisticOptions {
    /// Ridge penalty on every coefficient but the intercept (column 0 when `intercept`).
    pub l2: f64,
    /// Column 0 of the design is the intercept (all ones).
    pub intercept: bool,
    pub max_iterations: usize,
}

/// A fitted logistic regression over design columns; dropped columns have coefficient 0 and
/// NaN statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticFit {
    pub coef: Vec<f64>,
    pub std_err: Vec<f64>,
    pub z: Vec<f64>,
    pub p: Vec<f64>,
    /// Covariance of the coefficients, row-major, 0 for dropped columns.
    pub cov: Vec<f64>,
    /// Columns left out as linear combinations of earlier ones (or constant, when there is
    /// an intercept).
    pub dropped: Vec<usize>,
    pub log_likelihood: f64,
    pub iterations: usize,
    pub converged: bool,
}

/// Why no model could be fitted.
#[derive(Debug, Clone, PartialEq)]
pub enum LogisticError {
    NoRows,
    /// Every row has the same class.
    OneClass,
    /// Some combination of features predicts the class exactly; the coefficients run off
    /// to infinity.
    Separation,
}

impl std::fmt::Display for LogisticError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogisticError::NoRows => f.write_str("no rows to train on"),
            LogisticError::OneClass => {
                f.write_str("every training row has the same label; both classes are needed")
            }
            LogisticError::Separation => f.write_str(
                "the features separate the two classes perfectly, so the coefficients have no \
                 finite estimate; add a penalty (e.g. l2_reg = 1) or remove the feature that \
                 gives the label away",
            ),
        }
    }
}

/// Rows per parallel chunk of a pass.
const CHUNK: usize = 8192;
const COLLINEAR_TOL: f64 = 1e-9;
/// Standardised coefficients beyond this mean the likelihood has no maximum.
const SEPARATION_LIMIT: f64 = 30.0;

/// Gradient, Hessian (row-major, full) and log-likelihood of the rows, as sums.
struct Pass {
    gradient: Vec<f64>,
    hessian: Vec<f64>,
    log_likelihood: f64,
}

impl Pass {
    fn zero(k: usize) -> Self {
        Self {
            gradient: vec![0.0; k],
            hessian: vec![0.0; k * k],
            log_likelihood: 0.0,
        }
    }

    fn merge(mut self, other: Pass) -> Pass {
        for (a, b) in self.gradient.iter_mut().zip(&other.gradient) {
            *a += b;
        }
        for (a, b) in self.hessian.iter_mut().zip(&other.hessian) {
            *a += b;
        }
        self.log_likelihood += other.log_likelihood;
        self
    }
}

/// One pass over `columns` (the kept design columns) at `beta`.
fn pass(columns: &[&[f64]], y: &[f64], weight: Option<&[f64]>, beta: &[f64]) -> Pass {
    let k = columns.len();
    let n = y.len();
    (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(n));
            let mut eta = vec![0.0; hi - lo];
            for (col, b) in columns.iter().zip(beta) {
                for (e, x) in eta.iter_mut().zip(&col[lo..hi]) {
                    *e += b * x;
                }
            }
            let mut out = Pass::zero(k);
            let mut resid = vec![0.0; hi - lo];
            let mut curv = vec![0.0; hi - lo];
            for i in 0..hi - lo {
                let w = weight.map_or(1.0, |w| w[lo + i]);
                let e = eta[i];
                let yi = y[lo + i];
                // One exp and one log1p per row: with t = exp(-|e|), p = 1/(1+t) or t/(1+t),
                // and log-likelihood y·e - softplus(e), softplus(e) = max(e, 0) + ln(1 + t).
                let t = (-e.abs()).exp();
                let p = if e >= 0.0 {
                    1.0 / (1.0 + t)
                } else {
                    t / (1.0 + t)
                };
                out.log_likelihood += w * (yi * e - (e.max(0.0) + t.ln_1p()));
                resid[i] = w * (yi - p);
                curv[i] = w * p * (1.0 - p);
            }
            let mut weighted = vec![0.0; hi - lo];
            for a in 0..k {
                let xa = &columns[a][lo..hi];
                out.gradient[a] = dot(xa, &resid);
                for ((w, x), v) in weighted.iter_mut().zip(xa).zip(&curv) {
                    *w = x * v;
                }
                for (b, xb) in columns.iter().enumerate().skip(a) {
                    let h = dot(&weighted, &xb[lo..hi]);
                    out.hessian[a * k + b] = h;
                    out.hessian[b * k + a] = h;
                }
            }
            out
        })
        .reduce(|| Pass::zero(k), Pass::merge)
}

/// Fits `y` (0 or 1) on the design `columns` (equal lengths) with optional row weights.
pub fn fit_logistic(
    columns: &[Vec<f64>],
    y: &[f64],
    weight: Option<&[f64]>,
    options: LogisticOptions,
) -> Result<LogisticFit, LogisticError> {
    let d = columns.len();
    if y.is_empty() {
        return Err(LogisticError::NoRows);
    }
    let positives = y.iter().filter(|&&v| v == 1.0).count();
    if positives == 0 || positives == y.len() {
        return Err(LogisticError::OneClass);
    }
    // Independent columns, judged on the Hessian at zero (¼ XᵀWX).
    let all: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
    let start = pass(&all, y, weight, &vec![0.0; d]);
    let (_, kept, dropped) =
        independent_columns(0..d, |i, j| start.hessian[i * d + j], COLLINEAR_TOL);
    let cols: Vec<&[f64]> = kept.iter().map(|&j| all[j]).collect();
    let k = kept.len();
    let penalty: Vec<f64> = kept
        .iter()
        .map(|&j| {
            if options.intercept && j == 0 {
                0.0
            } else {
                options.l2
            }
        })
        .collect();
    let objective = |p: &Pass, beta: &[f64]| {
        p.log_likelihood
            - 0.5
                * beta
                    .iter()
                    .zip(&penalty)
                    .map(|(b, l)| l * b * b)
                    .sum::<f64>()
    };

    let mut beta = vec![0.0; k];
    // The pass at zero over the kept columns is the first pass restricted to them.
    let mut current = Pass {
        gradient: kept.iter().map(|&i| start.gradient[i]).collect(),
        hessian: kept
            .iter()
            .flat_map(|&i| kept.iter().map(move |&j| (i, j)))
            .map(|(i, j)| start.hessian[i * d + j])
            .collect(),
        log_likelihood: start.log_likelihood,
    };
    let mut iterations = 0;
    let mut converged = false;
    while iterations < options.max_iterations {
        iterations += 1;
        let mut h = to_rows(&current.hessian, k);
        for (i, row) in h.iter_mut().enumerate() {
            row[i] += penalty[i];
        }
        let g: Vec<f64> = (0..k)
            .map(|i| current.gradient[i] - penalty[i] * beta[i])
            .collect();
        let Some(l) = cholesky(&h) else {
            return Err(LogisticError::Separation);
        };
        let step = solve(&l, &g);
        // Halve the step until the objective does not fall (Newton can overshoot far from
        // the optimum).
        let before = objective(&current, &beta);
        let mut scale = 1.0;
        let (next_beta, next) = loop {
            let trial: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + scale * s).collect();
            let p = pass(&cols, y, weight, &trial);
            if objective(&p, &trial) >= before - 1e-12 * before.abs() || scale < 1e-6 {
                break (trial, p);
            }
            scale /= 2.0;
        };
        let moved = step
            .iter()
            .zip(&beta)
            .all(|(s, b)| (scale * s).abs() <= 1e-10 * (1.0 + b.abs()));
        beta = next_beta;
        current = next;
        if moved {
            converged = true;
            break;
        }
    }
    if options.l2 == 0.0
        && beta
            .iter()
            .any(|b| !b.is_finite() || b.abs() > SEPARATION_LIMIT)
    {
        return Err(LogisticError::Separation);
    }

    // Covariance from the (penalised) Hessian at the final coefficients.
    let mut h = to_rows(&current.hessian, k);
    for (i, row) in h.iter_mut().enumerate() {
        row[i] += penalty[i];
    }
    let cov_kept = cholesky(&h)
        .map(|l| invert(&l))
        .ok_or(LogisticError::Separation)?;
    let mut coef = vec![0.0; d];
    let mut std_err = vec![f64::NAN; d];
    let mut z = vec![f64::NAN; d];
    let mut p = vec![f64::NAN; d];
    let mut cov = vec![0.0; d * d];
    for (a, &i) in kept.iter().enumerate() {
        coef[i] = beta[a];
        std_err[i] = cov_kept[a][a].sqrt();
        z[i] = coef[i] / std_err[i];
        p[i] = normal_two_sided(z[i]);
        for (b, &j) in kept.iter().enumerate() {
            cov[i * d + j] = cov_kept[a][b];
        }
    }
    Ok(LogisticFit {
        coef,
        std_err,
        z,
        p,
        cov,
        dropped,
        log_likelihood: current.log_likelihood,
        iterations,
        converged,
    })
}

fn to_rows(flat: &[f64], k: usize) -> Vec<Vec<f64>> {
    flat.chunks(k.max(1)).map(<[f64]>::to_vec).take(k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> LogisticOptions {
        LogisticOptions {
            l2: 0.0,
            intercept: true,
            max_iterations: 50,
        }
    }

    #[test]
    fn recovers_known_coefficients() {
        // Rows on a grid with the exact expected class shares of p = sigmoid(-1 + 2x),
        // given as weights: the maximum likelihood estimate is (-1, 2) exactly.
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut w = Vec::new();
        for i in 0..21 {
            let xi = -1.0 + 0.1 * i as f64;
            let p = 1.0 / (1.0 + (1.0 - 2.0 * xi).exp());
            x.extend([xi, xi]);
            y.extend([1.0, 0.0]);
            w.extend([p, 1.0 - p]);
        }
        let ones = vec![1.0; x.len()];
        let fit = fit_logistic(&[ones, x], &y, Some(&w), options()).unwrap();
        assert!(fit.converged);
        assert!((fit.coef[0] + 1.0).abs() < 1e-9, "{:?}", fit.coef);
        assert!((fit.coef[1] - 2.0).abs() < 1e-9, "{:?}", fit.coef);
    }

    #[test]
    fn separation_and_one_class_are_errors() {
        let ones = vec![1.0; 6];
        let x = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        assert_eq!(
            fit_logistic(&[ones.clone(), x.clone()], &y, None, options()),
            Err(LogisticError::Separation)
        );
        // A penalty gives a finite answer.
        let penalised = LogisticOptions {
            l2: 1.0,
            ..options()
        };
        assert!(fit_logistic(&[ones.clone(), x.clone()], &y, None, penalised).is_ok());
        assert_eq!(
            fit_logistic(&[ones, x], &[1.0; 6], None, options()),
            Err(LogisticError::OneClass)
        );
    }

    #[test]
    fn duplicate_columns_are_dropped() {
        let ones = vec![1.0; 8];
        let x = vec![0.1, 0.5, 0.2, 0.9, 0.4, 0.8, 0.3, 0.7];
        let y = vec![0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0];
        let fit = fit_logistic(&[ones, x.clone(), x], &y, None, options()).unwrap();
        assert_eq!(fit.dropped, vec![2]);
        assert!(fit.coef.iter().all(|c| c.is_finite()));
        assert!(fit.std_err[2].is_nan());
    }
}
