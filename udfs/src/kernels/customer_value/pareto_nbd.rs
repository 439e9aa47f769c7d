//! The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): while alive a customer buys
//! at a Poisson rate λ ~ Gamma(r, α) and lives an exponential time of rate μ ~ Gamma(s, β).
//!
//! The likelihood (Fader & Hardie 2005, "A note on deriving the Pareto/NBD model") is
//! written here with the Euler transformation of its 2F1 terms, which leaves 2F1(1, b; c; z)
//! with z in [0, 1): with E(t) = (α + t)^-(r+x) (β + t)^-s and c = s / (r + s + x),
//! L = Γ(r+x) α^r β^s / Γ(r) · [E(T) + c (E(t_x) K(t_x) - E(T) K(T))], where for α >= β
//! K(t) = 2F1(1, r+x; r+s+x+1; (α-β)/(α+t)) and for α < β, with z = (β-α)/(β+t),
//! K(t) = (1 - z) 2F1(1, s+1; r+s+x+1; z).

use super::special::{digamma, hyp2f1_unit};
use super::summary::{Customers, chunked_sum};
use super::{Likelihood, PurchaseModel};
use crate::kernels::distributions::ln_gamma;

/// The Pareto/NBD log-likelihood of some customers.
pub struct ParetoNbdLikelihood<'a> {
    pub customers: &'a Customers,
    pub max_x: u32,
}

/// Fitted Pareto/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParetoNbd {
    pub r: f64,
    pub alpha: f64,
    pub s: f64,
    pub beta: f64,
}

/// K(t) and its gradient in (r, α, s, β).
fn k_term(p: &ParetoNbd, x: f64, t: f64) -> (f64, [f64; 4]) {
    let ParetoNbd { r, alpha, s, beta } = *p;
    let c = r + s + x + 1.0;
    if alpha >= beta {
        let z = (alpha - beta) / (alpha + t);
        let [g, g_b, g_c, g_z] = hyp2f1_unit(r + x, c, z);
        let d_alpha = g_z * (beta + t) / ((alpha + t) * (alpha + t));
        let d_beta = -g_z / (alpha + t);
        (g, [g_b + g_c, d_alpha, g_c, d_beta])
    } else {
        let z = (beta - alpha) / (beta + t);
        let [h, h_b, h_c, h_z] = hyp2f1_unit(s + 1.0, c, z);
        let d_z = -h + (1.0 - z) * h_z;
        let d_beta = d_z * (alpha + t) / ((beta + t) * (beta + t));
        let d_alpha = -d_z / (beta + t);
        (
            (1.0 - z) * h,
            [(1.0 - z) * h_c, d_alpha, (1.0 - z) * (h_b + h_c), d_beta],
        )
    }
}

/// ln E(t) and its gradient in (r, α, s, β).
fn ln_e(p: &ParetoNbd, x: f64, t: f64) -> (f64, [f64; 4]) {
    let ParetoNbd { r, alpha, s, beta } = *p;
    let (la, lb) = ((alpha + t).ln(), (beta + t).ln());
    (
        -(r + x) * la - s * lb,
        [-la, -(r + x) / (alpha + t), -lb, -s / (beta + t)],
    )
}

impl ParetoNbd {
    pub fn from_params(p: &[f64]) -> Self {
        ParetoNbd {
            r: p[0],
            alpha: p[1],
            s: p[2],
            beta: p[3],
        }
    }

    /// ln L - (ln Γ(r+x) - ln Γ(r) + r ln α + s ln β), its gradient, and P(alive).
    fn customer(&self, x: f64, t_x: f64, t: f64) -> (f64, [f64; 4], f64) {
        let Self { r, s, .. } = *self;
        let c = s / (r + s + x);
        let c_grad = [
            -s / ((r + s + x) * (r + s + x)),
            0.0,
            (r + x) / ((r + s + x) * (r + s + x)),
            0.0,
        ];
        let (le_tx, ge_tx) = ln_e(self, x, t_x);
        let (le_t, ge_t) = ln_e(self, x, t);
        let (k_tx, gk_tx) = k_term(self, x, t_x);
        let (k_t, gk_t) = k_term(self, x, t);
        // ln L' = ln E(t_x) + ln Q, Q = c K(t_x) + (1 - c K(T)) e^-D, D = ln E(t_x) - ln E(T).
        let d = le_tx - le_t;
        let e_d = (-d).exp();
        let q = c * k_tx + (1.0 - c * k_t) * e_d;
        let mut grad = [0.0; 4];
        for j in 0..4 {
            let g_d = ge_tx[j] - ge_t[j];
            let g_q = c_grad[j] * (k_tx - k_t * e_d) + c * (gk_tx[j] - gk_t[j] * e_d)
                - (1.0 - c * k_t) * e_d * g_d;
            grad[j] = ge_tx[j] + g_q / q;
        }
        (le_tx + q.ln(), grad, e_d / q)
    }
}

impl Likelihood for ParetoNbdLikelihood<'_> {
    fn names(&self) -> &'static [&'static str] {
        &["r", "alpha", "s", "beta"]
    }

    fn count(&self) -> usize {
        self.customers.len()
    }

    fn value_and_gradient(&self, p: &[f64]) -> (f64, Vec<f64>) {
        let m = ParetoNbd::from_params(p);
        let (lg_r, psi_r) = (ln_gamma(m.r), digamma(m.r));
        let by_x: Vec<(f64, f64)> = (0..=self.max_x)
            .map(|x| {
                let x = f64::from(x);
                (ln_gamma(m.r + x) - lg_r, digamma(m.r + x) - psi_r)
            })
            .collect();
        let c = self.customers;
        let [ll, g_r, g_alpha, g_s, g_beta] = chunked_sum(c.len(), |range| {
            let mut sum = [0.0; 5];
            for i in range {
                let x = c.x[i];
                let (value, grad, _) = m.customer(f64::from(x), c.t_x[i], c.t[i]);
                let (lg, d_r) = by_x[x as usize];
                sum[0] += lg + value;
                sum[1] += d_r + grad[0];
                for j in 1..4 {
                    sum[j + 1] += grad[j];
                }
            }
            sum
        });
        let n = c.len() as f64;
        (
            ll + n * (m.r * m.alpha.ln() + m.s * m.beta.ln()),
            vec![
                g_r + n * m.alpha.ln(),
                g_alpha + n * m.r / m.alpha,
                g_s + n * m.beta.ln(),
                g_beta + n * m.s / m.beta,
            ],
        )
    }
}

impl PurchaseModel for ParetoNbd {
    fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        self.customer(x, t_x, t).2
    }

    /// (r + x)(β + T) / ((α + T)(s - 1)) [1 - ((β + T)/(β + T + t))^(s-1)] P(alive), with
    /// its limit (r + x)(β + T)/(α + T) ln((β + T + t)/(β + T)) P(alive) at s = 1.
    fn expected_purchases(&self, horizon: f64, x: f64, t_x: f64, t: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        let Self { r, alpha, s, beta } = *self;
        let log_ratio = ((beta + t + horizon) / (beta + t)).ln();
        // (1 - e^{-(s-1) L}) / (s - 1), which tends to L as s tends to 1.
        let k = s - 1.0;
        let factor = if k.abs() < 1e-8 {
            log_ratio
        } else {
            -(-k * log_ratio).exp_m1() / k
        };
        (r + x) * (beta + t) / (alpha + t) * factor * self.p_alive(x, t_x, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_differences_on_both_sides_of_alpha_equals_beta() {
        let mut c = Customers::default();
        for (x, t_x, t) in [
            (2, 30.43, 38.86),
            (0, 0.0, 38.86),
            (40, 29.0, 35.0),
            (1, 2.0, 300.0),
        ] {
            c.push(x, t_x, t);
        }
        let lik = ParetoNbdLikelihood {
            customers: &c,
            max_x: c.max_x(),
        };
        for p in [[0.55, 10.58, 0.61, 11.67], [0.55, 12.0, 0.61, 3.0]] {
            crate::kernels::customer_value::optimize::assert_gradient(&lik, &p);
        }
    }

    #[test]
    fn alive_is_one_for_a_purchase_just_made_and_expectations_grow_with_horizon() {
        let m = ParetoNbd::from_params(&[0.55, 10.58, 0.61, 11.67]);
        assert!((m.p_alive(3.0, 20.0, 20.0) - 1.0).abs() < 1e-12);
        let short = m.expected_purchases(10.0, 3.0, 15.0, 20.0);
        let long = m.expected_purchases(50.0, 3.0, 15.0, 20.0);
        assert!(0.0 < short && short < long);
    }
}
