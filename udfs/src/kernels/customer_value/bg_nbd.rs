//! The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way"):
//! while alive a customer buys at a Poisson rate λ ~ Gamma(r, α) and after each purchase
//! drops out with probability p ~ Beta(a, b).

use super::special::{digamma, hyp2f1};
use super::summary::{Customers, chunked_sum};
use super::{Likelihood, PurchaseModel};
use crate::kernels::distributions::ln_gamma;

/// The BG/NBD log-likelihood of some customers.
pub struct BgNbdLikelihood<'a> {
    pub customers: &'a Customers,
    pub max_x: u32,
}

/// The terms of one customer's log-likelihood that depend on x alone, with their
/// derivatives, for x = 0..=max_x.
struct ByX {
    value: Vec<f64>,
    d_r: Vec<f64>,
    d_a: Vec<f64>,
    d_b: Vec<f64>,
    /// ln(b + x - 1), for x >= 1.
    ln_bx1: Vec<f64>,
}

impl ByX {
    fn new(r: f64, a: f64, b: f64, max_x: u32) -> Self {
        let n = max_x as usize + 1;
        let mut t = ByX {
            value: Vec::with_capacity(n),
            d_r: Vec::with_capacity(n),
            d_a: Vec::with_capacity(n),
            d_b: Vec::with_capacity(n),
            ln_bx1: Vec::with_capacity(n),
        };
        let (lg_r, lg_ab, lg_b) = (ln_gamma(r), ln_gamma(a + b), ln_gamma(b));
        let (psi_r, psi_ab, psi_b) = (digamma(r), digamma(a + b), digamma(b));
        for x in 0..n {
            let x = x as f64;
            t.value.push(
                ln_gamma(r + x) - lg_r + lg_ab + ln_gamma(b + x) - lg_b - ln_gamma(a + b + x),
            );
            t.d_r.push(digamma(r + x) - psi_r);
            let psi_abx = digamma(a + b + x);
            t.d_a.push(psi_ab - psi_abx);
            t.d_b.push(psi_ab + digamma(b + x) - psi_b - psi_abx);
            t.ln_bx1.push((b + x - 1.0).ln());
        }
        t
    }
}

impl Likelihood for BgNbdLikelihood<'_> {
    fn names(&self) -> &'static [&'static str] {
        &["r", "alpha", "a", "b"]
    }

    fn count(&self) -> usize {
        self.customers.len()
    }

    fn value_and_gradient(&self, p: &[f64]) -> (f64, Vec<f64>) {
        let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
        let by_x = ByX::new(r, a, b, self.max_x);
        let ln_a = a.ln();
        let c = self.customers;
        let [ll, g_r, g_alpha, g_a, g_b] = chunked_sum(c.len(), |range| {
            let mut s = [0.0; 5];
            for i in range {
                let x = c.x[i] as usize;
                let xf = x as f64;
                let (l_t, inv_t) = ((alpha + c.t[i]).ln(), 1.0 / (alpha + c.t[i]));
                let a3 = -(r + xf) * l_t;
                // ln L = by_x + r ln α + ln(e^A3 + [x > 0] e^A4).
                let (log_sum, w4, l_tx, inv_tx) = if x > 0 {
                    let l_tx = (alpha + c.t_x[i]).ln();
                    let a4 = ln_a - by_x.ln_bx1[x] - (r + xf) * l_tx;
                    let (hi, lo) = if a3 > a4 { (a3, a4) } else { (a4, a3) };
                    let e = (lo - hi).exp();
                    let w_hi = 1.0 / (1.0 + e);
                    let w4 = if a4 > a3 { w_hi } else { 1.0 - w_hi };
                    (hi + e.ln_1p(), w4, l_tx, 1.0 / (alpha + c.t_x[i]))
                } else {
                    (a3, 0.0, 0.0, 0.0)
                };
                let w3 = 1.0 - w4;
                s[0] += by_x.value[x] + log_sum;
                s[1] += by_x.d_r[x] - w3 * l_t - w4 * l_tx;
                s[2] -= (r + xf) * (w3 * inv_t + w4 * inv_tx);
                s[3] += by_x.d_a[x] + w4 / a;
                if x > 0 {
                    s[4] -= w4 / (b + xf - 1.0);
                }
                s[4] += by_x.d_b[x];
            }
            s
        });
        let n = c.len() as f64;
        (
            ll + n * r * alpha.ln(),
            vec![g_r + n * alpha.ln(), g_alpha + n * r / alpha, g_a, g_b],
        )
    }
}

/// Fitted BG/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

impl BgNbd {
    pub fn from_params(p: &[f64]) -> Self {
        BgNbd {
            r: p[0],
            alpha: p[1],
            a: p[2],
            b: p[3],
        }
    }

    /// a/(b + x - 1) ((α + T)/(α + t_x))^(r + x) for x > 0, 0 otherwise: the odds of having
    /// dropped out after the last purchase.
    fn dropout_odds(&self, x: f64, t_x: f64, t: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        let Self { r, alpha, a, b } = *self;
        (a.ln() - (b + x - 1.0).ln() + (r + x) * ((alpha + t) / (alpha + t_x)).ln()).exp()
    }
}

impl PurchaseModel for BgNbd {
    fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        1.0 / (1.0 + self.dropout_odds(x, t_x, t))
    }

    fn expected_purchases(&self, horizon: f64, x: f64, t_x: f64, t: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        let Self { r, alpha, a, b } = *self;
        let z = horizon / (alpha + t + horizon);
        let f = hyp2f1(r + x, b + x, a + b + x - 1.0, z);
        let ratio = ((alpha + t) / (alpha + t + horizon)).powf(r + x);
        (a + b + x - 1.0) / (a - 1.0) * (1.0 - ratio * f) / (1.0 + self.dropout_odds(x, t_x, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The FHL example customer and a few others.
    fn customers() -> Customers {
        let mut c = Customers::default();
        for (x, t_x, t) in [
            (2, 30.43, 38.86),
            (0, 0.0, 38.86),
            (7, 29.0, 35.0),
            (1, 2.0, 30.0),
        ] {
            c.push(x, t_x, t);
        }
        c
    }

    #[test]
    fn gradient_matches_differences() {
        let c = customers();
        let lik = BgNbdLikelihood {
            customers: &c,
            max_x: c.max_x(),
        };
        let p = [0.243, 4.414, 0.793, 2.426];
        crate::kernels::customer_value::optimize::assert_gradient(&lik, &p);
    }

    #[test]
    fn the_papers_example_customer() {
        // FHL 2005: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in 39 weeks.
        let m = BgNbd::from_params(&[0.243, 4.414, 0.793, 2.426]);
        let e = m.expected_purchases(39.0, 2.0, 30.43, 38.86);
        assert!((e - 1.226).abs() < 5e-4, "{e}");
        assert_eq!(m.p_alive(0.0, 0.0, 38.86), 1.0);
    }
}
