//! Customers drawn from the BG/NBD process with known parameters, for tests of recovery
//! and for benchmarks.

use rayon::prelude::*;

use super::bg_nbd::BgNbd;
use super::summary::Customers;
use crate::kernels::rng::Rng;

/// A Gamma(shape, 1) draw (Marsaglia & Tsang; shape < 1 by the boost U^(1/shape)).
pub fn gamma(rng: &mut Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u = 1.0 - rng.uniform();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let z = rng.normal();
        let v = (1.0 + c * z).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = 1.0 - rng.uniform();
        if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// `n` customers of the BG/NBD process `m`, each observed for T uniform in [t_min, t_max]
/// time units after a first purchase at 0; the same for a given `seed`.
pub fn bg_nbd_customers(m: &BgNbd, n: usize, (t_min, t_max): (f64, f64), seed: u64) -> Customers {
    let drawn: Vec<(u32, f64, f64)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = Rng::keyed(seed, 24, i as u64);
            let lambda = gamma(&mut rng, m.r) / m.alpha;
            let (ga, gb) = (gamma(&mut rng, m.a), gamma(&mut rng, m.b));
            let p = ga / (ga + gb);
            let t = t_min + (t_max - t_min) * rng.uniform();
            let (mut x, mut t_x, mut now) = (0u32, 0.0, 0.0);
            loop {
                now += -(1.0 - rng.uniform()).ln() / lambda;
                if now > t {
                    break;
                }
                x += 1;
                t_x = now;
                if rng.uniform() < p {
                    break;
                }
            }
            (x, t_x, t)
        })
        .collect();
    let mut c = Customers::default();
    for (x, t_x, t) in drawn {
        c.push(x, t_x, t);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::customer_value::{BgNbdLikelihood, maximise};

    /// A million customers, as the speed goal is stated for (about a second here, debug
    /// build): each parameter within 3 standard errors of the truth (within 1 for this seed).
    #[test]
    fn a_fit_recovers_the_parameters_it_was_drawn_from() {
        let truth = BgNbd::from_params(&[0.243, 4.414, 0.793, 2.426]);
        let customers = bg_nbd_customers(&truth, 1_000_000, (20.0, 52.0), 7);
        let lik = BgNbdLikelihood {
            customers: &customers,
            max_x: customers.max_x(),
        };
        let fit = maximise(&lik, &[1.0; 4], 0.0);
        assert!(fit.converged);
        for ((got, want), se) in fit
            .params
            .iter()
            .zip([truth.r, truth.alpha, truth.a, truth.b])
            .zip(&fit.std_err)
        {
            let se = se.unwrap();
            assert!((got - want).abs() < 3.0 * se, "{got} vs {want} (se {se})");
            // Standard errors of this size of sample are a fraction of a percent, not zero.
            assert!(se > 1e-4 * want && se < 0.05 * want, "se {se}");
        }
    }
}
