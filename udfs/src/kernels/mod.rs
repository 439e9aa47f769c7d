//! Numerical kernels. They take slices and `ndarray` views (dense matrices are `ndarray`
//! arrays) and know nothing of SQL, so they can be tested against reference libraries
//! directly and reused by any front end.

use std::borrow::Cow;

use ndarray::{ArrayView2, Axis};

pub mod als;
pub mod auc;
mod cholesky;
pub mod cluster_quality;
pub mod coordinate_descent;
pub mod customer_value;
pub mod distributions;
pub mod ets;
mod exp;
pub mod fold;
pub mod gram;
pub mod interrupt;
pub mod kmeans;
mod lanes;
pub mod linear;
pub mod logistic;
pub mod moments;
pub mod nearest;
pub mod nelder_mead;
pub mod points;
pub(crate) mod prefetch;
pub mod progress;
mod quantised;
pub mod rng;
pub mod simd;
pub mod top_k;
pub mod trees;
pub mod vector;

/// A matrix's values row by row, for hot loops over plain slices: borrowed when it is in
/// standard (row-major) layout, as every matrix the kernels build is, copied otherwise.
pub fn row_major<A: Copy>(m: ArrayView2<'_, A>) -> Cow<'_, [A]> {
    match m.to_slice() {
        Some(values) => Cow::Borrowed(values),
        None => Cow::Owned(m.iter().copied().collect()),
    }
}

/// Row `i` of a matrix in standard (row-major) layout, as every matrix the kernels build
/// is, for the kernels on slices; it panics on any other layout.
pub fn row<A>(m: ArrayView2<'_, A>, i: usize) -> &[A] {
    m.index_axis_move(Axis(0), i)
        .to_slice()
        .expect("a matrix in standard layout")
}

/// `values` cut into consecutive slices of the given lengths (which sum to at most its
/// length), for parallel writers.
pub fn split_lengths<T>(
    mut values: &mut [T],
    lengths: impl IntoIterator<Item = usize>,
) -> Vec<&mut [T]> {
    lengths
        .into_iter()
        .map(|len| {
            let (head, tail) = std::mem::take(&mut values).split_at_mut(len);
            values = tail;
            head
        })
        .collect()
}
