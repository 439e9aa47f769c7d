//! Maximum likelihood over positive parameters: BFGS on their logarithms, then Newton's
//! method with the Hessian from differences of the analytic gradient, which also gives
//! the standard errors (the inverse of the observed information).

use crate::kernels::cholesky::solve_in_place;
use crate::kernels::interrupt::interrupted;

/// A log-likelihood summed over customers, with its gradient in the parameters.
pub trait Likelihood: Sync {
    /// The parameters' names, in order.
    fn names(&self) -> &'static [&'static str];
    /// Customers summed over.
    fn count(&self) -> usize;
    /// Σ log-likelihood and its gradient at `params` (all positive).
    fn value_and_gradient(&self, params: &[f64]) -> (f64, Vec<f64>);
}

/// Checks `lik`'s analytic gradient at `p` against central differences, for the tests of
/// every likelihood.
#[cfg(test)]
pub(crate) fn assert_gradient(lik: &dyn Likelihood, p: &[f64]) {
    let (_, g) = lik.value_and_gradient(p);
    for j in 0..p.len() {
        let h = 1e-6 * p[j];
        let (mut up, mut down) = (p.to_vec(), p.to_vec());
        up[j] += h;
        down[j] -= h;
        let numeric = (lik.value_and_gradient(&up).0 - lik.value_and_gradient(&down).0) / (2.0 * h);
        assert!(
            (g[j] - numeric).abs() < 1e-6 * numeric.abs().max(1.0),
            "{p:?} {j}: {g:?} vs {numeric}"
        );
    }
}

/// Where the fit ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub params: Vec<f64>,
    /// `None` where the observed information is not positive definite.
    pub std_err: Vec<Option<f64>>,
    /// Σ log-likelihood at `params` (without the penalty).
    pub log_likelihood: f64,
    pub iterations: usize,
    /// Whether the gradient reached [`CONVERGED`].
    pub converged: bool,
}

/// Largest gradient entry (per customer, in log-parameters) counted as zero.
const TOLERANCE: f64 = 1e-9;
const MAX_ITERATIONS: usize = 400;
/// Largest gradient entry of a fit counted as converged where no step lowers the objective
/// any more: the mean log-likelihood then holds about 1e-15, so the optimum is found to
/// the precision the data allow.
const CONVERGED: f64 = 1e-6;
/// Steps of Newton's method after BFGS.
const NEWTON_STEPS: usize = 6;
/// Step of the central differences of the gradient, in log-parameters.
const DIFFERENCE: f64 = 1e-5;
/// Log-parameters are kept within ±this: parameters from about 1e-13 to 1e13.
const LOG_BOUND: f64 = 30.0;

/// The objective minimised: minus the mean log-likelihood plus `penalizer` Σ θ², in
/// u = ln θ; the value, its gradient in u and the log-likelihood.
struct Objective<'a, L: Likelihood> {
    likelihood: &'a L,
    penalizer: f64,
    n: f64,
}

/// The objective's value, its gradient and the log-likelihood at a point.
type Evaluated = (f64, Vec<f64>, f64);

impl<L: Likelihood> Objective<'_, L> {
    fn eval(&self, u: &[f64]) -> Evaluated {
        let theta: Vec<f64> = u.iter().map(|v| v.exp()).collect();
        let (ll, grad) = self.likelihood.value_and_gradient(&theta);
        let penalty: f64 = theta.iter().map(|t| t * t).sum::<f64>() * self.penalizer;
        let g = theta
            .iter()
            .zip(&grad)
            .map(|(t, d)| -t * d / self.n + 2.0 * self.penalizer * t * t)
            .collect();
        let f = -ll / self.n + penalty;
        (if f.is_nan() { f64::INFINITY } else { f }, g, ll)
    }

    /// The Hessian of the objective in u, by central differences of the gradient.
    fn hessian(&self, u: &[f64]) -> Vec<f64> {
        let k = u.len();
        let mut h = vec![0.0; k * k];
        for j in 0..k {
            let mut plus = u.to_vec();
            let mut minus = u.to_vec();
            plus[j] += DIFFERENCE;
            minus[j] -= DIFFERENCE;
            let (_, gp, _) = self.eval(&plus);
            let (_, gm, _) = self.eval(&minus);
            for i in 0..k {
                h[i * k + j] = (gp[i] - gm[i]) / (2.0 * DIFFERENCE);
            }
        }
        for i in 0..k {
            for j in 0..i {
                let mean = 0.5 * (h[i * k + j] + h[j * k + i]);
                h[i * k + j] = mean;
                h[j * k + i] = mean;
            }
        }
        h
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Backtracking along `direction` from `u` until the objective falls enough (Armijo);
/// the new point and its evaluation, or `None` when no step lowers it.
fn line_search<L: Likelihood>(
    objective: &Objective<L>,
    u: &[f64],
    (f, g): (f64, &[f64]),
    direction: &[f64],
) -> Option<(Vec<f64>, Evaluated)> {
    let slope = dot(g, direction);
    if slope >= 0.0 {
        return None;
    }
    // Never move a log-parameter by more than 5 in one step.
    let mut step = (5.0 / max_abs(direction)).min(1.0);
    for _ in 0..60 {
        let next: Vec<f64> = u
            .iter()
            .zip(direction)
            .map(|(x, d)| (x + step * d).clamp(-LOG_BOUND, LOG_BOUND))
            .collect();
        let evaluated = objective.eval(&next);
        if evaluated.0 <= f + 1e-4 * step * slope {
            return Some((next, evaluated));
        }
        step *= 0.5;
    }
    None
}

/// Maximises `likelihood` (minus `penalizer` Σ θ² per customer) from `start`.
pub fn maximise<L: Likelihood>(likelihood: &L, start: &[f64], penalizer: f64) -> Estimate {
    let k = start.len();
    let objective = Objective {
        likelihood,
        penalizer,
        n: likelihood.count().max(1) as f64,
    };
    let mut u: Vec<f64> = start.iter().map(|t| t.ln()).collect();
    let (mut f, mut g, mut ll) = objective.eval(&u);
    // The inverse Hessian estimate, row by row.
    let mut inverse: Vec<f64> = (0..k * k)
        .map(|i| if i % (k + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let mut iterations = 0;
    while iterations < MAX_ITERATIONS && max_abs(&g) > TOLERANCE && !interrupted() {
        iterations += 1;
        crate::kernels::progress::pass(crate::kernels::progress::Stage::Likelihood);
        let direction: Vec<f64> = (0..k)
            .map(|i| -dot(&inverse[i * k..(i + 1) * k], &g))
            .collect();
        let Some((next, (f_next, g_next, ll_next))) =
            line_search(&objective, &u, (f, &g), &direction).or_else(|| {
                // The estimate lost its way: start it again along the gradient.
                inverse = (0..k * k)
                    .map(|i| if i % (k + 1) == 0 { 1.0 } else { 0.0 })
                    .collect();
                let steepest: Vec<f64> = g.iter().map(|v| -v).collect();
                line_search(&objective, &u, (f, &g), &steepest)
            })
        else {
            break;
        };
        let s: Vec<f64> = next.iter().zip(&u).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_next.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-16 {
            // H ← (I - ρ s yᵀ) H (I - ρ y sᵀ) + ρ s sᵀ
            let rho = 1.0 / sy;
            let hy: Vec<f64> = (0..k)
                .map(|i| dot(&inverse[i * k..(i + 1) * k], &y))
                .collect();
            let yhy = dot(&y, &hy);
            for i in 0..k {
                for j in 0..k {
                    inverse[i * k + j] += -rho * (s[i] * hy[j] + hy[i] * s[j])
                        + (rho * rho * yhy + rho) * s[i] * s[j];
                }
            }
        }
        let stalled = (f - f_next).abs() <= 1e-15 * f.abs().max(1.0);
        (u, f, g, ll) = (next, f_next, g_next, ll_next);
        if stalled {
            break;
        }
    }
    // Newton's method finishes what BFGS approached, to the precision the gradient allows.
    let mut hessian = objective.hessian(&u);
    for _ in 0..NEWTON_STEPS {
        if interrupted() || max_abs(&g) <= TOLERANCE * 1e-3 {
            break;
        }
        let mut a = hessian.clone();
        let mut step: Vec<f64> = g.iter().map(|v| -v).collect();
        if !solve_in_place(&mut a, &mut step) {
            break;
        }
        match line_search(&objective, &u, (f, &g), &step) {
            Some((next, (f_next, g_next, ll_next))) => {
                (u, f, g, ll) = (next, f_next, g_next, ll_next);
                iterations += 1;
                hessian = objective.hessian(&u);
            }
            None => break,
        }
    }
    let params: Vec<f64> = u.iter().map(|v| v.exp()).collect();
    let std_err = standard_errors(&hessian, &params, objective.n);
    Estimate {
        params,
        std_err,
        log_likelihood: ll,
        iterations,
        converged: max_abs(&g) <= CONVERGED,
    }
}

/// θ_i √[(n H)⁻¹]_ii: the delta method from log-parameters, whose Hessian of the mean
/// negative log-likelihood is `hessian`.
fn standard_errors(hessian: &[f64], params: &[f64], n: f64) -> Vec<Option<f64>> {
    let k = params.len();
    (0..k)
        .map(|i| {
            let mut a: Vec<f64> = hessian.iter().map(|h| h * n).collect();
            let mut e = vec![0.0; k];
            e[i] = 1.0;
            (solve_in_place(&mut a, &mut e) && e[i] > 0.0).then(|| params[i] * e[i].sqrt())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// n draws of a normal sample summarised: the log-likelihood of (μ, σ) up to a constant,
    /// with μ > 0 here so both are positive.
    struct Normal {
        n: f64,
        mean: f64,
        var: f64,
    }

    impl Likelihood for Normal {
        fn names(&self) -> &'static [&'static str] {
            &["mu", "sigma"]
        }
        fn count(&self) -> usize {
            self.n as usize
        }
        fn value_and_gradient(&self, p: &[f64]) -> (f64, Vec<f64>) {
            let (mu, sigma) = (p[0], p[1]);
            let ss = self.var + (self.mean - mu).powi(2);
            let ll = -self.n * sigma.ln() - self.n * ss / (2.0 * sigma * sigma);
            let d_mu = self.n * (self.mean - mu) / (sigma * sigma);
            let d_sigma = -self.n / sigma + self.n * ss / sigma.powi(3);
            (ll, vec![d_mu, d_sigma])
        }
    }

    #[test]
    fn finds_the_normal_mle_and_its_standard_errors() {
        let data = Normal {
            n: 400.0,
            mean: 12.5,
            var: 9.0,
        };
        let fit = maximise(&data, &[1.0, 1.0], 0.0);
        assert!(fit.converged);
        assert!((fit.params[0] - 12.5).abs() < 1e-9, "{:?}", fit.params);
        assert!((fit.params[1] - 3.0).abs() < 1e-9, "{:?}", fit.params);
        // se(μ) = σ/√n, se(σ) = σ/√(2n).
        let se: Vec<f64> = fit.std_err.iter().map(|s| s.unwrap()).collect();
        assert!((se[0] - 3.0 / 20.0).abs() < 1e-6, "{se:?}");
        assert!((se[1] - 3.0 / 800f64.sqrt()).abs() < 1e-6, "{se:?}");
    }
}
