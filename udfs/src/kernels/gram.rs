//! Cross-product (Gram) matrices of columns: `Σ_r w_r (x_ri - s_i)(x_rj - s_j)`.
//!
//! The sums behind least squares and every Newton step of logistic regression. Rows go in
//! tiles small enough for the L1/L2 cache; each tile is copied once, shifted, into a
//! zero-padded scratch, and a register-blocked kernel multiplies 3 × 4 columns at a time, so
//! each value loaded feeds several multiply-adds instead of one. The scratch has `NR - 1`
//! columns of zeros after the last, so the blocks at the matrix's edge run the same kernel
//! (a product at a time there took about as long as all the full blocks together). On
//! x86-64 with AVX2 and FMA the same code is compiled with fused multiply-adds and an
//! explicit register block ([`super::simd`] chooses).

use ndarray::ArrayViewMut2;

use super::prefetch::prefetch_share;
use super::simd::{Kernel, Simd, dispatch};

/// Rows per tile; a multiple of [`LANES`].
const TILE: usize = 256;
/// Independent partial sums per product, one SIMD register of f64 with AVX2.
const LANES: usize = 4;
/// Columns per register block: `MR × NR` accumulators stay in registers.
const MR: usize = 3;
const NR: usize = 4;
/// Zero columns after the last, so that every block is a full one.
const PAD: usize = NR - 1;

/// Adds the shifted, weighted cross-products of `columns` (equal lengths) to the `k × k`
/// matrix `out`, which must be in standard (row-major) layout, as `Array2::zeros` makes it
/// (it panics otherwise).
/// Only the upper triangle (`j ≥ i`) is written; call [`mirror`] once at the end. `shift`
/// (one per column) is subtracted before multiplying; `weight` scales each row's
/// contribution. Returns each column's unweighted sum of its shifted values, `Σ_r (x_ri -
/// s_i)`, taken from the same read.
pub fn accumulate(
    columns: &[&[f64]],
    shift: &[f64],
    weight: Option<&[f64]>,
    mut out: ArrayViewMut2<f64>,
) -> Vec<f64> {
    let k = columns.len();
    assert_eq!(shift.len(), k, "one shift per column");
    assert_eq!(out.dim(), (k, k), "a k × k output");
    let out = out.as_slice_mut().expect("the output in standard layout");
    dispatch(Accumulate {
        columns,
        shift,
        weight,
        out,
    })
}

/// [`accumulate`]'s body, for every SIMD level.
struct Accumulate<'a> {
    columns: &'a [&'a [f64]],
    shift: &'a [f64],
    weight: Option<&'a [f64]>,
    out: &'a mut [f64],
}

impl Kernel for Accumulate<'_> {
    type Output = Vec<f64>;

    #[inline(always)]
    fn run<S: Simd>(self) -> Vec<f64> {
        accumulate_with::<S>(self.columns, self.shift, self.weight, self.out)
    }
}

/// Copies the upper triangle of the square matrix `m` onto the lower one.
pub fn mirror(mut m: ArrayViewMut2<f64>) {
    let k = m.nrows();
    assert_eq!(m.ncols(), k, "a square matrix");
    // Through the values, as `accumulate` wrote them.
    let m = m.as_slice_mut().expect("the matrix in standard layout");
    for i in 0..k {
        for j in i + 1..k {
            m[j * k + i] = m[i * k + j];
        }
    }
}

/// A full `MR × NR` block: with explicit AVX2 registers where the level has them (the
/// compiler's own vectorisation of the generic block shuffles lanes and spills
/// accumulators).
#[inline(always)]
fn full_block<S: Simd>(a: [&[f64; TILE]; MR], b: [&[f64; TILE]; NR]) -> [[f64; NR]; MR] {
    #[cfg(target_arch = "x86_64")]
    if S::LEVEL.avx2_fma() {
        // SAFETY: code runs at these levels only on a CPU with AVX2 and FMA (see `simd`).
        return unsafe { avx2::block(a, b) };
    }
    block::<S, MR, NR>(a, b)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{LANES, MR, NR, TILE};

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn block(a: [&[f64; TILE]; MR], b: [&[f64; TILE]; NR]) -> [[f64; NR]; MR] {
        let mut acc = [[_mm256_setzero_pd(); NR]; MR];
        for r in (0..TILE).step_by(LANES) {
            // SAFETY: r + LANES <= TILE, the length of every column.
            let x: [__m256d; MR] =
                std::array::from_fn(|i| unsafe { _mm256_loadu_pd(a[i].as_ptr().add(r)) });
            for (j, column) in b.iter().enumerate() {
                // SAFETY: as above.
                let y = unsafe { _mm256_loadu_pd(column.as_ptr().add(r)) };
                for i in 0..MR {
                    acc[i][j] = _mm256_fmadd_pd(x[i], y, acc[i][j]);
                }
            }
        }
        acc.map(|row| {
            row.map(|v| {
                let mut lanes = [0.0; LANES];
                // SAFETY: `lanes` holds four f64.
                unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), v) };
                (lanes[0] + lanes[2]) + (lanes[1] + lanes[3])
            })
        })
    }
}

#[inline(always)]
fn accumulate_with<F: Simd>(
    columns: &[&[f64]],
    shift: &[f64],
    weight: Option<&[f64]>,
    out: &mut [f64],
) -> Vec<f64> {
    let k = columns.len();
    let rows = columns.first().map_or(0, |c| c.len());
    let mut sums = vec![0.0; k];
    // left[i] = w·(x_i - s_i), right[i] = x_i - s_i, each padded with zeros to TILE rows,
    // and PAD columns of zeros after the last for the edge blocks to read.
    let width = (k + PAD) * TILE;
    let mut right = vec![0.0; width];
    let mut left = weight.map(|_| vec![0.0; width]);
    let mut next: Vec<&[f64]> = Vec::with_capacity(k);
    let mut start = 0;
    while start < rows {
        let len = TILE.min(rows - start);
        for (i, column) in columns.iter().enumerate() {
            let dst = &mut right[i * TILE..i * TILE + len];
            for (d, x) in dst.iter_mut().zip(&column[start..start + len]) {
                *d = x - shift[i];
            }
            // A short last tile leaves stale values behind its end: clear them.
            right[i * TILE + len..(i + 1) * TILE].fill(0.0);
            sums[i] += lane_sum(col(&right, i));
        }
        if let (Some(left), Some(w)) = (left.as_mut(), weight) {
            let w = &w[start..start + len];
            for i in 0..k {
                let (l, r) = (&mut left[i * TILE..(i + 1) * TILE], &right[i * TILE..]);
                for ((l, r), w) in l.iter_mut().zip(r).zip(w) {
                    *l = w * r;
                }
                left[i * TILE + len..(i + 1) * TILE].fill(0.0);
            }
        }
        let end = rows.min(start + len + TILE);
        next.clear();
        next.extend(columns.iter().map(|c| &c[start + len..end]));
        tile::<F>(left.as_deref().unwrap_or(&right), &right, k, &next, out);
        start += len;
    }
    sums
}

/// The sum of a tile's column with `LANES` partial sums, while it is in the L1 cache.
#[inline(always)]
fn lane_sum(x: &[f64; TILE]) -> f64 {
    let mut acc = [0.0; LANES];
    for c in x.chunks_exact(LANES) {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3])
}

/// Adds the cross-products of one tile: `out[i][j] += Σ_r left[i][r] · right[j][r]`, j ≥ i.
/// `left` and `right` hold `k + PAD` columns, the last `PAD` zero. The rows of `next` (the
/// columns' next tile) are asked of the cache a share per block meanwhile, so they arrive
/// while this tile is multiplied rather than when it is copied.
#[inline(always)]
fn tile<F: Simd>(left: &[f64], right: &[f64], k: usize, next: &[&[f64]], out: &mut [f64]) {
    let blocks = (0..k).step_by(MR).map(|i| (k - i).div_ceil(NR)).sum();
    let mut block = 0;
    for i in (0..k).step_by(MR) {
        // Blocks from the diagonal rightwards; the part of a diagonal block below the
        // diagonal, and of an edge block beyond the last column, is computed and thrown away.
        for j in (i..k).step_by(NR) {
            prefetch_share(next, block, blocks);
            block += 1;
            let sums = full_block::<F>(
                std::array::from_fn(|a| col(left, i + a)),
                std::array::from_fn(|b| col(right, j + b)),
            );
            for (a, row) in sums.iter().enumerate().take(k - i) {
                for (b, v) in row.iter().enumerate().take(k - j) {
                    if j + b >= i + a {
                        out[(i + a) * k + j + b] += v;
                    }
                }
            }
        }
    }
}

/// Column `i` of a tile.
#[inline(always)]
fn col(m: &[f64], i: usize) -> &[f64; TILE] {
    m[i * TILE..(i + 1) * TILE]
        .try_into()
        .expect("tiles are TILE long")
}

/// `M × N` dot products of tile columns with `M·N` vector accumulators.
#[inline(always)]
fn block<F: Simd, const M: usize, const N: usize>(
    a: [&[f64; TILE]; M],
    b: [&[f64; TILE]; N],
) -> [[f64; N]; M] {
    let mut acc = [[[0.0; LANES]; N]; M];
    for r in (0..TILE).step_by(LANES) {
        for (acc_row, x) in acc.iter_mut().zip(&a) {
            for (lanes, y) in acc_row.iter_mut().zip(&b) {
                for l in 0..LANES {
                    lanes[l] = F::mul_add(x[r + l], y[r + l], lanes[l]);
                }
            }
        }
    }
    acc.map(|row| row.map(|lanes| (lanes[0] + lanes[2]) + (lanes[1] + lanes[3])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd;

    fn naive(columns: &[Vec<f64>], shift: &[f64], weight: Option<&[f64]>) -> Vec<f64> {
        let k = columns.len();
        let mut m = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                m[i * k + j] = (0..columns[0].len())
                    .map(|r| {
                        weight.map_or(1.0, |w| w[r])
                            * (columns[i][r] - shift[i])
                            * (columns[j][r] - shift[j])
                    })
                    .sum();
            }
        }
        m
    }

    #[test]
    fn equals_the_naive_sums_for_every_shape() {
        // Widths around the block sizes and lengths around the tile size.
        for k in [1, 2, 3, 5, 8, 9, 12, 13, 33] {
            for rows in [0, 1, 3, TILE - 1, TILE, TILE + 5, 3 * TILE + 7] {
                let columns: Vec<Vec<f64>> = (0..k)
                    .map(|c| {
                        (0..rows)
                            .map(|r| ((r * 7 + c * 13) % 17) as f64 * 0.25 - 1.0 + c as f64)
                            .collect()
                    })
                    .collect();
                let weight: Vec<f64> = (0..rows).map(|r| 0.5 + (r % 3) as f64).collect();
                let shift: Vec<f64> = (0..k).map(|c| c as f64 * 0.5).collect();
                for w in [None, Some(weight.as_slice())] {
                    let slices: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
                    let mut got = ndarray::Array2::zeros((k, k));
                    accumulate(&slices, &shift, w, got.view_mut());
                    mirror(got.view_mut());
                    let want = naive(&columns, &shift, w);
                    for (g, e) in got.iter().zip(&want) {
                        assert!((g - e).abs() <= 1e-9 * (1.0 + e.abs()), "k={k} rows={rows}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_simd_level_agrees() {
        let columns: Vec<Vec<f64>> = (0..6)
            .map(|c| {
                (0..1000)
                    .map(|r| ((r * 31 + c) % 101) as f64 / 7.0)
                    .collect()
            })
            .collect();
        let slices: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        let at = |level| {
            let mut out = vec![0.0; 36];
            let (columns, shift, weight) = (&slices[..], &[0.0; 6][..], None);
            let out_ref = &mut out[..];
            simd::dispatch_at(
                level,
                Accumulate {
                    columns,
                    shift,
                    weight,
                    out: out_ref,
                },
            );
            out
        };
        let plain = at(simd::Level::Plain);
        for level in simd::levels() {
            for (p, b) in plain.iter().zip(&at(level)) {
                assert!((p - b).abs() <= 1e-12 * (1.0 + p.abs()), "{level:?}");
            }
        }
    }
}
