//! The likelihood of a fit: one pass of the recursions over the data, summing the errors.

use super::filter::{Filter, advance, next_season};
use super::form::{ErrorKind, Form, SeasonKind};
use crate::kernels::lanes::{Lanes, Mask, add, mask, mul, select, splat, zip};
use crate::kernels::simd::{Kernel, Simd, dispatch};

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
pub(super) struct ErrorSums {
    /// Σ e² (additive error) or Σ (e/μ)² (multiplicative error).
    pub(super) squares: f64,
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

/// [`ErrorSums::of`]'s body: plain lane arithmetic, which the compiler keeps in vectors as
/// wide as the level has.
struct Sums<'a, const L: usize> {
    filter: Filter<L>,
    y: &'a [[f64; L]],
    lengths: [usize; L],
}

impl<const L: usize> Kernel for Sums<'_, L> {
    type Output = ([Option<ErrorSums>; L], Filter<L>);

    #[inline(always)]
    fn run<S: Simd>(self) -> Self::Output {
        ErrorSums::of_any(self.filter, self.y, self.lengths)
    }
}

impl ErrorSums {
    /// The sums of each lane of `filter` over its first `lengths[i]` values of `y`
    /// (`y[t][lane]`), `None` for a lane whose means left the model's range; and the filter
    /// after the last value (whose states a final fit keeps, for a lane of full length).
    pub(super) fn of<const L: usize>(
        filter: Filter<L>,
        y: &[[f64; L]],
        lengths: [usize; L],
    ) -> ([Option<Self>; L], Filter<L>) {
        dispatch(Sums { filter, y, lengths })
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
    pub(super) fn deviance(&self, n: usize, log_y: f64) -> f64 {
        let n = n as f64;
        let sigma2 = (self.squares / n).max(f64::MIN_POSITIVE);
        n * ((2.0 * std::f64::consts::PI * sigma2).ln() + 1.0) + 2.0 * (log_y - self.log_ratios)
    }
}
