//! Logistic regression by Newton's method (IRLS).
//!
//! Each iteration is one parallel pass over the rows that yields the gradient, the Hessian
//! and the log-likelihood as sums, so partial states from any split of the rows merge
//! exactly. Standard errors come from the Hessian at the final coefficients, as in
//! statsmodels' `Logit`.
//!
//! On many rows the fit starts from a fit on a sample, and goes on with passes that sum
//! only the gradient (O(rows × columns) where a Hessian costs O(rows × columns²)), each step
//! solved with the sample's Hessian, until one Newton step with the Hessian of all the rows
//! finishes it; that pass also gives the standard errors.
//!
//! Where some features predict the class of the rows they cover exactly, the likelihood
//! has no maximum and their coefficients run off to infinity. If every row is predicted
//! exactly (complete separation) there is no model to give; otherwise (quasi-complete
//! separation) the other coefficients still converge, as in statsmodels and R's `glm`, and
//! the fit stops on its usual tolerance with the runaway coefficients large and flagged.

use ndarray::{Array1, Array2, ArrayView1, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::cholesky::{cholesky, independent_columns, invert, solve};
use super::coordinate_descent::{Penalty, minimise};
use super::distributions::normal_two_sided;
use super::exp::exp;
use super::fold::fold_columns;
use super::gram::{accumulate, mirror};
use super::interrupt::interrupted;
use super::simd::{Kernel, Simd, dispatch};
use super::vector::{dot_about, largest};

/// Fit settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogisticOptions {
    /// Ridge penalty on every coefficient but the intercept (column 0 when `intercept`):
    /// the fit maximises `log-likelihood − l1 Σ|β| − ½ l2 Σβ²`.
    pub l2: f64,
    /// Lasso penalty on the same coefficients; with `l2`, the elastic net. Each Newton step
    /// then minimises its quadratic model by coordinate descent (glmnet's method).
    pub l1: f64,
    /// Column 0 of the design is the intercept (all ones).
    pub intercept: bool,
    pub max_iterations: usize,
}

/// A fitted logistic regression over design columns; dropped columns have coefficient 0 and
/// NaN statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticFit {
    pub coef: Array1<f64>,
    pub std_err: Vec<f64>,
    pub z: Vec<f64>,
    pub p: Vec<f64>,
    /// Covariance of the coefficients, 0 for dropped columns.
    pub cov: Array2<f64>,
    /// Columns left out as linear combinations of earlier ones (or constant, when there is
    /// an intercept).
    pub dropped: Vec<usize>,
    /// Columns whose coefficients run off to infinity because they predict the class
    /// exactly for the rows they cover (quasi-complete separation): reported at the value
    /// where the fit stopped, with NaN statistics and no covariance.
    pub separated: Vec<usize>,
    pub log_likelihood: f64,
    pub iterations: usize,
    pub converged: bool,
}

/// Why no model could be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LogisticError {
    #[error("no rows to train on")]
    NoRows,
    /// Every row has the same class.
    #[error("every training row has the same label; both classes are needed")]
    OneClass,
    /// Some combination of features predicts the class of every row exactly; the
    /// coefficients of the design columns held (when known) run off to infinity.
    #[error(
        "the features separate the two classes perfectly, so the coefficients have no finite \
         estimate; add a penalty (e.g. l2_reg = 1) or remove the feature that gives the label \
         away"
    )]
    Separation(Vec<usize>),
}

/// Rows per parallel piece of a pass: small enough that a piece's design columns (32 of
/// them) stay in the L2 cache while the predictor, the gradient and the Hessian each read
/// them, and long enough that each column's run in memory (32 KB) is a stream the
/// prefetchers keep ahead of (at 1,024 rows, a 10M × 32 fit took 1.49-1.55 s, against
/// 1.26-1.39 s at 4,096; 8,192 was slower again).
const CHUNK: usize = 4096;
const COLLINEAR_TOL: f64 = 1e-9;
/// A coefficient whose full Newton step is still larger than this (in design units) when
/// the log-likelihood has stopped changing runs off to infinity: a converging fit's last
/// steps are orders of magnitude smaller, while a runaway one keeps stepping by about one
/// unit of the linear predictor of the rows it separates.
const RUNAWAY_STEP: f64 = 1e-2;
/// Every row fitted to within this of its label means complete separation (statsmodels'
/// perfect prediction check).
const PERFECT_FIT: f64 = 1e-8;

/// Gradient, Hessian (full, standard layout) and log-likelihood of the rows, as sums; or the
/// gradient alone (an empty Hessian, the log-likelihood 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sums {
    gradient: Vec<f64>,
    hessian: Array2<f64>,
    log_likelihood: f64,
    /// The largest |label - probability| of a row with weight.
    worst: f64,
}

impl Sums {
    /// Nothing summed yet over `k` columns, with the Hessian (and log-likelihood) or without.
    pub fn zero(k: usize, hessian: bool) -> Self {
        let h = if hessian { k } else { 0 };
        Self {
            gradient: vec![0.0; k],
            hessian: Array2::zeros((h, h)),
            log_likelihood: 0.0,
            worst: 0.0,
        }
    }

    /// The Hessian made whole from its upper triangle.
    fn mirrored(mut self) -> Sums {
        mirror(self.hessian.view_mut());
        self
    }

    pub fn merge(mut self, other: Sums) -> Sums {
        for (a, b) in self.gradient.iter_mut().zip(&other.gradient) {
            *a += b;
        }
        self.hessian += &other.hessian;
        self.log_likelihood += other.log_likelihood;
        self.worst = self.worst.max(other.worst);
        self
    }
}

/// Rows of the design in memory: the design columns, the 0/1 label and optional row
/// weights, all of one length. The training rows are any number of blocks (one per input
/// batch, say), so they need not be copied into one piece.
#[derive(Debug, Clone)]
pub struct Block<'a> {
    pub columns: Vec<Column<'a>>,
    pub y: &'a [f64],
    pub weight: Option<&'a [f64]>,
}

impl<'a> Block<'a> {
    fn slice(&self, lo: usize, hi: usize) -> Block<'a> {
        Block {
            columns: self.columns.iter().map(|c| c.slice(lo, hi)).collect(),
            y: &self.y[lo..hi],
            weight: self.weight.map(|w| &w[lo..hi]),
        }
    }
}

/// A design column: its values, or values that a pass standardises as it reads them, so
/// that the rows need not be held a second time, standardised.
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    pub values: &'a [f64],
    /// `(mean, standard deviation)`: the design's value is `(x - mean) · (1 / sd)`.
    pub standardise: Option<(f64, f64)>,
}

impl<'a> Column<'a> {
    /// Values that are the design's as they are.
    pub fn plain(values: &'a [f64]) -> Self {
        Self {
            values,
            standardise: None,
        }
    }

    fn slice(&self, lo: usize, hi: usize) -> Column<'a> {
        Column {
            values: &self.values[lo..hi],
            standardise: self.standardise,
        }
    }

    /// Writes the design's values into `out` (as long as the column).
    pub fn write(&self, out: &mut [f64]) {
        match self.standardise {
            None => out.copy_from_slice(self.values),
            Some((mean, sd)) => {
                let scale = 1.0 / sd;
                for (o, x) in out.iter_mut().zip(self.values) {
                    *o = (x - mean) * scale;
                }
            }
        }
    }

    /// The lowest and the highest design value (infinities when there are no rows).
    pub fn range(&self) -> (f64, f64) {
        let (lo, hi) = self
            .values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        match self.standardise {
            // Standardising keeps the order (the deviation is positive).
            Some((mean, sd)) if lo <= hi => ((lo - mean) * (1.0 / sd), (hi - mean) * (1.0 / sd)),
            _ => (lo, hi),
        }
    }
}

/// The columns `kept` of `piece` as they are held, each with the (mean, 1 / sd) that
/// standardises it where it is raw.
#[allow(clippy::type_complexity)]
fn raw<'a>(piece: &Block<'a>, kept: &[usize]) -> (Vec<&'a [f64]>, Vec<Option<(f64, f64)>>) {
    kept.iter()
        .map(|&j| {
            let column = piece.columns[j];
            let unit = column.standardise.map(|(mean, sd)| (mean, 1.0 / sd));
            (column.values, unit)
        })
        .unzip()
}

/// `Σ βⱼ xⱼ` over design columns into `eta`, standardising raw ones (`unit`, as from
/// [`raw`]) by moving β to their units instead of copying them.
#[inline(always)]
fn predictor<S: Simd>(
    eta: &mut [f64],
    columns: &[&[f64]],
    unit: &[Option<(f64, f64)>],
    beta: &[f64],
) {
    let shift: f64 = beta
        .iter()
        .zip(unit)
        .map(|(b, unit)| unit.map_or(0.0, |(mean, scale)| b * scale * mean))
        .sum();
    eta.fill(-shift);
    let terms: Vec<(&[f64], f64)> = columns
        .iter()
        .zip(beta)
        .zip(unit)
        .map(|((column, b), unit)| (*column, unit.map_or(*b, |(_, scale)| b * scale)))
        .collect();
    fold_columns(eta, &terms, |t| t.0, |e, t, x| S::mul_add(t.1, x, e));
}

/// `(e^-|η|, 1 / (1 + e^-η))`: the probability of a linear predictor, with the term its
/// log-likelihood needs, from one exponential that cannot overflow.
#[inline(always)]
fn probability<S: Simd>(eta: f64) -> (f64, f64) {
    let t = exp::<S>(-eta.abs());
    let d = 1.0 / (1.0 + t);
    (t, if eta >= 0.0 { d } else { t * d })
}

/// The logistic function `1 / (1 + e⁻ˣ)`, a linear predictor's probability.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Replaces each linear predictor in `eta` by its probability, [`sigmoid`] vectorised.
pub fn to_probabilities(eta: &mut [f64]) {
    dispatch(Sigmoid(eta));
}

struct Sigmoid<'a>(&'a mut [f64]);

impl Kernel for Sigmoid<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self) {
        for v in self.0.iter_mut() {
            *v = probability::<S>(*v).1;
        }
    }
}

/// The block's probabilities at `beta` (one coefficient per design column).
pub fn probabilities(block: &Block, beta: &[f64]) -> Vec<f64> {
    let all: Vec<usize> = (0..beta.len()).collect();
    let pieces = pieces(std::slice::from_ref(block));
    let mut p = vec![0.0; block.y.len()];
    p.par_chunks_mut(CHUNK).enumerate().for_each(|(i, out)| {
        let (columns, unit) = raw(&pieces[i], &all);
        dispatch(Probabilities {
            out,
            columns: &columns,
            unit: &unit,
            beta,
        });
    });
    p
}

struct Probabilities<'a> {
    out: &'a mut [f64],
    columns: &'a [&'a [f64]],
    unit: &'a [Option<(f64, f64)>],
    beta: &'a [f64],
}

impl Kernel for Probabilities<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self) {
        predictor::<S>(self.out, self.columns, self.unit, self.beta);
        Sigmoid(self.out).run::<S>();
    }
}

/// How many rows, how many of them positive, and how many design columns (`None` when
/// there are no rows to tell).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub columns: Option<usize>,
    pub rows: usize,
    pub positives: usize,
}

impl Counts {
    /// The counts of `blocks`.
    pub fn of(blocks: &[Block]) -> Self {
        Counts {
            columns: blocks.first().map(|b| b.columns.len()),
            rows: blocks.iter().map(|b| b.y.len()).sum(),
            positives: blocks
                .iter()
                .map(|b| b.y.iter().filter(|&&v| v == 1.0).count())
                .sum(),
        }
    }

    pub fn merge(self, other: Counts) -> Counts {
        Counts {
            columns: self.columns.or(other.columns),
            rows: self.rows + other.rows,
            positives: self.positives + other.positives,
        }
    }
}

/// The training rows a fit passes over: blocks held in memory, or rows read again (or left
/// on a cluster) for every pass. Each pass is a sum over the rows, so any split of them
/// gives the same fit.
pub trait Rows: Sync {
    /// Why the rows could not be read (the source's own error).
    type Error: From<LogisticError>;

    fn counts(&self) -> Result<Counts, Self::Error>;

    /// The sums over every row at `beta`, over the design columns `kept` (one coefficient
    /// each), the Hessian whole; only the gradient (and the worst fit) without `hessian`.
    fn sums(&self, kept: &[usize], beta: &[f64], hessian: bool) -> Result<Sums, Self::Error>;

    /// What `visit` makes of a first part of the rows held in memory, if there is one.
    fn first<T: Send>(
        &self,
        visit: &(dyn Fn(&[Block]) -> T + Sync),
    ) -> Result<Option<T>, Self::Error>;
}

/// Blocks in memory.
impl Rows for [Block<'_>] {
    type Error = LogisticError;

    fn counts(&self) -> Result<Counts, Self::Error> {
        Ok(Counts::of(self))
    }

    fn sums(&self, kept: &[usize], beta: &[f64], hessian: bool) -> Result<Sums, Self::Error> {
        Ok(sums(self, kept, beta, hessian))
    }

    fn first<T: Send>(
        &self,
        visit: &(dyn Fn(&[Block]) -> T + Sync),
    ) -> Result<Option<T>, Self::Error> {
        Ok(Some(visit(self)))
    }
}

/// The blocks in pieces of at most CHUNK rows: the unit of parallel work, so one large
/// block still spreads over every thread.
fn pieces<'a>(blocks: &[Block<'a>]) -> Vec<Block<'a>> {
    blocks
        .iter()
        .flat_map(|b| {
            let n = b.y.len();
            (0..n.div_ceil(CHUNK)).map(move |c| b.slice(c * CHUNK, ((c + 1) * CHUNK).min(n)))
        })
        .collect()
}

/// The sums over the design columns `kept` of `blocks` at `beta` (one per kept column),
/// the Hessian whole; only the gradient without `hessian`.
pub fn sums(blocks: &[Block], kept: &[usize], beta: &[f64], hessian: bool) -> Sums {
    let k = kept.len();
    let pieces = pieces(blocks);
    pieces
        .par_iter()
        .map(|piece| piece_pass(piece, kept, beta, hessian))
        .reduce(|| Sums::zero(k, hessian), Sums::merge)
        .mirrored()
}

/// The pass over one piece, with the upper triangle of the Hessian if asked for.
fn piece_pass(piece: &Block, kept: &[usize], beta: &[f64], hessian: bool) -> Sums {
    // Raw columns are read as they are, with the coefficients and the sums moved to their
    // units: no standardised copy. The gradient and the Hessian are taken about the
    // columns' means, so they keep the digits a standardised copy would.
    let (columns, unit) = raw(piece, kept);
    let mut out = dispatch(PiecePass {
        columns: &columns,
        unit: &unit,
        y: piece.y,
        weight: piece.weight,
        beta,
        hessian,
    });
    if let Some(curv) = out.curvature.take() {
        let (shift, scale): (Vec<f64>, Vec<f64>) =
            unit.iter().map(|u| u.unwrap_or((0.0, 1.0))).unzip();
        let h = &mut out.sums.hessian;
        accumulate(&columns, &shift, Some(&curv), h.view_mut());
        for ((i, j), v) in h.indexed_iter_mut() {
            *v *= scale[i] * scale[j];
        }
    }
    out.sums
}

/// [`piece_pass`]'s sums over the rows: all but the Hessian, whose row weights (the
/// curvature) it hands back.
struct PiecePass<'a> {
    columns: &'a [&'a [f64]],
    unit: &'a [Option<(f64, f64)>],
    y: &'a [f64],
    weight: Option<&'a [f64]>,
    beta: &'a [f64],
    hessian: bool,
}

struct PieceSums {
    sums: Sums,
    curvature: Option<Vec<f64>>,
}

impl Kernel for PiecePass<'_> {
    type Output = PieceSums;

    #[inline(always)]
    fn run<S: Simd>(self) -> PieceSums {
        let (y, n, hessian) = (self.y, self.y.len(), self.hessian);
        let mut out = Sums::zero(self.beta.len(), hessian);
        let mut eta = vec![0.0; n];
        predictor::<S>(&mut eta, self.columns, self.unit, self.beta);
        let ones;
        let weight = match self.weight {
            Some(w) => w,
            None => {
                ones = vec![1.0; n];
                &ones
            }
        };
        // Branch-free over the rows, and every slice cut to their number, so that it
        // vectorises (a branch on `hessian` inside left it a row at a time, a division
        // each): residuals, each weighted row's miss, the curvature and e^-|η|.
        let (weight, y) = (&weight[..n], &y[..n]);
        let mut resid = vec![0.0; n];
        let mut miss = vec![0.0; n];
        let mut t = vec![0.0; n];
        let mut curv = vec![0.0; n];
        for i in 0..n {
            let (ti, p) = probability::<S>(eta[i]);
            let w = weight[i];
            resid[i] = w * (y[i] - p);
            miss[i] = if w > 0.0 { (y[i] - p).abs() } else { 0.0 };
            t[i] = ti;
            curv[i] = w * p * (1.0 - p);
        }
        out.worst = largest(&miss);
        if hessian {
            // log-likelihood y·η - softplus(η), softplus(η) = max(η, 0) + ln(1 + e^-|η|).
            out.log_likelihood = (0..n)
                .map(|i| weight[i] * (y[i] * eta[i] - (eta[i].max(0.0) + t[i].ln_1p())))
                .sum();
        }
        for ((g, x), unit) in out.gradient.iter_mut().zip(self.columns).zip(self.unit) {
            let (mean, scale) = unit.unwrap_or((0.0, 1.0));
            *g = dot_about::<S>(x, mean, &resid) * scale;
        }
        PieceSums {
            sums: out,
            curvature: hessian.then_some(curv),
        }
    }
}

/// Rows of the sample that gives large inputs their starting point.
const SAMPLE_ROWS: usize = 1 << 17;
/// A Newton step whose predicted rise in the objective is below this share of it ends the
/// fit without another pass: it moves the coefficients by a few billionths of their
/// standard errors, so the Hessian before it gives the standard errors of the end (a
/// p-value of 1e-9 to 1e-7 of itself).
const SHORTCUT: f64 = 1e-18;
/// A sample's fit is only where the fit on all rows starts, and its own error is as large
/// as a gain of about half a unit per coefficient on the sample: its Newton steps end,
/// without a pass to check the last, once a step's predicted gain is below this share of
/// that (the start then off by a thousandth of its error from the sample's optimum).
const SAMPLE_SHORTCUT: f64 = 1e-6;

/// Where Newton's method ends, and the pass there.
struct Newton {
    beta: Vec<f64>,
    at: Sums,
    iterations: usize,
    converged: bool,
    /// Positions (in the kept columns) of the coefficients whose last full step was larger
    /// than RUNAWAY_STEP.
    moving: Vec<usize>,
    /// Stopped where the log-likelihood is flat along the moving coefficients: settled while
    /// they still take full steps, or with its curvature vanished (the Hessian no longer
    /// positive definite). They run off to infinity.
    flat: bool,
}

/// Fits `y` (0 or 1) on the design columns of `rows` (every block has the same number of
/// columns).
pub fn fit_logistic<R: Rows + ?Sized>(
    rows: &R,
    options: LogisticOptions,
) -> Result<LogisticFit, R::Error> {
    let Counts {
        columns,
        rows: n,
        positives,
    } = rows.counts()?;
    let d = columns.unwrap_or(0);
    if n == 0 {
        return Err(LogisticError::NoRows.into());
    }
    if positives == 0 || positives == n {
        return Err(LogisticError::OneClass.into());
    }
    let warm = if n >= 4 * SAMPLE_ROWS {
        rows.first(&|blocks| warm_start(blocks, d, n, options, SAMPLE_ROWS))?
            .flatten()
    } else {
        None
    };
    let (start, chord_passes) = match warm {
        // Gradient passes serve the plain likelihood and the ridge; the lasso's steps are
        // found by coordinate descent on each pass's own Hessian.
        Some(warm) if options.l1 == 0.0 => chord(rows, warm, options)?,
        Some(warm) => (warm.beta, 0),
        None => (vec![0.0; d], 0),
    };
    let Start {
        kept,
        dropped,
        beta,
        at,
    } = start_at(rows, &start)?;
    let Newton {
        beta,
        at: current,
        iterations,
        converged,
        moving,
        flat,
    } = newton(
        rows,
        &kept,
        beta,
        at,
        options,
        options.max_iterations.saturating_sub(chord_passes).max(1),
        0.0,
    )?;
    let iterations = iterations + chord_passes;
    if current.worst <= PERFECT_FIT || beta.iter().any(|b| !b.is_finite()) {
        return Err(LogisticError::Separation(moving.iter().map(|&a| kept[a]).collect()).into());
    }
    let runaway = if flat { moving } else { vec![] };
    let separated: Vec<usize> = runaway.iter().map(|&a| kept[a]).collect();

    // Covariance from the (penalised) Hessian at the final coefficients, over the
    // coefficients that stay finite: the curvature along the runaway ones has vanished. An
    // L1 penalty leaves no sampling distribution to speak of: no standard errors then.
    let settled: Vec<usize> = if options.l1 > 0.0 {
        vec![]
    } else {
        (0..kept.len()).filter(|a| !runaway.contains(a)).collect()
    };
    let penalty = penalties(&kept, options);
    let hessian = penalised(current.hessian, &penalty)
        .select(Axis(0), &settled)
        .select(Axis(1), &settled);
    let cov_settled = cholesky(hessian.view())
        .map(|l| invert(l.view()))
        .ok_or_else(|| LogisticError::Separation(separated.clone()))?;
    let mut coef = Array1::zeros(d);
    for (a, &i) in kept.iter().enumerate() {
        coef[i] = beta[a];
    }
    let mut std_err = vec![f64::NAN; d];
    let mut z = vec![f64::NAN; d];
    let mut p = vec![f64::NAN; d];
    let unknown = if options.l1 > 0.0 { f64::NAN } else { 0.0 };
    let mut cov = Array2::from_elem((d, d), unknown);
    for (a, i) in settled.iter().map(|&a| kept[a]).enumerate() {
        std_err[i] = cov_settled[[a, a]].sqrt();
        z[i] = coef[i] / std_err[i];
        p[i] = normal_two_sided(z[i]);
        for (b, j) in settled.iter().map(|&b| kept[b]).enumerate() {
            cov[[i, j]] = cov_settled[[a, b]];
        }
    }
    Ok(LogisticFit {
        coef,
        std_err,
        z,
        p,
        cov,
        dropped,
        separated,
        log_likelihood: current.log_likelihood,
        iterations,
        converged,
    })
}

/// Where Newton's method starts: the independent columns and the dropped ones, and the
/// coefficients and pass restricted to the independent columns.
struct Start {
    kept: Vec<usize>,
    dropped: Vec<usize>,
    beta: Vec<f64>,
    at: Sums,
}

/// The start at `beta` (one per design column), with the independent columns judged on the
/// Hessian there (XᵀWX, whose null space does not depend on the weights).
fn start_at<R: Rows + ?Sized>(rows: &R, beta: &[f64]) -> Result<Start, R::Error> {
    let d = beta.len();
    let all: Vec<usize> = (0..d).collect();
    let first = rows.sums(&all, beta, true)?;
    let (_, kept, dropped) = independent_columns(0..d, |i, j| first.hessian[[i, j]], COLLINEAR_TOL);
    let restricted: Vec<f64> = kept.iter().map(|&j| beta[j]).collect();
    if dropped.iter().any(|&j| beta[j] != 0.0) {
        // The pass was at coefficients the restricted model cannot hold: take it again.
        let at = rows.sums(&kept, &restricted, true)?;
        return Ok(Start {
            kept,
            dropped,
            beta: restricted,
            at,
        });
    }
    let at = Sums {
        gradient: kept.iter().map(|&i| first.gradient[i]).collect(),
        hessian: first
            .hessian
            .select(Axis(0), &kept)
            .select(Axis(1), &kept)
            .as_standard_layout()
            .into_owned(),
        log_likelihood: first.log_likelihood,
        worst: first.worst,
    };
    Ok(Start {
        kept,
        dropped,
        beta: restricted,
        at,
    })
}

/// The fit on a sample, where the fit on all rows starts.
struct Warm {
    /// One coefficient per design column (0 for those the sample left out).
    beta: Vec<f64>,
    /// The sample's independent columns, and its Hessian over them at `beta` (without
    /// penalty) scaled to the rows of the whole: an estimate of the whole's.
    kept: Vec<usize>,
    hessian: Array2<f64>,
    /// The size of the sample's log-likelihood, scaled to the rows of the whole.
    scale: f64,
}

/// The smallest sample that starts from a fit on a sample of its own, an eighth its size.
const NESTED_SAMPLE_ROWS: usize = 1 << 14;

/// For inputs much larger than [`SAMPLE_ROWS`]: the fit on an evenly spread sample of
/// about `rows` of the pieces of `blocks` (the first group of rows), as the starting point
/// of the fit on all `n` rows; any failure (the sample may lack a class or separate it)
/// just means starting from zero. The sample's own fit starts from one on an eighth of it,
/// so Newton's method takes about half the passes over it that it would from zero.
fn warm_start(
    blocks: &[Block],
    d: usize,
    n: usize,
    options: LogisticOptions,
    rows: usize,
) -> Option<Warm> {
    let pieces = pieces(blocks);
    let every = (pieces.len() / (rows / CHUNK).max(1)).max(1);
    let sample: Vec<Block> = pieces.into_iter().step_by(every).collect();
    let sampled: usize = sample.iter().map(|b| b.y.len()).sum();
    let from = (rows > NESTED_SAMPLE_ROWS)
        .then(|| warm_start(&sample, d, sampled, options, rows / 8))
        .flatten()
        .map_or_else(|| vec![0.0; d], |w| w.beta);
    let Start { kept, beta, at, .. } = start_at(&sample[..], &from).ok()?;
    let close_enough = SAMPLE_SHORTCUT * 0.5 * kept.len() as f64;
    let fit = newton(
        &sample[..],
        &kept,
        beta,
        at,
        options,
        options.max_iterations.min(25),
        close_enough,
    )
    .ok()?;
    if !fit.converged || fit.flat || fit.at.worst <= PERFECT_FIT {
        return None;
    }
    let mut start = vec![0.0; d];
    for (&j, b) in kept.iter().zip(&fit.beta) {
        start[j] = *b;
    }
    let share = n as f64 / sampled as f64;
    Some(Warm {
        beta: start,
        kept,
        hessian: fit.at.hessian * share,
        scale: fit.at.log_likelihood.abs() * share,
    })
}

/// Most gradient passes of [`chord`].
const CHORD_PASSES: usize = 12;

/// From the sample's fit, passes that sum only the gradient of all the rows, each step
/// solved with the sample's Hessian (the chord method: it converges to the same maximum,
/// where the gradient vanishes, by the factor the two Hessians differ in per pass, about
/// 1/30 from a sample of 2¹⁷ rows). It stops once the gain it predicts for the next step is
/// below [`SHORTCUT`], where one Newton step finishes the fit, or when its steps stop
/// shrinking (Newton's method goes on from there). Returns the coefficients reached and
/// the passes made.
fn chord<R: Rows + ?Sized>(
    rows: &R,
    warm: Warm,
    options: LogisticOptions,
) -> Result<(Vec<f64>, usize), R::Error> {
    let Warm {
        mut beta,
        kept,
        hessian,
        scale,
    } = warm;
    let penalty = penalties(&kept, options);
    let Some(l) = cholesky(penalised(hessian, &penalty).view()) else {
        return Ok((beta, 0));
    };
    let mut b: Vec<f64> = kept.iter().map(|&j| beta[j]).collect();
    let mut passes = 0;
    let mut last_gain = f64::INFINITY;
    while passes < CHORD_PASSES && !interrupted() {
        passes += 1;
        super::progress::pass(super::progress::Stage::Irls);
        let at = rows.sums(&kept, &b, false)?;
        if at.worst <= PERFECT_FIT {
            // Rows fitted (nearly) exactly: separation is Newton's to judge.
            break;
        }
        let g: Vec<f64> = (0..kept.len())
            .map(|i| at.gradient[i] - penalty[i] * b[i])
            .collect();
        let step = solve(l.view(), ArrayView1::from(&g));
        // The rise in the objective the step promises (half of it, for an exact Hessian).
        let gain: f64 = 0.5 * g.iter().zip(&step).map(|(g, s)| g * s).sum::<f64>();
        // Not shrinking, or not a number: the chord steps do not converge here.
        if gain.partial_cmp(&last_gain) != Some(std::cmp::Ordering::Less) {
            break;
        }
        for (bi, s) in b.iter_mut().zip(&step) {
            *bi += s;
        }
        // The gains fall by about the same factor each pass: stop when the next would be
        // small enough for Newton's last step.
        let next = if last_gain.is_finite() {
            gain * gain / last_gain
        } else {
            gain
        };
        last_gain = gain;
        if next <= SHORTCUT * scale {
            break;
        }
    }
    for (&j, v) in kept.iter().zip(&b) {
        beta[j] = *v;
    }
    Ok((beta, passes))
}

/// The ridge penalty of each kept column: none on the intercept.
fn penalties(kept: &[usize], options: LogisticOptions) -> Vec<f64> {
    kept.iter()
        .map(|&j| {
            if options.intercept && j == 0 {
                0.0
            } else {
                options.l2
            }
        })
        .collect()
}

/// Newton's method on the columns `kept` from `beta`, where the pass is `at`. Converged
/// when a full step changes the penalised log-likelihood by less than 1e-10 of itself
/// (Newton converges quadratically, so the coefficients are then good to about 1e-10), or
/// moves no coefficient. Where some rows are fitted ever more exactly as some coefficients
/// grow (separation), the log-likelihood settles while those coefficients still take full
/// steps: the fit stops there too, with those coefficients as the runaway ones, and also
/// when the curvature along them has vanished (the Hessian is no longer positive definite).
/// A step whose predicted gain is below [`SHORTCUT`] of the objective, or below
/// `close_enough`, is taken without a pass to check it and ends the fit.
fn newton<R: Rows + ?Sized>(
    rows: &R,
    kept: &[usize],
    mut beta: Vec<f64>,
    mut current: Sums,
    options: LogisticOptions,
    max_iterations: usize,
    close_enough: f64,
) -> Result<Newton, R::Error> {
    let k = kept.len();
    let penalty = penalties(kept, options);
    let lasso: Vec<f64> = kept
        .iter()
        .map(|&j| {
            if options.intercept && j == 0 {
                0.0
            } else {
                options.l1
            }
        })
        .collect();
    let objective = |p: &Sums, beta: &[f64]| {
        p.log_likelihood
            - beta
                .iter()
                .zip(penalty.iter().zip(&lasso))
                .map(|(b, (l2, l1))| 0.5 * l2 * b * b + l1 * b.abs())
                .sum::<f64>()
    };
    let mut iterations = 0;
    let mut converged = false;
    let mut moving = vec![];
    let mut flat = false;
    while iterations < max_iterations && !interrupted() {
        iterations += 1;
        super::progress::pass(super::progress::Stage::Irls);
        let (step, gain) = if options.l1 > 0.0 {
            // The quadratic model's minimiser under both penalties, from here.
            let hb = current.hessian.dot(&ArrayView1::from(&beta));
            let b: Vec<f64> = (0..k).map(|i| current.gradient[i] + hb[i]).collect();
            let target = minimise(
                current.hessian.view(),
                &b,
                &Penalty {
                    l1: lasso.clone(),
                    l2: penalty.clone(),
                },
                &beta,
            );
            let step: Vec<f64> = target.iter().zip(&beta).map(|(t, b)| t - b).collect();
            (step, None)
        } else {
            let h = penalised(current.hessian.clone(), &penalty);
            let g: Vec<f64> = (0..k)
                .map(|i| current.gradient[i] - penalty[i] * beta[i])
                .collect();
            let Some(l) = cholesky(h.view()) else {
                flat = true;
                break;
            };
            let step = solve(l.view(), ArrayView1::from(&g)).to_vec();
            let gain = 0.5 * g.iter().zip(&step).map(|(g, s)| g * s).sum::<f64>();
            (step, Some(gain))
        };
        let small = (SHORTCUT * objective(&current, &beta).abs()).max(close_enough);
        if gain.is_some_and(|gain| gain <= small) {
            // So small a step is taken without a pass to check it: the coefficients are
            // then exact to about its square, and the Hessian here, for the standard
            // errors, is the end's to about its size.
            for (b, s) in beta.iter_mut().zip(&step) {
                *b += s;
            }
            converged = true;
            moving.clear();
            break;
        }
        // Halve the step until the objective does not fall (Newton can overshoot far from
        // the optimum).
        let before = objective(&current, &beta);
        let mut scale = 1.0;
        let (next_beta, next, after) = loop {
            let trial: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + scale * s).collect();
            let p = rows.sums(kept, &trial, true)?;
            let after = objective(&p, &trial);
            if after >= before - 1e-12 * before.abs() || scale < 1e-6 {
                break (trial, p, after);
            }
            scale /= 2.0;
        };
        let moved = step
            .iter()
            .zip(&beta)
            .any(|(s, b)| (scale * s).abs() > 1e-10 * (1.0 + b.abs()));
        let settled = scale == 1.0 && (after - before).abs() <= 1e-10 * after.abs();
        beta = next_beta;
        current = next;
        moving = (0..k)
            .filter(|&i| (scale * step[i]).abs() > RUNAWAY_STEP)
            .collect();
        if !moved || settled {
            converged = true;
            flat = settled && !moving.is_empty();
            break;
        }
    }
    Ok(Newton {
        beta,
        at: current,
        iterations,
        converged,
        moving,
        flat,
    })
}

/// The Hessian `h` with the ridge penalty of each column added on its diagonal.
fn penalised(mut h: Array2<f64>, penalty: &[f64]) -> Array2<f64> {
    for (v, l) in h.diag_mut().iter_mut().zip(penalty) {
        *v += l;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<'a>(columns: &'a [Vec<f64>], y: &'a [f64], weight: Option<&'a [f64]>) -> Block<'a> {
        Block {
            columns: columns.iter().map(|c| Column::plain(c)).collect(),
            y,
            weight,
        }
    }

    fn fit(blocks: &[Block], options: LogisticOptions) -> Result<LogisticFit, LogisticError> {
        fit_logistic(blocks, options)
    }

    fn options() -> LogisticOptions {
        LogisticOptions {
            l2: 0.0,
            l1: 0.0,
            intercept: true,
            max_iterations: 50,
        }
    }

    #[test]
    fn recovers_known_coefficients() {
        // Rows on a grid with the exact expected class shares of p = sigmoid(-1 + 2x),
        // given as weights: the maximum likelihood estimate is (-1, 2) exactly.
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut w = Vec::new();
        for i in 0..21 {
            let xi = -1.0 + 0.1 * i as f64;
            let p = 1.0 / (1.0 + (1.0 - 2.0 * xi).exp());
            x.extend([xi, xi]);
            y.extend([1.0, 0.0]);
            w.extend([p, 1.0 - p]);
        }
        let ones = vec![1.0; x.len()];
        let columns = [ones, x];
        let fit = fit(&[block(&columns, &y, Some(&w))], options()).unwrap();
        assert!(fit.converged);
        assert!((fit.coef[0] + 1.0).abs() < 1e-9, "{:?}", fit.coef);
        assert!((fit.coef[1] - 2.0).abs() < 1e-9, "{:?}", fit.coef);
    }

    #[test]
    fn separation_and_one_class_are_errors() {
        let ones = vec![1.0; 6];
        let x = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let columns = [ones, x];
        // The error holds the runaway columns, x among them.
        let Err(LogisticError::Separation(runaway)) = fit(&[block(&columns, &y, None)], options())
        else {
            panic!("complete separation fitted");
        };
        assert!(runaway.contains(&1), "{runaway:?}");
        // Also when the iterations run out before the curvature vanishes.
        let fewer = LogisticOptions {
            max_iterations: 25,
            ..options()
        };
        let Err(LogisticError::Separation(runaway)) = fit(&[block(&columns, &y, None)], fewer)
        else {
            panic!("complete separation fitted in 25 iterations");
        };
        assert!(runaway.contains(&1), "{runaway:?}");
        // A penalty gives a finite answer.
        let penalised = LogisticOptions {
            l2: 1.0,
            ..options()
        };
        assert!(fit(&[block(&columns, &y, None)], penalised).is_ok());
        assert_eq!(
            fit(&[block(&columns, &[1.0; 6], None)], options()),
            Err(LogisticError::OneClass)
        );
    }

    /// 40 rows of x on a grid with mixed classes, and a flag on `flagged` rows of one class.
    fn with_flag(flagged: &[usize], class: f64) -> (Vec<Vec<f64>>, Vec<f64>) {
        let n = 40;
        let x: Vec<f64> = (0..n).map(|i| (i % 10) as f64 / 3.0 - 1.5).collect();
        let mut y: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i % 3 == 0))).collect();
        let mut flag = vec![0.0; n];
        for &i in flagged {
            flag[i] = 1.0;
            y[i] = class;
        }
        (vec![vec![1.0; n], x, flag], y)
    }

    #[test]
    fn quasi_separation_fits_with_the_runaway_coefficient_flagged() {
        for class in [1.0, 0.0] {
            let (columns, y) = with_flag(&[2, 17, 25], class);
            let quasi = fit(&[block(&columns, &y, None)], options()).unwrap();
            assert_eq!(quasi.separated, vec![2]);
            // The flag's coefficient ends large, in the direction of its class, without
            // statistics; the others are finite estimates, with them.
            assert!(
                quasi.coef[2] * (2.0 * class - 1.0) > 10.0,
                "{:?}",
                quasi.coef
            );
            assert!(quasi.std_err[2].is_nan() && quasi.p[2].is_nan());
            assert!(quasi.std_err[..2].iter().all(|s| s.is_finite() && *s < 1.0));
            // They are the fit without the flagged rows, whose likelihood they leave alone.
            let rest: Vec<usize> = (0..40).filter(|i| ![2, 17, 25].contains(i)).collect();
            let pick = |c: &[f64]| rest.iter().map(|&i| c[i]).collect::<Vec<f64>>();
            let without = [pick(&columns[0]), pick(&columns[1])];
            let reference = fit(&[block(&without, &pick(&y), None)], options()).unwrap();
            for j in 0..2 {
                assert!((quasi.coef[j] - reference.coef[j]).abs() < 1e-6, "{j}");
                assert!(
                    (quasi.std_err[j] - reference.std_err[j]).abs() < 1e-6,
                    "{j}"
                );
            }
        }
    }

    #[test]
    fn duplicate_columns_are_dropped() {
        let ones = vec![1.0; 8];
        let x = vec![0.1, 0.5, 0.2, 0.9, 0.4, 0.8, 0.3, 0.7];
        let y = [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0];
        let columns = [ones, x.clone(), x];
        // Split in two blocks: the fit is over their rows together.
        let halves: Vec<Vec<f64>> = columns.iter().map(|c| c[..3].to_vec()).collect();
        let rest: Vec<Vec<f64>> = columns.iter().map(|c| c[3..].to_vec()).collect();
        let fit = fit(
            &[block(&halves, &y[..3], None), block(&rest, &y[3..], None)],
            options(),
        )
        .unwrap();
        assert_eq!(fit.dropped, vec![2]);
        assert!(fit.coef.iter().all(|c| c.is_finite()));
        assert!(fit.std_err[2].is_nan());
    }

    /// Blocks that count the passes over them, with the first part in memory (a fit starts
    /// from a sample) or without (Newton's method from zero, a Hessian every pass).
    struct Counted<'a> {
        blocks: &'a [Block<'a>],
        sample: bool,
        hessians: std::sync::atomic::AtomicUsize,
        gradients: std::sync::atomic::AtomicUsize,
    }

    impl Rows for Counted<'_> {
        type Error = LogisticError;

        fn counts(&self) -> Result<Counts, LogisticError> {
            self.blocks.counts()
        }

        fn sums(&self, kept: &[usize], beta: &[f64], hessian: bool) -> Result<Sums, LogisticError> {
            let count = if hessian {
                &self.hessians
            } else {
                &self.gradients
            };
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.blocks.sums(kept, beta, hessian)
        }

        fn first<T: Send>(
            &self,
            visit: &(dyn Fn(&[Block]) -> T + Sync),
        ) -> Result<Option<T>, LogisticError> {
            Ok(self.sample.then(|| visit(self.blocks)))
        }
    }

    #[test]
    fn gradient_passes_from_a_sample_end_at_newtons_fit() {
        let n = 5 * SAMPLE_ROWS;
        let mut rng = super::super::rng::Rng::keyed(7, 0, 0);
        let mut columns: Vec<Vec<f64>> = vec![vec![1.0; n]];
        columns.extend((0..4).map(|_| (0..n).map(|_| rng.normal()).collect::<Vec<f64>>()));
        // A column held raw, standardised as the passes read it.
        let raw: Vec<f64> = (0..n).map(|_| 50.0 + 10.0 * rng.normal()).collect();
        let truth = [0.3, 0.8, -0.5, 0.2, 0.0, 0.4];
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let x = (raw[i] - 50.0) / 10.0;
                let eta = (0..5).map(|j| truth[j] * columns[j][i]).sum::<f64>() + truth[5] * x;
                f64::from(u8::from(rng.uniform() < sigmoid(eta)))
            })
            .collect();
        let quarter = n / 4;
        let blocks: Vec<Block> = (0..4)
            .map(|q| {
                let rows = q * quarter..(q + 1) * quarter;
                let mut block = Block {
                    columns: columns
                        .iter()
                        .map(|c| Column::plain(&c[rows.clone()]))
                        .collect(),
                    y: &y[rows.clone()],
                    weight: None,
                };
                block.columns.push(Column {
                    values: &raw[rows],
                    standardise: Some((50.0, 10.0)),
                });
                block
            })
            .collect();
        let counted = |sample| Counted {
            blocks: &blocks,
            sample,
            hessians: 0.into(),
            gradients: 0.into(),
        };
        let (warm, cold) = (counted(true), counted(false));
        let quick = fit_logistic(&warm, options()).unwrap();
        let newton = fit_logistic(&cold, options()).unwrap();
        // One pass with the Hessian (for the last step and the standard errors) after the
        // gradient passes, where Newton's method makes one per step.
        let passes = |r: &Counted| {
            (
                r.hessians.load(std::sync::atomic::Ordering::Relaxed),
                r.gradients.load(std::sync::atomic::Ordering::Relaxed),
            )
        };
        let (hessians, gradients) = passes(&warm);
        assert_eq!(hessians, 1, "{gradients} gradient passes");
        assert!((1..=6).contains(&gradients), "{gradients}");
        assert!(passes(&cold).0 >= 4, "{:?}", passes(&cold));
        assert!(quick.converged && newton.converged);
        for (j, truth) in truth.iter().enumerate() {
            let (a, b) = (quick.coef[j], newton.coef[j]);
            assert!(
                (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
                "coef {j}: {a} / {b}"
            );
            let (a, b) = (quick.std_err[j], newton.std_err[j]);
            assert!((a - b).abs() <= 1e-7 * b, "std_err {j}: {a} / {b}");
            assert!((newton.coef[j] - truth).abs() < 4.0 * b, "{j}");
        }
        let (a, b) = (quick.log_likelihood, newton.log_likelihood);
        assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} / {b}");
    }
}
