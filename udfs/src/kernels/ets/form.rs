//! The model family: its kinds, parameters, states and fitted models.

use serde::{Deserialize, Serialize};

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
    pub(super) fn multiplicative(&self) -> bool {
        self.error == ErrorKind::Multiplicative || self.season == SeasonKind::Multiplicative
    }

    pub(super) fn has_trend(&self) -> bool {
        self.trend != TrendKind::None
    }

    pub(super) fn has_season(&self) -> bool {
        self.season != SeasonKind::None
    }

    /// Estimated parameters, the error variance included (as AICc counts them): smoothing
    /// weights, damping, initial level and slope, and `m − 1` free initial seasonal states.
    /// Shifting (additive) or scaling (multiplicative) every seasonal state against the
    /// level and slope leaves every mean unchanged, so only `m − 1` of them are free: R's
    /// forecast::ets (Hyndman et al.) counts them so; statsmodels' ETSModel counts `m`
    /// though it holds one fixed, which puts its AICc about 2.7 higher for the same
    /// likelihood (n = 132, m = 12).
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
