//! Exponential smoothing in state-space form, ETS(error, trend, season) after Hyndman,
//! Koehler, Ord and Snyder, *Forecasting with Exponential Smoothing* (2008): additive or
//! multiplicative error; no, additive or additive-damped trend; no, additive or
//! multiplicative seasonality.
//!
//! Written with the absolute one-step error `e = y − μ`, the state updates are the same for
//! both error types; the error type changes the likelihood, and so the fitted parameters,
//! the model chosen and the intervals. Parameters (smoothing weights, damping, initial
//! level and slope) are fitted by maximum likelihood with Nelder–Mead over bounded
//! transforms; the initial seasonal states come from a classical decomposition of the first
//! periods, as in Hyndman et al.; models are compared by AICc.

use serde::{Deserialize, Serialize};

use super::dist::normal_quantile;
use super::rng::Rng;

/// How the error enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    Additive,
    Multiplicative,
}

/// The trend component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TrendKind {
    None,
    Additive,
    Damped,
}

/// The seasonal component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SeasonKind {
    None,
    Additive,
    Multiplicative,
}

/// One member of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Form {
    pub error: ErrorKind,
    pub trend: TrendKind,
    pub season: SeasonKind,
}

impl Form {
    /// The usual short name, e.g. `ETS(M,Ad,M)`.
    pub fn name(&self) -> String {
        let error = match self.error {
            ErrorKind::Additive => "A",
            ErrorKind::Multiplicative => "M",
        };
        let trend = match self.trend {
            TrendKind::None => "N",
            TrendKind::Additive => "A",
            TrendKind::Damped => "Ad",
        };
        let season = match self.season {
            SeasonKind::None => "N",
            SeasonKind::Additive => "A",
            SeasonKind::Multiplicative => "M",
        };
        format!("ETS({error},{trend},{season})")
    }

    /// Whether the model needs positive data (a multiplicative part).
    fn multiplicative(&self) -> bool {
        self.error == ErrorKind::Multiplicative || self.season == SeasonKind::Multiplicative
    }

    fn has_trend(&self) -> bool {
        self.trend != TrendKind::None
    }

    fn has_season(&self) -> bool {
        self.season != SeasonKind::None
    }

    /// Estimated parameters, the error variance included (as AICc counts them): smoothing
    /// weights, damping, initial level and slope, and `m − 1` free initial seasonal states.
    pub fn parameters(&self, m: usize) -> usize {
        let trend = usize::from(self.has_trend());
        let season = usize::from(self.has_season());
        1 + trend
            + season
            + usize::from(self.trend == TrendKind::Damped)
            + 1
            + trend
            + season * (m - 1)
            + 1
    }

    /// The models tried for a series: multiplicative parts only for positive data, and
    /// never additive error with multiplicative seasonality (its variance is unbounded;
    /// Hyndman et al. leave it out too). `seasons` says which seasonal components to try.
    pub fn candidates(positive: bool, seasons: &[SeasonKind]) -> Vec<Form> {
        let errors: &[ErrorKind] = if positive {
            &[ErrorKind::Additive, ErrorKind::Multiplicative]
        } else {
            &[ErrorKind::Additive]
        };
        let mut forms = Vec::new();
        for &error in errors {
            for trend in [TrendKind::None, TrendKind::Additive, TrendKind::Damped] {
                for &season in seasons {
                    let form = Form {
                        error,
                        trend,
                        season,
                    };
                    let unstable =
                        error == ErrorKind::Additive && season == SeasonKind::Multiplicative;
                    if !unstable && (positive || !form.multiplicative()) {
                        forms.push(form);
                    }
                }
            }
        }
        forms
    }
}

/// Smoothing weights and damping. Without a trend `beta` is 0; without damping `phi` is 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    pub phi: f64,
}

/// The states: level, slope and the seasonal states, `season[j]` being the one used `j`
/// steps from now (`j` mod the period).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub level: f64,
    pub slope: f64,
    pub season: Vec<f64>,
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    pub form: Form,
    /// The seasonal period (1 without seasonality).
    pub period: usize,
    pub params: Params,
    pub initial: State,
    /// The states after the last observation.
    pub last: State,
    /// Variance of the one-step errors (relative errors for a multiplicative error), by
    /// maximum likelihood.
    pub sigma2: f64,
    /// `None` for a constant series, fitted exactly.
    pub aicc: Option<f64>,
    pub observations: usize,
}

/// Parameter bounds: Hyndman et al.'s usual region, as statsmodels and R's forecast use.
const LOW: f64 = 1e-4;
const HIGH: f64 = 0.9999;
const PHI_LOW: f64 = 0.8;
const PHI_HIGH: f64 = 0.98;

/// The recursions, stepping one observation at a time.
struct Filter<'a> {
    form: Form,
    params: &'a Params,
    level: f64,
    slope: f64,
    season: Vec<f64>,
    /// Index into `season` of the state used by the next step.
    at: usize,
    /// Whether the mean must stay positive (a multiplicative part).
    positive: bool,
}

impl<'a> Filter<'a> {
    fn new(form: Form, params: &'a Params, state: &State) -> Self {
        Self {
            form,
            params,
            level: state.level,
            slope: state.slope,
            season: state.season.clone(),
            at: 0,
            positive: form.multiplicative(),
        }
    }

    /// The one-step mean, and the parts it is made of: damped slope, level plus slope, and
    /// the seasonal state.
    #[inline(always)]
    fn mean(&self) -> (f64, f64, f64, f64) {
        let phib = self.params.phi * self.slope;
        let base = self.level + phib;
        match self.form.season {
            SeasonKind::None => (base, phib, base, 0.0),
            SeasonKind::Additive => {
                let s = self.season[self.at];
                (base + s, phib, base, s)
            }
            SeasonKind::Multiplicative => {
                let s = self.season[self.at];
                (base * s, phib, base, s)
            }
        }
    }

    /// Takes observation `y`; returns the mean it was forecast with and the error `y − μ`,
    /// or `None` where a multiplicative model's mean is not positive or anything is not
    /// finite.
    #[inline(always)]
    fn step(&mut self, y: f64) -> Option<(f64, f64)> {
        let (mu, phib, base, s) = self.mean();
        if !mu.is_finite() || (self.positive && mu <= 0.0) {
            return None;
        }
        let e = y - mu;
        let p = self.params;
        // The next step waits on the level and slope only; what the seasonal state needs
        // (a reciprocal, its own division) stays off that chain, as does the index below,
        // stepped without a division.
        match self.form.season {
            SeasonKind::None => {
                self.level = base + p.alpha * e;
                self.slope = phib + p.beta * e;
            }
            SeasonKind::Additive => {
                self.level = base + p.alpha * e;
                self.slope = phib + p.beta * e;
                self.season[self.at] = s + p.gamma * e;
            }
            SeasonKind::Multiplicative => {
                let inverse = 1.0 / s;
                self.level = base + (p.alpha * inverse) * e;
                self.slope = phib + (p.beta * inverse) * e;
                self.season[self.at] = s + p.gamma * e / base;
            }
        }
        if self.form.season != SeasonKind::None {
            self.at += 1;
            if self.at == self.season.len() {
                self.at = 0;
            }
        }
        Some((mu, e))
    }

    /// The states now, seasonal states rotated so the next one comes first.
    fn state(&self) -> State {
        let mut season = self.season.clone();
        season.rotate_left(self.at);
        State {
            level: self.level,
            slope: self.slope,
            season,
        }
    }
}

/// Error and seasonal kinds as a constant for [`ErrorSums::of_kind`]: the seasonal kind
/// in the low bits, the error kind above.
const SEASON: u8 = 0b11;
const MULTIPLICATIVE_ERROR: u8 = 0b100;
const A_N: u8 = 0;
const A_A: u8 = 1;
const A_M: u8 = 2;
const M_N: u8 = MULTIPLICATIVE_ERROR;
const M_A: u8 = MULTIPLICATIVE_ERROR | 1;
const M_M: u8 = MULTIPLICATIVE_ERROR | 2;

/// Sums over the one-step errors of a fit.
#[derive(Debug, Clone, Copy)]
struct ErrorSums {
    /// Σ e² (additive error) or Σ (e/μ)² (multiplicative error).
    squares: f64,
    /// Π μ for a multiplicative error, as `mantissa · 2^exponent` with the mantissa kept in
    /// [1, 2): a logarithm per step would cost more than the rest of the step.
    mantissa: f64,
    exponent: i64,
}

impl ErrorSums {
    /// The sums over `y`, and the filter after its last value (whose `state()` a final fit
    /// keeps; the optimiser only needs the sums).
    fn of<'a>(
        form: Form,
        params: &'a Params,
        initial: &State,
        y: &[f64],
    ) -> Option<(Self, Filter<'a>)> {
        // One loop per error and seasonal kind, so each runs without the other kinds'
        // branches (this loop is nearly all of the fitting time).
        use ErrorKind::{Additive as A, Multiplicative as M};
        match (form.error, form.season) {
            (A, SeasonKind::None) => Self::of_kind::<A_N>(form, params, initial, y),
            (A, SeasonKind::Additive) => Self::of_kind::<A_A>(form, params, initial, y),
            (A, SeasonKind::Multiplicative) => Self::of_kind::<A_M>(form, params, initial, y),
            (M, SeasonKind::None) => Self::of_kind::<M_N>(form, params, initial, y),
            (M, SeasonKind::Additive) => Self::of_kind::<M_A>(form, params, initial, y),
            (M, SeasonKind::Multiplicative) => Self::of_kind::<M_M>(form, params, initial, y),
        }
    }

    /// [`Self::of`] for the error and seasonal kinds coded in `KIND`.
    #[inline(always)]
    fn of_kind<'a, const KIND: u8>(
        form: Form,
        params: &'a Params,
        initial: &State,
        y: &[f64],
    ) -> Option<(Self, Filter<'a>)> {
        let form = Form {
            error: if KIND & MULTIPLICATIVE_ERROR != 0 {
                ErrorKind::Multiplicative
            } else {
                ErrorKind::Additive
            },
            trend: form.trend,
            season: match KIND & SEASON {
                0 => SeasonKind::None,
                1 => SeasonKind::Additive,
                _ => SeasonKind::Multiplicative,
            },
        };
        let mut filter = Filter::new(form, params, initial);
        let mut sums = ErrorSums {
            squares: 0.0,
            mantissa: 1.0,
            exponent: 0,
        };
        for &v in y {
            let (mu, e) = filter.step(v)?;
            match form.error {
                ErrorKind::Additive => sums.squares += e * e,
                ErrorKind::Multiplicative => {
                    let r = e / mu;
                    sums.squares += r * r;
                    sums.multiply(mu);
                }
            }
        }
        Some((sums, filter))
    }

    /// Multiplies the product of means by `mu` (positive and finite; a mean below the
    /// normal range counts as the smallest normal number).
    #[inline(always)]
    fn multiply(&mut self, mu: f64) {
        /// `x = m · 2^e` with `m` in [1, 2), for a positive normal `x`.
        fn split(x: f64) -> (f64, i64) {
            const EXPONENT: u64 = 0x7ff << 52;
            let bits = x.to_bits();
            let m = f64::from_bits((bits & !EXPONENT) | (1023 << 52));
            (m, ((bits & EXPONENT) >> 52) as i64 - 1023)
        }
        let (m, e) = split(mu.max(f64::MIN_POSITIVE));
        // Two mantissas in [1, 2) multiply to a normal number in [1, 4).
        let (m, carry) = split(self.mantissa * m);
        self.mantissa = m;
        self.exponent += e + carry;
    }

    /// Σ ln μ (0 for an additive error, whose product stays 1).
    fn log_means(&self) -> f64 {
        self.exponent as f64 * std::f64::consts::LN_2 + self.mantissa.ln()
    }

    /// −2 log-likelihood with σ² at its maximum, `squares / n`.
    fn deviance(&self, n: usize) -> f64 {
        let n = n as f64;
        let sigma2 = (self.squares / n).max(f64::MIN_POSITIVE);
        n * ((2.0 * std::f64::consts::PI * sigma2).ln() + 1.0) + 2.0 * self.log_means()
    }
}

/// The starting states of Hyndman et al.: seasonal states from a classical decomposition of
/// the first (up to three) periods, normalised; level and slope from a straight line
/// through the first (seasonally adjusted) points.
fn heuristic_state(form: Form, y: &[f64], m: usize) -> State {
    let multiplicative = form.season == SeasonKind::Multiplicative;
    let season = if form.has_season() {
        seasonal_figure(&y[..y.len().min(3 * m)], m, multiplicative)
    } else {
        Vec::new()
    };
    let take = y.len().min(10.max(2 * m));
    let adjusted: Vec<f64> = (0..take)
        .map(|t| match form.season {
            SeasonKind::None => y[t],
            SeasonKind::Additive => y[t] - season[t % m],
            SeasonKind::Multiplicative => y[t] / season[t % m],
        })
        .collect();
    let k = adjusted.len() as f64;
    let mean = adjusted.iter().sum::<f64>() / k;
    let (level, slope) = if form.has_trend() {
        // Least squares on t = 1..k: the intercept is the level before the first point.
        let tbar = (k + 1.0) / 2.0;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (t, v) in adjusted.iter().enumerate() {
            let dt = (t + 1) as f64 - tbar;
            sxy += dt * (v - mean);
            sxx += dt * dt;
        }
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        (mean - slope * tbar, slope)
    } else {
        (mean, 0.0)
    };
    State {
        level,
        slope,
        season,
    }
}

/// The seasonal figure of a classical decomposition: the mean detrended value at each
/// position of the period, detrended by a centred moving average (2×m for even m);
/// normalised to sum 0 (additive) or average 1 (multiplicative). Needs `2m` points.
fn seasonal_figure(y: &[f64], m: usize, multiplicative: bool) -> Vec<f64> {
    let half = m / 2;
    let mut sums = vec![0.0; m];
    let mut counts = vec![0usize; m];
    for t in half..y.len().saturating_sub(half) {
        let trend = if m.is_multiple_of(2) {
            let inner: f64 = y[t + 1 - half..t + half].iter().sum();
            (inner + 0.5 * (y[t - half] + y[t + half])) / m as f64
        } else {
            y[t - half..=t + half].iter().sum::<f64>() / m as f64
        };
        sums[t % m] += if multiplicative {
            y[t] / trend
        } else {
            y[t] - trend
        };
        counts[t % m] += 1;
    }
    let mut figure: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| {
            if c > 0 {
                s / c as f64
            } else if multiplicative {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let mean = figure.iter().sum::<f64>() / m as f64;
    for f in &mut figure {
        if multiplicative {
            *f /= mean;
        } else {
            *f -= mean;
        }
    }
    figure
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn logit(u: f64) -> f64 {
    let u = u.clamp(1e-9, 1.0 - 1e-9);
    (u / (1.0 - u)).ln()
}

/// Maps the optimiser's unbounded vector to parameters and starting states: `[alpha,
/// beta?, gamma?, phi?, level, slope?]`, the weights through logistic transforms onto their
/// bounds (`beta ≤ alpha`, `gamma ≤ 1 − alpha`), level and slope as shifts from the
/// heuristic start in units of `scale`.
struct Layout {
    form: Form,
    start: State,
    scale: f64,
}

impl Layout {
    fn decode(&self, x: &[f64]) -> (Params, State) {
        let mut x = x.iter().copied();
        let mut next = || x.next().unwrap_or(0.0);
        let alpha = LOW + (HIGH - LOW) * sigmoid(next());
        let beta = if self.form.has_trend() {
            LOW + (alpha - LOW) * sigmoid(next())
        } else {
            0.0
        };
        let gamma = if self.form.has_season() {
            LOW + (1.0 - alpha - LOW) * sigmoid(next())
        } else {
            0.0
        };
        let phi = match self.form.trend {
            TrendKind::Damped => PHI_LOW + (PHI_HIGH - PHI_LOW) * sigmoid(next()),
            _ => 1.0,
        };
        let level = self.start.level + self.scale * next();
        let slope = if self.form.has_trend() {
            self.start.slope + self.scale * next() / 10.0
        } else {
            0.0
        };
        (
            Params {
                alpha,
                beta,
                gamma,
                phi,
            },
            State {
                level,
                slope,
                season: self.start.season.clone(),
            },
        )
    }

    /// The starting point: Hyndman et al.'s starting weights and the heuristic states.
    fn start(&self, m: usize) -> Vec<f64> {
        let alpha = LOW + 0.2 * (HIGH - LOW) / m as f64;
        let mut x = vec![logit((alpha - LOW) / (HIGH - LOW))];
        if self.form.has_trend() {
            x.push(logit(0.1));
        }
        if self.form.has_season() {
            x.push(logit(0.05));
        }
        if self.form.trend == TrendKind::Damped {
            x.push(logit(0.9));
        }
        x.push(0.0);
        if self.form.has_trend() {
            x.push(0.0);
        }
        x
    }
}

/// Fits one model to `y` with seasonal period `m` (1 without seasonality); `None` when the
/// series is too short for it or a multiplicative model does not suit it.
pub fn fit(form: Form, y: &[f64], m: usize) -> Option<Fit> {
    fit_from(form, y, m, None).map(|(fit, _)| fit)
}

/// [`fit`], with the optimiser started from `warm` when given: the optimum of a model with
/// the same parameters (its twin with the other error type, say), which saves most of the
/// search. Also returns the optimiser's point.
fn fit_from(form: Form, y: &[f64], m: usize, warm: Option<&[f64]>) -> Option<(Fit, Vec<f64>)> {
    let m = if form.has_season() { m } else { 1 };
    let n = y.len();
    let k = form.parameters(m);
    if n < k + 2 || (form.has_season() && n < 2 * m) {
        return None;
    }
    if form.multiplicative() && y.iter().any(|v| v.is_nan() || *v <= 0.0) {
        return None;
    }
    let start = heuristic_state(form, y, m);
    if form.multiplicative() && (start.level.is_nan() || start.level <= 0.0) {
        return None;
    }
    let mean = y.iter().sum::<f64>() / n as f64;
    let spread = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    let layout = Layout {
        form,
        scale: 0.1 * spread.max(mean.abs() * 1e-3).max(f64::MIN_POSITIVE),
        start,
    };
    let objective = |x: &[f64]| {
        let (params, initial) = layout.decode(x);
        ErrorSums::of(form, &params, &initial, y).map_or(f64::INFINITY, |(s, _)| s.deviance(n))
    };
    let start = layout.start(m);
    let (x0, step) = match warm {
        Some(w) if w.len() == start.len() => (w.to_vec(), 0.5),
        _ => (start, 1.0),
    };
    let (best, _) = nelder_mead(objective, &x0, step, 2000);
    let (params, initial) = layout.decode(&best);
    let (sums, filter) = ErrorSums::of(form, &params, &initial, y)?;
    let last = filter.state();
    let deviance = sums.deviance(n);
    let kf = k as f64;
    let aicc = deviance + 2.0 * kf + 2.0 * kf * (kf + 1.0) / (n as f64 - kf - 1.0);
    let fit = Fit {
        form,
        period: m,
        params,
        initial,
        last,
        sigma2: sums.squares / n as f64,
        aicc: aicc.is_finite().then_some(aicc),
        observations: n,
    };
    Some((fit, best))
}

/// Which seasonal models to try for a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seasonality {
    /// Period `m` is likely: seasonal models are tried beside the others when the series
    /// is long enough (two periods and two more values), and AICc decides.
    Auto(usize),
    /// Only seasonal models with period `m`.
    Fixed(usize),
    /// Only models without seasonality.
    None,
}

/// The best model by AICc among the candidates for `y`, with the AICc of each model that
/// could be fitted; an error saying why when none could.
pub fn fit_best(y: &[f64], seasonality: Seasonality) -> Result<(Fit, Vec<(Form, f64)>), String> {
    let n = y.len();
    if n == 0 {
        return Err("it has no values".into());
    }
    if y.iter().any(|v| !v.is_finite()) {
        return Err("it has values that are not finite".into());
    }
    let (lo, hi) = y
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let (m, seasons): (usize, &[SeasonKind]) = match seasonality {
        Seasonality::Fixed(m) => {
            if n < 2 * m + 2 {
                return Err(format!(
                    "seasonality {m} needs at least {} values (two full periods and two \
                     more), and it has {n}",
                    2 * m + 2
                ));
            }
            (m, &[SeasonKind::Additive, SeasonKind::Multiplicative])
        }
        Seasonality::Auto(m) if m > 1 && n >= 2 * m + 2 => (
            m,
            &[
                SeasonKind::None,
                SeasonKind::Additive,
                SeasonKind::Multiplicative,
            ],
        ),
        _ => (1, &[SeasonKind::None]),
    };
    if hi == lo {
        return Ok((constant(y[0], n), vec![]));
    }
    // Models with the same parameters start where the last of them ended.
    let mut warm: Vec<((TrendKind, bool), Vec<f64>)> = Vec::new();
    let mut tried = Vec::new();
    for form in Form::candidates(lo > 0.0, seasons) {
        let key = (form.trend, form.has_season());
        let from = warm
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, x)| x.as_slice());
        if let Some((fit, x)) = fit_from(form, y, m, from) {
            warm.retain(|(k, _)| *k != key);
            warm.push((key, x));
            tried.push(fit);
        }
    }
    let scores = tried
        .iter()
        .filter_map(|f| f.aicc.map(|a| (f.form, a)))
        .collect();
    tried
        .into_iter()
        .min_by(|a, b| {
            let key = |f: &Fit| f.aicc.unwrap_or(f64::NEG_INFINITY);
            key(a).total_cmp(&key(b))
        })
        .map(|best| (best, scores))
        .ok_or_else(|| {
            format!(
                "it has {n} values, too few for any model (the simplest needs {})",
                Form::candidates(true, &[SeasonKind::None])[0].parameters(1) + 2
            )
        })
}

/// A constant series: its value, forever, with no spread.
fn constant(value: f64, n: usize) -> Fit {
    let state = State {
        level: value,
        slope: 0.0,
        season: vec![],
    };
    Fit {
        form: Form {
            error: ErrorKind::Additive,
            trend: TrendKind::None,
            season: SeasonKind::None,
        },
        period: 1,
        params: Params {
            alpha: LOW,
            beta: 0.0,
            gamma: 0.0,
            phi: 1.0,
        },
        initial: state.clone(),
        last: state,
        sigma2: 0.0,
        aicc: None,
        observations: n,
    }
}

/// Point forecasts and prediction intervals, one per step ahead.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub mean: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

/// The point forecasts 1..=`horizon` steps ahead.
pub fn means(fit: &Fit, horizon: usize) -> Vec<f64> {
    let mut filter = Filter::new(fit.form, &fit.params, &fit.last);
    (0..horizon)
        .map(|_| {
            let (mu, ..) = filter.mean();
            // With no error the states move on deterministically.
            filter.step(mu);
            mu
        })
        .collect()
}

/// Sample paths behind simulated intervals.
const PATHS: usize = 2000;

/// Forecasts `horizon` steps with intervals covering `level` (e.g. 0.95): exact normal
/// intervals for the linear models (additive error, no multiplicative seasonality), else
/// quantiles of [`PATHS`] simulated paths drawn from the stream (`seed`, `key`).
pub fn forecast(fit: &Fit, horizon: usize, level: f64, seed: u64, key: u64) -> Forecast {
    let mean = means(fit, horizon);
    if fit.sigma2 == 0.0 {
        return Forecast {
            lower: mean.clone(),
            upper: mean.clone(),
            mean,
        };
    }
    if fit.form.error == ErrorKind::Additive && fit.form.season != SeasonKind::Multiplicative {
        let z = normal_quantile(0.5 + level / 2.0);
        let p = &fit.params;
        let mut variance = fit.sigma2;
        let mut phis = 0.0;
        let mut power = 1.0;
        let mut lower = Vec::with_capacity(horizon);
        let mut upper = Vec::with_capacity(horizon);
        for (h, mu) in mean.iter().enumerate() {
            if h > 0 {
                // c_j = α + β(φ + … + φ^j) + γ[j ≡ 0 mod m], j = h.
                power *= p.phi;
                phis += power;
                let seasonal = if fit.form.has_season() && h % fit.period == 0 {
                    p.gamma
                } else {
                    0.0
                };
                let c = p.alpha + p.beta * phis + seasonal;
                variance += fit.sigma2 * c * c;
            }
            let half = z * variance.sqrt();
            lower.push(mu - half);
            upper.push(mu + half);
        }
        return Forecast { mean, lower, upper };
    }
    let sigma = fit.sigma2.sqrt();
    let mut rng = Rng::keyed(seed, 7, key);
    let mut paths = vec![0.0; PATHS * horizon];
    for path in paths.chunks_exact_mut(horizon) {
        let mut filter = Filter::new(fit.form, &fit.params, &fit.last);
        for v in path.iter_mut() {
            let (mu, ..) = filter.mean();
            let e = sigma * rng.normal();
            *v = match fit.form.error {
                ErrorKind::Additive => mu + e,
                ErrorKind::Multiplicative => mu * (1.0 + e),
            };
            if filter.step(*v).is_none() {
                // A path whose mean left the positive range stays where it is.
                *v = mu;
            }
        }
    }
    let (mut lower, mut upper) = (Vec::with_capacity(horizon), Vec::with_capacity(horizon));
    let mut column = vec![0.0; PATHS];
    for h in 0..horizon {
        for (c, path) in column.iter_mut().zip(paths.chunks_exact(horizon)) {
            *c = path[h];
        }
        column.sort_by(f64::total_cmp);
        lower.push(quantile(&column, 0.5 - level / 2.0));
        upper.push(quantile(&column, 0.5 + level / 2.0));
    }
    Forecast { mean, lower, upper }
}

/// The `q` quantile of sorted values, interpolating linearly between order statistics.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let below = at.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    sorted[below] + (at - below as f64) * (sorted[above] - sorted[below])
}

/// Nelder–Mead downhill simplex (standard coefficients), from `x0` with initial steps
/// `step` along each axis; stops when the simplex's values agree to 1e-8 relative (as R's optim) or after
/// `max_evals` evaluations. Returns the best point and its value.
pub(crate) fn nelder_mead(
    mut f: impl FnMut(&[f64]) -> f64,
    x0: &[f64],
    step: f64,
    max_evals: usize,
) -> (Vec<f64>, f64) {
    let d = x0.len();
    let mut simplex: Vec<Vec<f64>> = (0..=d)
        .map(|i| {
            let mut x = x0.to_vec();
            if i > 0 {
                x[i - 1] += step;
            }
            x
        })
        .collect();
    let mut values: Vec<f64> = simplex.iter().map(|x| f(x)).collect();
    let mut evals = d + 1;
    let mut order: Vec<usize> = (0..=d).collect();
    let mut centroid = vec![0.0; d];
    let point = |c: &[f64], w: &[f64], t: f64| -> Vec<f64> {
        c.iter().zip(w).map(|(c, w)| c + t * (w - c)).collect()
    };
    while evals < max_evals {
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        let (best, worst, second) = (order[0], order[d], order[d - 1]);
        let spread = values[worst] - values[best];
        if spread.is_finite() && spread <= 1e-8 * (1.0 + values[best].abs()) {
            break;
        }
        centroid.fill(0.0);
        for &i in &order[..d] {
            for (c, x) in centroid.iter_mut().zip(&simplex[i]) {
                *c += x / d as f64;
            }
        }
        let reflected = point(&centroid, &simplex[worst], -1.0);
        let fr = f(&reflected);
        evals += 1;
        if fr < values[best] {
            let expanded = point(&centroid, &simplex[worst], -2.0);
            let fe = f(&expanded);
            evals += 1;
            (simplex[worst], values[worst]) = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < values[second] {
            (simplex[worst], values[worst]) = (reflected, fr);
        } else {
            let (toward, ft) = if fr < values[worst] {
                (reflected.clone(), fr)
            } else {
                (simplex[worst].clone(), values[worst])
            };
            let contracted = point(&centroid, &toward, 0.5);
            let fc = f(&contracted);
            evals += 1;
            if fc < ft {
                (simplex[worst], values[worst]) = (contracted, fc);
            } else {
                let anchor = simplex[best].clone();
                for &i in &order[1..] {
                    simplex[i] = point(&anchor, &simplex[i], 0.5);
                    values[i] = f(&simplex[i]);
                }
                evals += d;
            }
        }
    }
    let best = (0..=d)
        .min_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap_or(0);
    (simplex[best].clone(), values[best])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series drawn from `form` with the given parameters and starting states.
    fn simulate(form: Form, params: Params, start: &State, sigma: f64, n: usize) -> Vec<f64> {
        let mut rng = Rng::keyed(1, 2, 3);
        let mut filter = Filter::new(form, &params, start);
        (0..n)
            .map(|_| {
                let (mu, ..) = filter.mean();
                let e = sigma * rng.normal();
                let y = match form.error {
                    ErrorKind::Additive => mu + e,
                    ErrorKind::Multiplicative => mu * (1.0 + e),
                };
                filter.step(y).expect("positive");
                y
            })
            .collect()
    }

    const ANN: Form = Form {
        error: ErrorKind::Additive,
        trend: TrendKind::None,
        season: SeasonKind::None,
    };

    #[test]
    fn simple_smoothing_by_hand() {
        let params = Params {
            alpha: 0.5,
            beta: 0.0,
            gamma: 0.0,
            phi: 1.0,
        };
        let start = State {
            level: 10.0,
            slope: 0.0,
            season: vec![],
        };
        let (sums, filter) = ErrorSums::of(ANN, &params, &start, &[12.0, 11.0, 15.0]).unwrap();
        let last = filter.state();
        // Levels 11, 11, 13; errors 2, 0, 4.
        assert_eq!(last.level, 13.0);
        assert_eq!(sums.squares, 20.0);
    }

    #[test]
    fn recovers_the_parameters_it_simulated() {
        let form = Form {
            error: ErrorKind::Multiplicative,
            trend: TrendKind::Additive,
            season: SeasonKind::Multiplicative,
        };
        let truth = Params {
            alpha: 0.3,
            beta: 0.01,
            gamma: 0.1,
            phi: 1.0,
        };
        let season: Vec<f64> = (0..12)
            .map(|j| 1.0 + 0.2 * (j as f64 * std::f64::consts::PI / 6.0).sin())
            .collect();
        let start = State {
            level: 100.0,
            slope: 0.2,
            season,
        };
        let y = simulate(form, truth, &start, 0.03, 480);
        let fitted = fit(form, &y, 12).unwrap();
        assert!(
            (fitted.params.alpha - 0.3).abs() < 0.08,
            "{:?}",
            fitted.params
        );
        assert!(
            (fitted.params.gamma - 0.1).abs() < 0.08,
            "{:?}",
            fitted.params
        );
        assert!(
            (fitted.sigma2.sqrt() - 0.03).abs() < 0.005,
            "{}",
            fitted.sigma2
        );
        // The right model wins.
        let (best, scores) = fit_best(&y, Seasonality::Auto(12)).unwrap();
        assert_eq!(best.form.season, SeasonKind::Multiplicative, "{scores:?}");
        assert_eq!(best.form.error, ErrorKind::Multiplicative, "{scores:?}");
    }

    #[test]
    fn analytic_intervals_agree_with_simulation() {
        let form = Form {
            error: ErrorKind::Additive,
            trend: TrendKind::Damped,
            season: SeasonKind::Additive,
        };
        let params = Params {
            alpha: 0.4,
            beta: 0.1,
            gamma: 0.2,
            phi: 0.9,
        };
        let state = State {
            level: 50.0,
            slope: 1.0,
            season: vec![1.0, -2.0, 0.5, 0.5],
        };
        let fitted = Fit {
            form,
            period: 4,
            params,
            initial: state.clone(),
            last: state,
            sigma2: 4.0,
            aicc: Some(0.0),
            observations: 100,
        };
        let analytic = forecast(&fitted, 9, 0.9, 1, 1);
        // Quantiles of simulated paths of the same model.
        let mut rng = Rng::keyed(5, 5, 5);
        let mut ends = Vec::new();
        for _ in 0..20_000 {
            let mut filter = Filter::new(form, &params, &fitted.last);
            let mut y = 0.0;
            for _ in 0..9 {
                let (mu, ..) = filter.mean();
                y = mu + 2.0 * rng.normal();
                filter.step(y);
            }
            ends.push(y);
        }
        ends.sort_by(f64::total_cmp);
        let (lo, hi) = (quantile(&ends, 0.05), quantile(&ends, 0.95));
        let width = analytic.upper[8] - analytic.lower[8];
        assert!(
            (lo - analytic.lower[8]).abs() < 0.03 * width,
            "{lo} vs {:?}",
            analytic
        );
        assert!(
            (hi - analytic.upper[8]).abs() < 0.03 * width,
            "{hi} vs {:?}",
            analytic
        );
    }

    #[test]
    fn degenerate_series() {
        let (flat, _) = fit_best(&[5.0; 20], Seasonality::Auto(12)).unwrap();
        let f = forecast(&flat, 3, 0.95, 1, 1);
        assert_eq!(f.mean, vec![5.0; 3]);
        assert_eq!(f.lower, f.upper);
        assert!(fit_best(&[1.0, 2.0, 3.0], Seasonality::None).is_err());
        assert!(fit_best(&[], Seasonality::None).is_err());
        assert!(fit_best(&[1.0, f64::NAN, 2.0, 3.0, 4.0, 5.0], Seasonality::None).is_err());
        assert!(fit_best(&[1.0; 10], Seasonality::Fixed(12)).is_err());
        // Non-positive data gets additive models only.
        let y: Vec<f64> = (0..30).map(|t| (t as f64).sin() - 0.5).collect();
        let (best, _) = fit_best(&y, Seasonality::None).unwrap();
        assert_eq!(best.form.error, ErrorKind::Additive);
    }
}
