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
pub(super) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let below = at.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    sorted[below] + (at - below as f64) * (sorted[above] - sorted[below])
}
