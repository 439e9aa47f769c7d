//! The nearest centre of points: of many points at once through a table of the centres, and
//! of one point, or every distance, directly.
//!
//! The nearest-centre scan is Lloyd's inner loop, so it is laid out like a matrix product:
//! the centres are transposed (one row of `k` values per coordinate) and a tile of
//! [`POINTS`] points meets [`BLOCK`] centres at a time, each point's coordinate broadcast
//! against eight centres' values. Every value loaded feeds several multiply-adds, the sums
//! stay in registers, and the distances come out one centre per lane, so finding the
//! nearest needs no sums across lanes. On x86-64 with AVX2 and FMA (chosen by [`super::simd`])
//! the kernels use those registers explicitly; the compiler's own vectorisation of the
//! plain versions leaves them several times slower than the FMA units allow.

use ndarray::ArrayView2;

use super::row_major;
use super::simd::{Kernel, Simd, dispatch};
use super::vector::{dot, sq_dist_in};

/// Points per tile of the nearest-centre scan.
pub const POINTS: usize = 6;
/// Centres per block of the scan: two AVX2 registers of f64.
const BLOCK: usize = 8;

/// Centres laid out for [`CentreTable::nearest`].
pub struct CentreTable {
    /// `dim` rows of `width` values: coordinate `d` of centre `j` at `d * width + j`.
    coords: Vec<f64>,
    /// `|c|²` per centre; infinite for the padding centres, so they never win.
    norms: Vec<f64>,
    /// The number of centres rounded up to a whole block.
    width: usize,
    dim: usize,
}

/// A point's nearest centre by the scan: its index and `|c|² - 2 x·c` (the squared
/// distance less `|x|²`) for the nearest and the second nearest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest {
    pub centre: usize,
    pub first: f64,
    pub second: f64,
}

impl CentreTable {
    /// The table of the `k × dim` `centres`, one per row.
    pub fn new(centres: ArrayView2<f64>) -> Self {
        let (k, dim) = centres.dim();
        let width = k.div_ceil(BLOCK) * BLOCK;
        let mut coords = vec![0.0; dim * width];
        let mut norms = vec![f64::INFINITY; width];
        for (j, c) in row_major(centres).chunks_exact(dim).enumerate() {
            for (d, v) in c.iter().enumerate() {
                coords[d * width + j] = *v;
            }
            norms[j] = dot(c, c);
        }
        Self {
            coords,
            norms,
            width,
            dim,
        }
    }

    /// The blocks of centres a scan goes through.
    pub fn blocks(&self) -> usize {
        self.width / BLOCK
    }

    /// The largest `|c|²` of the centres.
    pub fn largest_norm(&self) -> f64 {
        self.norms
            .iter()
            .filter(|n| n.is_finite())
            .fold(0.0, |a, &b| a.max(b))
    }

    /// The nearest centre of each of `rows` (each `dim` long); among equals the first.
    pub fn nearest(&self, rows: [&[f64]; POINTS]) -> [Nearest; POINTS] {
        assert!(
            rows.iter().all(|r| r.len() == self.dim),
            "rows of dim values"
        );
        dispatch(Scan { table: self, rows })
    }

    /// The scan of [`Lanes`], on plain arrays.
    fn lanes(&self, rows: [&[f64]; POINTS]) -> Lanes {
        let mut lanes = Lanes::default();
        for start in (0..self.width).step_by(BLOCK) {
            let mut acc = [[0.0; BLOCK]; POINTS];
            for (d, c) in self.coords.chunks_exact(self.width).enumerate() {
                let c = &c[start..start + BLOCK];
                for (sums, row) in acc.iter_mut().zip(&rows) {
                    for (a, cl) in sums.iter_mut().zip(c) {
                        *a += row[d] * cl;
                    }
                }
            }
            for (p, sums) in acc.iter().enumerate() {
                for (l, a) in sums.iter().enumerate() {
                    let v = self.norms[start + l] - 2.0 * a;
                    lanes.second[p][l] = lanes.second[p][l].min(v.max(lanes.best[p][l]));
                    if v < lanes.best[p][l] {
                        lanes.best[p][l] = v;
                        lanes.which[p][l] = (start + l) as f64;
                    }
                }
            }
        }
        lanes
    }
}

/// [`CentreTable::nearest`]'s body, for every SIMD level.
struct Scan<'a> {
    table: &'a CentreTable,
    rows: [&'a [f64]; POINTS],
}

impl Kernel for Scan<'_> {
    type Output = [Nearest; POINTS];

    #[inline(always)]
    fn run<S: Simd>(self) -> [Nearest; POINTS] {
        #[cfg(target_arch = "x86_64")]
        if S::LEVEL.avx2_fma() {
            debug_assert!(self.rows.iter().all(|r| r.len() == self.table.dim));
            // SAFETY: code runs at these levels only on a CPU with AVX2 and FMA (see
            // `simd`); `nearest` checked that every row is `dim` long.
            return unsafe { avx2::scan(self.table, self.rows) };
        }
        self.table.lanes(self.rows).merge()
    }
}

/// The scan's state: lane `l` of point `p` has seen centres `l, l + BLOCK, ...` and holds
/// the best and second best `|c|² - 2 x·c` among them and the best's index (as f64, exact,
/// so choosing it vectorises with the values).
struct Lanes {
    best: [[f64; BLOCK]; POINTS],
    second: [[f64; BLOCK]; POINTS],
    which: [[f64; BLOCK]; POINTS],
}

impl Default for Lanes {
    fn default() -> Self {
        Self {
            best: [[f64::INFINITY; BLOCK]; POINTS],
            second: [[f64::INFINITY; BLOCK]; POINTS],
            which: [[0.0; BLOCK]; POINTS],
        }
    }
}

impl Lanes {
    /// Each point's nearest over all lanes, the lower index among equals. Branch-free: the
    /// overall second best is the second smallest of the lanes' bests or a lane's second.
    fn merge(&self) -> [Nearest; POINTS] {
        std::array::from_fn(|p| {
            let (mut first, mut next) = (f64::INFINITY, f64::INFINITY);
            for (b, s) in self.best[p].iter().zip(&self.second[p]) {
                next = next.min(b.max(first)).min(*s);
                first = first.min(*b);
            }
            let centre = self.best[p]
                .iter()
                .zip(&self.which[p])
                .map(|(b, w)| if *b == first { *w } else { f64::INFINITY })
                .fold(f64::INFINITY, f64::min);
            Nearest {
                // Coordinates whose squares overflow leave every value infinite or NaN:
                // then the first centre.
                centre: if centre.is_finite() {
                    centre as usize
                } else {
                    0
                },
                first,
                second: next,
            }
        })
    }
}

/// The nearest centre of `x`, its squared distance and the squared distance to the second
/// nearest (infinite with one centre). `centres` are a centre matrix's values row by row,
/// as [`super::row_major`] gives them once for the many points scored against it.
pub fn nearest_two(x: &[f64], centres: &[f64]) -> (usize, f64, f64) {
    dispatch(NearestTwo { x, centres })
}

struct NearestTwo<'a> {
    x: &'a [f64],
    centres: &'a [f64],
}

impl Kernel for NearestTwo<'_> {
    type Output = (usize, f64, f64);

    #[inline(always)]
    fn run<S: Simd>(self) -> (usize, f64, f64) {
        let (mut best, mut d1, mut d2) = (0, f64::INFINITY, f64::INFINITY);
        for (j, c) in self.centres.chunks_exact(self.x.len()).enumerate() {
            let d = sq_dist_in::<S>(self.x, c);
            if d < d1 {
                (best, d2, d1) = (j, d1, d);
            } else if d < d2 {
                d2 = d;
            }
        }
        (best, d1, d2)
    }
}

/// Calls `f(r, t, d)` with the squared distance `d` of each row `r` of the row-major `rows`
/// to each of `targets`, the kernel chosen once for all of them.
pub(super) fn each_distance(
    rows: &[f64],
    dim: usize,
    targets: &[&[f64]],
    mut f: impl FnMut(usize, usize, f64),
) {
    dispatch(EachDistance {
        rows,
        dim,
        targets,
        f: &mut f,
    });
}

struct EachDistance<'a, F> {
    rows: &'a [f64],
    dim: usize,
    targets: &'a [&'a [f64]],
    f: &'a mut F,
}

impl<F: FnMut(usize, usize, f64)> Kernel for EachDistance<'_, F> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self) {
        for (r, x) in self.rows.chunks_exact(self.dim).enumerate() {
            for (t, target) in self.targets.iter().enumerate() {
                (self.f)(r, t, sq_dist_in::<S>(x, target));
            }
        }
    }
}

/// The kernels with explicit AVX2 registers.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, CentreTable, Nearest, POINTS};

    /// [`CentreTable::lanes`] with each block of eight centres in two registers and the
    /// `POINTS × 2` sums in twelve more.
    ///
    /// # Safety
    /// Every row must be `table.dim` long.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn scan(table: &CentreTable, rows: [&[f64]; POINTS]) -> [Nearest; POINTS] {
        let infinity = _mm256_set1_pd(f64::INFINITY);
        let minus_two = _mm256_set1_pd(-2.0);
        let mut best = [[infinity; 2]; POINTS];
        let mut second = [[infinity; 2]; POINTS];
        let mut which = [[_mm256_setzero_pd(); 2]; POINTS];
        let x = rows.map(|r| r.as_ptr());
        for start in (0..table.width).step_by(BLOCK) {
            let mut acc = [[_mm256_setzero_pd(); 2]; POINTS];
            for d in 0..table.dim {
                // SAFETY: `start + BLOCK <= width`, so both loads stay in row `d` of the
                // table; `d < dim`, the length of every row.
                unsafe {
                    let c = table.coords.as_ptr().add(d * table.width + start);
                    let (c0, c1) = (_mm256_loadu_pd(c), _mm256_loadu_pd(c.add(4)));
                    for p in 0..POINTS {
                        let v = _mm256_broadcast_sd(&*x[p].add(d));
                        acc[p][0] = _mm256_fmadd_pd(v, c0, acc[p][0]);
                        acc[p][1] = _mm256_fmadd_pd(v, c1, acc[p][1]);
                    }
                }
            }
            for h in 0..2 {
                let from = start + 4 * h;
                // SAFETY: `from + 4 <= width`, the length of `norms`.
                let norms = unsafe { _mm256_loadu_pd(table.norms.as_ptr().add(from)) };
                let index = _mm256_set_pd(
                    (from + 3) as f64,
                    (from + 2) as f64,
                    (from + 1) as f64,
                    from as f64,
                );
                for p in 0..POINTS {
                    let v = _mm256_fmadd_pd(minus_two, acc[p][h], norms);
                    let closer = _mm256_cmp_pd::<_CMP_LT_OQ>(v, best[p][h]);
                    second[p][h] = _mm256_min_pd(second[p][h], _mm256_max_pd(v, best[p][h]));
                    best[p][h] = _mm256_blendv_pd(best[p][h], v, closer);
                    which[p][h] = _mm256_blendv_pd(which[p][h], index, closer);
                }
            }
        }
        std::array::from_fn(|p| {
            // The two halves, then the two 128-bit halves, then neighbouring lanes: each
            // step leaves the better of a pair in both.
            let mut v = pick(
                (best[p][0], second[p][0], which[p][0]),
                (best[p][1], second[p][1], which[p][1]),
            );
            v = pick(
                v,
                (
                    _mm256_permute2f128_pd::<1>(v.0, v.0),
                    _mm256_permute2f128_pd::<1>(v.1, v.1),
                    _mm256_permute2f128_pd::<1>(v.2, v.2),
                ),
            );
            v = pick(
                v,
                (
                    _mm256_permute_pd::<0b0101>(v.0),
                    _mm256_permute_pd::<0b0101>(v.1),
                    _mm256_permute_pd::<0b0101>(v.2),
                ),
            );
            Nearest {
                centre: _mm256_cvtsd_f64(v.2) as usize,
                first: _mm256_cvtsd_f64(v.0),
                second: _mm256_cvtsd_f64(v.1),
            }
        })
    }

    /// Lane by lane, the better of two (best, second, index) states: the lower best, the
    /// lower index among equal bests, and the second smallest of the four values.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn pick(
        a: (__m256d, __m256d, __m256d),
        b: (__m256d, __m256d, __m256d),
    ) -> (__m256d, __m256d, __m256d) {
        let lower = _mm256_cmp_pd::<_CMP_LT_OQ>(b.0, a.0);
        let tie = _mm256_and_pd(
            _mm256_cmp_pd::<_CMP_EQ_OQ>(b.0, a.0),
            _mm256_cmp_pd::<_CMP_LT_OQ>(b.2, a.2),
        );
        let take = _mm256_or_pd(lower, tie);
        (
            _mm256_blendv_pd(a.0, b.0, take),
            _mm256_min_pd(_mm256_min_pd(a.1, b.1), _mm256_max_pd(a.0, b.0)),
            _mm256_blendv_pd(a.2, b.2, take),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::rng::Rng;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + b.abs())
    }

    #[test]
    fn table_scan_agrees_with_direct_distances() {
        let mut rng = Rng::keyed(4, 4, 4);
        for k in [1, 3, 8, 13, 64] {
            for dim in [1, 3, 32] {
                let centres = ndarray::Array2::from_shape_simple_fn((k, dim), || rng.normal());
                let points: Vec<f64> = (0..POINTS * dim).map(|_| rng.normal()).collect();
                let table = CentreTable::new(centres.view());
                let rows = std::array::from_fn(|p| &points[p * dim..(p + 1) * dim]);
                // The dispatched kernel and the plain one.
                let found = [table.nearest(rows), table.lanes(rows).merge()];
                for (x, near) in rows.iter().cycle().zip(found.as_flattened()) {
                    let (j, d1, d2) = nearest_two(x, centres.as_slice().unwrap());
                    let xx = dot(x, x);
                    assert_eq!(near.centre, j, "k = {k}, dim = {dim}");
                    assert!(close(near.first + xx, d1), "{} vs {d1}", near.first + xx);
                    assert!(
                        close(near.second + xx, d2) || (k == 1 && near.second.is_infinite()),
                        "{} vs {d2}",
                        near.second + xx
                    );
                }
            }
        }
    }

    #[test]
    fn equal_centres_go_to_the_first() {
        let (a, b) = ([1.0, 2.0], [5.0, 5.0]);
        let centres = ndarray::arr2(&[b, a, b, a, a, b, b, b, b, a]);
        let table = CentreTable::new(centres.view());
        let rows = [&a[..]; POINTS];
        let found = [table.nearest(rows), table.lanes(rows).merge()];
        assert!(
            found
                .as_flattened()
                .iter()
                .all(|n| n.centre == 1 && n.second == n.first)
        );
    }
}
