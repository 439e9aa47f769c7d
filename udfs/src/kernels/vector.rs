//! Dot products and squared distances of f64 vectors, the primitives every kernel and model
//! shares. On x86-64 with AVX2 and FMA they use those registers explicitly, eight values a
//! step in two independent sums.

use super::simd::{Kernel, Simd, dispatch};

/// `a · b` over the shorter of the two.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    dispatch(Dot(a, b))
}

/// Squared Euclidean distance over the shorter of the two.
pub fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    dispatch(SqDist(a, b))
}

struct Dot<'a>(&'a [f64], &'a [f64]);

impl Kernel for Dot<'_> {
    type Output = f64;

    #[inline(always)]
    fn run<S: Simd>(self) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if S::LEVEL.avx2_fma() {
            // SAFETY: code runs at these levels only on a CPU with AVX2 and FMA (see `simd`).
            return unsafe { avx2::dot(self.0, self.1) };
        }
        dot_with::<S>(self.0, self.1)
    }
}

struct SqDist<'a>(&'a [f64], &'a [f64]);

impl Kernel for SqDist<'_> {
    type Output = f64;

    #[inline(always)]
    fn run<S: Simd>(self) -> f64 {
        sq_dist_in::<S>(self.0, self.1)
    }
}

/// `a · b` for kernels that take many short products inside their own body at level `S`.
#[inline(always)]
pub(super) fn dot_with<S: Simd>(a: &[f64], b: &[f64]) -> f64 {
    // Subtracting 0 is exact, and the compiler drops it.
    dot_about::<S>(a, 0.0, b)
}

/// Independent partial sums of [`dot_about`]: two AVX-512 registers, or four AVX2 ones, so
/// that the multiply-adds do not wait on each other (with four, a piece of a logistic pass
/// spent as long on its gradient's products as on reading its rows).
const DOT_LANES: usize = 16;

/// `(a - shift) · b` with [`DOT_LANES`] independent partial sums: a product about a
/// column's mean without a shifted copy of it.
#[inline(always)]
pub(super) fn dot_about<S: Simd>(a: &[f64], shift: f64, b: &[f64]) -> f64 {
    let (a_full, a_rest) = a.as_chunks::<DOT_LANES>();
    let (b_full, b_rest) = b.as_chunks::<DOT_LANES>();
    let mut acc = [0.0; DOT_LANES];
    for (x, y) in a_full.iter().zip(b_full) {
        for l in 0..DOT_LANES {
            acc[l] = S::mul_add(x[l] - shift, y[l], acc[l]);
        }
    }
    // Halves added pairwise, as the registers would be.
    let mut width = DOT_LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    let mut sum = acc[0];
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum = S::mul_add(*x - shift, *y, sum);
    }
    sum
}

/// The largest of `a` (0 when it is empty or every value is below 0), four lanes at a
/// time so that it vectorises inside a kernel body.
#[inline(always)]
pub(super) fn largest(a: &[f64]) -> f64 {
    reduce(a, |m, x| if x > m { x } else { m })
}

/// `a` folded by `f` from 0 in four independent lanes, which are then folded together.
#[inline(always)]
fn reduce(a: &[f64], f: impl Fn(f64, f64) -> f64) -> f64 {
    let (a4, rest) = a.as_chunks::<4>();
    let mut acc = [0.0; 4];
    for x in a4 {
        for l in 0..4 {
            acc[l] = f(acc[l], x[l]);
        }
    }
    rest.iter()
        .fold(f(f(acc[0], acc[2]), f(acc[1], acc[3])), |m, &v| f(m, v))
}

/// [`sq_dist`] inside a kernel body at level `S`.
#[inline(always)]
pub(super) fn sq_dist_in<S: Simd>(a: &[f64], b: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if S::LEVEL.avx2_fma() {
        // SAFETY: code runs at these levels only on a CPU with AVX2 and FMA (see `simd`).
        return unsafe { avx2::sq_dist(a, b) };
    }
    // Four independent partial sums, so the loop vectorises.
    let (a4, a_rest) = a.as_chunks::<4>();
    let (b4, b_rest) = b.as_chunks::<4>();
    let mut acc = [0.0; 4];
    for (x, y) in a4.iter().zip(b4) {
        for l in 0..4 {
            let d = x[l] - y[l];
            acc[l] = S::mul_add(d, d, acc[l]);
        }
    }
    let mut sum = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for (x, y) in a_rest.iter().zip(b_rest) {
        let d = x - y;
        sum = S::mul_add(d, d, sum);
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// The sum of the four lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn lanes(v: __m256d) -> f64 {
        let halves = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        _mm_cvtsd_f64(_mm_add_sd(halves, _mm_unpackhi_pd(halves, halves)))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len().min(b.len());
        let (mut acc0, mut acc1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n, the length of both slices.
            let (d0, d1) = unsafe {
                (
                    _mm256_sub_pd(
                        _mm256_loadu_pd(a.as_ptr().add(i)),
                        _mm256_loadu_pd(b.as_ptr().add(i)),
                    ),
                    _mm256_sub_pd(
                        _mm256_loadu_pd(a.as_ptr().add(i + 4)),
                        _mm256_loadu_pd(b.as_ptr().add(i + 4)),
                    ),
                )
            };
            acc0 = _mm256_fmadd_pd(d0, d0, acc0);
            acc1 = _mm256_fmadd_pd(d1, d1, acc1);
            i += 8;
        }
        let mut sum = lanes(_mm256_add_pd(acc0, acc1));
        while i < n {
            let d = a[i] - b[i];
            sum = d.mul_add(d, sum);
            i += 1;
        }
        sum
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len().min(b.len());
        let (mut acc0, mut acc1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n, the length of both slices.
            unsafe {
                acc0 = _mm256_fmadd_pd(
                    _mm256_loadu_pd(a.as_ptr().add(i)),
                    _mm256_loadu_pd(b.as_ptr().add(i)),
                    acc0,
                );
                acc1 = _mm256_fmadd_pd(
                    _mm256_loadu_pd(a.as_ptr().add(i + 4)),
                    _mm256_loadu_pd(b.as_ptr().add(i + 4)),
                    acc1,
                );
            }
            i += 8;
        }
        let mut sum = lanes(_mm256_add_pd(acc0, acc1));
        while i < n {
            sum = a[i].mul_add(b[i], sum);
            i += 1;
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::{self, Plain};

    #[test]
    fn every_level_agrees_with_plain_arithmetic() {
        for n in [0, 1, 3, 4, 7, 8, 9, 33] {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
            let (d, s) = (dot_with::<Plain>(&a, &b), sq_dist_in::<Plain>(&a, &b));
            for level in simd::levels() {
                let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * (1.0 + y.abs());
                assert!(close(simd::dispatch_at(level, Dot(&a, &b)), d), "{level:?}");
                assert!(
                    close(simd::dispatch_at(level, SqDist(&a, &b)), s),
                    "{level:?}"
                );
            }
        }
    }
}
