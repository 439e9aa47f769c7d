//! Exponential smoothing in state-space form, ETS(error, trend, season) after Hyndman,
//! Koehler, Ord and Snyder, *Forecasting with Exponential Smoothing* (2008): additive or
//! multiplicative error; no, additive or additive-damped trend; no, additive or
//! multiplicative seasonality.
//!
//! Written with the absolute one-step error `e = y − μ`, the state updates are the same for
//! both error types; the error type changes the likelihood, and so the fitted parameters,
//! the model chosen and the intervals. Parameters (smoothing weights, damping and every
//! initial state, seasonal ones included) are fitted jointly by maximum likelihood, bounded
//! as statsmodels' ETSModel bounds them: Nelder–Mead over bounded transforms of the weights,
//! level and slope from a classical decomposition's seasonal states, then Levenberg–Marquardt
//! over all of them; models are compared by AICc.
//!
//! [`form`] holds the family and its parameters, [`filter`] the recursions, [`likelihood`]
//! the pass over the data that scores a fit, [`initial`] the starting states, [`search`]
//! the fitting and the choice of model, [`refine`] the joint refinement, and [`forecast`] the forecasts and intervals.

mod filter;
mod forecast;
mod form;
mod initial;
mod likelihood;
mod refine;
mod search;
#[cfg(test)]
mod tests;

pub use forecast::{Forecast, Forecasting, mean_ahead, state_bytes};
pub use form::{ErrorKind, Fit, Form, Params, SeasonKind, State, TrendKind};
pub use search::{Best, Seasonality, fit_best_many};

/// Why a series cannot be fitted, in words that follow the name of the series.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EtsError {
    #[error("it has no values")]
    NoValues,
    #[error("it has values that are not finite")]
    NotFinite,
    /// Fixed seasonality needs two full periods and two more values.
    #[error(
        "seasonality {period} needs at least {needs} values (two full periods and two more), \
         and it has {values}"
    )]
    TooShortForSeason {
        period: usize,
        needs: usize,
        values: usize,
    },
    /// No candidate model could be fitted; `needs` is what the simplest model needs.
    #[error("it has {values} values, too few for any model (the simplest needs {needs})")]
    TooShort { values: usize, needs: usize },
}
