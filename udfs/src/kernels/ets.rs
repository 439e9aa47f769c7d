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

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::dist::normal_quantile;
use super::lanes::{Lanes, Mask, add, div, mask, mul, select, splat, sub, zip};
use super::nelder_mead::NelderMead;
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

/// The most series fitted side by side on one thread. Their recursions are independent, so
/// one loop steps them all as one vector where a single recursion would wait out the
/// latency of every step.
const LANES: usize = 8;

/// Smoothing weights and damping, lane by lane, and the products the recursions use.
#[derive(Debug, Clone, Copy)]
struct Weights<const L: usize> {
    alpha: Lanes<L>,
    beta: Lanes<L>,
    gamma: Lanes<L>,
    phi: Lanes<L>,
    /// 1 − α and (1 − α)φ: the level's weights on the level and slope.
    level_level: Lanes<L>,
    level_slope: Lanes<L>,
    /// (1 − β)φ: the slope's weight on the slope.
    slope_slope: Lanes<L>,
}

impl<const L: usize> Weights<L> {
    fn new(params: &[Params; L]) -> Self {
        let lanes = |f: fn(&Params) -> f64| std::array::from_fn(|i| f(&params[i]));
        Self {
            alpha: lanes(|p| p.alpha),
            beta: lanes(|p| p.beta),
            gamma: lanes(|p| p.gamma),
            phi: lanes(|p| p.phi),
            level_level: lanes(|p| 1.0 - p.alpha),
            level_slope: lanes(|p| (1.0 - p.alpha) * p.phi),
            slope_slope: lanes(|p| (1.0 - p.beta) * p.phi),
        }
    }
}

/// The recursions of `L` series at once (lanes), stepping one observation at a time.
struct Filter<const L: usize> {
    form: Form,
    weights: Weights<L>,
    level: Lanes<L>,
    slope: Lanes<L>,
    /// `season[j][lane]`; every lane has the same period.
    season: Vec<Lanes<L>>,
    /// Index into `season` of the states used by the next step.
    at: usize,
}

/// One step of the recursions in every lane: takes observation `y`; returns the means it
/// was forecast with, the errors `y − μ` and `1/μ`. `row` holds the seasonal states of this
/// step (ignored without seasonality). Invalid means do not stop it: callers check the sums.
///
/// The updates `ℓ' = ℓ + φb + αe`, `b' = φb + βe` (with `e` divided by the seasonal state
/// for a multiplicative season) are written on the states and the observation rather than
/// on the error: `ℓ' = (1−α)ℓ + (1−α)φb + αu`, `b' = (1−β)φb − βℓ + βu`, with `u = y − s`
/// or `y/s`. Then the next step waits on one multiply and two adds, not on the mean, the
/// error and the update in turn: this chain is what bounds the speed of a fit.
#[inline(always)]
fn advance<const L: usize>(
    season: SeasonKind,
    w: &Weights<L>,
    level: &mut Lanes<L>,
    slope: &mut Lanes<L>,
    row: &mut Lanes<L>,
    y: &Lanes<L>,
) -> (Lanes<L>, Lanes<L>, Lanes<L>) {
    let s = *row;
    let base = add(*level, mul(w.phi, *slope));
    // `inverse` is 1/μ, for relative errors (unused, and so not computed, for additive
    // ones). Every division runs beside the chain: 1/s comes from a state set a period ago.
    let (mu, inverse, u) = match season {
        SeasonKind::None => (base, div(splat(1.0), base), *y),
        SeasonKind::Additive => {
            let mu = add(base, s);
            (mu, div(splat(1.0), mu), sub(*y, s))
        }
        SeasonKind::Multiplicative => {
            let inverse_s = div(splat(1.0), s);
            let inverse_base = div(splat(1.0), base);
            let mu = mul(base, s);
            let e = sub(*y, mu);
            *row = add(s, mul(mul(w.gamma, e), inverse_base));
            (mu, mul(inverse_s, inverse_base), mul(*y, inverse_s))
        }
    };
    let e = sub(*y, mu);
    if season == SeasonKind::Additive {
        *row = add(s, mul(w.gamma, e));
    }
    let old = *level;
    *level = add(
        add(mul(w.level_level, old), mul(w.alpha, u)),
        mul(w.level_slope, *slope),
    );
    *slope = sub(
        add(mul(w.slope_slope, *slope), mul(w.beta, u)),
        mul(w.beta, old),
    );
    (mu, e, inverse)
}

/// The index of the seasonal states after `at` with `periods` of them (0 without
/// seasonality), stepped without a division.
#[inline(always)]
fn next_season(at: usize, periods: usize) -> usize {
    if at + 1 >= periods { 0 } else { at + 1 }
}

impl<const L: usize> Filter<L> {
    fn new(
        form: Form,
        params: &[Params; L],
        level: Lanes<L>,
        slope: Lanes<L>,
        seasons: [&[f64]; L],
        mut buffer: Vec<Lanes<L>>,
    ) -> Self {
        // The seasonal states go into `buffer`, so that a caller making filter after filter
        // can hand back the last one's instead of allocating.
        buffer.clear();
        buffer.extend((0..seasons[0].len()).map(|j| std::array::from_fn(|i| seasons[i][j])));
        Self {
            form,
            weights: Weights::new(params),
            level,
            slope,
            season: buffer,
            at: 0,
        }
    }

    /// Whether `mu` can be a mean of this model: finite, and positive for a multiplicative
    /// one.
    fn valid(&self, mu: f64) -> bool {
        mu.is_finite() && !(self.form.multiplicative() && mu <= 0.0)
    }

    /// Lane `i`'s one-step mean.
    fn mean(&self, i: usize) -> f64 {
        let phib = self.weights.phi[i] * self.slope[i];
        let base = self.level[i] + phib;
        match (self.form.season, self.season.get(self.at)) {
            (SeasonKind::Additive, Some(row)) => base + row[i],
            (SeasonKind::Multiplicative, Some(row)) => base * row[i],
            _ => base,
        }
    }

    /// [`advance`] on this filter's states; returns the means and errors.
    #[inline(always)]
    fn step(&mut self, y: &Lanes<L>) -> (Lanes<L>, Lanes<L>) {
        let mut none = splat(0.0);
        let row = self.season.get_mut(self.at).unwrap_or(&mut none);
        let (mu, e, _) = advance(
            self.form.season,
            &self.weights,
            &mut self.level,
            &mut self.slope,
            row,
            y,
        );
        self.at = next_season(self.at, self.season.len());
        (mu, e)
    }

    /// Lane `i`'s states now, seasonal states rotated so the next one comes first.
    fn state(&self, i: usize) -> State {
        let mut season: Vec<f64> = self.season.iter().map(|row| row[i]).collect();
        season.rotate_left(self.at);
        State {
            level: self.level[i],
            slope: self.slope[i],
            season,
        }
    }
}

impl Filter<1> {
    /// One series' recursions from `state`.
    fn single(form: Form, params: &Params, state: &State) -> Self {
        Self::new(
            form,
            &[*params],
            [state.level],
            [state.slope],
            [&state.season],
            Vec::new(),
        )
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
    /// Σ ln(y/μ) for a multiplicative error (0 for an additive one): with Σ ln y, which
    /// does not change between fits, it gives Σ ln μ for the likelihood.
    log_ratios: f64,
}

/// Steps between the renormalisations of the running product of `y/μ`: few enough that
/// the product of ratios cannot leave the range of `f64` unless the means are off by a
/// factor of about 10⁹ on average, a fit then rejected.
const RENORMALISE: usize = 32;

/// The sums of `L` lanes under way.
struct Running<const L: usize> {
    squares: Lanes<L>,
    /// Π y/μ since the last renormalisation, and the powers of two taken out before.
    ratios: Lanes<L>,
    exponent: [i64; L],
    /// Lanes whose product left the normal range (or was not finite).
    lost: Mask<L>,
    /// The smallest mean, for the models that need positive means.
    lowest: Lanes<L>,
}

impl<const L: usize> Running<L> {
    fn new() -> Self {
        Self {
            squares: splat(0.0),
            ratios: splat(1.0),
            exponent: [0; L],
            lost: [0; L],
            lowest: splat(f64::INFINITY),
        }
    }

    /// Takes one step's means, errors, reciprocal means and observations in the `active`
    /// lanes.
    #[inline(always)]
    fn take(
        &mut self,
        form: Form,
        mu: Lanes<L>,
        e: Lanes<L>,
        inverse: Lanes<L>,
        y: &Lanes<L>,
        active: Mask<L>,
    ) {
        if form.multiplicative() {
            // A NaN mean leaves the squares NaN, so the plain comparison is enough.
            let lower = zip(self.lowest, mu, |l, m| if m < l { m } else { l });
            self.lowest = select(active, lower, self.lowest);
        }
        match form.error {
            ErrorKind::Additive => {
                let e = select(active, e, splat(0.0));
                self.squares = add(self.squares, mul(e, e));
            }
            ErrorKind::Multiplicative => {
                let r = select(active, mul(e, inverse), splat(0.0));
                self.squares = add(self.squares, mul(r, r));
                let ratio = select(active, mul(*y, inverse), splat(1.0));
                self.ratios = mul(self.ratios, ratio);
            }
        }
    }

    /// Moves the powers of two of the product of ratios into `exponent`.
    #[inline(always)]
    fn renormalise(&mut self) {
        const EXPONENT: u64 = 0x7ff << 52;
        for i in 0..L {
            let x = self.ratios[i];
            let normal = x.is_normal();
            let bits = x.to_bits();
            self.ratios[i] = if normal {
                f64::from_bits((bits & !EXPONENT) | (1023 << 52))
            } else {
                1.0
            };
            self.exponent[i] += if normal {
                ((bits & EXPONENT) >> 52) as i64 - 1023
            } else {
                0
            };
            self.lost[i] |= 0u64.wrapping_sub(u64::from(!normal));
        }
    }

    /// The sums of each lane; `None` where a mean was not finite (it left the squares so
    /// too), not positive in a model that needs it, or the product of ratios was lost.
    fn finish(mut self, positive: bool) -> [Option<ErrorSums>; L] {
        self.renormalise();
        std::array::from_fn(|i| {
            let valid = self.squares[i].is_finite()
                && (!positive || self.lowest[i] > 0.0)
                && self.lost[i] == 0;
            valid.then(|| ErrorSums {
                squares: self.squares[i],
                log_ratios: self.exponent[i] as f64 * std::f64::consts::LN_2 + self.ratios[i].ln(),
            })
        })
    }
}

impl ErrorSums {
    /// The sums of each lane of `filter` over its first `lengths[i]` values of `y`
    /// (`y[t][lane]`), `None` for a lane whose means left the model's range; and the filter
    /// after the last value (whose states a final fit keeps, for a lane of full length).
    fn of<const L: usize>(
        filter: Filter<L>,
        y: &[[f64; L]],
        lengths: [usize; L],
    ) -> ([Option<Self>; L], Filter<L>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { Self::of_avx512(filter, y, lengths) };
        }
        #[cfg(target_arch = "x86_64")]
        if super::distance::fused() {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { Self::of_avx2(filter, y, lengths) };
        }
        Self::of_any(filter, y, lengths)
    }

    /// [`Self::of`] with the lanes in 512-bit vectors.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn of_avx512<const L: usize>(
        filter: Filter<L>,
        y: &[[f64; L]],
        lengths: [usize; L],
    ) -> ([Option<Self>; L], Filter<L>) {
        Self::of_any(filter, y, lengths)
    }

    /// [`Self::of`] with the lanes in 256-bit vectors.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn of_avx2<const L: usize>(
        filter: Filter<L>,
        y: &[[f64; L]],
        lengths: [usize; L],
    ) -> ([Option<Self>; L], Filter<L>) {
        Self::of_any(filter, y, lengths)
    }

    #[inline(always)]
    fn of_any<const L: usize>(
        filter: Filter<L>,
        y: &[[f64; L]],
        lengths: [usize; L],
    ) -> ([Option<Self>; L], Filter<L>) {
        // One loop per error and seasonal kind, so each runs without the other kinds'
        // branches (this loop is nearly all of the fitting time).
        use ErrorKind::{Additive as A, Multiplicative as M};
        match (filter.form.error, filter.form.season) {
            (A, SeasonKind::None) => Self::of_kind::<A_N, L>(filter, y, lengths),
            (A, SeasonKind::Additive) => Self::of_kind::<A_A, L>(filter, y, lengths),
            (A, SeasonKind::Multiplicative) => Self::of_kind::<A_M, L>(filter, y, lengths),
            (M, SeasonKind::None) => Self::of_kind::<M_N, L>(filter, y, lengths),
            (M, SeasonKind::Additive) => Self::of_kind::<M_A, L>(filter, y, lengths),
            (M, SeasonKind::Multiplicative) => Self::of_kind::<M_M, L>(filter, y, lengths),
        }
    }

    /// [`Self::of`] for the error and seasonal kinds coded in `KIND`.
    #[inline(always)]
    fn of_kind<const KIND: u8, const L: usize>(
        filter: Filter<L>,
        y: &[[f64; L]],
        lengths: [usize; L],
    ) -> ([Option<Self>; L], Filter<L>) {
        let form = Form {
            error: if KIND & MULTIPLICATIVE_ERROR != 0 {
                ErrorKind::Multiplicative
            } else {
                ErrorKind::Additive
            },
            trend: filter.form.trend,
            season: match KIND & SEASON {
                0 => SeasonKind::None,
                1 => SeasonKind::Additive,
                _ => SeasonKind::Multiplicative,
            },
        };
        // The states in locals, which the compiler keeps in registers.
        let Filter {
            weights,
            mut level,
            mut slope,
            mut season,
            ..
        } = filter;
        let periods = season.len();
        let mut none = splat(0.0);
        let mut running = Running::new();
        let mut at = 0;
        // Every lane is active up to the end of the shortest series; only the steps past it
        // need masks (the compiler makes two loops of this one).
        let shortest = lengths.iter().copied().min().unwrap_or(0).min(y.len());
        for (t, values) in y.iter().enumerate() {
            let active = if t < shortest {
                [u64::MAX; L]
            } else {
                mask(|i| t < lengths[i])
            };
            let row = if periods > 0 {
                &mut season[at]
            } else {
                &mut none
            };
            let (mu, e, inverse) =
                advance(form.season, &weights, &mut level, &mut slope, row, values);
            running.take(form, mu, e, inverse, values, active);
            if form.error == ErrorKind::Multiplicative && t % RENORMALISE == RENORMALISE - 1 {
                running.renormalise();
            }
            at = next_season(at, periods);
        }
        let filter = Filter {
            form,
            weights,
            level,
            slope,
            season,
            at,
        };
        (running.finish(form.multiplicative()), filter)
    }

    /// −2 log-likelihood with σ² at its maximum, `squares / n`, for a series whose values
    /// have logarithms summing to `log_y` (pass 0 for an additive error).
    fn deviance(&self, n: usize, log_y: f64) -> f64 {
        let n = n as f64;
        let sigma2 = (self.squares / n).max(f64::MIN_POSITIVE);
        n * ((2.0 * std::f64::consts::PI * sigma2).ln() + 1.0) + 2.0 * (log_y - self.log_ratios)
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

/// The optimiser's starting coordinate for the damping: 90% of the way up its range.
fn phi_start() -> f64 {
    logit(0.9)
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
    /// The parameters, initial level and initial slope at `x`.
    fn decode(&self, x: &[f64]) -> (Params, f64, f64) {
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
        let params = Params {
            alpha,
            beta,
            gamma,
            phi,
        };
        (params, level, slope)
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
            x.push(phi_start());
        }
        x.push(0.0);
        if self.form.has_trend() {
            x.push(0.0);
        }
        x
    }
}

/// Evaluations allowed to one search.
const MAX_EVALS: usize = 2000;

/// A fit under way: one model for one series, and the search for its parameters.
struct Job {
    /// The series' position among those being fitted.
    series: usize,
    /// Σ ln y for a multiplicative error, else 0 (see [`ErrorSums::deviance`]).
    log_y: f64,
    layout: Layout,
    search: NelderMead,
}

impl Job {
    /// Sets up fitting `form` with period `m` (1 without seasonality) to `y`, the search
    /// started from `warm` when given: the optimum of a model with the same parameters (its
    /// twin with the other error type, say), which saves most of the search. `None` when
    /// the series is too short for the model or a multiplicative model does not suit it.
    fn new(series: usize, form: Form, y: &[f64], m: usize, warm: Option<&[f64]>) -> Option<Self> {
        let n = y.len();
        if n < form.parameters(m) + 2 || (form.has_season() && n < 2 * m) {
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
        let x0 = layout.start(m);
        let search = match warm {
            Some(w) if w.len() == x0.len() => NelderMead::new(w, 0.5, MAX_EVALS),
            _ => NelderMead::new(&x0, 1.0, MAX_EVALS),
        };
        let log_y = match form.error {
            ErrorKind::Additive => 0.0,
            ErrorKind::Multiplicative => y.iter().map(|v| v.ln()).sum(),
        };
        Some(Self {
            series,
            log_y,
            layout,
            search,
        })
    }

    /// The parameters and initial level and slope at the search's next point (its best
    /// once it is over).
    fn decode(&self) -> (Params, f64, f64) {
        let x = self.search.point().unwrap_or_else(|| self.search.best().0);
        self.layout.decode(x)
    }

    /// The fit at the search's best point, and that point.
    fn finish(&self, y: &[f64], m: usize) -> Option<(Fit, Vec<f64>)> {
        let form = self.layout.form;
        let (best, _) = self.search.best();
        let (params, level, slope) = self.layout.decode(best);
        let initial = State {
            level,
            slope,
            season: self.layout.start.season.clone(),
        };
        let n = y.len();
        let filter = Filter::single(form, &params, &initial);
        let ([sums], filter) = ErrorSums::of(filter, y.as_chunks::<1>().0, [n]);
        let sums = sums?;
        let deviance = sums.deviance(n, self.log_y);
        let k = form.parameters(m) as f64;
        let aicc = deviance + 2.0 * k + 2.0 * k * (k + 1.0) / (n as f64 - k - 1.0);
        let fit = Fit {
            form,
            period: m,
            params,
            initial,
            last: filter.state(0),
            sigma2: sums.squares / n as f64,
            aicc: aicc.is_finite().then_some(aicc),
            observations: n,
        };
        Some((fit, best.to_vec()))
    }
}

/// Fits `form` with period `m` to each series of `ys` by maximum likelihood, the search for
/// series `s` started from `warm[s]`, several series at a time: as many as one vector
/// register holds (8 with 512-bit vectors, else 4; more would spill registers). Returns each
/// fit with its optimiser's point; `None` for a series the model does not suit. The result
/// does not depend on the number of lanes.
fn fit_form(
    form: Form,
    m: usize,
    ys: &[&[f64]],
    warm: &[Option<&[f64]>],
) -> Vec<Option<(Fit, Vec<f64>)>> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return fit_lanes::<LANES>(form, m, ys, warm);
    }
    fit_lanes::<{ LANES / 2 }>(form, m, ys, warm)
}

/// [`fit_form`] with `L` lanes: each lane takes the next series when its search ends, and
/// every round evaluates one point of each lane's search in one pass over the data.
fn fit_lanes<const L: usize>(
    form: Form,
    m: usize,
    ys: &[&[f64]],
    warm: &[Option<&[f64]>],
) -> Vec<Option<(Fit, Vec<f64>)>> {
    let m = if form.has_season() { m } else { 1 };
    let mut fits = vec![None; ys.len()];
    let longest = ys.iter().map(|y| y.len()).max().unwrap_or(0);
    // values[t][lane]: the series each lane is fitting, side by side.
    let mut values = vec![[0.0; L]; longest];
    let mut lengths = [0; L];
    let mut lanes: [Option<Job>; L] = std::array::from_fn(|_| None);
    let mut queue = 0..ys.len();
    let mut buffer = Vec::new();
    loop {
        for (i, lane) in lanes.iter_mut().enumerate() {
            while lane.is_none() {
                let Some(s) = queue.next() else {
                    lengths[i] = 0;
                    break;
                };
                *lane = Job::new(s, form, ys[s], m, warm[s]);
                if lane.is_some() {
                    // Past its end the lane sees its last value, so that its states (on
                    // which nothing depends) stay ordinary numbers, far from subnormals.
                    let last = ys[s].last().copied().unwrap_or(0.0);
                    for (t, row) in values.iter_mut().enumerate() {
                        row[i] = ys[s].get(t).copied().unwrap_or(last);
                    }
                    lengths[i] = ys[s].len();
                }
            }
        }
        let Some(busy) = lanes.iter().flatten().next() else {
            break;
        };
        // An idle lane runs a copy of a busy one, with no data; its result goes unused.
        let job = |i: usize| lanes[i].as_ref().unwrap_or(busy);
        let points: [(Params, f64, f64); L] = std::array::from_fn(|i| job(i).decode());
        let filter = Filter::new(
            form,
            &points.map(|p| p.0),
            points.map(|p| p.1),
            points.map(|p| p.2),
            std::array::from_fn(|i| job(i).layout.start.season.as_slice()),
            std::mem::take(&mut buffer),
        );
        let steps = lengths.iter().copied().max().unwrap_or(0);
        let (sums, filter) = ErrorSums::of(filter, &values[..steps], lengths);
        buffer = filter.season;
        for (i, lane) in lanes.iter_mut().enumerate() {
            let Some(job) = lane else { continue };
            job.search
                .tell(sums[i].map_or(f64::INFINITY, |s| s.deviance(lengths[i], job.log_y)));
            if job.search.point().is_none() {
                fits[job.series] = job.finish(ys[job.series], m);
                *lane = None;
            }
        }
    }
    fits
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

/// A series' best model by AICc, with the AICc of each model that could be fitted.
pub type Best = (Fit, Vec<(Form, f64)>);

/// What fitting a series takes.
enum Plan {
    /// Nothing: it is constant.
    Constant(Fit),
    /// A search for each of these models, with this period.
    Search(usize, Vec<Form>),
}

impl Plan {
    /// The plan for `y`, or why it cannot be fitted.
    fn of(y: &[f64], seasonality: Seasonality) -> Result<Self, String> {
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
            return Ok(Plan::Constant(constant(y[0], n)));
        }
        Ok(Plan::Search(m, Form::candidates(lo > 0.0, seasons)))
    }
}

/// The best model of each series by AICc among its candidates, or why none could be
/// fitted. Series are fitted in parallel, several at a time on each thread, each model in
/// turn: models with the same parameters start from the optimum of the last one fitted.
pub fn fit_best_many(ys: &[&[f64]], seasonality: Seasonality) -> Vec<Result<Best, String>> {
    let mut results: Vec<Result<Best, String>> = vec![Err(String::new()); ys.len()];
    // The series to search, grouped by period and candidate models.
    let mut groups: Vec<(usize, Vec<Form>, Vec<usize>)> = Vec::new();
    for (s, y) in ys.iter().enumerate() {
        match Plan::of(y, seasonality) {
            Err(why) => results[s] = Err(why),
            Ok(Plan::Constant(fit)) => results[s] = Ok((fit, vec![])),
            Ok(Plan::Search(m, forms)) => {
                match groups.iter_mut().find(|g| g.0 == m && g.1 == forms) {
                    Some(group) => group.2.push(s),
                    None => groups.push((m, forms, vec![s])),
                }
            }
        }
    }
    // Series of like lengths share lanes, so few steps run on idle lanes.
    let threads = rayon::current_num_threads();
    let mut chunks = Vec::new();
    for (m, forms, members) in &mut groups {
        members.sort_by_key(|&s| ys[s].len());
        let size = (members.len() / (4 * threads)).clamp(LANES, 64);
        chunks.extend(members.chunks(size).map(|c| (*m, forms.as_slice(), c)));
    }
    let fitted: Vec<Vec<(usize, Result<Best, String>)>> = chunks
        .par_iter()
        .map(|&(m, forms, members)| {
            let series: Vec<&[f64]> = members.iter().map(|&s| ys[s]).collect();
            members
                .iter()
                .copied()
                .zip(fit_all(&series, m, forms))
                .collect()
        })
        .collect();
    for (s, result) in fitted.into_iter().flatten() {
        results[s] = result;
    }
    results
}

/// Each of `forms` fitted to each series of `ys`, and the best of each by AICc.
fn fit_all(ys: &[&[f64]], m: usize, forms: &[Form]) -> Vec<Result<Best, String>> {
    let mut tried: Vec<Vec<Fit>> = vec![Vec::new(); ys.len()];
    // For each series, the optimum of the last model fitted with each set of parameters
    // (trend, seasonality).
    type Optima = Vec<((TrendKind, bool), Vec<f64>)>;
    let mut warm: Vec<Optima> = vec![Vec::new(); ys.len()];
    for &form in forms {
        let key = (form.trend, form.has_season());
        let starts: Vec<Option<Vec<f64>>> = warm
            .iter()
            .map(|w| {
                let optimum = |key| w.iter().find(|(k, _)| *k == key).map(|(_, x)| x);
                match optimum(key) {
                    Some(x) => Some(x.clone()),
                    // A damped trend starts from the undamped trend's optimum: the same
                    // coordinates, with the damping's start inserted before the level.
                    None if form.trend == TrendKind::Damped => {
                        optimum((TrendKind::Additive, key.1)).map(|x| {
                            let mut x = x.clone();
                            x.insert(2 + usize::from(key.1), phi_start());
                            x
                        })
                    }
                    None => None,
                }
            })
            .collect();
        let starts: Vec<Option<&[f64]>> = starts.iter().map(Option::as_deref).collect();
        let fits = fit_form(form, m, ys, &starts);
        for (s, fit) in fits.into_iter().enumerate() {
            if let Some((fit, x)) = fit {
                warm[s].retain(|(k, _)| *k != key);
                warm[s].push((key, x));
                tried[s].push(fit);
            }
        }
    }
    tried
        .into_iter()
        .zip(ys)
        .map(|(tried, y)| {
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
                        "it has {} values, too few for any model (the simplest needs {})",
                        y.len(),
                        Form::candidates(true, &[SeasonKind::None])[0].parameters(1) + 2
                    )
                })
        })
        .collect()
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
    let mut filter = Filter::single(fit.form, &fit.params, &fit.last);
    (0..horizon)
        .map(|_| {
            // With no error the states move on deterministically.
            let mu = filter.mean(0);
            filter.step(&[mu]);
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
        let mut filter = Filter::single(fit.form, &fit.params, &fit.last);
        for v in path.iter_mut() {
            let mu = filter.mean(0);
            if !filter.valid(mu) {
                // A path whose mean left the positive range stays where it is.
                *v = mu;
                continue;
            }
            let e = sigma * rng.normal();
            *v = match fit.form.error {
                ErrorKind::Additive => mu + e,
                ErrorKind::Multiplicative => mu * (1.0 + e),
            };
            filter.step(&[*v]);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A series drawn from `form` with the given parameters and starting states.
    fn simulate(form: Form, params: Params, start: &State, sigma: f64, n: usize) -> Vec<f64> {
        let mut rng = Rng::keyed(1, 2, 3);
        let mut filter = Filter::single(form, &params, start);
        (0..n)
            .map(|_| {
                let mu = filter.mean(0);
                let e = sigma * rng.normal();
                let y = match form.error {
                    ErrorKind::Additive => mu + e,
                    ErrorKind::Multiplicative => mu * (1.0 + e),
                };
                assert!(filter.valid(mu), "positive");
                filter.step(&[y]);
                y
            })
            .collect()
    }

    /// The best model for one series.
    fn best(y: &[f64], seasonality: Seasonality) -> Result<Best, String> {
        fit_best_many(&[y], seasonality).remove(0)
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
        let filter = Filter::single(ANN, &params, &start);
        let ([sums], filter) = ErrorSums::of(filter, &[[12.0], [11.0], [15.0]], [3]);
        let (sums, last) = (sums.unwrap(), filter.state(0));
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
        let (fitted, _) = fit_form(form, 12, &[&y], &[None]).remove(0).unwrap();
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
        let (best, scores) = best(&y, Seasonality::Auto(12)).unwrap();
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
            let mut filter = Filter::single(form, &params, &fitted.last);
            let mut y = 0.0;
            for _ in 0..9 {
                y = filter.mean(0) + 2.0 * rng.normal();
                filter.step(&[y]);
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
        let (flat, _) = best(&[5.0; 20], Seasonality::Auto(12)).unwrap();
        let f = forecast(&flat, 3, 0.95, 1, 1);
        assert_eq!(f.mean, vec![5.0; 3]);
        assert_eq!(f.lower, f.upper);
        assert!(best(&[1.0, 2.0, 3.0], Seasonality::None).is_err());
        assert!(best(&[], Seasonality::None).is_err());
        assert!(best(&[1.0, f64::NAN, 2.0, 3.0, 4.0, 5.0], Seasonality::None).is_err());
        assert!(best(&[1.0; 10], Seasonality::Fixed(12)).is_err());
        // Non-positive data gets additive models only.
        let y: Vec<f64> = (0..30).map(|t| (t as f64).sin() - 0.5).collect();
        let (best, _) = best(&y, Seasonality::None).unwrap();
        assert_eq!(best.form.error, ErrorKind::Additive);
    }

    #[test]
    fn lanes_fit_each_series_as_if_alone() {
        let form = Form {
            error: ErrorKind::Multiplicative,
            trend: TrendKind::Damped,
            season: SeasonKind::Multiplicative,
        };
        let params = Params {
            alpha: 0.2,
            beta: 0.02,
            gamma: 0.1,
            phi: 0.95,
        };
        let start = State {
            level: 50.0,
            slope: 0.5,
            season: (0..4).map(|j| 1.0 + 0.1 * j as f64 - 0.15).collect(),
        };
        // Series of several lengths, more than there are lanes, one too short to fit.
        let long = simulate(form, params, &start, 0.05, 100);
        let ys: Vec<&[f64]> = [90, 60, 37, 4, 75, 48, 90, 23]
            .iter()
            .enumerate()
            .map(|(k, &n)| &long[k..k + n])
            .collect();
        let together = fit_best_many(&ys, Seasonality::Auto(4));
        for (y, shared) in ys.iter().zip(&together) {
            let alone = best(y, Seasonality::Auto(4));
            assert_eq!(shared, &alone);
        }
        assert!(together[3].is_err(), "{:?}", together[3]);
        let warm = vec![None; ys.len()];
        let fits = fit_form(form, 4, &ys, &warm);
        for (y, fit) in ys.iter().zip(&fits) {
            assert_eq!(fit, &fit_form(form, 4, &[y], &[None]).remove(0));
        }
        // Whatever the number of lanes.
        assert_eq!(fits, fit_lanes::<1>(form, 4, &ys, &warm));
        assert_eq!(fits, fit_lanes::<4>(form, 4, &ys, &warm));
        assert_eq!(fits, fit_lanes::<8>(form, 4, &ys, &warm));
    }
}
