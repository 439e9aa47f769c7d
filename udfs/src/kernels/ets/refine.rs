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

use super::filter::Filter;
use super::form::{ErrorKind, Form, Params, SeasonKind, State, TrendKind};
use super::likelihood::ErrorSums;
use super::search::{HIGH, LOW, PHI_HIGH, PHI_LOW};
use crate::kernels::cholesky::solve_in_place;
use crate::kernels::simd::{Kernel, Simd, dispatch};

/// Gauss–Newton steps allowed to one refinement.
const MAX_STEPS: usize = 40;

/// A step improving the deviance by less than this ends the refinement.
const TOLERANCE: f64 = 1e-2;

/// The damping below which a step counts as Gauss–Newton's own.
const UNDAMPED: f64 = 0.1;

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

    /// The Gauss–Newton normal equations at `x`; `None` where a mean is not finite or, in
    /// a multiplicative model, not positive.
    fn normal_equations(&self, x: &[f64]) -> Option<Normal> {
        let (params, state) = self.decode(x);
        dispatch(Pass {
            form: self.form,
            index: &self.index,
            x,
            params: &params,
            state: &state,
            y: self.y,
        })
    }
}

/// The Gauss–Newton normal equations `(JᵀJ, Jᵀẽ)` at a point, over the refined
/// coordinates, all scaled by `1/G²` (see [`normal_equations`]).
struct Normal {
    /// `d × d`, row by row.
    jtj: Vec<f64>,
    jte: Vec<f64>,
    /// Σ ẽ²/G².
    squares: f64,
}

/// [`normal_equations`] as a kernel, compiled for the CPU's vector level: nearly all of
/// the refinement's time is this pass.
struct Pass<'a> {
    form: Form,
    index: &'a Index,
    x: &'a [f64],
    params: &'a Params,
    state: &'a State,
    y: &'a [f64],
}

impl Kernel for Pass<'_> {
    type Output = Option<Normal>;

    #[inline(always)]
    fn run<S: Simd>(self) -> Self::Output {
        normal_equations(
            self.form,
            self.index,
            self.x,
            self.params,
            self.state,
            self.y,
        )
    }
}

/// [`Normal`] at refined coordinates `x` (`params` and `state`), from one pass that steps
/// the states and their derivatives by every refined coordinate.
#[inline(always)]
fn normal_equations(
    form: Form,
    index: &Index,
    x: &[f64],
    params: &Params,
    state: &State,
    y: &[f64],
) -> Option<Normal> {
    let d = index.refined();
    let m = state.season.len();
    // The derivatives of β and γ by the refined α and β/α or γ/(1 − α).
    let d_beta = index.beta.map(|b| (b, x[b], params.alpha));
    let d_gamma = index.gamma.map(|g| (g, -x[g], 1.0 - params.alpha));
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
    // d_season[j * d + k]: the derivative of seasonal state j by coordinate k (the held
    // last one has none).
    let mut d_season = vec![0.0; m * d];
    if let Some(s) = index.season {
        for j in 0..m - 1 {
            d_season[j * d + s + j] = 1.0;
        }
    }
    let (mut d_base, mut d_mu, mut d_u, mut d_r) =
        (vec![0.0; d], vec![0.0; d], vec![0.0; d], vec![0.0; d]);
    // The residuals r = e (additive error) or e/μ, their derivatives column by column
    // (multiplied out after the pass, as long dot products), and Σ dμ/μ.
    let n = y.len();
    let mut residuals = vec![0.0; n];
    let mut columns = vec![0.0; d * n];
    let mut d_log_mu = vec![0.0; d];
    let multiplicative_error = form.error == ErrorKind::Multiplicative;
    for (t, &value) in y.iter().enumerate() {
        let at = if m > 0 { t % m } else { 0 };
        let base = level + phi * slope;
        // Slices of known length, so the loops below run without bounds checks.
        let (d_base, d_mu, d_u, d_r) = (
            &mut d_base[..d],
            &mut d_mu[..d],
            &mut d_u[..d],
            &mut d_r[..d],
        );
        let (d_level, d_slope, d_log_mu) =
            (&mut d_level[..d], &mut d_slope[..d], &mut d_log_mu[..d]);
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
                d_mu.copy_from_slice(d_base);
                base
            }
            SeasonKind::Additive => {
                let d_s = &d_s[..d];
                for k in 0..d {
                    d_mu[k] = d_base[k] + d_s[k];
                }
                base + s
            }
            SeasonKind::Multiplicative => {
                let d_s = &d_s[..d];
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
            let inverse = 1.0 / mu;
            let scale = -value * inverse * inverse;
            for k in 0..d {
                d_r[k] = scale * d_mu[k];
                d_log_mu[k] += d_mu[k] * inverse;
            }
            e / mu
        } else {
            for k in 0..d {
                d_r[k] = -d_mu[k];
            }
            e
        };
        residuals[t] = r;
        for (k, &v) in d_r.iter().enumerate() {
            columns[k * n + t] = v;
        }
        // The states' updates and their derivatives, with u the error the level and slope
        // take (e, or e/s with a multiplicative season) and de = −dμ.
        let u = match form.season {
            SeasonKind::Multiplicative => {
                let d_s = &mut d_s[..d];
                let (inverse_s, inverse_base) = (1.0 / s, 1.0 / base);
                let u = e * inverse_s;
                for k in 0..d {
                    d_u[k] = (-d_mu[k] - u * d_s[k]) * inverse_s;
                }
                let w = e * inverse_base;
                let by = gamma * inverse_base;
                for k in 0..d {
                    d_s[k] -= by * (d_mu[k] + w * d_base[k]);
                }
                if let Some((g, by_alpha, by_gamma)) = d_gamma {
                    d_s[0] += by_alpha * w;
                    d_s[g] += by_gamma * w;
                }
                season[at] = s + gamma * w;
                u
            }
            kind => {
                for k in 0..d {
                    d_u[k] = -d_mu[k];
                }
                if kind == SeasonKind::Additive {
                    let d_s = &mut d_s[..d];
                    for k in 0..d {
                        d_s[k] -= gamma * d_mu[k];
                    }
                    if let Some((g, by_alpha, by_gamma)) = d_gamma {
                        d_s[0] += by_alpha * e;
                        d_s[g] += by_gamma * e;
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
        if let Some((b, by_alpha, by_beta)) = d_beta {
            d_slope[0] += by_alpha * u;
            d_slope[b] += by_beta * u;
        }
        if let Some(p) = index.phi {
            d_slope[p] += slope;
        }
        level = base + alpha * u;
        slope = phi * slope + beta * u;
    }
    // ẽ = G r: its Jacobian is G (R + r ḡᵀ), ḡ the mean of d ln μ (zero for an additive
    // error), and G² scales both sides of the normal equations alike, so it is left out.
    let column = |k: usize| &columns[k * n..(k + 1) * n];
    let r_dr: Vec<f64> = (0..d).map(|k| dot(column(k), &residuals)).collect();
    let r_r = dot(&residuals, &residuals);
    let g: Vec<f64> = d_log_mu.iter().map(|v| v / n as f64).collect();
    let mut jtj = vec![0.0; d * d];
    for i in 0..d {
        for j in i..d {
            let v = dot(column(i), column(j)) + r_dr[i] * g[j] + g[i] * r_dr[j] + r_r * g[i] * g[j];
            jtj[i * d + j] = v;
            jtj[j * d + i] = v;
        }
    }
    let jte: Vec<f64> = (0..d).map(|i| r_dr[i] + r_r * g[i]).collect();
    Some(Normal {
        jtj,
        jte,
        squares: r_r,
    })
}

/// `a · b`, in four running sums so that it runs in vectors.
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut sums = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4
        .remainder()
        .iter()
        .zip(b4.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a4.zip(b4) {
        for i in 0..4 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f64>() + tail
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
    // Without seasonality the search already covered every coordinate.
    if !form.has_season() {
        return (params, state);
    }
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
        // A small fall ends it only when the step was nearly Gauss–Newton's: a damped
        // step can fall little far from the optimum, along a valley.
        let fall = before - deviance;
        if fall <= 0.0 || fall < TOLERANCE && damping < UNDAMPED {
            break;
        }
    }
    let (params, state) = problem.decode(&x);
    (params, normalise(form, state))
}

/// The step `δ` over the `free` coordinates solving `(A + λ diag A) δ = −Jᵀẽ` with
/// `A = JᵀJ`; `None` if the system is not positive definite.
fn marquardt_step(jtj: &[f64], jte: &[f64], free: &[usize], damping: f64) -> Option<Vec<f64>> {
    let (k, d) = (free.len(), jte.len());
    let scale = free.iter().map(|&i| jtj[i * d + i]).fold(0.0, f64::max) * 1e-12;
    let mut a = vec![0.0; k * k];
    for (p, &i) in free.iter().enumerate() {
        for (q, &j) in free.iter().enumerate() {
            let v = jtj[i * d + j];
            a[p * k + q] = if p == q {
                v + damping * v.max(scale)
            } else {
                v
            };
        }
    }
    let mut step: Vec<f64> = free.iter().map(|&i| -jte[i]).collect();
    (solve_in_place(&mut a, &mut step) && step.iter().all(|v| v.is_finite())).then_some(step)
}

/// The fall of `Σ ẽ²` (scaled as `jtj` and `jte`) that the Gauss–Newton model predicts
/// for `step` over the `free` coordinates: `−δᵀJᵀẽ − ½ δᵀJᵀJδ`.
fn predicted_fall(jtj: &[f64], jte: &[f64], free: &[usize], step: &[f64]) -> f64 {
    let d = jte.len();
    let mut fall = 0.0;
    for (p, &i) in free.iter().enumerate() {
        let quadratic: f64 = free
            .iter()
            .zip(step)
            .map(|(&j, v)| jtj[i * d + j] * v)
            .sum();
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
