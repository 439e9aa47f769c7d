//! A 16-bit copy of points, and a nearest-centre scan on it that proves its answer or says
//! that it cannot.
//!
//! On large data a Lloyd pass of k-means is bound by reading the points: eight bytes per
//! coordinate, each used for one multiply-add per centre. The copy holds each coordinate as
//! a signed 16-bit count of steps from the middle of its column's range, a quarter of the
//! bytes. A point rebuilt from its copy is within [`Quantised::radius`] of the exact point,
//! so by the triangle inequality each of its distances to a centre is within that radius of
//! the exact one; the scan's f32 rounding is bounded as well. A point whose nearest centre
//! wins by more than both is settled, with its exact label and valid bounds on its
//! distances, without reading its f64 row. Near ties are left to the exact scan.
//!
//! The copy is stored in blocks of [`LANES`] points, coordinate-major within a block: one
//! register holds one coordinate of a whole block, each centre's coordinate is broadcast
//! against it, and the distances come out one point per lane, so the scan needs no sums
//! across lanes. With AVX-512 (checked at run time) the kernel uses those registers
//! explicitly; elsewhere plain loops over the lanes, compiled for AVX2 and FMA where the CPU
//! has them.

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::points::Points;
use super::prefetch::prefetch;
use super::row_major;
use super::simd::{Kernel, Simd, dispatch};

/// Points per block.
pub const LANES: usize = 16;
/// Centres per group of the scan: their sums stay in registers.
const GROUP: usize = 8;
/// Steps on each side of the middle of a column's range.
const STEPS: f64 = 32767.0;
/// Blocks per parallel task while the copy is made.
const TASK: usize = 128;

/// The 16-bit copy of a row-major matrix of points.
pub struct Quantised {
    /// Coordinate `d` of point `b * LANES + l` at `(b * dim + d) * LANES + l`; the last block
    /// is padded with zeros.
    codes: Vec<i16>,
    /// The middle of each column's range.
    offsets: Vec<f64>,
    /// What one step is worth in each column.
    steps: Vec<f64>,
    /// `|y|²` of each rebuilt point less the offsets, `y = steps × codes`, in the order of
    /// the points (the last block padded).
    squares: Vec<f32>,
    dim: usize,
    /// How far a point rebuilt from the copy can be from the exact point.
    radius: f64,
}

impl Quantised {
    /// The copy of `points`; `None` if there are none, or a value or a column's range is
    /// not finite.
    pub fn new(points: &Points) -> Option<Self> {
        let (n, dim) = (points.len(), points.dim);
        let ranges = points
            .data
            .par_chunks(TASK * LANES * dim)
            .map(|rows| column_ranges(rows, dim))
            .reduce(
                || Some(vec![(f64::INFINITY, f64::NEG_INFINITY); dim]),
                |a, b| {
                    Some(
                        a?.iter()
                            .zip(b?)
                            .map(|(a, b)| (a.0.min(b.0), a.1.max(b.1)))
                            .collect(),
                    )
                },
            )?;
        let offsets: Vec<f64> = ranges
            .iter()
            .map(|(low, high)| low + (high - low) / 2.0)
            .collect();
        let steps: Vec<f64> = ranges
            .iter()
            .map(|(low, high)| (high - low) / (2.0 * STEPS))
            .collect();
        if n == 0 || !steps.iter().all(|s| s.is_finite()) {
            return None;
        }
        let blocks = n.div_ceil(LANES);
        let mut codes = vec![0i16; blocks * LANES * dim];
        let mut squares = vec![0.0f32; blocks * LANES];
        // Steps per unit: a multiplication per value, not a division.
        let per_unit: Vec<f64> = steps
            .iter()
            .map(|&s| if s == 0.0 { 0.0 } else { 1.0 / s })
            .collect();
        codes
            .par_chunks_mut(TASK * LANES * dim)
            .zip(squares.par_chunks_mut(TASK * LANES))
            .enumerate()
            .for_each(|(t, (task, squares))| {
                for (b, block) in task.chunks_exact_mut(LANES * dim).enumerate() {
                    let first = (t * TASK + b) * LANES;
                    let rows = &points.data[first * dim..n.min(first + LANES) * dim];
                    // Coordinate by coordinate across the block's points: each point's
                    // square sums in its own lane, in the coordinates' order.
                    let mut square = [0.0f64; LANES];
                    for (d, codes) in block.chunks_exact_mut(LANES).enumerate() {
                        for ((code, x), sq) in codes
                            .iter_mut()
                            .zip(rows.iter().skip(d).step_by(dim))
                            .zip(square.iter_mut())
                        {
                            *code = nearest_steps(*x, offsets[d], per_unit[d]);
                            *sq += (f64::from(*code) * steps[d]).powi(2);
                        }
                    }
                    for (out, sq) in squares[b * LANES..].iter_mut().zip(square) {
                        *out = sq as f32;
                    }
                }
            });
        // A rebuilt coordinate, offset + code × step, is within half a step of the exact
        // one: the code is rounded to nearest, and the f64 multiplication by the rounded
        // steps per unit adds some 2⁻³⁶ of a step.
        let radius = 0.501 * steps.iter().map(|s| s.powi(2)).sum::<f64>().sqrt();
        Some(Self {
            codes,
            offsets,
            steps,
            squares,
            dim,
            radius,
        })
    }

    /// The codes of block `b`.
    fn block(&self, b: usize) -> &[i16] {
        &self.codes[b * LANES * self.dim..(b + 1) * LANES * self.dim]
    }

    /// The `|y|²` of block `b`'s points.
    fn squares(&self, b: usize) -> &[f32; LANES] {
        self.squares[b * LANES..(b + 1) * LANES]
            .try_into()
            .expect("a block of squares")
    }
}

/// Each column's lowest and highest value; `None` if a value is not finite.
fn column_ranges(rows: &[f64], dim: usize) -> Option<Vec<(f64, f64)>> {
    let mut ranges = vec![(f64::INFINITY, f64::NEG_INFINITY); dim];
    for row in rows.chunks_exact(dim) {
        for (range, x) in ranges.iter_mut().zip(row) {
            if !x.is_finite() {
                return None;
            }
            *range = (range.0.min(*x), range.1.max(*x));
        }
    }
    Some(ranges)
}

/// The nearest count of steps from `offset` to `x`, `per_unit` steps to a unit (0 for a
/// column of one value).
fn nearest_steps(x: f64, offset: f64, per_unit: f64) -> i16 {
    // Half away from zero, then truncated: `round` is a library call on x86-64.
    let steps = ((x - offset) * per_unit).clamp(-STEPS, STEPS);
    (steps + 0.5f64.copysign(steps)) as i16
}

/// Centres laid out for [`Screen::scan`], with the copy they are scanned against.
pub struct Screen<'a> {
    copy: &'a Quantised,
    /// The centres less the column offsets, times the steps, in f32, by groups: coordinate
    /// `d` of centre `g * GROUP + c` at `[g * dim + d][c]`; zeros past the last centre. A
    /// code times one of these is a coordinate of `y` times one of `c`.
    centres: Vec<[f32; GROUP]>,
    /// `|c|²` of those centres by groups; infinite for the padding, so it never wins.
    norms: Vec<[f32; GROUP]>,
    /// The largest `|c|`.
    reach: f64,
    /// The copy's radius plus how far rounding to f32 moved any centre.
    radius: f64,
    /// How far the scan's `|y|² + |c|² - 2 y·c` can round from `|y - c|²`, relative to
    /// `(|y| + |c|)²`: rounding `|y|²`, `|c|²` and the scaled centres to f32, a chain of `dim`
    /// multiply-adds and the last one err by at most `dim + 3` units of 2⁻²⁴ of
    /// `Σ|yᵢcᵢ| ≤ |y||c|` (Cauchy–Schwarz) and of `|y|²` and `|c|²`; doubled for slack, and
    /// so that it holds without FMA as well.
    rounding: f64,
}

/// A block's scan: per point, its nearest centre by the scan, an upper bound on the exact
/// distance to that centre and a lower bound on the exact distance to every other. The
/// nearest is proven where `upper < lower`.
pub struct Found {
    pub centre: [u32; LANES],
    pub upper: [f64; LANES],
    pub lower: [f64; LANES],
}

impl<'a> Screen<'a> {
    /// The screen of the `k × dim` `centres`, one per row, against `copy`.
    pub fn new(copy: &'a Quantised, centres: ArrayView2<f64>) -> Self {
        let dim = copy.dim;
        assert_eq!(centres.ncols(), dim, "centres of the copy's width");
        let groups = centres.nrows().div_ceil(GROUP);
        let mut shifted = vec![[0.0f32; GROUP]; groups * dim];
        let mut norms = vec![[f32::INFINITY; GROUP]; groups];
        let mut reach = 0.0f64;
        for (j, c) in row_major(centres).chunks_exact(dim).enumerate() {
            let (g, lane) = (j / GROUP, j % GROUP);
            let mut norm = 0.0;
            for (d, ((x, offset), step)) in c.iter().zip(&copy.offsets).zip(&copy.steps).enumerate()
            {
                shifted[g * dim + d][lane] = ((x - offset) * step) as f32;
                norm += (x - offset).powi(2);
            }
            norms[g][lane] = norm as f32;
            reach = reach.max(norm.sqrt());
        }
        Self {
            copy,
            centres: shifted,
            norms,
            reach,
            // The centre the scan's products stand for is within 2⁻²⁴ of itself of the
            // exact one per coordinate (plus 2⁻⁵² from the f64 arithmetic).
            radius: copy.radius + f64::from(f32::EPSILON) * reach,
            rounding: 2.0 * (dim as f64 + 4.0) * 2f64.powi(-24),
        }
    }

    /// How many points of a block must need a scan for screening the whole block to pay.
    /// The screen reads a block's codes in one sweep and scans them in f32, sixteen to a
    /// register; an exact scan reads a point's f64 row from a scattered place and scans it
    /// four to a register. So with one group of centres the screen pays for one point, and
    /// with more about for as many points as groups, up to a quarter of the block.
    pub fn worth_from(&self) -> usize {
        self.norms.len().min(LANES / 4)
    }

    /// Asks the cache for block `b`, if there is one, ahead of its scan: waiting for the
    /// hardware's own prefetching leaves the scan bound by memory latency.
    pub fn prefetch(&self, b: usize) {
        if b < self.copy.squares.len() / LANES {
            prefetch(self.copy.block(b));
            prefetch(self.copy.squares(b));
        }
    }

    /// The scan of block `b` of the copy; `values` is room for its codes in f32.
    pub fn scan(&self, b: usize, values: &mut [[f32; LANES]]) -> Found {
        assert_eq!(values.len(), self.copy.dim, "room for a block");
        dispatch(Scan {
            screen: self,
            b,
            values,
        })
    }

    /// The scan on plain arrays, for CPUs without AVX-512.
    #[inline(always)]
    fn scan_with<M: Simd>(&self, b: usize, values: &mut [[f32; LANES]]) -> Found {
        let dim = self.copy.dim;
        // Whole arrays, so the conversion is compiled as vector instructions wherever the
        // scan is inlined: over slices it was left scalar in some builds.
        let (blocks, _) = self.copy.block(b).as_chunks::<LANES>();
        for (value, codes) in values.iter_mut().zip(blocks) {
            *value = codes.map(f32::from);
        }
        let mut best = [f32::INFINITY; LANES];
        let mut second = [f32::INFINITY; LANES];
        let mut which = [0u32; LANES];
        for (g, (centres, norms)) in self.centres.chunks_exact(dim).zip(&self.norms).enumerate() {
            for c in 0..GROUP {
                let mut sums = [0.0f32; LANES];
                for (value, coordinate) in values.iter().zip(centres) {
                    for l in 0..LANES {
                        sums[l] = M::mul_add_f32(value[l], coordinate[c], sums[l]);
                    }
                }
                for l in 0..LANES {
                    let v = M::mul_add_f32(-2.0, sums[l], norms[c]);
                    // As x86's max and min: a NaN never becomes the best.
                    let beaten = if v > best[l] { v } else { best[l] };
                    second[l] = if second[l] < beaten {
                        second[l]
                    } else {
                        beaten
                    };
                    which[l] = if v < best[l] {
                        (g * GROUP + c) as u32
                    } else {
                        which[l]
                    };
                    best[l] = if v < best[l] { v } else { best[l] };
                }
            }
        }
        self.bounds(which, best, second, *self.copy.squares(b))
    }

    /// The scan's answer from each point's nearest centre, the best and second best
    /// `|c|² - 2 y·c` and `|y|²`.
    #[inline(always)]
    fn bounds(
        &self,
        which: [u32; LANES],
        best: [f32; LANES],
        second: [f32; LANES],
        squares: [f32; LANES],
    ) -> Found {
        let mut found = Found {
            centre: which,
            upper: [0.0; LANES],
            lower: [0.0; LANES],
        };
        for l in 0..LANES {
            let square = f64::from(squares[l]);
            let slack = self.rounding * (square.sqrt() + self.reach).powi(2);
            let near = (f64::from(best[l]) + square + slack).sqrt() + self.radius;
            let far = (f64::from(second[l]) + square - slack).max(0.0).sqrt() - self.radius;
            // Outward by more than the f64 rounding of these few operations.
            found.upper[l] = near * (1.0 + 4.0 * f64::EPSILON);
            found.lower[l] = far * (1.0 - 4.0 * f64::EPSILON);
        }
        found
    }
}

/// [`Screen::scan`]'s body, for every SIMD level.
struct Scan<'a, 'b> {
    screen: &'a Screen<'b>,
    b: usize,
    values: &'a mut [[f32; LANES]],
}

impl Kernel for Scan<'_, '_> {
    type Output = Found;

    #[inline(always)]
    fn run<S: Simd>(self) -> Found {
        let Self { screen, b, values } = self;
        #[cfg(target_arch = "x86_64")]
        if S::LEVEL.avx512() {
            debug_assert_eq!(values.len(), screen.copy.dim);
            // SAFETY: code runs at this level only on a CPU with AVX-512F (see `simd`);
            // `Screen::scan`, the only caller, asserts that `values` holds a row per
            // coordinate.
            return unsafe { avx512::scan(screen, b, values) };
        }
        screen.scan_with::<S>(b, values)
    }
}

/// The scan in AVX-512 registers: one coordinate of a block's points per register, the
/// sums of a group of centres in [`GROUP`] more.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Found, GROUP, LANES, Screen};

    /// [`Screen::scan`] with AVX-512.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and `values` must hold a row per coordinate.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn scan(screen: &Screen, b: usize, values: &mut [[f32; LANES]]) -> Found {
        let codes = screen.copy.block(b);
        let dim = screen.copy.dim;
        let mut best = _mm512_set1_ps(f32::INFINITY);
        let mut second = best;
        let mut which = _mm512_setzero_si512();
        let minus_two = _mm512_set1_ps(-2.0);
        for (g, (centres, norms)) in screen
            .centres
            .chunks_exact(dim)
            .zip(&screen.norms)
            .enumerate()
        {
            let mut acc = [_mm512_setzero_ps(); GROUP];
            if g == 0 {
                // The first group converts the codes, and keeps them for the others.
                for ((value, codes), coordinate) in values
                    .iter_mut()
                    .zip(codes.chunks_exact(LANES))
                    .zip(centres)
                {
                    // SAFETY: `codes` holds LANES i16 (256 bits) and `value` LANES f32.
                    let v = unsafe {
                        let q = _mm256_loadu_si256(codes.as_ptr().cast());
                        let v = _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(q));
                        _mm512_storeu_ps(value.as_mut_ptr(), v);
                        v
                    };
                    add(&mut acc, v, coordinate);
                }
            } else {
                for (value, coordinate) in values.iter().zip(centres) {
                    // SAFETY: `value` holds LANES f32.
                    add(
                        &mut acc,
                        unsafe { _mm512_loadu_ps(value.as_ptr()) },
                        coordinate,
                    );
                }
            }
            for c in 0..GROUP {
                let v = _mm512_fmadd_ps(minus_two, acc[c], _mm512_set1_ps(norms[c]));
                second = _mm512_min_ps(second, _mm512_max_ps(v, best));
                let closer = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, best);
                best = _mm512_mask_blend_ps(closer, best, v);
                let index = _mm512_set1_epi32((g * GROUP + c) as i32);
                which = _mm512_mask_blend_epi32(closer, which, index);
            }
        }
        let mut lanes = ([0u32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
        // SAFETY: each array holds LANES 32-bit values.
        unsafe {
            _mm512_storeu_si512(lanes.0.as_mut_ptr().cast(), which);
            _mm512_storeu_ps(lanes.1.as_mut_ptr(), best);
            _mm512_storeu_ps(lanes.2.as_mut_ptr(), second);
        }
        screen.bounds(lanes.0, lanes.1, lanes.2, *screen.copy.squares(b))
    }

    /// Adds one coordinate `v` of a block's points times that of each centre of a group.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn add(acc: &mut [__m512; GROUP], v: __m512, coordinate: &[f32; GROUP]) {
        for c in 0..GROUP {
            acc[c] = _mm512_fmadd_ps(v, _mm512_set1_ps(coordinate[c]), acc[c]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::rng::Rng;
    use crate::kernels::simd;
    use crate::kernels::vector::{dot, sq_dist};

    fn rebuilt(copy: &Quantised, i: usize) -> Vec<f64> {
        let block = copy.block(i / LANES);
        (0..copy.dim)
            .map(|d| copy.offsets[d] + f64::from(block[d * LANES + i % LANES]) * copy.steps[d])
            .collect()
    }

    /// Points around `scale`-sized centres far from the origin, with a constant column.
    fn case(rng: &mut Rng, n: usize, dim: usize, scale: f64) -> Vec<f64> {
        (0..n * dim)
            .map(|i| match i % dim {
                0 if dim > 1 => 7.0,
                d => 1e3 * d as f64 + scale * rng.normal(),
            })
            .collect()
    }

    #[test]
    fn rebuilt_points_are_within_the_radius() {
        let mut rng = Rng::keyed(8, 8, 8);
        for (n, dim, scale) in [(1, 1, 1.0), (37, 3, 1e-6), (100, 32, 5.0), (20, 5, 1e9)] {
            let data = case(&mut rng, n, dim, scale);
            let points = Points::new(&data, dim);
            let copy = Quantised::new(&points).unwrap();
            assert_eq!(copy.codes.len(), n.div_ceil(LANES) * LANES * dim);
            for i in 0..n {
                let block = copy.block(i / LANES);
                let y: Vec<f64> = (0..dim)
                    .map(|d| f64::from(block[d * LANES + i % LANES]) * copy.steps[d])
                    .collect();
                let square = f64::from(copy.squares[i]);
                assert!((square - dot(&y, &y)).abs() <= 1e-7 * square);
                let error = sq_dist(points.row(i), &rebuilt(&copy, i)).sqrt();
                assert!(error <= copy.radius, "{error} > {}", copy.radius);
            }
        }
        let data = [1.0, f64::NAN, 2.0, 3.0];
        assert!(Quantised::new(&Points::new(&data, 2)).is_none());
        let data = [-1e308, 1e308];
        assert!(Quantised::new(&Points::new(&data, 1)).is_none());
    }

    /// Checks every kernel's bounds on `data` against exact distances, and that points are
    /// settled only with their exact nearest; returns the fewest any kernel settled.
    fn check(data: &[f64], dim: usize, centres: &[f64]) -> usize {
        let points = Points::new(data, dim);
        let copy = Quantised::new(&points).unwrap();
        let matrix = ArrayView2::from_shape((centres.len() / dim, dim), centres).unwrap();
        let screen = Screen::new(&copy, matrix);
        let mut values = vec![[0.0; LANES]; dim];
        let mut fewest = usize::MAX;
        for level in simd::levels() {
            let mut settled = 0;
            for i in 0..points.len() {
                let (screen, b, values) = (&screen, i / LANES, &mut values[..]);
                let found = simd::dispatch_at(level, Scan { screen, b, values });
                let l = i % LANES;
                let exact: Vec<f64> = centres
                    .chunks_exact(dim)
                    .map(|c| sq_dist(points.row(i), c).sqrt())
                    .collect();
                let j = found.centre[l] as usize;
                assert!(
                    found.upper[l] >= exact[j],
                    "{} < {}",
                    found.upper[l],
                    exact[j]
                );
                for (o, e) in exact.iter().enumerate() {
                    assert!(o == j || found.lower[l] <= *e, "{} > {e}", found.lower[l]);
                }
                if found.upper[l] < found.lower[l] {
                    settled += 1;
                    assert!(
                        exact
                            .iter()
                            .enumerate()
                            .all(|(o, e)| o == j || e > &exact[j])
                    );
                }
            }
            fewest = fewest.min(settled);
        }
        fewest
    }

    #[test]
    fn settled_points_have_their_nearest_and_bounds_hold() {
        let mut rng = Rng::keyed(3, 1, 4);
        for (k, dim, scale) in [
            (1, 2, 1.0),
            (3, 1, 1.0),
            (8, 32, 2.0),
            (13, 5, 1e-4),
            (20, 9, 1e6),
        ] {
            let n = 200;
            let data = case(&mut rng, n, dim, scale);
            let centres: Vec<f64> = (0..k)
                .flat_map(|j| data[j * 7 * dim..(j * 7 + 1) * dim].to_vec())
                .collect();
            let settled = check(&data, dim, &centres);
            assert!(
                settled > n * 9 / 10,
                "k = {k}, dim = {dim}: {settled} settled"
            );
        }
    }

    #[test]
    fn ties_and_huge_values_are_left_to_the_exact_scan() {
        // Points halfway between two centres, and points the f32 squares overflow.
        let centres = [0.0, 0.0, 2.0, 2.0];
        let data = [1.0, 1.0, 1.0, 1.0 + 1e-9, 2.0, 0.0];
        assert_eq!(check(&data, 2, &centres), 0);
        let data = [1e30, 1e30, 3e30, -1e30];
        let centres = [1e30, 1e30, 3e30, 2e30];
        assert_eq!(check(&data, 2, &centres), 0);
    }
}
