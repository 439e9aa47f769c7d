//! Matrix factorization by alternating least squares: user and item factor matrices whose
//! products approximate ratings (explicit feedback) or preferences weighted by confidence
//! (implicit feedback).
//!
//! - Explicit (Zhou et al., "Large-scale parallel collaborative filtering for the Netflix
//!   prize", 2008): each user's factors solve `(Σ y yᵀ + λ n_u I) x = Σ r y` over the items
//!   the user rated, weighted-λ regularisation; a Cholesky solve per user.
//! - Implicit (Hu, Koren and Volinsky, "Collaborative filtering for implicit feedback
//!   datasets", 2008): every item counts, preference 1 where the user interacted and 0
//!   elsewhere, with confidence `1 + α r`. The system `(YᵀY + Yᵀ(C_u − I)Y + λI) x = Yᵀ C_u p`
//!   only needs the user's own items besides `YᵀY`, computed once per half-step, and is
//!   solved by a few conjugate-gradient steps from the previous factors (Takács, Pilászy and
//!   Tikk, 2011), as the fastest open implementations do. Like them it iterates in f32
//!   (`YᵀY` summed in f64): the steps read the other side's rows in scattered order, so
//!   half the bytes per row and twice the values per register make an iteration about twice
//!   as fast, and three steps from a warm start are an approximation far coarser than f32
//!   rounding. The factors are returned in f64.
//!
//! Users, then items, are solved in parallel, each row independently of the others, so the
//! result depends on the seed alone. Rows with no interactions get zero factors.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use super::cholesky::{cholesky, solve};
use super::interrupt::interrupted;
use super::prefetch::prefetch;
use super::rng::Rng;
use super::simd::{Kernel, Simd, dispatch};
use super::top_k::{Items, best_products};
use super::vector::{dot, dot_with};
use super::{row, row_major};

/// A sparse matrix in compressed rows: row `r`'s columns are
/// `indices[indptr[r]..indptr[r + 1]]`, ascending, with their `values`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Csr {
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f64>,
}

/// How repeated (row, column) pairs combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    Sum,
    Mean,
}

impl Csr {
    /// The `rows × ·` matrix of the triples `(row[i], column[i], value[i])`.
    pub fn from_triples(
        rows: usize,
        row: &[u32],
        column: &[u32],
        value: &[f64],
        duplicates: Duplicates,
    ) -> Self {
        // Sorting on the position too makes the order of equal pairs, and so their sum,
        // independent of the threads.
        let mut order: Vec<(u64, u32)> = row
            .par_iter()
            .zip(column.par_iter())
            .enumerate()
            .map(|(i, (&r, &c))| ((u64::from(r) << 32) | u64::from(c), i as u32))
            .collect();
        order.par_sort_unstable();
        let mut indptr = vec![0; rows + 1];
        let mut indices = Vec::with_capacity(order.len());
        let mut values = Vec::with_capacity(order.len());
        let mut run = 0.0;
        for (n, &(key, i)) in order.iter().enumerate() {
            let repeat = n > 0 && order[n - 1].0 == key;
            if repeat {
                *values.last_mut().expect("a previous value") += value[i as usize];
                run += 1.0;
            } else {
                if duplicates == Duplicates::Mean
                    && let Some(last) = values.last_mut()
                {
                    *last /= run;
                }
                indices.push(key as u32);
                values.push(value[i as usize]);
                indptr[(key >> 32) as usize + 1] += 1;
                run = 1.0;
            }
        }
        if duplicates == Duplicates::Mean
            && let Some(last) = values.last_mut()
        {
            *last /= run;
        }
        for r in 0..rows {
            indptr[r + 1] += indptr[r];
        }
        Self {
            indptr,
            indices,
            values,
        }
    }

    pub fn rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// The columns and values of row `r`.
    pub fn row(&self, r: usize) -> (&[u32], &[f64]) {
        let span = self.indptr[r]..self.indptr[r + 1];
        (&self.indices[span.clone()], &self.values[span])
    }

    /// The `columns × rows` transpose.
    pub fn transpose(&self, columns: usize) -> Self {
        let mut row = Vec::with_capacity(self.indices.len());
        for r in 0..self.rows() {
            row.extend(std::iter::repeat_n(
                r as u32,
                self.indptr[r + 1] - self.indptr[r],
            ));
        }
        Self::from_triples(columns, &self.indices, &row, &self.values, Duplicates::Sum)
    }
}

/// Stored with a model as `feedback` ('explicit' or 'implicit') and `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "feedback", rename_all = "snake_case")]
pub enum Feedback {
    /// Values are ratings to reproduce.
    Explicit,
    /// Values are counts or strengths of interaction; confidence `1 + alpha · value`.
    Implicit { alpha: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlsOptions {
    pub factors: usize,
    /// λ: per rating for explicit feedback (weighted-λ), once per row for implicit.
    pub l2_reg: f64,
    /// Alternations of a users' and an items' half-step.
    pub iterations: usize,
    pub seed: u64,
    pub feedback: Feedback,
}

/// Conjugate-gradient steps per row and half-step for implicit feedback.
const CG_STEPS: usize = 3;

/// Fitted factors: `users × factors` and `items × factors`, one row each; for explicit
/// feedback also the mean rating and each user's and item's offset from it (biases), so
/// a rating is `mean + user bias + item bias + x·y`. Implicit feedback has no biases.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Factors {
    pub users: Array2<f64>,
    pub items: Array2<f64>,
    pub mean: f64,
    /// One per user, or empty (implicit feedback).
    pub user_bias: Vec<f64>,
    /// One per item, or empty (implicit feedback).
    pub item_bias: Vec<f64>,
}

impl Factors {
    /// The predicted value of (user `u`, item `i`).
    pub fn predict(&self, u: usize, i: usize) -> f64 {
        let bias = |b: &[f64], k: usize| b.get(k).copied().unwrap_or(0.0);
        self.mean
            + bias(&self.user_bias, u)
            + bias(&self.item_bias, i)
            + dot(self.user(u), self.item(i))
    }

    /// For each user index in `users`, the `k` items of highest predicted value that
    /// `keep(user, item)` accepts, best first, among equal values the lower item: the
    /// ranking by [`Self::predict`], screened in f32 as [`super::top_k`] describes.
    pub fn top_k_many(
        &self,
        users: &[usize],
        k: usize,
        keep: impl Fn(usize, usize) -> bool + Sync,
    ) -> Vec<Vec<(f64, usize)>> {
        let items = Items::new(self.items.view(), &self.item_bias);
        best_products(
            users,
            |u| {
                let bias = self.user_bias.get(u).copied().unwrap_or(0.0);
                (self.user(u), self.mean + bias)
            },
            &items,
            k,
            |u, i| self.predict(u, i),
            keep,
        )
    }

    pub fn user(&self, u: usize) -> &[f64] {
        row(self.users.view(), u)
    }

    pub fn item(&self, i: usize) -> &[f64] {
        row(self.items.view(), i)
    }
}

/// Factors for `user_items` (users × items); `item_users` is its transpose.
pub fn fit(user_items: &Csr, item_users: &Csr, options: &AlsOptions) -> Factors {
    let f = options.factors;
    let start = |rows: usize, table: u64| -> Array2<f64> {
        let values = (0..rows)
            .into_par_iter()
            .flat_map_iter(|r| {
                let mut rng = Rng::keyed(options.seed, table, r as u64);
                (0..f).map(move |_| rng.normal() * 0.01)
            })
            .collect();
        Array2::from_shape_vec((rows, f), values).expect("rows of f values")
    };
    let mut users = start(user_items.rows(), 0x7573_6572);
    let mut items = start(item_users.rows(), 0x6974_656D);
    let explicit = options.feedback == Feedback::Explicit;
    let values = &user_items.values;
    let mean = if explicit && !values.is_empty() {
        values.iter().sum::<f64>() / values.len() as f64
    } else {
        0.0
    };
    let biases = |rows: usize| if explicit { vec![0.0; rows] } else { vec![] };
    let mut user_bias = biases(user_items.rows());
    let mut item_bias = biases(item_users.rows());
    match options.feedback {
        Feedback::Implicit { alpha } => {
            // Implicit feedback iterates in f32, as the fastest implementations do: half the
            // memory traffic of the scattered row reads and twice the values per register.
            // The Gram matrices are summed in f64.
            let (mut users32, mut items32) = (users.mapv(|x| x as f32), items.mapv(|x| x as f32));
            for _ in (0..options.iterations).take_while(|_| !interrupted()) {
                super::progress::pass(super::progress::Stage::Als);
                implicit_half_step(
                    user_items,
                    items32.view(),
                    users32.view_mut(),
                    alpha,
                    options,
                );
                implicit_half_step(
                    item_users,
                    users32.view(),
                    items32.view_mut(),
                    alpha,
                    options,
                );
            }
            (users, items) = (users32.mapv(f64::from), items32.mapv(f64::from));
        }
        Feedback::Explicit => {
            for _ in (0..options.iterations).take_while(|_| !interrupted()) {
                super::progress::pass(super::progress::Stage::Als);
                let fixed = Side {
                    factors: items.view(),
                    bias: &item_bias,
                    mean,
                };
                explicit_half_step(user_items, fixed, users.view_mut(), &mut user_bias, options);
                let fixed = Side {
                    factors: users.view(),
                    bias: &user_bias,
                    mean,
                };
                explicit_half_step(item_users, fixed, items.view_mut(), &mut item_bias, options);
            }
        }
    }
    Factors {
        users,
        items,
        mean,
        user_bias,
        item_bias,
    }
}

/// The side held fixed in a half-step: its factors and biases, and the mean rating.
#[derive(Clone, Copy)]
struct Side<'a> {
    factors: ArrayView2<'a, f64>,
    bias: &'a [f64],
    mean: f64,
}

/// Solves every row of `x` and its bias given the other side, explicit feedback.
fn explicit_half_step(
    matrix: &Csr,
    y: Side,
    mut x: ArrayViewMut2<f64>,
    x_bias: &mut [f64],
    options: &AlsOptions,
) {
    x.as_slice_mut()
        .expect("factors in standard layout")
        .par_chunks_mut(options.factors)
        .zip(x_bias.par_iter_mut())
        .enumerate()
        .for_each(|(r, (xr, br))| {
            let (columns, values) = matrix.row(r);
            explicit_row(y, columns, values, options.l2_reg, xr, br)
        });
}

/// Solves every row of `x` given the other side's factors `y`, implicit feedback.
fn implicit_half_step(
    matrix: &Csr,
    y: ArrayView2<f32>,
    mut x: ArrayViewMut2<f32>,
    alpha: f64,
    options: &AlsOptions,
) {
    let f = options.factors;
    let gram = gramian(y);
    let (gram, y) = (row_major(gram.view()), row_major(y));
    let x = x.as_slice_mut().expect("factors in standard layout");
    x.par_chunks_mut(f).enumerate().for_each(|(r, xr)| {
        let (columns, values) = matrix.row(r);
        System {
            gram: &gram,
            y: &y,
            columns,
            values,
            alpha,
            l2_reg: options.l2_reg as f32,
        }
        .solve(xr)
    });
}

/// `YᵀY` (`f × f` for the `· × f` matrix `y`), summed in f64 over fixed chunks of rows
/// merged in order, then rounded to f32.
fn gramian(y: ArrayView2<f32>) -> Array2<f32> {
    const ROWS: usize = 1024;
    let f = y.ncols();
    let parts: Vec<Array2<f64>> = row_major(y)
        .par_chunks(ROWS * f)
        .map(|chunk| {
            let mut g = Array2::zeros((f, f));
            let values = g.as_slice_mut().expect("a new matrix in standard layout");
            let mut row64 = vec![0.0; f];
            for row in chunk.chunks_exact(f) {
                for (d, v) in row64.iter_mut().zip(row) {
                    *d = f64::from(*v);
                }
                add_outer(values, &row64, 1.0);
            }
            g
        })
        .collect();
    let mut total = Array2::zeros((f, f));
    for part in parts {
        total += &part;
    }
    total.mapv(|t| t as f32)
}

/// `a += w · v vᵀ`.
fn add_outer(a: &mut [f64], v: &[f64], w: f64) {
    let f = v.len();
    for (i, vi) in v.iter().enumerate() {
        let s = w * vi;
        for (aij, vj) in a[i * f..(i + 1) * f].iter_mut().zip(v) {
            *aij += s * vj;
        }
    }
}

/// Weighted-λ least squares of one row's ratings, less the mean and the other side's
/// biases, on the other side's factors and a constant: the row's factors `x` and its bias.
fn explicit_row(
    y: Side,
    columns: &[u32],
    values: &[f64],
    l2_reg: f64,
    x: &mut [f64],
    bias: &mut f64,
) {
    let f = x.len();
    if columns.is_empty() {
        x.fill(0.0);
        *bias = 0.0;
        return;
    }
    // Unknowns (x, bias): the design row of a rating is (y_c, 1).
    let d = f + 1;
    let mut system = Array2::zeros((d, d));
    let a = system
        .as_slice_mut()
        .expect("a new matrix in standard layout");
    let mut b = vec![0.0; d];
    let mut design = vec![1.0; d];
    let factors = row_major(y.factors);
    for (&c, &r) in columns.iter().zip(values) {
        let c = c as usize;
        design[..f].copy_from_slice(&factors[c * f..(c + 1) * f]);
        add_outer(a, &design, 1.0);
        let target = r - y.mean - y.bias[c];
        for (bi, v) in b.iter_mut().zip(&design) {
            *bi += target * v;
        }
    }
    let lambda = l2_reg * columns.len() as f64;
    // λ > 0 keeps the system positive definite; with λ = 0 a row with fewer ratings than
    // factors is singular, and the smallest ridge that fixes it is used.
    for v in system.diag_mut() {
        *v += lambda.max(1e-9 * (1.0 + *v));
    }
    match cholesky(system.view()) {
        Some(l) => {
            let z = solve(l.view(), ArrayView1::from(&b));
            for (xi, zi) in x.iter_mut().zip(&z) {
                *xi = *zi;
            }
            *bias = z[f];
        }
        None => {
            x.fill(0.0);
            *bias = 0.0;
        }
    }
}

/// One row's implicit-feedback system `A = YᵀY + λI + Σ (c − 1) y yᵀ` over its own items,
/// in f32. (Methods, not closures: a closure is compiled without the caller's target
/// features, and its multiply-adds would become library calls.)
struct System<'a> {
    gram: &'a [f32],
    y: &'a [f32],
    columns: &'a [u32],
    values: &'a [f64],
    alpha: f64,
    l2_reg: f32,
}

impl System<'_> {
    /// A few conjugate-gradient steps on the system, from `x`.
    fn solve(&self, x: &mut [f32]) {
        dispatch(Solve { system: self, x });
    }

    /// The solver, inlined into a body compiled for the CPU so its short dot products and
    /// updates vectorise: the calls dominate otherwise.
    #[inline(always)]
    fn solve_with<M: Simd>(&self, x: &mut [f32]) {
        let f = x.len();
        let mut residual = vec![0.0; f];
        self.product::<M, true>(x, &mut residual);
        let mut p = residual.clone();
        let mut rs_old = dot_f32::<M>(&residual, &residual);
        let mut ap = vec![0.0; f];
        for _ in 0..CG_STEPS {
            if rs_old < 1e-20 {
                break;
            }
            self.product::<M, false>(&p, &mut ap);
            let step = rs_old / dot_f32::<M>(&p, &ap);
            for i in 0..f {
                x[i] = M::mul_add_f32(step, p[i], x[i]);
                residual[i] = M::mul_add_f32(-step, ap[i], residual[i]);
            }
            let rs_new = dot_f32::<M>(&residual, &residual);
            for i in 0..f {
                p[i] = M::mul_add_f32(rs_new / rs_old, p[i], residual[i]);
            }
            rs_old = rs_new;
        }
    }

    /// `out = A v`, or with `RESIDUAL` `out = b − A v` where `b = Σ c y` (preference 1 on
    /// the row's items), in the same single pass over the items. YᵀY is symmetric, so its
    /// product is a sum of scaled rows.
    #[inline(always)]
    fn product<M: Simd, const RESIDUAL: bool>(&self, v: &[f32], out: &mut [f32]) {
        let f = v.len();
        let sign = if RESIDUAL { -1.0 } else { 1.0 };
        for (o, vi) in out.iter_mut().zip(v) {
            *o = sign * self.l2_reg * vi;
        }
        for (g, vj) in self.gram.chunks_exact(f).zip(v) {
            let vj = sign * vj;
            for (o, gj) in out.iter_mut().zip(g) {
                *o = M::mul_add_f32(vj, *gj, *o);
            }
        }
        for (t, (&c, &r)) in self.columns.iter().zip(self.values).enumerate() {
            if let Some(&ahead) = self.columns.get(t + PREFETCH_AHEAD) {
                prefetch(&self.y[ahead as usize * f..(ahead as usize + 1) * f]);
            }
            let yc = &self.y[c as usize * f..(c as usize + 1) * f];
            let w = (self.alpha * r) as f32 * dot_f32::<M>(yc, v);
            let w = if RESIDUAL {
                (1.0 + self.alpha * r) as f32 - w
            } else {
                w
            };
            for (o, yv) in out.iter_mut().zip(yc) {
                *o = M::mul_add_f32(w, *yv, *o);
            }
        }
    }
}

/// [`System::solve`]'s body, for every SIMD level.
struct Solve<'a, 'b> {
    system: &'a System<'b>,
    x: &'a mut [f32],
}

impl Kernel for Solve<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self) {
        self.system.solve_with::<S>(self.x);
    }
}

/// Rows asked for ahead of their use in a pass over a row's items.
const PREFETCH_AHEAD: usize = 4;

/// `a · b` in f32 with sixteen partial sums (one AVX-512 register, two AVX2): a short chain
/// per sum, and a shape the compiler keeps in whole registers.
#[inline(always)]
fn dot_f32<M: Simd>(a: &[f32], b: &[f32]) -> f32 {
    let (a16, a_rest) = a.as_chunks::<16>();
    let (b16, b_rest) = b.as_chunks::<16>();
    let mut acc = [0.0f32; 16];
    for (x, y) in a16.iter().zip(b16) {
        for l in 0..16 {
            acc[l] = M::mul_add_f32(x[l], y[l], acc[l]);
        }
    }
    let mut sum = acc.iter().sum::<f32>();
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum = M::mul_add_f32(*x, *y, sum);
    }
    sum
}

/// `x · yᵢ` for every row `yᵢ` of `y`.
pub fn scores(x: &[f64], y: ArrayView2<f64>) -> Vec<f64> {
    assert_eq!(y.ncols(), x.len(), "rows of the vector's width");
    dispatch(Scores(x, &row_major(y)))
}

struct Scores<'a>(&'a [f64], &'a [f64]);

impl Kernel for Scores<'_> {
    type Output = Vec<f64>;

    #[inline(always)]
    fn run<S: Simd>(self) -> Vec<f64> {
        scores_with::<S>(self.0, self.1)
    }
}

#[inline(always)]
fn scores_with<M: Simd>(x: &[f64], y: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(y.len() / x.len());
    for row in y.chunks_exact(x.len()) {
        out.push(dot_with::<M>(x, row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::top_k::top_k;

    /// A rank-2 rating matrix, fully observed.
    fn low_rank(users: usize, items: usize) -> (Vec<u32>, Vec<u32>, Vec<f64>) {
        let mut rng = Rng::keyed(3, 3, 3);
        let u: Vec<[f64; 2]> = (0..users).map(|_| [rng.normal(), rng.normal()]).collect();
        let v: Vec<[f64; 2]> = (0..items).map(|_| [rng.normal(), rng.normal()]).collect();
        let (mut r, mut c, mut x) = (vec![], vec![], vec![]);
        for (a, ua) in u.iter().enumerate() {
            for (b, vb) in v.iter().enumerate() {
                r.push(a as u32);
                c.push(b as u32);
                x.push(ua[0] * vb[0] + ua[1] * vb[1]);
            }
        }
        (r, c, x)
    }

    #[test]
    fn csr_combines_duplicates() {
        let m = Csr::from_triples(
            3,
            &[2, 0, 2, 0],
            &[1, 4, 1, 2],
            &[1.0, 2.0, 3.0, 4.0],
            Duplicates::Mean,
        );
        assert_eq!(m.indptr, vec![0, 2, 2, 3]);
        assert_eq!(m.indices, vec![2, 4, 1]);
        assert_eq!(m.values, vec![4.0, 2.0, 2.0]);
        let summed = Csr::from_triples(3, &[2, 2], &[1, 1], &[1.0, 3.0], Duplicates::Sum);
        assert_eq!(summed.values, vec![4.0]);
        let t = m.transpose(5);
        assert_eq!(t.indptr, vec![0, 0, 1, 2, 2, 3]);
        assert_eq!(t.indices, vec![2, 0, 0]);
    }

    #[test]
    fn explicit_recovers_a_low_rank_matrix() {
        let (r, c, x) = low_rank(30, 20);
        let m = Csr::from_triples(30, &r, &c, &x, Duplicates::Mean);
        let t = m.transpose(20);
        let fit = fit(
            &m,
            &t,
            &AlsOptions {
                factors: 2,
                l2_reg: 1e-6,
                iterations: 50,
                seed: 1,
                feedback: Feedback::Explicit,
            },
        );
        let rmse = (r.iter().zip(&c).zip(&x))
            .map(|((&a, &b), v)| (fit.predict(a as usize, b as usize) - v).powi(2))
            .sum::<f64>()
            / x.len() as f64;
        assert!(rmse.sqrt() < 1e-3, "rmse {}", rmse.sqrt());
    }

    #[test]
    fn explicit_learns_user_and_item_offsets() {
        // Ratings with no interaction at all: 3 + a_u + b_i, fully observed.
        let (users, items) = (12u32, 9u32);
        let (mut r, mut c, mut x) = (vec![], vec![], vec![]);
        for u in 0..users {
            for i in 0..items {
                r.push(u);
                c.push(i);
                x.push(3.0 + 0.1 * f64::from(u) - 0.2 * f64::from(i % 4));
            }
        }
        let m = Csr::from_triples(users as usize, &r, &c, &x, Duplicates::Mean);
        let options = AlsOptions {
            factors: 1,
            l2_reg: 1e-9,
            iterations: 30,
            seed: 1,
            feedback: Feedback::Explicit,
        };
        let fit = fit(&m, &m.transpose(items as usize), &options);
        for ((&u, &i), v) in r.iter().zip(&c).zip(&x) {
            assert!((fit.predict(u as usize, i as usize) - v).abs() < 1e-6);
        }
        let spread = fit.user_bias[11] - fit.user_bias[0];
        assert!((spread - 1.1).abs() < 1e-6, "{spread}");
    }

    #[test]
    fn implicit_ranks_the_held_out_item_of_a_block() {
        // Two groups of users, each interacting with its own half of the items; one
        // interaction per user is held out and must come back near the top.
        let (users, items) = (40, 20);
        let (mut r, mut c) = (vec![], vec![]);
        for u in 0..users {
            let own = if u < users / 2 {
                0..items / 2
            } else {
                items / 2..items
            };
            for i in own.filter(|&i| i != u % (items / 2) + if u < users / 2 { 0 } else { 10 }) {
                r.push(u as u32);
                c.push(i as u32);
            }
        }
        let ones = vec![1.0; r.len()];
        let m = Csr::from_triples(users, &r, &c, &ones, Duplicates::Sum);
        let t = m.transpose(items);
        let options = AlsOptions {
            factors: 4,
            l2_reg: 0.1,
            iterations: 30,
            seed: 7,
            feedback: Feedback::Implicit { alpha: 10.0 },
        };
        let f = fit(&m, &t, &options);
        for u in 0..users {
            let (seen, _) = m.row(u);
            let best = top_k((0..items).map(|i| dot(f.user(u), f.item(i))), 1, |i| {
                seen.binary_search(&(i as u32)).is_err()
            });
            let held_out = u % (items / 2) + if u < users / 2 { 0 } else { 10 };
            assert_eq!(best[0].1, held_out, "user {u}");
        }
        // The same factors whatever the thread count.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(pool.install(|| fit(&m, &t, &options)), f);
    }

    #[test]
    fn conjugate_gradient_solves_the_implicit_system() {
        // With as many steps as factors, conjugate gradient is exact: compare with a direct
        // solve of (YᵀY + Yᵀ(C − I)Y + λI) x = Yᵀ C p.
        let f = CG_STEPS;
        let mut rng = Rng::keyed(8, 8, 8);
        // Values exact in f32, which the solver works in.
        let y: Vec<f64> = (0..6 * f).map(|_| rng.normal() as f32 as f64).collect();
        let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        let (columns, values) = ([1u32, 4, 5], [2.0, 1.0, 5.0]);
        let (alpha, l2) = (3.0, 0.5);
        let mut a = vec![0.0; f * f];
        for row in y.chunks_exact(f) {
            add_outer(&mut a, row, 1.0);
        }
        let mut b = vec![0.0; f];
        for (&c, &r) in columns.iter().zip(&values) {
            let yc = &y[c as usize * f..(c as usize + 1) * f];
            add_outer(&mut a, yc, alpha * r);
            for (bi, v) in b.iter_mut().zip(yc) {
                *bi += (1.0 + alpha * r) * v;
            }
        }
        let mut system = Array2::from_shape_vec((f, f), a).unwrap();
        system.diag_mut().iter_mut().for_each(|v| *v += l2);
        let exact = solve(
            cholesky(system.view()).unwrap().view(),
            ArrayView1::from(&b),
        );
        let mut x = vec![0.0f32; f];
        let gram = gramian(ArrayView2::from_shape((6, f), &y32).unwrap());
        System {
            gram: gram.as_slice().unwrap(),
            y: &y32,
            columns: &columns,
            values: &values,
            alpha,
            l2_reg: l2 as f32,
        }
        .solve(&mut x);
        // f32 arithmetic: agreement to a few units in its sixth digit.
        for (got, want) in x.iter().zip(&exact) {
            assert!(
                (f64::from(*got) - want).abs() < 1e-4 * (1.0 + want.abs()),
                "{x:?} vs {exact:?}"
            );
        }
    }
}
