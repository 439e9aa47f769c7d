//! The special functions of the customer-value likelihoods: digamma and the Gauss
//! hypergeometric function 2F1 on [0, 1), by its series (2F1(1, b; c; z) continued from 1 - z
//! near z = 1). (`ln Γ` is
//! [`crate::kernels::distributions::ln_gamma`].)

use crate::kernels::distributions::ln_gamma;

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
/// ∂t_k/∂c = -t_k Σ_{j<k} 1/(c + j) and ∂t_k/∂z = k t_k / z. Within [`NEAR_ONE`] of z = 1,
/// where the series needs some 40 / (1 - z) terms (an optimiser driving one rate to zero
/// makes 1 - z as small as it likes), the function is continued from 1 - z instead.
pub fn hyp2f1_unit(b: f64, c: f64, z: f64) -> [f64; 4] {
    if !(0.0..1.0).contains(&z) || b <= 0.0 || c <= 0.0 {
        return [f64::NAN; 4];
    }
    if 1.0 - z < NEAR_ONE && c > b {
        return unit_near_one(b, c, z);
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

/// Distance from z = 1 below which [`hyp2f1_unit`] continues from 1 - z: its series would
/// need more than some 800 terms, the continuation needs a few dozen.
const NEAR_ONE: f64 = 0.05;

/// [`hyp2f1_unit`] near z = 1 (for c > b), derivatives by five-point differences of
/// [`unit_continued`], which is analytic in b, c and z and cheap to evaluate.
fn unit_near_one(b: f64, c: f64, z: f64) -> [f64; 4] {
    let w = 1.0 - z;
    let d_b = five_point(|b| unit_continued(b, c, w), b, 1e-3 * b.min(c - b).min(1.0));
    let d_c = five_point(|c| unit_continued(b, c, w), c, 1e-3 * (c - b).min(1.0));
    let d_w = five_point(|w| unit_continued(b, c, w), w, 1e-3 * w);
    [unit_continued(b, c, w), d_b, d_c, -d_w]
}

/// f'(x) from f at x ± h and x ± 2h (error of order h⁴).
fn five_point(f: impl Fn(f64) -> f64, x: f64, h: f64) -> f64 {
    (8.0 * (f(x + h) - f(x - h)) - (f(x + 2.0 * h) - f(x - 2.0 * h))) / (12.0 * h)
}

/// 2F1(1, b; c; 1 - w) for small w > 0 and c > b > 0, by Abramowitz & Stegun 15.3.6 with
/// a = 1: with m = c - 1 - b (> -1),
/// F = (c - 1)/m · 2F1(1, b; 1 - m; w) + Γ(c) Γ(-m) / Γ(b) · w^m (1 - w)^(1 - c).
/// Near a whole m >= 0 the two terms grow without bound and cancel (their sum is about
/// -ln w at m = 0), so within half a step of one F is interpolated from four points a step
/// or two either side in c. The step balances rounding, about ε / (step · |ln w|), against
/// the interpolation's error, about (step · |ln w|)⁴ / 30: both near 1e-13 relative.
fn unit_continued(b: f64, c: f64, w: f64) -> f64 {
    let m = c - 1.0 - b;
    let step = 1.5e-3 / w.ln().abs().max(1.0);
    if m > -0.5 && (m - m.round()).abs() < step / 2.0 {
        let at = |t: f64| unit_continued_off_pole(b, c + t * step, w);
        return (4.0 * (at(-1.0) + at(1.0)) - (at(-2.0) + at(2.0))) / 6.0;
    }
    unit_continued_off_pole(b, c, w)
}

/// 15.3.6 for m = c - 1 - b away from the whole numbers >= 0.
fn unit_continued_off_pole(b: f64, c: f64, w: f64) -> f64 {
    use std::f64::consts::PI;
    let m = c - 1.0 - b;
    // 2F1(1, b; 1 - m; w): terms change sign while 1 - m + k < 0 and shrink once k > m.
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    for k in 0..MAX_TERMS {
        let kf = k as f64;
        term *= (b + kf) / (1.0 - m + kf) * w;
        sum += term;
        if kf > m && term.abs() <= TINY * sum.abs() {
            break;
        }
    }
    // ln |Γ(-m)| and its sign: by reflection for m > 0, where -m is negative.
    let (ln_gamma_minus_m, sign) = if m < 0.0 {
        (ln_gamma(-m), 1.0)
    } else {
        let sine = (PI * m).sin();
        ((PI / sine.abs()).ln() - ln_gamma(1.0 + m), -sine.signum())
    };
    let ln_second =
        ln_gamma(c) + ln_gamma_minus_m - ln_gamma(b) + m * w.ln() + (1.0 - c) * (-w).ln_1p();
    (c - 1.0) / m * sum + sign * ln_second.exp()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            // (Within 0.05 of 1 the function is continued from 1 - z: 1e-12 there.)
            close(hyp2f1_unit(1.0, 2.0, z)[0], want, 1e-11);
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
    #[test]
    fn hyp2f1_unit_near_one_continues_the_series() {
        // Where the series still converges, the continuation agrees with it, whole
        // m = c - 1 - b (cancelling poles) and m in (-1, 0) included.
        for (b, c) in [
            (0.55, 2.1),
            (1.5, 2.5),
            (0.7, 3.7),
            (0.3, 1.2996),
            (3.2, 4.0),
            (2.0, 2.4),
            (40.0, 41.7),
        ] {
            for z in [0.951, 0.99, 0.999] {
                let [f, d_b, d_c, d_z] = hyp2f1_unit(b, c, z);
                close(f, hyp2f1(1.0, b, c, z), 1e-10);
                let h = 1e-6;
                let near = |got: f64, want: f64| {
                    assert!(
                        (got - want).abs() < 1e-6 * want.abs() + 1e-8,
                        "b {b} c {c} z {z}: {got} vs {want}"
                    )
                };
                near(
                    d_b,
                    (hyp2f1(1.0, b + h, c, z) - hyp2f1(1.0, b - h, c, z)) / (2.0 * h),
                );
                near(
                    d_c,
                    (hyp2f1(1.0, b, c + h, z) - hyp2f1(1.0, b, c - h, z)) / (2.0 * h),
                );
                let hz = 1e-6 * (1.0 - z);
                near(
                    d_z,
                    (hyp2f1(1.0, b, c, z + hz) - hyp2f1(1.0, b, c, z - hz)) / (2.0 * hz),
                );
            }
        }
        // Far nearer 1 than the series could go: 2F1(1, 1; 2; z) = -ln(1 - z) / z and
        // 2F1(1, 1/2; 3/2; z) = atanh(√z) / √z, with ∂/∂z of the first.
        for distance in [1e-3, 1e-6, 1e-9, 1e-13] {
            let z: f64 = 1.0 - distance;
            let w = 1.0 - z;
            let [f, _, _, d_z] = hyp2f1_unit(1.0, 2.0, z);
            close(f, -w.ln() / z, 1e-10);
            close(d_z, 1.0 / (w * z) + w.ln() / (z * z), 1e-7);
            // atanh(√z) = ln((1 + √z)² / w) / 2, without the rounding of 1 - √z.
            let atanh = ((1.0 + z.sqrt()).powi(2) / w).ln() / 2.0;
            close(hyp2f1_unit(0.5, 1.5, z)[0], atanh / z.sqrt(), 1e-10);
        }
    }
}
