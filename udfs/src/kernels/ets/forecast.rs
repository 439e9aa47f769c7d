//! Point forecasts and prediction intervals of a fitted model.

use super::filter::Filter;
use super::form::{ErrorKind, Fit, SeasonKind};
use crate::kernels::distributions::normal_quantile;
use crate::kernels::rng::Rng;

/// Point forecasts and prediction intervals, one per step ahead.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub mean: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

/// The point forecast `steps` (at least 1) ahead, stepping the states without keeping the
/// earlier ones.
pub fn mean_ahead(fit: &Fit, steps: usize) -> f64 {
    let mut filter = Filter::single(fit.form, &fit.params, &fit.last);
    let mut mu = filter.mean(0);
    for _ in 1..steps {
        filter.step(&[mu]);
        mu = filter.mean(0);
    }
    mu
}

/// Sample paths behind simulated intervals.
const PATHS: usize = 2000;

/// Bytes a [`Forecasting`] of a model of seasonal `period` holds at most, besides the
/// forecasts it returns: the simulated paths' states.
pub fn state_bytes(period: usize) -> usize {
    PATHS * (size_of::<Filter<1>>() + period * size_of::<f64>() + size_of::<f64>())
}

/// Forecasts of one series, made a few steps at a time so that a long horizon never needs
/// its whole length in memory. Intervals covering `level` (e.g. 0.95) are exact normal
/// intervals for the linear models (additive error, no multiplicative seasonality), else
/// quantiles of [`PATHS`] paths simulated side by side from the stream (`seed`, `key`); the
/// result does not depend on how the steps are split between calls.
pub struct Forecasting {
    mean: Filter<1>,
    intervals: Intervals,
    /// Steps made so far.
    done: usize,
}

enum Intervals {
    /// No error: the intervals are the point forecasts.
    None,
    Exact {
        fit: Box<Fit>,
        z: f64,
        variance: f64,
        /// φ + … + φ^h and φ^h at the last step made.
        phis: f64,
        power: f64,
    },
    Simulated {
        fit: Box<Fit>,
        level: f64,
        rng: Rng,
        paths: Vec<Filter<1>>,
        /// The paths' values at the current step.
        column: Vec<f64>,
    },
}

impl Forecasting {
    pub fn new(fit: &Fit, level: f64, seed: u64, key: u64) -> Self {
        let intervals = if fit.sigma2 == 0.0 {
            Intervals::None
        } else if fit.form.error == ErrorKind::Additive
            && fit.form.season != SeasonKind::Multiplicative
        {
            Intervals::Exact {
                fit: Box::new(fit.clone()),
                z: normal_quantile(0.5 + level / 2.0),
                variance: fit.sigma2,
                phis: 0.0,
                power: 1.0,
            }
        } else {
            Intervals::Simulated {
                fit: Box::new(fit.clone()),
                level,
                rng: Rng::keyed(seed, 7, key),
                paths: (0..PATHS)
                    .map(|_| Filter::single(fit.form, &fit.params, &fit.last))
                    .collect(),
                column: vec![0.0; PATHS],
            }
        };
        Self {
            mean: Filter::single(fit.form, &fit.params, &fit.last),
            intervals,
            done: 0,
        }
    }

    /// The next `steps` forecasts.
    pub fn next(&mut self, steps: usize) -> Forecast {
        let mut out = Forecast {
            mean: Vec::with_capacity(steps),
            lower: Vec::with_capacity(steps),
            upper: Vec::with_capacity(steps),
        };
        for _ in 0..steps {
            // With no error the states move on deterministically.
            let mu = self.mean.mean(0);
            self.mean.step(&[mu]);
            let (lower, upper) = self.intervals.step(self.done, mu);
            out.mean.push(mu);
            out.lower.push(lower);
            out.upper.push(upper);
            self.done += 1;
        }
        out
    }
}

impl Intervals {
    /// The interval `h + 1` steps ahead, around the point forecast `mu`.
    fn step(&mut self, h: usize, mu: f64) -> (f64, f64) {
        match self {
            Intervals::None => (mu, mu),
            Intervals::Exact {
                fit,
                z,
                variance,
                phis,
                power,
            } => {
                if h > 0 {
                    // c_j = α + β(φ + … + φ^j) + γ[j ≡ 0 mod m], j = h.
                    let p = &fit.params;
                    *power *= p.phi;
                    *phis += *power;
                    let seasonal = if fit.form.has_season() && h.is_multiple_of(fit.period) {
                        p.gamma
                    } else {
                        0.0
                    };
                    let c = p.alpha + p.beta * *phis + seasonal;
                    *variance += fit.sigma2 * c * c;
                }
                let half = *z * variance.sqrt();
                (mu - half, mu + half)
            }
            Intervals::Simulated {
                fit,
                level,
                rng,
                paths,
                column,
            } => {
                let sigma = fit.sigma2.sqrt();
                for (v, filter) in column.iter_mut().zip(paths.iter_mut()) {
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
                column.sort_by(f64::total_cmp);
                (
                    quantile(column, 0.5 - *level / 2.0),
                    quantile(column, 0.5 + *level / 2.0),
                )
            }
        }
    }
}

/// The `q` quantile of sorted values, interpolating linearly between order statistics.
pub(super) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let below = at.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    sorted[below] + (at - below as f64) * (sorted[above] - sorted[below])
}
