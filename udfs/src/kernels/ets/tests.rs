use super::filter::Filter;
use super::forecast::quantile;
use super::likelihood::ErrorSums;
use super::search::{fit_form, fit_lanes};
use super::*;
use crate::kernels::rng::Rng;

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
fn best(y: &[f64], seasonality: Seasonality) -> Result<Best, EtsError> {
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
    let analytic = Forecasting::new(&fitted, 0.9, 1, 1).next(9);
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
    let f = Forecasting::new(&flat, 0.95, 1, 1).next(3);
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
