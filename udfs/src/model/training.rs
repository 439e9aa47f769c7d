//! What every supervised model does before it fits: find the label, decide which rows count,
//! and fit the encoding of the features on those rows.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Schema};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation, human_readable_size,
};
use std::sync::Arc;

use super::Report;
use super::encoding::{FeatureEncoding, FeatureStats, as_f64, as_text, is_categorical};
use super::pass::{Pass, Remote, run};
use crate::error::bad_input_err;
use crate::kernels::logistic::Column;
use crate::kernels::moments::all_finite;

/// The rows a model trains on, read as often as its fit needs: a pass visits them in groups
/// of batches, one group in memory at a time, whose batches are worked on in parallel.
pub trait Source: Sync {
    fn schema(&self) -> &Schema;

    /// All the batches when they are held in memory, so a fit can keep what it derives from
    /// them between passes instead of reading them again.
    fn resident(&self) -> Option<&[RecordBatch]>;

    /// Calls `visit` on every group of batches in turn; stops at the first error.
    fn scan(&self, visit: &mut dyn FnMut(&[RecordBatch]) -> Result<()>) -> Result<()>;

    /// Calls `visit` on the first group only; false when there is none.
    fn first(&self, visit: &mut dyn FnMut(&[RecordBatch])) -> Result<bool>;

    /// Where the rows stay when they are on a cluster: a fit's passes then run there (see
    /// [`super::pass::run`]); `None` for rows this process reads.
    fn remote(&self) -> Option<&dyn Remote> {
        None
    }

    /// Takes `bytes` more of the session's memory pool into `held` (a new reservation when
    /// `None`), for what a fit keeps of every row between passes, beyond the batches the
    /// source holds itself. A source without a pool takes nothing. The error says how large
    /// the pool is.
    fn reserve(&self, held: &mut Option<MemoryReservation>, bytes: usize) -> Result<(), Full> {
        let _ = (held, bytes);
        Ok(())
    }
}

/// [`Source::reserve`] from `pool`.
pub fn reserve_in(
    pool: &Arc<dyn MemoryPool>,
    held: &mut Option<MemoryReservation>,
    bytes: usize,
) -> Result<(), Full> {
    held.get_or_insert_with(|| {
        MemoryConsumer::new("CREATE MODEL (rows a fit keeps)").register(pool)
    })
    .try_grow(bytes)
    .map_err(|_| Full::from(pool.memory_limit()))
}

/// A memory pool without room for a reservation: its limit, when it has one.
#[derive(Debug, Clone, Copy)]
pub struct Full(pub Option<usize>);

impl From<MemoryLimit> for Full {
    fn from(limit: MemoryLimit) -> Self {
        match limit {
            MemoryLimit::Finite(limit) => Full(Some(limit)),
            _ => Full(None),
        }
    }
}

/// What a fit keeps in memory of every training row between passes, held in the session's
/// memory pool while it trains; it grows as the rows are read.
pub struct Held<'a> {
    source: &'a dyn Source,
    /// The model type and what it keeps per row, for the error.
    model: &'static str,
    what: &'static str,
    rows: u64,
    bytes: usize,
    reservation: Option<MemoryReservation>,
}

impl<'a> Held<'a> {
    pub fn new(source: &'a dyn Source, model: &'static str, what: &'static str) -> Self {
        Self {
            source,
            model,
            what,
            rows: 0,
            bytes: 0,
            reservation: None,
        }
    }

    /// Takes `row_bytes` for each of `rows` more rows and `extra` bytes besides, before
    /// they are allocated. When the pool has not that much left (or the size overflows), an
    /// error says how much is needed and what to do.
    pub fn grow(&mut self, rows: u64, row_bytes: usize, extra: usize) -> Result<()> {
        let total_rows = self.rows.saturating_add(rows);
        let more = usize::try_from(rows)
            .ok()
            .and_then(|r| r.checked_mul(row_bytes))
            .and_then(|b| b.checked_add(extra));
        let limit = match more.zip(more.and_then(|m| m.checked_add(self.bytes))) {
            Some((more, total)) => match self.source.reserve(&mut self.reservation, more) {
                Ok(()) => {
                    (self.rows, self.bytes) = (total_rows, total);
                    return Ok(());
                }
                Err(Full(limit)) => Some((total, limit)),
            },
            None => None,
        };
        let needed = match limit {
            Some((total, Some(limit))) => format!(
                "about {} for {total_rows} rows, past the memory limit of {}",
                human_readable_size(total),
                human_readable_size(limit)
            ),
            Some((total, _)) => format!(
                "about {} for {total_rows} rows, more than the memory pool has",
                human_readable_size(total)
            ),
            None => format!("more than memory can address for {total_rows} rows"),
        };
        Err(DataFusionError::ResourcesExhausted(format!(
            "{} keeps {} in memory while it trains: {needed}; raise --memory-limit \
             (SET datafusion.runtime.memory_limit) or train on a sample of the rows (e.g. \
             WHERE id % 10 = 0)",
            self.model, self.what,
        )))
    }
}

/// Batches held in memory: one group of all of them.
#[derive(Debug, Clone, Copy)]
pub struct InMemory<'a> {
    pub schema: &'a Schema,
    pub batches: &'a [RecordBatch],
    /// The pool that what a fit keeps besides the batches comes from, if any.
    pub pool: Option<&'a Arc<dyn MemoryPool>>,
}

impl Source for InMemory<'_> {
    fn schema(&self) -> &Schema {
        self.schema
    }

    fn resident(&self) -> Option<&[RecordBatch]> {
        Some(self.batches)
    }

    fn scan(&self, visit: &mut dyn FnMut(&[RecordBatch]) -> Result<()>) -> Result<()> {
        visit(self.batches)
    }

    fn first(&self, visit: &mut dyn FnMut(&[RecordBatch])) -> Result<bool> {
        visit(self.batches);
        Ok(true)
    }

    fn reserve(&self, held: &mut Option<MemoryReservation>, bytes: usize) -> Result<(), Full> {
        self.pool
            .map_or(Ok(()), |pool| reserve_in(pool, held, bytes))
    }
}

/// Most distinct values of a text label worth collecting: enough to say it is not two.
const LABEL_VALUES: usize = 6;

/// The training rows of a query: label, features and the counts of used and skipped rows.
/// Which rows of a batch are used depends on the batch alone (see [`TrainingSet::rows`]), so
/// a source read again for every pass needs not return its batches in the same order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingSet {
    /// The label's name; empty for an unlabelled set.
    pub label: String,
    /// The label's column; `None` for an unlabelled set (clustering).
    pub label_idx: Option<usize>,
    pub feature_idx: Vec<usize>,
    pub features: Vec<FeatureEncoding>,
    /// The distinct values of a text label in the used rows (at most a few).
    pub label_values: BTreeSet<String>,
    /// The numeric columns, which must be finite: the features and a numeric label.
    numeric: Vec<usize>,
    pub rows_used: u64,
    pub rows_null_label: u64,
    pub rows_not_finite: u64,
}

/// A design column of a batch's used rows: encoded, or a numeric feature's values as they
/// are with the mean and standard deviation that standardise them.
#[derive(Debug, Clone)]
pub enum DesignColumn {
    Encoded(Vec<f64>),
    Raw {
        values: Float64Array,
        mean: f64,
        std: f64,
    },
}

impl DesignColumn {
    /// The design's values.
    pub fn encoded(self) -> Vec<f64> {
        match self {
            DesignColumn::Encoded(values) => values,
            raw @ DesignColumn::Raw { .. } => {
                let column = raw.column();
                let mut out = vec![0.0; column.values.len()];
                column.write(&mut out);
                out
            }
        }
    }

    /// The column as the fitting kernels read it.
    pub fn column(&self) -> Column<'_> {
        match self {
            DesignColumn::Encoded(values) => Column::plain(values),
            DesignColumn::Raw { values, mean, std } => Column {
                values: values.values(),
                standardise: Some((*mean, *std)),
            },
        }
    }
}

/// The used rows of one batch.
#[derive(Debug, Clone)]
pub struct Rows {
    /// Per row, whether it is used; `None` when every row is.
    keep: Option<Vec<bool>>,
    null_label: u64,
    not_finite: u64,
    /// The numeric columns as Float64, cast once (other columns are `None`).
    numbers: Vec<Option<ArrayRef>>,
}

impl Rows {
    /// The used rows of one column of the batch.
    pub fn kept<T>(&self, values: impl IntoIterator<Item = T>) -> Vec<T> {
        match &self.keep {
            None => values.into_iter().collect(),
            Some(keep) => values
                .into_iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| v)
                .collect(),
        }
    }

    /// The used values of numeric column `i` of the batch: no copy when every row is used.
    pub fn numeric(&self, i: usize) -> Option<std::borrow::Cow<'_, [f64]>> {
        let values = self.numbers[i]
            .as_ref()?
            .as_primitive::<Float64Type>()
            .values();
        Some(match &self.keep {
            None => std::borrow::Cow::Borrowed(values),
            Some(_) => std::borrow::Cow::Owned(self.kept(values.iter().copied())),
        })
    }

    /// Rows used, skipped for a NULL label, and skipped for a NaN or infinite value.
    pub fn counts(&self, n: usize) -> (u64, u64, u64) {
        let used = self
            .keep
            .as_ref()
            .map_or(n, |k| k.iter().filter(|k| **k).count());
        (used as u64, self.null_label, self.not_finite)
    }
}

impl TrainingSet {
    /// Splits `schema` into the label and the features (every other column, in order),
    /// before any row is read; an error names a missing label or a feature of no usable type.
    pub fn new(schema: &Schema, label: &str) -> Result<Self> {
        let Some((label_idx, _)) = schema.column_with_name(label) else {
            let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return bad_input_err!(
                "label column {label} is not in the training query; its columns are: {}",
                names.join(", ")
            );
        };
        if schema.fields().len() == 1 {
            return bad_input_err!(
                "the training query has only the label {label}; add feature columns to it"
            );
        }
        Self::with_label(schema, label.to_string(), Some(label_idx))
    }

    /// A set of features only, every column of `schema`, for models without a label.
    pub fn unlabelled(schema: &Schema) -> Result<Self> {
        if schema.fields().is_empty() {
            return bad_input_err!("the training query has no columns; select the feature columns");
        }
        Self::with_label(schema, String::new(), None)
    }

    fn with_label(schema: &Schema, label: String, label_idx: Option<usize>) -> Result<Self> {
        let feature_idx: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| Some(i) != label_idx)
            .collect();
        let set = Self {
            label,
            label_idx,
            feature_idx,
            features: vec![],
            label_values: BTreeSet::new(),
            numeric: (0..schema.fields().len())
                .filter(|&i| schema.field(i).data_type().is_numeric())
                .collect(),
            rows_used: 0,
            rows_null_label: 0,
            rows_not_finite: 0,
        };
        set.empty_stats(schema)?;
        Ok(set)
    }

    /// Empty statistics for each feature; an error names a feature of no usable type.
    fn empty_stats(&self, schema: &Schema) -> Result<Vec<FeatureStats>> {
        self.feature_idx
            .iter()
            .map(|&i| {
                let f = schema.field(i);
                FeatureStats::for_type(f.data_type(), f.name())
            })
            .collect()
    }

    /// [`TrainingSet::new`], then one pass over the source that skips rows with a NULL
    /// label or a NaN/infinite number and fits each feature's encoding on the rows left.
    pub fn prepare(source: &dyn Source, label: &str) -> Result<Self> {
        Self::new(source.schema(), label)?.fit(source)
    }

    /// The pass of [`TrainingSet::prepare`] over the source, for a set from
    /// [`TrainingSet::new`].
    pub fn fit(self, source: &dyn Source) -> Result<Self> {
        let schema = source.schema();
        let pass = EncodingPass {
            empty: self.empty_stats(schema)?,
            // A boolean label's classes are known without reading it as text.
            text_label: self.label_idx.filter(|&l| {
                let t = schema.field(l).data_type();
                is_categorical(t) && *t != DataType::Boolean
            }),
            set: self,
        };
        let state = run(source, &pass)?;
        let mut set = pass.set;
        set.rows_used = state.used;
        set.rows_null_label = state.null_label;
        set.rows_not_finite = state.not_finite;
        set.label_values = state.label_values;
        set.some_rows_used()?;
        set.features = state
            .stats
            .into_iter()
            .zip(&set.feature_idx)
            .map(|(s, &i)| s.finish(schema.field(i).name(), schema.field(i).data_type()))
            .collect::<Result<Vec<_>>>()?;
        Ok(set)
    }

    /// An error when every row was skipped or there were none.
    pub fn some_rows_used(&self) -> Result<()> {
        if self.rows_used > 0 {
            return Ok(());
        }
        let (null_label, not_finite) = (self.rows_null_label, self.rows_not_finite);
        let why = if null_label + not_finite == 0 {
            "the training query returned no rows".to_string()
        } else {
            format!(
                "every row was skipped ({null_label} with a NULL label, {not_finite} with NaN \
                 or infinite values)"
            )
        };
        bad_input_err!("nothing to train on: {why}")
    }

    /// The feature columns of `batch`, in order.
    pub fn feature_columns(&self, batch: &RecordBatch) -> Vec<ArrayRef> {
        self.feature_idx
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect()
    }

    /// Which rows of `batch` are used: those with a label and only finite numbers. Once
    /// [`TrainingSet::fit`] has read every row and found no NaN or infinity, the source's
    /// rows (which every pass reads the same) are known finite, and the check (a read of
    /// every numeric column) is skipped.
    pub fn rows(&self, batch: &RecordBatch) -> Result<Rows> {
        let known_finite = self.rows_used > 0 && self.rows_not_finite == 0;
        self.rows_checking(batch, if known_finite { &[] } else { &self.numeric })
    }

    /// [`TrainingSet::rows`], checking only the numeric columns `checked` for values that
    /// are not finite.
    fn rows_checking(&self, batch: &RecordBatch, checked: &[usize]) -> Result<Rows> {
        let schema = batch.schema();
        let mut keep: Option<Vec<bool>> = self
            .label_idx
            .and_then(|l| batch.column(l).logical_nulls())
            .map(|nulls| nulls.iter().collect());
        let null_label = keep
            .as_ref()
            .map_or(0, |k| k.iter().filter(|k| !**k).count() as u64);
        let mut not_finite = 0u64;
        let mut numbers: Vec<Option<ArrayRef>> = vec![None; batch.num_columns()];
        for &i in &self.numeric {
            let cast = as_f64(batch.column(i), schema.field(i).name())?;
            let x = cast.as_primitive::<Float64Type>();
            if checked.contains(&i) && !all_finite(x.values()) {
                let keep = keep.get_or_insert_with(|| vec![true; batch.num_rows()]);
                for (r, k) in keep.iter_mut().enumerate() {
                    if *k && x.is_valid(r) && !x.value(r).is_finite() {
                        *k = false;
                        not_finite += 1;
                    }
                }
            }
            numbers[i] = Some(cast);
        }
        if keep.as_ref().is_some_and(|k| k.iter().all(|k| *k)) {
            keep = None;
        }
        Ok(Rows {
            keep,
            null_label,
            not_finite,
            numbers,
        })
    }

    /// Names of the design columns.
    pub fn design_names(&self) -> Vec<String> {
        self.features
            .iter()
            .flat_map(|f| f.design_names())
            .collect()
    }

    /// The used rows of `batch` and their design columns.
    pub fn design(&self, batch: &RecordBatch) -> Result<(Rows, Vec<Vec<f64>>)> {
        let (rows, columns) = self.design_columns(batch)?;
        Ok((
            rows,
            columns.into_iter().map(DesignColumn::encoded).collect(),
        ))
    }

    /// As [`TrainingSet::design`], but a numeric feature without NULLs in a batch whose rows
    /// are all used stays the batch's own values, to be standardised by whoever reads them:
    /// a fit that keeps its design in memory then holds no second copy of the rows.
    pub fn design_columns(&self, batch: &RecordBatch) -> Result<(Rows, Vec<DesignColumn>)> {
        let rows = self.rows(batch)?;
        let mut columns = Vec::new();
        for (f, &c) in self.features.iter().zip(&self.feature_idx) {
            match (f, &rows.numbers[c]) {
                (FeatureEncoding::Numeric { mean, std, .. }, Some(values))
                    if rows.keep.is_none() && values.null_count() == 0 =>
                {
                    columns.push(DesignColumn::Raw {
                        values: values.as_primitive::<Float64Type>().clone(),
                        mean: *mean,
                        std: *std,
                    });
                }
                _ => {
                    let mut encoded = Vec::new();
                    f.encode(batch.column(c), &mut encoded)?;
                    columns.extend(
                        encoded
                            .into_iter()
                            .map(|c| DesignColumn::Encoded(rows.kept(c))),
                    );
                }
            }
        }
        Ok((rows, columns))
    }

    /// The label's column; an error for an unlabelled set.
    pub fn label_column(&self) -> Result<usize> {
        match self.label_idx {
            Some(l) => Ok(l),
            None => bad_input_err!("this model needs a label column"),
        }
    }

    /// The label of the used rows as numbers; the label must be numeric.
    pub fn label_numbers(&self, rows: &Rows) -> Result<Vec<f64>> {
        match &rows.numbers[self.label_column()?] {
            Some(y) => Ok(rows.kept(y.as_primitive::<Float64Type>().values().iter().copied())),
            None => bad_input_err!("label {} is not numeric", self.label),
        }
    }

    /// Why rows were skipped, in words; empty when none were.
    pub fn skipped_reason(&self) -> String {
        let mut parts = Vec::new();
        if self.rows_null_label > 0 {
            parts.push(format!("{} with a NULL label", self.rows_null_label));
        }
        if self.rows_not_finite > 0 {
            parts.push(format!(
                "{} with NaN or infinite values",
                self.rows_not_finite
            ));
        }
        parts.join("; ")
    }

    pub fn rows_skipped(&self) -> u64 {
        self.rows_null_label + self.rows_not_finite
    }

    /// The training report: these rows, with a fit's warnings and metrics.
    pub fn report(&self, warnings: Vec<String>, metrics: Vec<(String, f64)>) -> Report {
        Report {
            rows_used: self.rows_used,
            rows_skipped: self.rows_skipped(),
            skipped_because: self.skipped_reason(),
            warnings,
            metrics,
        }
    }
}

/// The pass of [`TrainingSet::fit`]: which rows are used, and each feature's statistics and
/// the first few values of a text label over them.
#[derive(Debug, Serialize, Deserialize)]
pub struct EncodingPass {
    set: TrainingSet,
    empty: Vec<FeatureStats>,
    /// The label's column when it is text (not boolean).
    text_label: Option<usize>,
}

/// The state of an [`EncodingPass`].
#[derive(Debug, Serialize, Deserialize)]
pub struct EncodingState {
    used: u64,
    null_label: u64,
    not_finite: u64,
    stats: Vec<FeatureStats>,
    label_values: BTreeSet<String>,
}

impl EncodingPass {
    /// The statistics of each feature over the used rows of `batch`.
    fn stats(&self, batch: &RecordBatch, rows: &Rows) -> Result<Vec<FeatureStats>> {
        let schema = batch.schema();
        let mut stats = self.empty.clone();
        for (s, &i) in stats.iter_mut().zip(&self.set.feature_idx) {
            let column = rows.numbers[i].as_ref().unwrap_or(batch.column(i));
            s.update(column, rows.keep.as_deref(), schema.field(i).name())?;
        }
        Ok(stats)
    }
}

impl Pass for EncodingPass {
    const NAME: &'static str = "encoding";
    type State = EncodingState;

    fn zero(&self) -> EncodingState {
        EncodingState {
            used: 0,
            null_label: 0,
            not_finite: 0,
            stats: self.empty.clone(),
            label_values: BTreeSet::new(),
        }
    }

    fn add(&self, state: &mut EncodingState, batch: &RecordBatch) -> Result<()> {
        let set = &self.set;
        // The features' statistics show whether their values were finite (a block's sum is
        // finite only if every value in it is), so at first only the other numeric columns
        // are checked; a batch that holds a NaN or an infinity is taken again with every row
        // checked. Most batches are read once instead of twice.
        let others: Vec<usize> = (set.numeric.iter())
            .filter(|i| !set.feature_idx.contains(i))
            .copied()
            .collect();
        let mut rows = set.rows_checking(batch, &others)?;
        let mut stats = self.stats(batch, &rows)?;
        if !stats.iter().all(FeatureStats::is_finite) {
            rows = set.rows_checking(batch, &set.numeric)?;
            stats = self.stats(batch, &rows)?;
        }
        for (s, batch_stats) in state.stats.iter_mut().zip(stats) {
            s.merge(batch_stats);
        }
        if let Some(label_idx) = self.text_label {
            let text = as_text(batch.column(label_idx), &set.label)?;
            for v in rows
                .kept(text.as_string::<i32>().iter())
                .into_iter()
                .flatten()
            {
                if state.label_values.len() < LABEL_VALUES && !state.label_values.contains(v) {
                    state.label_values.insert(v.to_string());
                }
            }
        }
        let (used, null_label, not_finite) = rows.counts(batch.num_rows());
        state.used += used;
        state.null_label += null_label;
        state.not_finite += not_finite;
        Ok(())
    }

    fn merge(&self, state: &mut EncodingState, other: EncodingState) {
        state.used += other.used;
        state.null_label += other.null_label;
        state.not_finite += other.not_finite;
        for (s, o) in state.stats.iter_mut().zip(other.stats) {
            s.merge(o);
        }
        for v in other.label_values {
            if state.label_values.len() < LABEL_VALUES {
                state.label_values.insert(v);
            }
        }
    }
}
