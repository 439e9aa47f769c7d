//! The special functions of the customer-value likelihoods: digamma and the Gauss
//! hypergeometric function 2F1 on [0, 1), by its series. (`ln Γ` is
//! [`crate::kernels::distributions::ln_gamma`].)

/// Relative size below which a series term no longer changes the sum.
const TINY: f64 = 1e-17;
/// Terms a series may take: enough for z = 0.9999 with slowly decaying coefficients.
const MAX_TERMS: usize = 2_000_000;

/// The digamma function ψ(x) = d ln Γ(x) / dx for x > 0: the recurrence up to x >= 20, then
/// the asymptotic series (error below 1e-17 there).
pub fn digamma(x: f64) -> f64 {
    let mut x = x;
    let mut shift = 0.0;
    while x < 20.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv2 = 1.0 / (x * x);
    let tail = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0)))));
    shift + x.ln() - 0.5 / x - tail
}

/// Gauss's hypergeometric function 2F1(a, b; c; z) for 0 <= z < 1 and a, b, c > 0, by its
/// power series (every term positive, so nothing cancels). NaN outside that domain.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    if !(0.0..1.0).contains(&z) || a <= 0.0 || b <= 0.0 || c <= 0.0 {
        return f64::NAN;
    }
    let (mut term, mut sum) = (1.0, 1.0);
    for k in 0..MAX_TERMS {
        let k = k as f64;
        let ratio = (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        term *= ratio;
        sum += term;
        if ratio < 1.0 && term <= TINY * sum {
            return sum;
        }
    }
    f64::NAN
}

/// 2F1(1, b; c; z) for 0 <= z < 1 and b, c > 0, with its derivatives in b, c and z: the
/// hypergeometric factor of the Pareto/NBD likelihood, whose gradient needs all three.
/// Its terms are t_k = z^k Π_{j<k} (b + j) / (c + j), so ∂t_k/∂b = t_k Σ_{j<k} 1/(b + j),
/// ∂t_k/∂c = -t_k Σ_{j<k} 1/(c + j) and ∂t_k/∂z = k t_k / z.
pub fn hyp2f1_unit(b: f64, c: f64, z: f64) -> [f64; 4] {
    if !(0.0..1.0).contains(&z) || b <= 0.0 || c <= 0.0 {
        return [f64::NAN; 4];
    }
    let (mut term, mut sum, mut d_b, mut d_c, mut d_z) = (1.0, 1.0, 0.0, 0.0, 0.0);
    let (mut sum_b, mut sum_c) = (0.0, 0.0);
    for k in 0..MAX_TERMS {
        let kf = k as f64;
        // The next term before its factor z, so that ∂/∂z needs no division by z.
        let unscaled = term * (b + kf) / (c + kf);
        sum_b += 1.0 / (b + kf);
        sum_c += 1.0 / (c + kf);
        d_z += (kf + 1.0) * unscaled;
        term = unscaled * z;
        sum += term;
        d_b += term * sum_b;
        d_c -= term * sum_c;
        if (b + kf) * z < c + kf && term * (kf + 2.0) * (1.0 + sum_b) <= TINY * sum {
            return [sum, d_b, d_c, d_z];
        }
    }
    [f64::NAN; 4]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::distributions::ln_gamma;

    fn close(got: f64, want: f64, rel: f64) {
        assert!(
            (got - want).abs() <= rel * want.abs().max(1e-300),
            "got {got}, want {want}"
        );
    }

    #[test]
    fn digamma_matches_known_values() {
        // ψ(1) = -γ, ψ(1/2) = -γ - 2 ln 2, ψ(x + 1) = ψ(x) + 1/x.
        let euler = 0.577_215_664_901_532_9;
        close(digamma(1.0), -euler, 1e-14);
        close(digamma(0.5), -euler - 2.0 * 2f64.ln(), 1e-14);
        close(digamma(0.243) + 1.0 / 0.243, digamma(1.243), 1e-14);
        // Against the derivative of ln Γ.
        for x in [0.05, 0.8, 3.3, 47.0, 1e4] {
            let h = 1e-5 * x;
            let numeric = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            close(digamma(x), numeric, 1e-7);
        }
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        // 2F1(1, 1; 2; z) = -ln(1 - z) / z; 2F1(a, b; b; z) = (1 - z)^-a.
        for z in [0.0f64, 0.1, 0.5, 0.9, 0.999] {
            let want = if z == 0.0 { 1.0 } else { -(1.0 - z).ln() / z };
            close(hyp2f1(1.0, 1.0, 2.0, z), want, 1e-13);
            close(hyp2f1_unit(1.0, 2.0, z)[0], want, 1e-13);
            close(hyp2f1(2.5, 0.7, 0.7, z), (1.0 - z).powf(-2.5), 1e-12);
        }
    }

    #[test]
    fn hyp2f1_unit_derivatives_match_differences() {
        for (b, c, z) in [(0.55, 2.1, 0.3), (40.0, 41.7, 0.95), (1.6, 200.0, 0.99)] {
            let [_, d_b, d_c, d_z] = hyp2f1_unit(b, c, z);
            let h = 1e-6;
            let diff = |f: &dyn Fn(f64) -> f64, x: f64| (f(x + h) - f(x - h)) / (2.0 * h);
            // Differences of a value near 1 with step 1e-6 hold about 1e-10.
            let near = |got: f64, want: f64| {
                assert!(
                    (got - want).abs() < 1e-6 * want.abs() + 1e-9,
                    "{got} vs {want}"
                )
            };
            near(d_b, diff(&|b| hyp2f1_unit(b, c, z)[0], b));
            near(d_c, diff(&|c| hyp2f1_unit(b, c, z)[0], c));
            near(d_z, diff(&|z| hyp2f1_unit(b, c, z)[0], z));
            // And the general series agrees.
            close(hyp2f1_unit(b, c, z)[0], hyp2f1(1.0, b, c, z), 1e-13);
        }
    }
}
