//! Small dense Cholesky routines for the normal equations of models with up to a few
//! hundred parameters: the solve is negligible next to the pass over the data.

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `L x = b` for lower-triangular `L` given by rows.
pub(crate) fn forward(l: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let mut x = Vec::with_capacity(b.len());
    for (i, row) in l.iter().enumerate() {
        let s = b[i] - dot(&row[..i], &x);
        x.push(s / row[i]);
    }
    x
}

/// Solves `Lᵀ x = b`.
fn backward(l: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = ((i + 1)..n).map(|k| l[k][i] * x[k]).sum();
        x[i] = (b[i] - s) / l[i][i];
    }
    x
}

/// Solves `L Lᵀ x = b`.
pub(crate) fn solve(l: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    backward(l, &forward(l, b))
}

/// `(L Lᵀ)⁻¹`, column by column.
pub(crate) fn invert(l: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = l.len();
    let columns: Vec<Vec<f64>> = (0..n)
        .map(|j| {
            let e: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i == j))).collect();
            solve(l, &e)
        })
        .collect();
    (0..n)
        .map(|i| (0..n).map(|j| columns[j][i]).collect())
        .collect()
}

/// The Cholesky factor of a symmetric positive definite matrix, or `None` if it is not.
pub(crate) fn cholesky(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let mut l: Vec<Vec<f64>> = Vec::with_capacity(a.len());
    for (j, row) in a.iter().enumerate() {
        let mut lj = forward(&l, &row[..j]);
        let d = row[j] - lj.iter().map(|v| v * v).sum::<f64>();
        if d <= 0.0 {
            return None;
        }
        lj.push(d.sqrt());
        l.push(lj);
    }
    Some(l)
}

pub(crate) fn matmul(a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let m = b.first().map_or(0, Vec::len);
    a.iter()
        .map(|row| {
            (0..m)
                .map(|j| row.iter().zip(b).map(|(x, r)| x * r[j]).sum())
                .collect()
        })
        .collect()
}

/// Picks, in order, the columns of a Gram matrix that are not linear combinations of those
/// picked before (a column is dropped when all but `tol` of its diagonal is explained).
/// Returns the Cholesky factor of the picked submatrix, the picked and the dropped columns.
pub(crate) fn independent_columns(
    candidates: impl IntoIterator<Item = usize>,
    gram: impl Fn(usize, usize) -> f64,
    tol: f64,
) -> (Vec<Vec<f64>>, Vec<usize>, Vec<usize>) {
    let mut chol: Vec<Vec<f64>> = Vec::new();
    let mut kept: Vec<usize> = Vec::new();
    let mut dropped = Vec::new();
    for j in candidates {
        let a: Vec<f64> = kept.iter().map(|&i| gram(i, j)).collect();
        let mut row = forward(&chol, &a);
        let ajj = gram(j, j);
        let residual = ajj - row.iter().map(|v| v * v).sum::<f64>();
        // Written so that a NaN residual also counts as dependent.
        if residual.partial_cmp(&(tol * ajj)) != Some(std::cmp::Ordering::Greater) {
            dropped.push(j);
            continue;
        }
        row.push(residual.sqrt());
        chol.push(row);
        kept.push(j);
    }
    (chol, kept, dropped)
}
