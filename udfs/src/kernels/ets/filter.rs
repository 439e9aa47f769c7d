//! The state-space recursions, stepping several series side by side as one vector.

use super::form::{Form, Params, SeasonKind, State};
use crate::kernels::lanes::{Lanes, add, div, mul, splat, sub};

/// Smoothing weights and damping, lane by lane, and the products the recursions use.
#[derive(Debug, Clone, Copy)]
pub(super) struct Weights<const L: usize> {
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
pub(super) struct Filter<const L: usize> {
    pub(super) form: Form,
    pub(super) weights: Weights<L>,
    pub(super) level: Lanes<L>,
    pub(super) slope: Lanes<L>,
    /// `season[j][lane]`; every lane has the same period.
    pub(super) season: Vec<Lanes<L>>,
    /// Index into `season` of the states used by the next step.
    pub(super) at: usize,
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
pub(super) fn advance<const L: usize>(
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
pub(super) fn next_season(at: usize, periods: usize) -> usize {
    if at + 1 >= periods { 0 } else { at + 1 }
}

impl<const L: usize> Filter<L> {
    pub(super) fn new(
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
    pub(super) fn valid(&self, mu: f64) -> bool {
        mu.is_finite() && !(self.form.multiplicative() && mu <= 0.0)
    }

    /// Lane `i`'s one-step mean.
    pub(super) fn mean(&self, i: usize) -> f64 {
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
    pub(super) fn step(&mut self, y: &Lanes<L>) -> (Lanes<L>, Lanes<L>) {
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
    pub(super) fn state(&self, i: usize) -> State {
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
    pub(super) fn single(form: Form, params: &Params, state: &State) -> Self {
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
