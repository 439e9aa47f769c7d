//! Element-wise arithmetic on fixed-size arrays of `f64`, one lane per element, written as
//! plain loops without branches so that the compiler keeps each array in vector registers.
//! Kernels that step several independent recursions together use them in place of scalar
//! arithmetic; with one lane they are scalar arithmetic.

/// One value per lane.
pub type Lanes<const L: usize> = [f64; L];

/// A lane mask: all bits set in the lanes that are on.
pub type Mask<const L: usize> = [u64; L];

#[inline(always)]
pub fn zip<const L: usize>(a: Lanes<L>, b: Lanes<L>, f: impl Fn(f64, f64) -> f64) -> Lanes<L> {
    let mut out = [0.0; L];
    for i in 0..L {
        out[i] = f(a[i], b[i]);
    }
    out
}

#[inline(always)]
pub fn add<const L: usize>(a: Lanes<L>, b: Lanes<L>) -> Lanes<L> {
    zip(a, b, |x, y| x + y)
}

#[inline(always)]
pub fn sub<const L: usize>(a: Lanes<L>, b: Lanes<L>) -> Lanes<L> {
    zip(a, b, |x, y| x - y)
}

#[inline(always)]
pub fn mul<const L: usize>(a: Lanes<L>, b: Lanes<L>) -> Lanes<L> {
    zip(a, b, |x, y| x * y)
}

#[inline(always)]
pub fn div<const L: usize>(a: Lanes<L>, b: Lanes<L>) -> Lanes<L> {
    zip(a, b, |x, y| x / y)
}

/// `a` in the lanes `mask` has on, `b` in the others; by bits, as a conditional would
/// become a branch.
#[inline(always)]
pub fn select<const L: usize>(mask: Mask<L>, a: Lanes<L>, b: Lanes<L>) -> Lanes<L> {
    let mut out = [0.0; L];
    for i in 0..L {
        out[i] = f64::from_bits((a[i].to_bits() & mask[i]) | (b[i].to_bits() & !mask[i]));
    }
    out
}

/// The mask of the lanes where `on` holds.
#[inline(always)]
pub fn mask<const L: usize>(on: impl Fn(usize) -> bool) -> Mask<L> {
    std::array::from_fn(|i| 0u64.wrapping_sub(u64::from(on(i))))
}

/// The same value in every lane.
#[inline(always)]
pub fn splat<const L: usize>(x: f64) -> Lanes<L> {
    [x; L]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_takes_lanes_by_mask() {
        let on = mask::<4>(|i| i % 2 == 0);
        let picked = select(on, [1.0, 2.0, 3.0, 4.0], [f64::NAN, -2.0, f64::NAN, -4.0]);
        assert_eq!(picked, [1.0, -2.0, 3.0, -4.0]);
        assert_eq!(add(splat(1.5), [1.0, 2.0]), [2.5, 3.5]);
        assert_eq!(div(mul([6.0], [2.0]), sub([5.0], [1.0])), [3.0]);
    }
}
