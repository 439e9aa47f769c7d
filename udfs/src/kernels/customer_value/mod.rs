//! Customer-base analysis: how many more purchases each customer will make (BG/NBD or
//! Pareto/NBD), whether they are still a customer (P(alive)), how much each purchase is
//! worth (Gamma-Gamma), and the discounted value of that over a horizon.
//!
//! The per-customer summaries ([`summary`]) are a mergeable aggregate of the purchase rows;
//! the likelihoods sum over customers in fixed chunks on all threads, with analytic
//! gradients, and [`optimize::maximise`] fits them.

pub mod bg_nbd;
pub mod gamma_gamma;
pub mod optimize;
pub mod pareto_nbd;
pub mod simulate;
pub mod special;
pub mod summary;

pub use bg_nbd::{BgNbd, BgNbdLikelihood};
pub use gamma_gamma::{GammaGamma, GammaGammaLikelihood, Spenders};
pub use optimize::{Estimate, Likelihood, maximise};
pub use pareto_nbd::{ParetoNbd, ParetoNbdLikelihood};
pub use summary::{Customers, Purchase, PurchaseDays, Summary, TimeUnit, summarise};

/// What a fitted purchase model predicts of one customer (x, t_x, T).
pub trait PurchaseModel {
    /// The probability that the customer is still active at T.
    fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64;

    /// Expected purchases in the `horizon` time units after T.
    fn expected_purchases(&self, horizon: f64, x: f64, t_x: f64, t: f64) -> f64;

    /// Σ over the whole time units i = 1..=ceil(horizon) of the purchases expected in unit
    /// i (the last one ending at `horizon`), discounted by (1 + rate)^i: the number that
    /// times the expected spend gives the discounted value. Without discounting it is the
    /// expected purchases over the horizon.
    fn discounted_purchases(&self, horizon: f64, rate: f64, x: f64, t_x: f64, t: f64) -> f64 {
        if rate == 0.0 {
            return self.expected_purchases(horizon, x, t_x, t);
        }
        let steps = horizon.ceil() as usize;
        let (mut before, mut total) = (0.0, 0.0);
        for i in 1..=steps {
            let upto = (i as f64).min(horizon);
            let now = self.expected_purchases(upto, x, t_x, t);
            total += (now - before) / (1.0 + rate).powi(i as i32);
            before = now;
        }
        total
    }
}
