//! Logistic regression (churn and other yes/no labels) as a stored model.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{Expr, LogicalPlan, lit};
use ndarray::s;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::classes::Classes;
use super::coefficients::{CoefficientModel, Coefficients, Explained};
use super::encoding::FeatureEncoding;
use super::options::Options;
use super::pass::{Pass, run};
use super::training::{DesignColumn, Rows, Source, TrainingSet};
use super::{
    Dropped, Explainer, Model, ModelKind, Report, Scored, Scoring, dropped_warnings, zeroed_warning,
};
use crate::error::{Error, bad_input, bad_input_err};
use crate::evaluate::Metrics;
use crate::kernels::auc::auc;
use crate::kernels::distributions::normal_two_sided;
use crate::kernels::logistic::{
    Block, Column, Counts, LogisticError, LogisticOptions, Rows as FitRows, Sums, fit_logistic,
    probabilities, sums, to_probabilities,
};
use crate::kernels::split_lengths;
use crate::sql::labelled_metrics;

/// Settings of a logistic_reg model, from CREATE MODEL's options.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticSettings {
    pub label: String,
    pub l2: f64,
    pub l1: f64,
    /// Weight the classes inversely to their frequency (`class_weight = 'balanced'`).
    pub balanced: bool,
    pub max_iterations: usize,
    /// For a string label: the value that counts as positive.
    pub positive_class: Option<String>,
}

impl Default for LogisticSettings {
    fn default() -> Self {
        Self {
            label: String::new(),
            l2: 0.0,
            l1: 0.0,
            balanced: false,
            max_iterations: 50,
            positive_class: None,
        }
    }
}

/// A fitted logistic regression with the encoding of its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub label: String,
    /// The label's values; probabilities are of the positive one.
    pub classes: Classes,
    pub features: Vec<FeatureEncoding>,
    pub coefficients: Coefficients,
}

impl ModelKind for LogisticModel {
    const NAME: &'static str = "logistic_reg";
    const OPTIONS: &'static [&'static str] = &[
        "model_type",
        "label",
        "l1_reg",
        "l2_reg",
        "class_weight",
        "max_iterations",
        "positive_class",
    ];
    const SCORES: &'static [Scoring] = &[Scoring::Predict, Scoring::Churn];
    type Settings = LogisticSettings;
    const DISTRIBUTED: bool = true;

    fn settings(options: &Options) -> Result<LogisticSettings, Error> {
        let balanced = match options.get("class_weight") {
            None => false,
            Some(w) if w.is_word("none") => false,
            Some(w) if w.is_word("balanced") => true,
            Some(_) => return Err(options.wrong("class_weight", "'none' or 'balanced'")),
        };
        Ok(LogisticSettings {
            label: options.label()?,
            l2: options.penalty("l2_reg", 0.0)?,
            l1: options.penalty("l1_reg", 0.0)?,
            balanced,
            max_iterations: options.count("max_iterations", 1..=10_000, 50)?,
            positive_class: options.string("positive_class")?,
        })
    }

    /// Fits the yes/no label on every other column of the source (in schema order). The
    /// design is built once and kept when the source is in memory; otherwise every pass
    /// builds it afresh from a new read of the source.
    fn train(source: &dyn Source, settings: &LogisticSettings) -> Result<(Self, Report)> {
        let label = settings.label.as_str();
        let set = TrainingSet::prepare(source, label)?;
        let label_type = source.schema().field(set.label_column()?).data_type();
        let mut design = Design {
            kind: Classes::of_label(
                label_type,
                label,
                &set,
                settings.positive_class.as_deref(),
                Self::NAME,
            )?,
            set,
            class_weights: None,
        };
        if settings.balanced {
            design.class_weights = Some(design.class_weights(source)?);
        }
        let options = LogisticOptions {
            l2: settings.l2,
            l1: settings.l1,
            intercept: true,
            max_iterations: settings.max_iterations,
        };
        // Design column 0 is the intercept.
        let names: Vec<String> = std::iter::once("(intercept)".to_string())
            .chain(design.set.design_names())
            .collect();
        let (fit, summary) = match source.resident() {
            Some(batches) => {
                let parts = design.parts(batches)?;
                let fit = fit_logistic(&blocks(&parts)[..], options)
                    .map_err(|e| failed(e.into(), &names))?;
                let mut summary = Summary::new(Scores::Exact(vec![]));
                // The ranges tell a constant column from a collinear one among those dropped.
                summary.add(&parts, &fit.coef.to_vec(), !fit.dropped.is_empty());
                (fit, summary)
            }
            None => {
                let fit = fit_logistic(
                    &Streamed {
                        source,
                        design: &design,
                    },
                    options,
                )
                .map_err(|e| failed(e, &names))?;
                // Rows read again for every pass (or left on a cluster) are not kept for the
                // metrics either: their scores are, up to EXACT_SCORES rows.
                let summary = run(
                    source,
                    &SummaryPass {
                        design: design.clone(),
                        coef: fit.coef.to_vec(),
                    },
                )?;
                (fit, summary)
            }
        };
        let Design { set, kind, .. } = design;
        let dropped: Vec<(usize, Dropped)> = fit
            .dropped
            .iter()
            .filter(|&&j| j > 0)
            .map(|&j| {
                let why = if summary.ranges[j].0 == summary.ranges[j].1 {
                    Dropped::Constant
                } else {
                    Dropped::Collinear
                };
                (j - 1, why)
            })
            .collect();
        let mut warnings = dropped_warnings(&names[1..], &dropped);
        let weights = fit.coef.slice(s![1..]).to_owned();
        warnings.extend(zeroed_warning(&names[1..], &weights, &dropped, settings.l1));
        if !fit.separated.is_empty() {
            warnings.push(separation_warning(&fit.separated, &names));
        } else if !fit.converged {
            warnings.push(format!(
                "did not converge in {} iterations; raise max_iterations",
                fit.iterations
            ));
        }
        let coefficients = Coefficients {
            intercept: fit.coef[0],
            weights: fit.coef.slice(s![1..]).to_owned(),
            std_err: fit.std_err[1..].to_vec(),
            statistic: fit.z[1..].to_vec(),
            p_value: fit.p[1..].to_vec(),
            covariance: fit.cov.slice(s![1.., 1..]).to_owned(),
            intercept_variance: Some(fit.cov[[0, 0]]),
            intercept_covariance: fit.cov.slice(s![0, 1..]).to_vec(),
        };
        if let Scores::Binned { .. } = summary.scores {
            warnings.push(format!(
                "auc is computed on the probabilities rounded to 1/{AUC_BINS}"
            ));
        }
        let report = set.report(warnings, summary.scores.metrics());
        let model = LogisticModel {
            label: label.to_string(),
            classes: kind,
            features: set.features,
            coefficients,
        };
        Ok((model, report))
    }
}

impl CoefficientModel for LogisticModel {
    fn coefficients(&self) -> &Coefficients {
        &self.coefficients
    }
}

impl Model for LogisticModel {
    fn label(&self) -> Option<&str> {
        Some(&self.label)
    }

    fn features(&self) -> &[FeatureEncoding] {
        &self.features
    }

    /// The weights (log-odds) in the original units of each feature, intercept first.
    fn explain(&self) -> Option<Vec<Explained>> {
        Some(self.coefficients.explain(&self.features, normal_two_sided))
    }

    fn explainer(&self) -> Option<&dyn Explainer> {
        Some(self)
    }

    fn uses(&self, model: &str) -> String {
        format!(
            "predict_churn({model}, ...), predict({model}, ...), explain_model({model}), or \
             SELECT * FROM lift({model}, ...) or evaluate({model}, ...)"
        )
    }

    /// Probabilities of the positive class for feature columns given in training order.
    fn score(&self, _scoring: Scoring, columns: &[ArrayRef]) -> Result<ArrayRef> {
        let mut scores = self.coefficients.score(&self.features, columns)?;
        to_probabilities(&mut scores);
        Ok(Arc::new(Float64Array::from(scores)))
    }

    /// The probability and, computed over it so each row is scored once, the class.
    fn predict_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        self.classes
            .predict_plan(input, &self.label, (scored.call)(Scoring::Predict))
    }

    fn evaluate_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        labelled_metrics(
            input,
            scored,
            &self.label,
            Metrics::Classification,
            |label| {
                self.is_positive(label)
                    .unwrap_or_else(|| Ok(lit(ScalarValue::Float64(None))))
            },
        )
    }

    fn is_positive(&self, label: Expr) -> Option<Result<Expr>> {
        Some(self.classes.is_positive(label))
    }
}

/// How the design of a logistic fit is built from a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Design {
    set: TrainingSet,
    kind: Classes,
    /// Weights of the positive and the negative rows, for `class_weight = 'balanced'`.
    class_weights: Option<(f64, f64)>,
}

/// One batch's design in memory: the columns (intercept first), the label as 0/1 and the
/// row weights.
struct Part {
    columns: Vec<DesignColumn>,
    y: Vec<f64>,
    weight: Option<Vec<f64>>,
}

impl Design {
    /// The label of the used rows of `batch` as 0/1.
    fn label(&self, batch: &RecordBatch, rows: &Rows) -> Result<Vec<f64>> {
        let label = &self.set.label;
        let y = rows.kept(
            self.kind
                .label_01(batch.column(self.set.label_column()?), label)?,
        );
        if let Classes::Numeric = self.kind
            && let Some(bad) = y.iter().find(|v| **v != 0.0 && **v != 1.0)
        {
            return bad_input_err!(
                "label {label} has the value {bad}; logistic_reg needs 0/1, true/false or two \
                 strings (for a numeric target use model_type = 'linear_reg')"
            );
        }
        Ok(y)
    }

    /// Inverse class frequencies n / (2 n_class), from one pass over the labels.
    fn class_weights(&self, source: &dyn Source) -> Result<(f64, f64)> {
        let counts = run(
            source,
            &CountPass {
                design: self.clone(),
            },
        )?;
        let (n, positives) = (counts.rows as f64, counts.positives as f64);
        Ok((n / (2.0 * positives), n / (2.0 * (n - positives))))
    }

    /// The parts of a group of batches, built in parallel.
    fn parts(&self, group: &[RecordBatch]) -> Result<Vec<Part>> {
        // The intercept's column of ones: one array as long as the longest batch and a slice
        // of it per batch (at mean 0 and deviation 1 its values are read as they are), not 8
        // bytes per row of its own.
        let longest = group.iter().map(RecordBatch::num_rows).max().unwrap_or(0);
        let ones = Float64Array::from(vec![1.0; longest]);
        group
            .par_iter()
            .map(|batch| {
                let (rows, mut columns) = self.set.design_columns(batch)?;
                let y = self.label(batch, &rows)?;
                let intercept = DesignColumn::Raw {
                    values: ones.slice(0, y.len()),
                    mean: 0.0,
                    std: 1.0,
                };
                columns.insert(0, intercept);
                let weight = self
                    .class_weights
                    .map(|(wp, wn)| y.iter().map(|&v| if v == 1.0 { wp } else { wn }).collect());
                Ok(Part { columns, y, weight })
            })
            .collect()
    }
}

fn blocks(parts: &[Part]) -> Vec<Block<'_>> {
    parts
        .iter()
        .map(|p| Block {
            columns: p.columns.iter().map(DesignColumn::column).collect(),
            y: &p.y,
            weight: p.weight.as_deref(),
        })
        .collect()
}

/// A source too large for memory, read again for every pass of the fit.
struct Streamed<'a> {
    source: &'a dyn Source,
    design: &'a Design,
}

impl FitRows for Streamed<'_> {
    type Error = FitFailure;

    fn counts(&self) -> Result<Counts, FitFailure> {
        let design = self.design.clone();
        Ok(run(self.source, &CountPass { design })?)
    }

    fn sums(&self, kept: &[usize], beta: &[f64], hessian: bool) -> Result<Sums, FitFailure> {
        let step = StepPass {
            design: self.design.clone(),
            kept: kept.to_vec(),
            beta: beta.to_vec(),
            hessian,
        };
        Ok(run(self.source, &step)?)
    }

    fn first<T: Send>(
        &self,
        visit: &(dyn Fn(&[Block]) -> T + Sync),
    ) -> Result<Option<T>, FitFailure> {
        let mut out = None;
        self.source.first(&mut |group| {
            out = Some(self.design.parts(group).map(|parts| visit(&blocks(&parts))));
        })?;
        Ok(out.transpose()?)
    }
}

/// The pass that counts the rows and the positive ones.
#[derive(Debug, Serialize, Deserialize)]
pub struct CountPass {
    design: Design,
}

impl Pass for CountPass {
    const NAME: &'static str = "logistic_counts";
    type State = Counts;

    fn zero(&self) -> Counts {
        Counts::default()
    }

    fn add(&self, state: &mut Counts, batch: &RecordBatch) -> Result<()> {
        let parts = self.design.parts(std::slice::from_ref(batch))?;
        *state = state.merge(Counts::of(&blocks(&parts)));
        Ok(())
    }

    fn merge(&self, state: &mut Counts, other: Counts) {
        *state = state.merge(other);
    }
}

/// One step's pass: the gradient at `beta`, and with `hessian` the Hessian and the
/// log-likelihood there.
#[derive(Debug, Serialize, Deserialize)]
pub struct StepPass {
    design: Design,
    kept: Vec<usize>,
    beta: Vec<f64>,
    hessian: bool,
}

impl Pass for StepPass {
    const NAME: &'static str = "logistic_step";
    type State = Sums;

    fn zero(&self) -> Sums {
        Sums::zero(self.kept.len(), self.hessian)
    }

    fn add(&self, state: &mut Sums, batch: &RecordBatch) -> Result<()> {
        let parts = self.design.parts(std::slice::from_ref(batch))?;
        let part = sums(&blocks(&parts), &self.kept, &self.beta, self.hessian);
        *state = std::mem::replace(state, Sums::zero(0, false)).merge(part);
        Ok(())
    }

    fn merge(&self, state: &mut Sums, other: Sums) {
        *state = std::mem::replace(state, Sums::zero(0, false)).merge(other);
    }
}

/// The pass after the fit: the rows' scores at `coef`, binned, and each design column's
/// range.
#[derive(Debug, Serialize, Deserialize)]
pub struct SummaryPass {
    design: Design,
    coef: Vec<f64>,
}

impl Pass for SummaryPass {
    const NAME: &'static str = "logistic_summary";
    type State = Summary;

    fn zero(&self) -> Summary {
        Summary::new(Scores::Exact(vec![]))
    }

    fn add(&self, state: &mut Summary, batch: &RecordBatch) -> Result<()> {
        let parts = self.design.parts(std::slice::from_ref(batch))?;
        state.add(&parts, &self.coef, true);
        state.cap();
        Ok(())
    }

    fn merge(&self, state: &mut Summary, other: Summary) {
        state.scores.merge(other.scores);
        merge_ranges(&mut state.ranges, other.ranges);
        state.cap();
    }
}

/// Rows whose scores a [`SummaryPass`] keeps exactly: up to this many rows read again for
/// every pass, or left on a cluster, get the exact AUC, and a partition's state stays a
/// few megabytes.
const EXACT_SCORES: usize = 1 << 12;

/// Why a fit failed: the fit itself, kept apart from reading the rows so that the message
/// can name the features a separation comes from.
enum FitFailure {
    Fit(LogisticError),
    Read(DataFusionError),
}

impl From<LogisticError> for FitFailure {
    fn from(e: LogisticError) -> Self {
        FitFailure::Fit(e)
    }
}

impl From<DataFusionError> for FitFailure {
    fn from(e: DataFusionError) -> Self {
        FitFailure::Read(e)
    }
}

/// The error of a failed fit; `names` are the design columns', intercept first.
fn failed(e: FitFailure, names: &[String]) -> DataFusionError {
    match e {
        FitFailure::Read(e) => e,
        FitFailure::Fit(e) => {
            let features = match &e {
                LogisticError::Separation(columns) => named(columns, names),
                _ => String::new(),
            };
            if features.is_empty() {
                bad_input(e.to_string())
            } else {
                bad_input(format!("{e}: {features}"))
            }
        }
    }
}

/// The features (or `feature=level`s) of design `columns`, comma-separated, the intercept
/// left out: it separates nothing by itself.
fn named(columns: &[usize], names: &[String]) -> String {
    columns
        .iter()
        .filter(|&&j| j > 0)
        .map(|&j| names[j].as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The warning for the design `columns` whose coefficients ran off to infinity under
/// quasi-complete separation.
fn separation_warning(columns: &[usize], names: &[String]) -> String {
    let features = match named(columns, names) {
        none if none.is_empty() => names[0].clone(),
        features => features,
    };
    if columns.len() == 1 {
        format!(
            "quasi-complete separation: {features} predicts the class of some training rows \
             exactly, so its coefficient has no finite estimate and is reported at the large \
             value where the fit stopped, with a NULL standard error (add a penalty, e.g. \
             l2_reg = 1, for a finite estimate)"
        )
    } else {
        format!(
            "quasi-complete separation: {features} predict the class of some training rows \
             exactly, so their coefficients have no finite estimates and are reported at the \
             large values where the fit stopped, with NULL standard errors (add a penalty, \
             e.g. l2_reg = 1, for finite estimates)"
        )
    }
}

/// What the report needs of the fitted rows: their probabilities and labels, and the range
/// of each design column (to tell a constant column from a collinear one).
#[derive(Debug, Serialize, Deserialize)]
pub struct Summary {
    #[serde(with = "sparse_bins")]
    scores: Scores,
    ranges: Vec<(f64, f64)>,
}

/// Steps of the probabilities' histogram when the rows are not kept.
pub(crate) const AUC_BINS: usize = 1 << 20;

/// The probabilities and labels of the rows, for the metrics (here and in EVALUATE).
#[derive(Debug)]
pub(crate) enum Scores {
    /// Every row's, when the rows are in memory anyway.
    Exact(Vec<(f64, f64)>),
    /// Counts of the positive and the negative rows per probability step, and the sums
    /// behind log loss and accuracy: a few megabytes however many rows there are.
    Binned {
        positive: Vec<u64>,
        negative: Vec<u64>,
        loss: f64,
        correct: u64,
    },
}

impl Scores {
    /// Bytes one row takes in [`Scores::Exact`].
    pub(crate) const PAIR_BYTES: usize = 16;
    /// Bytes of [`Scores::Binned`], however many rows.
    pub(crate) const BINNED_BYTES: usize = 2 * AUC_BINS * 8;

    pub(crate) fn binned() -> Self {
        Scores::Binned {
            positive: vec![0; AUC_BINS],
            negative: vec![0; AUC_BINS],
            loss: 0.0,
            correct: 0,
        }
    }

    /// The rows as [`Scores::Binned`].
    pub(crate) fn into_binned(self) -> Self {
        let Scores::Exact(pairs) = self else {
            return self;
        };
        let mut binned = Scores::binned();
        // A chunk at a time, not a second copy of every row.
        for chunk in pairs.chunks(1 << 14) {
            let (p, y): (Vec<f64>, Vec<f64>) = chunk.iter().copied().unzip();
            binned.add(&p, &y);
        }
        binned
    }

    /// Adds `other`'s rows; binned if either is.
    pub(crate) fn merge(&mut self, other: Scores) {
        match (&mut *self, other) {
            (Scores::Exact(pairs), Scores::Exact(more)) => pairs.extend(more),
            (Scores::Exact(_), binned @ Scores::Binned { .. }) => {
                let exact = std::mem::replace(self, binned);
                self.merge(exact);
            }
            (
                Scores::Binned {
                    positive,
                    negative,
                    loss,
                    correct,
                },
                more,
            ) => {
                let Scores::Binned {
                    positive: p,
                    negative: n,
                    loss: l,
                    correct: c,
                } = more.into_binned()
                else {
                    return;
                };
                for (a, b) in positive.iter_mut().zip(p).chain(negative.iter_mut().zip(n)) {
                    *a += b;
                }
                *loss += l;
                *correct += c;
            }
        }
    }

    /// How many rows.
    pub(crate) fn rows(&self) -> usize {
        match self {
            Scores::Exact(pairs) => pairs.len(),
            Scores::Binned {
                positive, negative, ..
            } => (positive.iter().sum::<u64>() + negative.iter().sum::<u64>()) as usize,
        }
    }

    /// True positives, false positives and false negatives at probability 0.5 (exact when
    /// binned too: 0.5 is a step's edge).
    pub(crate) fn confusion(&self) -> (u64, u64, u64) {
        match self {
            Scores::Exact(pairs) => pairs.iter().fold((0, 0, 0), |(tp, fp, fn_), &(p, y)| {
                match (p >= 0.5, y == 1.0) {
                    (true, true) => (tp + 1, fp, fn_),
                    (true, false) => (tp, fp + 1, fn_),
                    (false, true) => (tp, fp, fn_ + 1),
                    (false, false) => (tp, fp, fn_),
                }
            }),
            Scores::Binned {
                positive, negative, ..
            } => {
                let half = AUC_BINS / 2;
                let sum = |v: &[u64]| v.iter().sum::<u64>();
                (
                    sum(&positive[half..]),
                    sum(&negative[half..]),
                    sum(&positive[..half]),
                )
            }
        }
    }

    pub(crate) fn add(&mut self, p: &[f64], y: &[f64]) {
        match self {
            Scores::Exact(pairs) => pairs.extend(p.iter().copied().zip(y.iter().copied())),
            Scores::Binned {
                positive,
                negative,
                loss,
                correct,
            } => {
                for (&p, &y) in p.iter().zip(y) {
                    let bin = ((p * AUC_BINS as f64) as usize).min(AUC_BINS - 1);
                    if y == 1.0 {
                        positive[bin] += 1;
                    } else {
                        negative[bin] += 1;
                    }
                }
                if !p.is_empty() {
                    *loss += log_loss(p, y) * p.len() as f64;
                }
                *correct += correct_count(p, y);
            }
        }
    }

    /// AUC, log loss and accuracy.
    pub(crate) fn metrics(self) -> Vec<(String, f64)> {
        let (auc, log_loss, accuracy) = match self {
            Scores::Exact(pairs) => {
                let n = pairs.len() as f64;
                // Summed in log_loss's chunks, so the two give the same value.
                let (losses, correct): (Vec<f64>, Vec<u64>) = pairs
                    .par_chunks(LOSS_CHUNK)
                    .map(|c| {
                        let loss = c.iter().map(|&(p, y)| row_loss(p, y)).sum::<f64>();
                        let correct = c.iter().filter(|&&(p, y)| is_correct(p, y)).count();
                        (loss, correct as u64)
                    })
                    .unzip();
                (
                    auc(&pairs),
                    losses.iter().sum::<f64>() / n,
                    correct.iter().sum::<u64>() as f64 / n,
                )
            }
            Scores::Binned {
                positive,
                negative,
                loss,
                correct,
            } => {
                let n = (positive.iter().sum::<u64>() + negative.iter().sum::<u64>()) as f64;
                (
                    binned_auc(&positive, &negative),
                    loss / n,
                    correct as f64 / n,
                )
            }
        };
        vec![
            ("auc".to_string(), auc),
            ("log_loss".to_string(), log_loss),
            ("accuracy".to_string(), accuracy),
        ]
    }
}

impl Summary {
    fn new(scores: Scores) -> Self {
        Self {
            scores,
            ranges: vec![],
        }
    }

    /// Adds the rows of `parts`, scored with `coef`, and with `ranges` each design column's
    /// (lowest, highest) value.
    fn add(&mut self, parts: &[Part], coef: &[f64], ranges: bool) {
        let blocks = blocks(parts);
        match &mut self.scores {
            // Every block scored at once, in parallel, straight into its rows' places: only
            // the pairs are held for every row.
            Scores::Exact(pairs) => {
                let (start, rows) = (pairs.len(), blocks.iter().map(|b| b.y.len()).sum());
                // Written in place by the blocks' threads, not first zeroed by this one (a
                // tenth of the fit at 10M rows, most of it the new pages' faults).
                pairs.reserve(rows);
                let places = split_lengths(
                    &mut pairs.spare_capacity_mut()[..rows],
                    blocks.iter().map(|b| b.y.len()),
                );
                blocks.par_iter().zip(places).for_each(|(block, place)| {
                    let p = probabilities(block, coef);
                    assert_eq!(p.len(), place.len(), "a probability per row");
                    for (slot, pair) in place
                        .iter_mut()
                        .zip(p.into_iter().zip(block.y.iter().copied()))
                    {
                        slot.write(pair);
                    }
                });
                // SAFETY: the places cover the `rows` slots after the pairs, and each was
                // written above (one probability per row of its block, asserted).
                unsafe { pairs.set_len(start + rows) };
            }
            binned => {
                for block in &blocks {
                    binned.add(&probabilities(block, coef), block.y);
                }
            }
        }
        // A block without rows has no range (and infinities do not travel as JSON).
        for block in blocks.iter().filter(|b| ranges && !b.y.is_empty()) {
            merge_ranges(
                &mut self.ranges,
                block.columns.par_iter().map(Column::range).collect(),
            );
        }
    }
}

impl Summary {
    /// Bins the scores once there are more than [`EXACT_SCORES`].
    fn cap(&mut self) {
        if matches!(&self.scores, Scores::Exact(pairs) if pairs.len() > EXACT_SCORES) {
            let exact = std::mem::replace(&mut self.scores, Scores::Exact(vec![]));
            self.scores = exact.into_binned();
        }
    }
}

/// Widens each of `ranges` to take in `more`'s; empty means no rows yet.
fn merge_ranges(ranges: &mut Vec<(f64, f64)>, more: Vec<(f64, f64)>) {
    if ranges.is_empty() {
        *ranges = more;
    } else if !more.is_empty() {
        for (a, b) in ranges.iter_mut().zip(more) {
            *a = (a.0.min(b.0), a.1.max(b.1));
        }
    }
}

/// Serde for scores as a pass's state: exact pairs as they are, binned ones as the steps
/// that hold rows, which are few beside [`AUC_BINS`] in a partition.
mod sparse_bins {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{AUC_BINS, Scores};

    #[derive(Serialize, Deserialize)]
    enum Wire {
        /// (probability, label) of each row.
        Exact(Vec<(f64, f64)>),
        Binned {
            /// (step, positive rows, negative rows) of each step with rows.
            steps: Vec<(usize, u64, u64)>,
            loss: f64,
            correct: u64,
        },
    }

    pub fn serialize<S: Serializer>(scores: &Scores, s: S) -> Result<S::Ok, S::Error> {
        match scores {
            Scores::Exact(pairs) => Wire::Exact(pairs.clone()),
            Scores::Binned {
                positive,
                negative,
                loss,
                correct,
            } => Wire::Binned {
                steps: positive
                    .iter()
                    .zip(negative)
                    .enumerate()
                    .filter(|(_, (p, n))| **p + **n > 0)
                    .map(|(i, (p, n))| (i, *p, *n))
                    .collect(),
                loss: *loss,
                correct: *correct,
            },
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Scores, D::Error> {
        match Wire::deserialize(d)? {
            Wire::Exact(pairs) => Ok(Scores::Exact(pairs)),
            Wire::Binned {
                steps,
                loss,
                correct,
            } => {
                let (mut positive, mut negative) = (vec![0; AUC_BINS], vec![0; AUC_BINS]);
                for (i, p, n) in steps {
                    if i >= AUC_BINS {
                        return Err(D::Error::custom("a score step out of range"));
                    }
                    positive[i] = p;
                    negative[i] = n;
                }
                Ok(Scores::Binned {
                    positive,
                    negative,
                    loss,
                    correct,
                })
            }
        }
    }
}

/// Area under the ROC curve from counts of positive and negative rows per probability
/// step, in increasing order: rows of one step count as tied.
fn binned_auc(positive: &[u64], negative: &[u64]) -> f64 {
    let (mut below, mut wins) = (0.0, 0.0);
    for (&pos, &neg) in positive.iter().zip(negative) {
        wins += pos as f64 * (below + neg as f64 / 2.0);
        below += neg as f64;
    }
    let pos = positive.iter().sum::<u64>() as f64;
    wins / (pos * below)
}

/// Rows per partial sum of [`log_loss`].
const LOSS_CHUNK: usize = 1 << 14;

/// Mean negative log-likelihood, probabilities clipped as scikit-learn's `log_loss`. Summed
/// in fixed chunks, so the value does not depend on the number of threads.
pub fn log_loss(p: &[f64], y: &[f64]) -> f64 {
    let sums: Vec<f64> = p
        .par_chunks(LOSS_CHUNK)
        .zip(y.par_chunks(LOSS_CHUNK))
        .map(|(p, y)| p.iter().zip(y).map(|(&p, &y)| row_loss(p, y)).sum::<f64>())
        .collect();
    sums.iter().sum::<f64>() / p.len() as f64
}

/// One row's negative log-likelihood, its probability clipped to [ε, 1 - ε].
fn row_loss(p: f64, y: f64) -> f64 {
    let eps = f64::EPSILON;
    let p = p.clamp(eps, 1.0 - eps);
    // One logarithm per row: for a 0/1 label the other term is exactly 0.
    if y == 1.0 {
        -p.ln()
    } else if y == 0.0 {
        -(1.0 - p).ln()
    } else {
        -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
    }
}

/// Share of rows whose probability is on the right side of 0.5.
pub fn accuracy(p: &[f64], y: &[f64]) -> f64 {
    correct_count(p, y) as f64 / p.len() as f64
}

/// Rows whose probability is on the right side of 0.5.
fn correct_count(p: &[f64], y: &[f64]) -> u64 {
    p.iter().zip(y).filter(|&(&p, &y)| is_correct(p, y)).count() as u64
}

/// Whether probability `p` is on the side of 0.5 that label `y` is.
fn is_correct(p: f64, y: f64) -> bool {
    (p >= 0.5) == (y == 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binned_auc_agrees_with_exact_on_distinct_steps() {
        let pairs = [(0.1, 0.0), (0.4, 0.0), (0.35, 1.0), (0.8, 1.0), (0.8, 0.0)];
        let mut scores = Scores::binned();
        let (p, y): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
        scores.add(&p, &y);
        let binned = scores.metrics();
        let exact = Scores::Exact(pairs.to_vec()).metrics();
        for ((name, b), (_, e)) in binned.iter().zip(&exact) {
            assert!((b - e).abs() < 1e-12, "{name}: {b} against {e}");
        }
    }

    #[test]
    fn merged_scores_are_binned_when_one_is() {
        let (p, y) = ([0.1, 0.7, 0.5, 0.3], [0.0, 1.0, 0.0, 1.0]);
        let mut exact = Scores::Exact(vec![]);
        exact.add(&p[..2], &y[..2]);
        let mut binned = Scores::binned();
        binned.add(&p[2..], &y[2..]);
        exact.merge(binned);
        assert!(matches!(exact, Scores::Binned { .. }));
        assert_eq!(exact.rows(), 4);
        // 0.7 and 0.5 are positive predictions, one right; 0.3 a missed positive.
        assert_eq!(exact.confusion(), (1, 1, 1));
        let all = Scores::Exact(p.iter().copied().zip(y).collect());
        assert_eq!(all.confusion(), (1, 1, 1));
        for ((name, b), (_, e)) in exact.metrics().iter().zip(&all.metrics()) {
            assert!((b - e).abs() < 1e-12, "{name}: {b} against {e}");
        }
    }

    #[test]
    fn log_loss_and_accuracy() {
        let p = [0.9, 0.2, 0.6];
        let y = [1.0, 0.0, 0.0];
        let expected = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln()) / 3.0;
        assert!((log_loss(&p, &y) - expected).abs() < 1e-15);
        assert!((accuracy(&p, &y) - 2.0 / 3.0).abs() < 1e-15);
    }
}
