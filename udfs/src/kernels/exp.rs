//! The exponential without branches or library calls, so that a loop over a slice that
//! calls it vectorises (the C library's `exp` is one call per value).

use super::simd::Simd;

/// Arguments are clamped to this range: below it `eˣ` is subnormal or 0, above it infinite.
const LOWEST: f64 = -708.0;
const HIGHEST: f64 = 709.0;
/// 1.5 · 2⁵²: adding it rounds a double of magnitude below 2⁵¹ to an integer, which its low
/// bits then hold.
const ROUND: f64 = 6_755_399_441_055_744.0;
/// ln 2 in two parts, the first with trailing zero bits so that `n · LN2_HI` is exact for
/// every `n` the clamp allows (Cody and Waite's reduction).
const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// 1 / k! for k = 13 down to 2: Taylor's series, whose fourteenth term is below 1e-17 of
/// the sum on |r| ≤ ln 2 / 2.
const TAYLOR: [f64; 12] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
];

/// `eˣ` within about 2 units in the last place of `x.exp()`, for `x` in [-708, 709]
/// (outside, the value at the nearer end): `x = n ln 2 + r` with |r| ≤ ln 2 / 2, `eʳ` by
/// its series and `2ⁿ` written into the exponent bits.
#[inline(always)]
pub(super) fn exp<S: Simd>(x: f64) -> f64 {
    let x = x.clamp(LOWEST, HIGHEST);
    let shifted = S::mul_add(x, std::f64::consts::LOG2_E, ROUND);
    let n = shifted - ROUND;
    let r = S::mul_add(-n, LN2_LO, S::mul_add(-n, LN2_HI, x));
    let mut p = TAYLOR[0];
    for c in &TAYLOR[1..] {
        p = S::mul_add(p, r, *c);
    }
    let e_r = S::mul_add(S::mul_add(p, r, 1.0), r, 1.0);
    // The integer n sits in the low bits of `shifted`; 2ⁿ is n + 1023 in the exponent.
    let two_n = f64::from_bits(
        (shifted.to_bits().wrapping_sub(ROUND.to_bits()))
            .wrapping_add(1023)
            .wrapping_shl(52),
    );
    e_r * two_n
}

#[cfg(test)]
mod tests {
    use super::super::simd::{Kernel, dispatch_at, levels};
    use super::*;

    struct Exps<'a>(&'a [f64]);

    impl Kernel for Exps<'_> {
        type Output = Vec<f64>;
        #[inline(always)]
        fn run<S: Simd>(self) -> Vec<f64> {
            self.0.iter().map(|&x| exp::<S>(x)).collect()
        }
    }

    #[test]
    fn agrees_with_the_library_to_two_units_in_the_last_place() {
        let xs: Vec<f64> = (0..200_001)
            .map(|i| -708.0 + 1417.0 * i as f64 / 200_000.0)
            .chain([0.0, -0.0, 1e-300, -1e-17, 0.5 * std::f64::consts::LN_2])
            .collect();
        for level in levels() {
            for (x, e) in xs.iter().zip(dispatch_at(level, Exps(&xs))) {
                let want = x.exp();
                assert!(
                    (e - want).abs() <= 2.0 * f64::EPSILON * want,
                    "{level:?}: exp({x}) = {e}, library {want}"
                );
            }
        }
    }

    #[test]
    fn clamps_outside_its_range() {
        for level in levels() {
            let got = dispatch_at(level, Exps(&[-1e6, f64::NEG_INFINITY, 1e6]));
            assert_eq!(got[0], got[1]);
            assert!((got[0] - (-708f64).exp()).abs() <= 2.0 * f64::EPSILON * got[0]);
            assert!(got[2].is_finite() && got[2] > 8e307);
        }
    }
}
