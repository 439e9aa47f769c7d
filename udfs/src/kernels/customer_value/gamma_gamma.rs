//! The Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value
//! curves"): a customer's x repeat purchases average m, each a Gamma(p, ν) amount with
//! ν ~ Gamma(q, γ) across customers.

use super::Likelihood;
use super::special::digamma;
use super::summary::chunked_sum;
use crate::kernels::distributions::ln_gamma;

/// Customers with repeat purchases: x and the mean amount m of those purchases (m > 0).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spenders {
    pub x: Vec<u32>,
    pub m: Vec<f64>,
}

/// The Gamma-Gamma log-likelihood of some customers.
pub struct GammaGammaLikelihood<'a>(pub &'a Spenders);

impl Likelihood for GammaGammaLikelihood<'_> {
    fn names(&self) -> &'static [&'static str] {
        &["p", "q", "gamma"]
    }

    fn count(&self) -> usize {
        self.0.x.len()
    }

    /// Per customer: ln Γ(px + q) - ln Γ(px) - ln Γ(q) + q ln γ + (px - 1) ln m + px ln x
    /// - (px + q) ln(xm + γ).
    fn value_and_gradient(&self, params: &[f64]) -> (f64, Vec<f64>) {
        let (p, q, gamma) = (params[0], params[1], params[2]);
        let (lg_q, psi_q, ln_g) = (ln_gamma(q), digamma(q), gamma.ln());
        let s = self.0;
        // The Γ and ψ terms depend on the customer only through x: once per x.
        let max_x = s.x.iter().copied().max().unwrap_or(0);
        let by_x: Vec<[f64; 4]> = (0..=max_x)
            .map(|x| {
                let px = p * f64::from(x);
                [ln_gamma(px + q), ln_gamma(px), digamma(px + q), digamma(px)]
            })
            .collect();
        let [ll, g_p, g_q, g_gamma] = chunked_sum(s.x.len(), |range| {
            let mut sum = [0.0; 4];
            for i in range {
                let (x, m) = (f64::from(s.x[i]), s.m[i]);
                let (px, ln_m, ln_x) = (p * x, m.ln(), x.ln());
                let ln_xm = (x * m + gamma).ln();
                let [lg_pxq, lg_px, psi_pxq, psi_px] = by_x[s.x[i] as usize];
                sum[0] += lg_pxq - lg_px - lg_q + q * ln_g + (px - 1.0) * ln_m + px * ln_x
                    - (px + q) * ln_xm;
                sum[1] += x * (psi_pxq - psi_px + ln_m + ln_x - ln_xm);
                sum[2] += psi_pxq - psi_q + ln_g - ln_xm;
                sum[3] += q / gamma - (px + q) / (x * m + gamma);
            }
            sum
        });
        (ll, vec![g_p, g_q, g_gamma])
    }
}

/// Fitted Gamma-Gamma parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

impl GammaGamma {
    pub fn from_params(v: &[f64]) -> Self {
        GammaGamma {
            p: v[0],
            q: v[1],
            gamma: v[2],
        }
    }

    /// The expected spend per purchase of a customer with x repeat purchases averaging m:
    /// p(γ + xm)/(px + q - 1); the population mean pγ/(q - 1) for x = 0 (NaN m is read as
    /// no purchases).
    pub fn expected_spend(&self, x: f64, m: f64) -> f64 {
        let Self { p, q, gamma } = *self;
        if x <= 0.0 || !m.is_finite() {
            return p * gamma / (q - 1.0);
        }
        p * (gamma + x * m) / (p * x + q - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_differences() {
        let s = Spenders {
            x: vec![1, 2, 6, 30],
            m: vec![12.0, 40.5, 8.2, 22.0],
        };
        let lik = GammaGammaLikelihood(&s);
        let p = [6.25, 3.74, 15.44];
        crate::kernels::customer_value::optimize::assert_gradient(&lik, &p);
    }
}
