//! Heuristic starting states, from which the search for the initial states begins.

use super::form::{Form, SeasonKind, State};

/// The starting states of Hyndman et al.: seasonal states from a classical decomposition of
/// the first (up to three) periods, normalised; level and slope from a straight line
/// through the first (seasonally adjusted) points.
pub(super) fn heuristic_state(form: Form, y: &[f64], m: usize) -> State {
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
