//! Small dense Cholesky routines for the normal equations of models with up to a few
//! hundred parameters: the solve is negligible next to the pass over the data.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, s};

/// Solves `L x = b` for lower-triangular `L` (only its lower triangle is read).
pub(crate) fn forward(l: ArrayView2<f64>, b: ArrayView1<f64>) -> Array1<f64> {
    let mut x = Vec::with_capacity(b.len());
    for (i, row) in l.rows().into_iter().enumerate() {
        let s = b[i] - row.slice(s![..i]).dot(&ArrayView1::from(&x));
        x.push(s / row[i]);
    }
    Array1::from(x)
}

/// Solves `Lᵀ x = b`.
fn backward(l: ArrayView2<f64>, b: ArrayView1<f64>) -> Array1<f64> {
    let n = b.len();
    let mut x = Array1::zeros(n);
    for i in (0..n).rev() {
        let s = l.column(i).slice(s![i + 1..]).dot(&x.slice(s![i + 1..]));
        x[i] = (b[i] - s) / l[[i, i]];
    }
    x
}

/// Solves `L Lᵀ x = b`.
pub(crate) fn solve(l: ArrayView2<f64>, b: ArrayView1<f64>) -> Array1<f64> {
    backward(l, forward(l, b).view())
}

/// `(L Lᵀ)⁻¹`, column by column.
pub(crate) fn invert(l: ArrayView2<f64>) -> Array2<f64> {
    let n = l.nrows();
    let mut inverse = Array2::zeros((n, n));
    for (j, mut column) in inverse.columns_mut().into_iter().enumerate() {
        let e: Array1<f64> = (0..n).map(|i| f64::from(u8::from(i == j))).collect();
        column.assign(&solve(l, e.view()));
    }
    inverse
}

/// The Cholesky factor of a symmetric positive definite matrix, or `None` if it is not.
/// Only the lower triangle of `a` is read.
pub(crate) fn cholesky(a: ArrayView2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let mut l = Array2::zeros((n, n));
    for (j, row) in a.rows().into_iter().enumerate() {
        let lj = forward(l.slice(s![..j, ..j]), row.slice(s![..j]));
        let d = row[j] - lj.iter().map(|v| v * v).sum::<f64>();
        if d <= 0.0 {
            return None;
        }
        l.slice_mut(s![j, ..j]).assign(&lj);
        l[[j, j]] = d.sqrt();
    }
    Some(l)
}

/// Solves `A x = b` in place for a small symmetric positive definite `A` (`k × k`, row by
/// row; overwritten by its Cholesky factor), without allocating: for systems solved many
/// times over. `b` becomes `x`; false (and both unspecified) if `A` is not positive
/// definite.
pub(crate) fn solve_in_place(a: &mut [f64], b: &mut [f64]) -> bool {
    let k = b.len();
    for j in 0..k {
        for i in j..k {
            let mut v = a[i * k + j];
            for p in 0..j {
                v -= a[i * k + p] * a[j * k + p];
            }
            if i == j {
                if v <= 0.0 || v.is_nan() {
                    return false;
                }
                a[j * k + j] = v.sqrt();
            } else {
                a[i * k + j] = v / a[j * k + j];
            }
        }
    }
    for i in 0..k {
        let s: f64 = (0..i).map(|p| a[i * k + p] * b[p]).sum();
        b[i] = (b[i] - s) / a[i * k + i];
    }
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|p| a[p * k + i] * b[p]).sum();
        b[i] = (b[i] - s) / a[i * k + i];
    }
    true
}

/// Picks, in order, the columns of a Gram matrix that are not linear combinations of those
/// picked before (a column is dropped when all but `tol` of its diagonal is explained).
/// Returns the Cholesky factor of the picked submatrix, the picked and the dropped columns.
pub(crate) fn independent_columns(
    candidates: impl IntoIterator<Item = usize>,
    gram: impl Fn(usize, usize) -> f64,
    tol: f64,
) -> (Array2<f64>, Vec<usize>, Vec<usize>) {
    let candidates: Vec<usize> = candidates.into_iter().collect();
    // The factor of the columns kept so far is the top-left `kept × kept` block.
    let mut chol = Array2::zeros((candidates.len(), candidates.len()));
    let mut kept: Vec<usize> = Vec::new();
    let mut dropped = Vec::new();
    for j in candidates {
        let a: Array1<f64> = kept.iter().map(|&i| gram(i, j)).collect();
        let r = kept.len();
        let row = forward(chol.slice(s![..r, ..r]), a.view());
        let ajj = gram(j, j);
        let residual = ajj - row.iter().map(|v| v * v).sum::<f64>();
        // Written so that a NaN residual also counts as dependent.
        if residual.partial_cmp(&(tol * ajj)) != Some(std::cmp::Ordering::Greater) {
            dropped.push(j);
            continue;
        }
        chol.slice_mut(s![r, ..r]).assign(&row);
        chol[[r, r]] = residual.sqrt();
        kept.push(j);
    }
    let r = kept.len();
    (chol.slice(s![..r, ..r]).to_owned(), kept, dropped)
}
