//! The joint refinement of a fit: weights, damping and every initial state (seasonal ones
//! included) together, by Levenberg–Marquardt from the search's optimum.
//!
//! The deviance is `n ln S` plus a constant, with `S = Σ ẽ²` over the scaled one-step
//! errors `ẽ = e` (additive error) or `ẽ = G e/μ`, `G` the geometric mean of the means
//! (multiplicative error: `n ln Σ(e/μ)² + 2 Σ ln μ = n ln S`). So maximum likelihood is a
//! least-squares problem, and one pass that carries the derivatives of the states gives
//! its Gauss–Newton normal equations, whatever the number of states.
//!
//! The weights are bounded as statsmodels' ETSModel bounds them: `α`, `β/α` and
//! `γ/(1 − α)` in `[LOW, HIGH]`, `φ` in `[PHI_LOW, PHI_HIGH]`; the states are free, but
//! for one seasonal state: shifting (additive) or scaling (multiplicative) all seasonal
//! states against the level and slope gives the same means, so one of them is held and the
//! states are normalised after.

use ndarray::{Array1, Array2, ArrayView1};

use super::filter::Filter;
use super::form::{ErrorKind, Form, Params, SeasonKind, State, TrendKind};
use super::likelihood::ErrorSums;
use super::search::{HIGH, LOW, PHI_HIGH, PHI_LOW};
use crate::kernels::cholesky::{cholesky, solve};

/// Gauss–Newton steps allowed to one refinement.
const MAX_STEPS: usize = 40;

/// A step improving the deviance by less than this ends the refinement.
const TOLERANCE: f64 = 1e-6;

/// Positions in the vector of natural parameters `[α, β?, γ?, φ?, ℓ, b?, s₀…s_{m−1}?]`
/// (those the model has). The refined vector is the same with `β/α` for `β`, `γ/(1 − α)`
/// for `γ` and without the held seasonal state `s_{m−1}`.
#[derive(Debug, Clone, Copy)]
struct Index {
    beta: Option<usize>,
    gamma: Option<usize>,
    phi: Option<usize>,
    level: usize,
    slope: Option<usize>,
    season: Option<usize>,
    /// The number of natural parameters.
    len: usize,
}

impl Index {
    fn new(form: Form, m: usize) -> Self {
        let mut len = 1;
        let mut next = |present: bool, count: usize| {
            present.then(|| {
                len += count;
                len - count
            })
        };
        let beta = next(form.has_trend(), 1);
        let gamma = next(form.has_season(), 1);
        let phi = next(form.trend == TrendKind::Damped, 1);
        let level = next(true, 1).unwrap_or(0);
        let slope = next(form.has_trend(), 1);
        let season = next(form.has_season(), m);
        Self {
            beta,
            gamma,
            phi,
            level,
            slope,
            season,
            len,
        }
    }

    /// The number of refined coordinates.
    fn refined(&self) -> usize {
        self.len - usize::from(self.season.is_some())
    }

    /// The bounds of refined coordinate `i` (infinite for the states).
    fn bounds(&self, i: usize) -> (f64, f64) {
        if i == 0 || Some(i) == self.beta || Some(i) == self.gamma {
            (LOW, HIGH)
        } else if Some(i) == self.phi {
            (PHI_LOW, PHI_HIGH)
        } else {
            (f64::NEG_INFINITY, f64::INFINITY)
        }
    }
}

/// A model for one series, and the point being refined.
struct Problem<'a> {
    form: Form,
    y: &'a [f64],
    /// Σ ln y for a multiplicative error, else 0.
    log_y: f64,
    index: Index,
    /// The held seasonal state.
    held: f64,
}

impl Problem<'_> {
    /// The refined coordinates of `params` and `state`.
    fn encode(&self, params: &Params, state: &State) -> Vec<f64> {
        let index = &self.index;
        let mut x = vec![0.0; index.refined()];
        x[0] = params.alpha;
        if let Some(b) = index.beta {
            x[b] = (params.beta / params.alpha).clamp(LOW, HIGH);
        }
        if let Some(g) = index.gamma {
            x[g] = (params.gamma / (1.0 - params.alpha)).clamp(LOW, HIGH);
        }
        if let Some(p) = index.phi {
            x[p] = params.phi;
        }
        x[index.level] = state.level;
        if let Some(b) = index.slope {
            x[b] = state.slope;
        }
        if let Some(s) = index.season {
            let held = state.season.len() - 1;
            x[s..].copy_from_slice(&state.season[..held]);
        }
        x
    }

    /// The parameters and initial states at refined coordinates `x`.
    fn decode(&self, x: &[f64]) -> (Params, State) {
        let index = &self.index;
        let alpha = x[0];
        let params = Params {
            alpha,
            beta: index.beta.map_or(0.0, |b| alpha * x[b]),
            gamma: index.gamma.map_or(0.0, |g| (1.0 - alpha) * x[g]),
            phi: index.phi.map_or(1.0, |p| x[p]),
        };
        let mut season = Vec::new();
        if let Some(s) = index.season {
            season.extend_from_slice(&x[s..]);
            season.push(self.held);
        }
        let state = State {
            level: x[index.level],
            slope: index.slope.map_or(0.0, |b| x[b]),
            season,
        };
        (params, state)
    }

    /// The deviance at `x`; infinite where the means leave the model's range.
    fn deviance(&self, x: &[f64]) -> f64 {
        let (params, state) = self.decode(x);
        let n = self.y.len();
        let filter = Filter::single(self.form, &params, &state);
        let ([sums], _) = ErrorSums::of(filter, self.y.as_chunks::<1>().0, [n]);
        sums.map_or(f64::INFINITY, |s| s.deviance(n, self.log_y))
    }

    /// The Gauss–Newton normal equations `(JᵀJ, Jᵀẽ)` at `x`, in refined coordinates;
    /// `None` where a mean is not finite or, in a multiplicative model, not positive.
    fn normal_equations(&self, x: &[f64]) -> Option<Normal> {
        let (params, state) = self.decode(x);
        let natural = natural_normal_equations(self.form, &self.index, &params, &state, self.y)?;
        // The refined coordinates are a linear map of the natural ones near `x`: `t` holds
        // its derivatives, natural by refined.
        let index = &self.index;
        let mut t = Array2::zeros((index.len, index.refined()));
        for i in 0..index.refined() {
            t[[i, i]] = 1.0;
        }
        if let Some(b) = index.beta {
            t[[b, 0]] = x[b];
            t[[b, b]] = params.alpha;
        }
        if let Some(g) = index.gamma {
            t[[g, 0]] = -x[g];
            t[[g, g]] = 1.0 - params.alpha;
        }
        Some(Normal {
            jtj: t.t().dot(&natural.jtj).dot(&t),
            jte: t.t().dot(&natural.jte),
            squares: natural.squares,
        })
    }
}

/// The Gauss–Newton normal equations at a point, all scaled by `1/G²` (see
/// [`natural_normal_equations`]).
struct Normal {
    jtj: Array2<f64>,
    jte: Array1<f64>,
    /// Σ ẽ²/G².
    squares: f64,
}

/// `(JᵀJ, Jᵀẽ)` over the natural parameters, from one pass that steps the states and their
/// derivatives with respect to every natural parameter.
fn natural_normal_equations(
    form: Form,
    index: &Index,
    params: &Params,
    state: &State,
    y: &[f64],
) -> Option<Normal> {
    let d = index.len;
    let m = state.season.len();
    let Params {
        alpha,
        beta,
        gamma,
        phi,
    } = *params;
    let (mut level, mut slope, mut season) = (state.level, state.slope, state.season.clone());
    let unit = |i: usize| {
        let mut v = vec![0.0; d];
        v[i] = 1.0;
        v
    };
    let mut d_level = unit(index.level);
    let mut d_slope = index.slope.map_or_else(|| vec![0.0; d], unit);
    // d_season[j * d + k]: the derivative of seasonal state j by parameter k.
    let mut d_season = vec![0.0; m * d];
    if let Some(s) = index.season {
        for j in 0..m {
            d_season[j * d + s + j] = 1.0;
        }
    }
    let (mut d_base, mut d_mu, mut d_u, mut d_r) =
        (vec![0.0; d], vec![0.0; d], vec![0.0; d], vec![0.0; d]);
    // Σ dr drᵀ (upper triangle), Σ r dr, Σ r², Σ dμ/μ, with r = e (additive error) or e/μ.
    let mut rr = Array2::<f64>::zeros((d, d));
    let mut r_dr = vec![0.0; d];
    let mut r_r = 0.0;
    let mut d_log_mu = vec![0.0; d];
    let multiplicative_error = form.error == ErrorKind::Multiplicative;
    for (t, &value) in y.iter().enumerate() {
        let at = if m > 0 { t % m } else { 0 };
        let base = level + phi * slope;
        for k in 0..d {
            d_base[k] = d_level[k] + phi * d_slope[k];
        }
        if let Some(p) = index.phi {
            d_base[p] += slope;
        }
        let d_s = d_season.get_mut(at * d..(at + 1) * d).unwrap_or(&mut []);
        let s = season.get(at).copied().unwrap_or(0.0);
        let mu = match form.season {
            SeasonKind::None => {
                d_mu.copy_from_slice(&d_base);
                base
            }
            SeasonKind::Additive => {
                for k in 0..d {
                    d_mu[k] = d_base[k] + d_s[k];
                }
                base + s
            }
            SeasonKind::Multiplicative => {
                for k in 0..d {
                    d_mu[k] = s * d_base[k] + base * d_s[k];
                }
                base * s
            }
        };
        if !mu.is_finite() || (form.multiplicative() && mu <= 0.0) {
            return None;
        }
        let e = value - mu;
        let r = if multiplicative_error {
            let scale = -value / (mu * mu);
            for k in 0..d {
                d_r[k] = scale * d_mu[k];
                d_log_mu[k] += d_mu[k] / mu;
            }
            e / mu
        } else {
            for k in 0..d {
                d_r[k] = -d_mu[k];
            }
            e
        };
        r_r += r * r;
        for (i, &di) in d_r.iter().enumerate() {
            r_dr[i] += r * di;
            let mut row = rr.row_mut(i);
            let row = row.as_slice_mut().unwrap_or(&mut []);
            for (a, &dj) in row[i..].iter_mut().zip(&d_r[i..]) {
                *a += di * dj;
            }
        }
        // The states' updates and their derivatives, with u the error the level and slope
        // take (e, or e/s with a multiplicative season) and de = −dμ.
        let u = match form.season {
            SeasonKind::Multiplicative => {
                let u = e / s;
                for k in 0..d {
                    d_u[k] = (-d_mu[k] - u * d_s[k]) / s;
                }
                let w = e / base;
                for k in 0..d {
                    let d_w = (-d_mu[k] - w * d_base[k]) / base;
                    d_s[k] += gamma * d_w;
                }
                if let Some(g) = index.gamma {
                    d_s[g] += w;
                }
                season[at] = s + gamma * w;
                u
            }
            kind => {
                for k in 0..d {
                    d_u[k] = -d_mu[k];
                }
                if kind == SeasonKind::Additive {
                    for k in 0..d {
                        d_s[k] -= gamma * d_mu[k];
                    }
                    if let Some(g) = index.gamma {
                        d_s[g] += e;
                    }
                    season[at] = s + gamma * e;
                }
                e
            }
        };
        for k in 0..d {
            d_level[k] = d_base[k] + alpha * d_u[k];
            d_slope[k] = phi * d_slope[k] + beta * d_u[k];
        }
        d_level[0] += u;
        if let Some(b) = index.beta {
            d_slope[b] += u;
        }
        if let Some(p) = index.phi {
            d_slope[p] += slope;
        }
        level = base + alpha * u;
        slope = phi * slope + beta * u;
    }
    // ẽ = G r: its Jacobian is G (R + r ḡᵀ), ḡ the mean of d ln μ (zero for an additive
    // error), and G² scales both sides of the normal equations alike, so it is left out.
    let n = y.len() as f64;
    let g: Vec<f64> = d_log_mu.iter().map(|v| v / n).collect();
    let mut jtj = rr;
    for i in 0..d {
        for j in i..d {
            let v = jtj[[i, j]] + r_dr[i] * g[j] + g[i] * r_dr[j] + r_r * g[i] * g[j];
            jtj[[i, j]] = v;
            jtj[[j, i]] = v;
        }
    }
    let jte: Array1<f64> = (0..d).map(|i| r_dr[i] + r_r * g[i]).collect();
    Some(Normal {
        jtj,
        jte,
        squares: r_r,
    })
}

/// Refines `params` and the initial states `state` of `form` (period `m`, 1 without
/// seasonality) on `y` jointly; returns them unchanged if no step lowers the deviance.
/// `log_y` is Σ ln y for a multiplicative error, else 0.
pub(super) fn refine(
    form: Form,
    m: usize,
    y: &[f64],
    log_y: f64,
    params: Params,
    state: State,
) -> (Params, State) {
    let index = Index::new(form, if form.has_season() { m } else { 0 });
    let problem = Problem {
        form,
        y,
        log_y,
        index,
        held: state.season.last().copied().unwrap_or(0.0),
    };
    let mut x = problem.encode(&params, &state);
    let mut deviance = problem.deviance(&x);
    if !deviance.is_finite() {
        return (params, state);
    }
    // Marquardt's damping, adapted as Nielsen does to how well each step's quadratic
    // model predicted the change.
    let (mut damping, mut growth) = (1e-3, 2.0);
    for _ in 0..MAX_STEPS {
        let Some(normal) = problem.normal_equations(&x) else {
            break;
        };
        let Normal { jtj, jte, squares } = &normal;
        // A coordinate at a bound that the gradient pushes further out stays there.
        let mut free: Vec<usize> = (0..x.len())
            .filter(|&i| {
                let (low, high) = index.bounds(i);
                !(x[i] <= low && jte[i] > 0.0 || x[i] >= high && jte[i] < 0.0)
            })
            .collect();
        let before = deviance;
        while damping < 1e10 {
            let Some(step) = marquardt_step(jtj, jte, &free, damping) else {
                damping *= growth;
                growth *= 2.0;
                continue;
            };
            // So does one at a bound that the step pushes out: the step is solved again
            // without it, rather than cut short at the bound.
            let blocked = free.iter().zip(&step).position(|(&i, v)| {
                let (low, high) = index.bounds(i);
                x[i] <= low && *v < 0.0 || x[i] >= high && *v > 0.0
            });
            if let Some(p) = blocked {
                free.remove(p);
                continue;
            }
            let mut trial = x.clone();
            for (&i, v) in free.iter().zip(&step) {
                let (low, high) = index.bounds(i);
                trial[i] = (x[i] + v).clamp(low, high);
            }
            let value = problem.deviance(&trial);
            // The relative fall of S the model predicted, and the one the step gave.
            let predicted = predicted_fall(jtj, jte, &free, &step) / squares;
            let actual = 1.0 - (-(deviance - value) / y.len() as f64).exp();
            let gain = actual / predicted;
            if value < deviance && gain > 0.0 {
                x = trial;
                deviance = value;
                damping *= (1.0 - (2.0 * gain - 1.0).powi(3)).max(1.0 / 3.0);
                growth = 2.0;
                break;
            }
            damping *= growth;
            growth *= 2.0;
        }
        if before - deviance < TOLERANCE {
            break;
        }
    }
    let (params, state) = problem.decode(&x);
    (params, normalise(form, state))
}

/// The step `δ` over the `free` coordinates solving `(A + λ diag A) δ = Jᵀẽ` with
/// `A = JᵀJ` (the Gauss–Newton step descends: ẽ's Jacobian enters with its sign, the step
/// is `−δ`, returned negated); `None` if the system is not positive definite.
fn marquardt_step(
    jtj: &Array2<f64>,
    jte: &Array1<f64>,
    free: &[usize],
    damping: f64,
) -> Option<Vec<f64>> {
    let k = free.len();
    let scale = free.iter().map(|&i| jtj[[i, i]]).fold(0.0, f64::max) * 1e-12;
    let a = Array2::from_shape_fn((k, k), |(p, q)| {
        let v = jtj[[free[p], free[q]]];
        if p == q {
            v + damping * v.max(scale)
        } else {
            v
        }
    });
    let b: Array1<f64> = free.iter().map(|&i| jte[i]).collect();
    let l = cholesky(a.view())?;
    let step = solve(l.view(), ArrayView1::from(&b));
    step.iter()
        .all(|v| v.is_finite())
        .then(|| step.iter().map(|v| -v).collect())
}

/// The fall of `Σ ẽ²` (scaled as `jtj` and `jte`) that the Gauss–Newton model predicts
/// for `step` over the `free` coordinates: `−δᵀJᵀẽ − ½ δᵀJᵀJδ`.
fn predicted_fall(jtj: &Array2<f64>, jte: &Array1<f64>, free: &[usize], step: &[f64]) -> f64 {
    let mut fall = 0.0;
    for (p, &i) in free.iter().enumerate() {
        let quadratic: f64 = free.iter().zip(step).map(|(&j, v)| jtj[[i, j]] * v).sum();
        fall -= step[p] * (2.0 * jte[i] + quadratic);
    }
    fall
}

/// `state` with its seasonal states summing to zero (additive) or averaging one
/// (multiplicative), the level and slope moved to keep every mean.
fn normalise(form: Form, mut state: State) -> State {
    let m = state.season.len();
    if m == 0 {
        return state;
    }
    let mean = state.season.iter().sum::<f64>() / m as f64;
    match form.season {
        SeasonKind::Additive => {
            state.season.iter_mut().for_each(|s| *s -= mean);
            state.level += mean;
        }
        SeasonKind::Multiplicative if mean > 0.0 => {
            state.season.iter_mut().for_each(|s| *s /= mean);
            state.level *= mean;
            state.slope *= mean;
        }
        _ => {}
    }
    state
}
