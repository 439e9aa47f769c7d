//! Matrix factorization models: user and item factors from (user, item, value) rows, for
//! recommendations and similar items.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, UInt32Type};
use datafusion::common::Result;
use datafusion::logical_expr::{AggregateUDF, LogicalPlan};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::options::Options;
use super::training::{Held, Source};
use super::{Model, ModelKind, Report, Scored, Scoring, skipped_because};
use crate::error::{Error, bad_input, bad_input_err, store_err};
use crate::evaluate::Metrics;
use crate::evaluate_ranking::{self, EvaluateRanking};
use crate::kernels::als::{self, AlsOptions, Csr, Duplicates, Factors, Feedback};
use crate::sql::{appended, labelled_metrics, metrics_plan};

/// Items (by index) with their scores, best first.
pub type Ranking = Vec<(f64, usize)>;

/// The options of a matrix factorization, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixFactorizationSettings {
    pub feedback: Feedback,
    pub factors: usize,
    pub l2_reg: f64,
    pub iterations: usize,
    pub seed: u64,
    /// The user, item and value columns; by position (first, second, third) when `None`.
    pub columns: [Option<String>; 3],
}

/// The ids of one side, sorted: a row's index is its id's position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ids {
    Int(Vec<i64>),
    Text(Vec<String>),
}

impl Default for Ids {
    fn default() -> Self {
        Ids::Int(vec![])
    }
}

impl Ids {
    pub fn len(&self) -> usize {
        match self {
            Ids::Int(v) => v.len(),
            Ids::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Arrow type the ids are given and returned as.
    pub fn data_type(&self) -> DataType {
        match self {
            Ids::Text(_) => DataType::Utf8,
            Ids::Int(_) => DataType::Int64,
        }
    }

    /// The ids at `positions` as an Arrow array.
    pub fn take(&self, positions: impl Iterator<Item = usize>) -> ArrayRef {
        match self {
            // A string array is built from an iterator of known length.
            Ids::Text(v) => Arc::new(StringArray::from_iter_values(
                positions.map(|p| &v[p]).collect::<Vec<_>>(),
            )),
            Ids::Int(v) => Arc::new(Int64Array::from_iter_values(positions.map(|p| v[p]))),
        }
    }

    /// The index of each value of `array` (`None` for NULL or unknown ids); an error if
    /// the array's type cannot hold these ids.
    pub fn positions(&self, array: &ArrayRef, what: &str) -> Result<Vec<Option<u32>>> {
        let mismatch = || {
            bad_input(format!(
                "the model's {what} ids are {}, got {}; cast the argument",
                if matches!(self, Ids::Text(_)) {
                    "text"
                } else {
                    "integers"
                },
                array.data_type()
            ))
        };
        match self {
            Ids::Text(ids) => {
                if !is_text(array.data_type()) {
                    return Err(mismatch());
                }
                let text = cast(array, &DataType::Utf8)?;
                Ok(text
                    .as_string::<i32>()
                    .iter()
                    .map(|v| {
                        v.and_then(|v| {
                            ids.binary_search_by(|id| id.as_str().cmp(v))
                                .ok()
                                .map(|p| p as u32)
                        })
                    })
                    .collect())
            }
            Ids::Int(ids) => {
                if !array.data_type().is_integer() {
                    return Err(mismatch());
                }
                let ints = cast(array, &DataType::Int64)?;
                Ok(ints
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|v| v.and_then(|v| ids.binary_search(&v).ok().map(|p| p as u32)))
                    .collect())
            }
        }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Ids as read from the training rows, before they are indexed.
/// Ids as read, one per row, before they are indexed.
pub(crate) enum RawIds {
    Int(Vec<i64>),
    Text(Vec<String>),
}

impl RawIds {
    /// Empty ids for a column of type `t`; `what` names them in the error.
    pub(crate) fn for_type(t: &DataType, column: &str, what: &str) -> Result<Self> {
        if t.is_integer() {
            Ok(RawIds::Int(vec![]))
        } else if is_text(t) {
            Ok(RawIds::Text(vec![]))
        } else {
            bad_input_err!(
                "column {column} is {t}; {what} must be integers or text (cast them in the \
                 training query)"
            )
        }
    }

    /// Appends the rows of `array` that `keep` marks.
    pub(crate) fn extend(&mut self, array: &ArrayRef, keep: &[bool]) -> Result<()> {
        match self {
            RawIds::Int(v) => {
                let a = cast(array, &DataType::Int64)?;
                let a = a.as_primitive::<Int64Type>();
                v.extend((0..a.len()).filter(|&r| keep[r]).map(|r| a.value(r)));
            }
            RawIds::Text(v) => {
                let a = cast(array, &DataType::Utf8)?;
                let a = a.as_string::<i32>();
                v.extend(
                    (0..a.len())
                        .filter(|&r| keep[r])
                        .map(|r| a.value(r).to_string()),
                );
            }
        }
        Ok(())
    }

    /// The sorted distinct ids and each row's index among them.
    pub(crate) fn index(self) -> (Ids, Vec<u32>) {
        fn sorted<T: Ord + Clone + Send + Sync>(raw: Vec<T>) -> (Vec<T>, Vec<u32>) {
            let mut ids = raw.clone();
            ids.par_sort_unstable();
            ids.dedup();
            let positions = raw
                .par_iter()
                .map(|v| ids.binary_search(v).map_or(0, |p| p as u32))
                .collect();
            (ids, positions)
        }
        match self {
            RawIds::Int(raw) => {
                let (ids, p) = sorted(raw);
                (Ids::Int(ids), p)
            }
            RawIds::Text(raw) => {
                let (ids, p) = sorted(raw);
                (Ids::Text(ids), p)
            }
        }
    }
}

/// The user, item and value columns of the training query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "[String; 3]", into = "[String; 3]")]
pub struct Columns {
    pub user: String,
    pub item: String,
    pub value: String,
}

impl From<[String; 3]> for Columns {
    fn from([user, item, value]: [String; 3]) -> Self {
        Columns { user, item, value }
    }
}

impl From<Columns> for [String; 3] {
    fn from(c: Columns) -> Self {
        [c.user, c.item, c.value]
    }
}

/// A fitted matrix factorization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixFactorizationModel {
    pub columns: Columns,
    /// Explicit ratings or implicit counts (with its confidence weight), stored as
    /// `feedback` and `alpha`.
    #[serde(flatten)]
    pub feedback: Feedback,
    pub factors: usize,
    pub l2_reg: f64,
    pub iterations: usize,
    /// The mean training rating (explicit feedback; 0 for implicit), which the factors'
    /// biases are offsets from.
    #[serde(default)]
    pub mean: f64,
    /// The arrays below live beside the description, as Arrow IPC.
    #[serde(skip)]
    pub users: Ids,
    #[serde(skip)]
    pub items: Ids,
    #[serde(skip)]
    pub fit: Factors,
    /// Per user, the items seen in training (ascending indices).
    #[serde(skip)]
    pub seen: Csr,
    /// Per item, the users who had it in training.
    #[serde(skip)]
    pub item_users: Vec<u32>,
    /// Items by `item_users`, most first (ties by index).
    #[serde(skip)]
    pub popular: Vec<u32>,
}

/// Items by how many users had them, most first (ties by index).
fn by_popularity(item_users: &[u32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..item_users.len() as u32).collect();
    order.sort_by(|&a, &b| {
        item_users[b as usize]
            .cmp(&item_users[a as usize])
            .then(a.cmp(&b))
    });
    order
}

impl ModelKind for MatrixFactorizationModel {
    const NAME: &'static str = "matrix_factorization";
    const OPTIONS: &'static [&'static str] = &[
        "model_type",
        "feedback_type",
        "num_factors",
        "l2_reg",
        "max_iterations",
        "alpha",
        "seed",
        "user_col",
        "item_col",
        "rating_col",
    ];
    const SCORES: &'static [Scoring] = &[Scoring::Predict];
    type Settings = MatrixFactorizationSettings;

    fn settings(options: &Options) -> Result<MatrixFactorizationSettings, Error> {
        let implicit = match options.get("feedback_type") {
            None => false,
            Some(v) if v.is_word("explicit") => false,
            Some(v) if v.is_word("implicit") => true,
            Some(_) => {
                return Err(options.wrong(
                    "feedback_type",
                    "'explicit' (ratings) or 'implicit' (counts of interactions)",
                ));
            }
        };
        let feedback = match (implicit, options.get("alpha")) {
            (false, Some(_)) => {
                return Err(options
                    .error("alpha weighs implicit feedback; it needs feedback_type = 'implicit'"));
            }
            (false, None) => Feedback::Explicit,
            (true, None) => Feedback::Implicit { alpha: 40.0 },
            (true, Some(v)) => match v.as_f64() {
                Some(alpha) if alpha > 0.0 && alpha.is_finite() => Feedback::Implicit { alpha },
                _ => return Err(options.wrong("alpha", "a number > 0")),
            },
        };
        Ok(MatrixFactorizationSettings {
            feedback,
            factors: options.count("num_factors", 1..=1024, 32)?,
            l2_reg: options.penalty("l2_reg", 0.1)?,
            iterations: options.count("max_iterations", 1..=1000, 15)?,
            seed: options.seed()?,
            columns: [
                options.column("user_col")?,
                options.column("item_col")?,
                options.column("rating_col")?,
            ],
        })
    }

    fn train(
        source: &dyn Source,
        settings: &MatrixFactorizationSettings,
    ) -> Result<(Self, Report)> {
        let schema = source.schema();
        let mut columns: [String; 3] = Default::default();
        for (i, (name, given)) in columns.iter_mut().zip(&settings.columns).enumerate() {
            *name = match given {
                Some(c) => c.clone(),
                None if i < schema.fields().len() => schema.field(i).name().clone(),
                None => {
                    return bad_input_err!(
                        "matrix_factorization needs user, item and value columns: the query \
                         has {} column(s); select three, or name them with user_col, item_col \
                         and rating_col",
                        schema.fields().len()
                    );
                }
            };
        }
        let index: Vec<usize> = columns
            .iter()
            .map(|c| {
                schema.index_of(c).map_err(|_| {
                    bad_input(format!(
                        "column {c} is not in the training query; its columns are {}",
                        schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let value_type = schema.field(index[2]).data_type();
        if !value_type.is_numeric() {
            return bad_input_err!(
                "column {} is {value_type}; the rating or count column must be numeric",
                columns[2]
            );
        }
        let mut users = RawIds::for_type(
            schema.field(index[0]).data_type(),
            &columns[0],
            "user and item ids",
        )?;
        let mut items = RawIds::for_type(
            schema.field(index[1]).data_type(),
            &columns[1],
            "user and item ids",
        )?;
        let mut values = Vec::new();
        let (mut null_rows, mut not_finite) = (0u64, 0u64);
        let implicit = matches!(settings.feedback, Feedback::Implicit { .. });
        // ALS reads the interactions many times over: they stay in memory, taken from the
        // pool as they are read.
        let mut held = Held::new(source, Self::NAME, "the interactions and their factors");
        source.scan(&mut |batches| {
            for batch in batches {
                let (u, i) = (batch.column(index[0]), batch.column(index[1]));
                let text: usize = [u, i]
                    .iter()
                    .filter(|c| is_text(c.data_type()))
                    .map(|c| c.get_array_memory_size())
                    .sum();
                held.grow(batch.num_rows() as u64, INTERACTION_BYTES, text)?;
                let v = cast(batch.column(index[2]), &DataType::Float64)?;
                let v = v.as_primitive::<Float64Type>();
                let mut keep = vec![true; batch.num_rows()];
                for (r, k) in keep.iter_mut().enumerate() {
                    if u.is_null(r) || i.is_null(r) || v.is_null(r) {
                        null_rows += 1;
                        *k = false;
                    } else if !v.value(r).is_finite() {
                        not_finite += 1;
                        *k = false;
                    } else if implicit && v.value(r) < 0.0 {
                        return bad_input_err!(
                            "column {} has a negative value ({}); implicit feedback counts \
                             interactions, which cannot be negative: filter such rows out, \
                             or use feedback_type = 'explicit' for ratings",
                            columns[2],
                            v.value(r)
                        );
                    }
                }
                users.extend(u, &keep)?;
                items.extend(i, &keep)?;
                values.extend((0..v.len()).filter(|&r| keep[r]).map(|r| v.value(r)));
            }
            Ok(())
        })?;
        if values.is_empty() {
            return bad_input_err!(
                "no training rows: the query returned none with a user, an item and a value \
                 ({null_rows} had a NULL)"
            );
        }
        let (users, user_of) = users.index();
        let (items, item_of) = items.index();
        // num_factors against the ids found: a factor vector per user and per item.
        let factors = users
            .len()
            .checked_add(items.len())
            .and_then(|n| n.checked_mul(settings.factors))
            .and_then(|n| n.checked_mul(2 * size_of::<f64>()))
            .unwrap_or(usize::MAX);
        held.grow(0, 0, factors)?;
        let duplicates = if implicit {
            Duplicates::Sum
        } else {
            Duplicates::Mean
        };
        let user_items = Csr::from_triples(users.len(), &user_of, &item_of, &values, duplicates);
        let item_users = user_items.transpose(items.len());
        let options = AlsOptions {
            factors: settings.factors,
            l2_reg: settings.l2_reg,
            iterations: settings.iterations,
            seed: settings.seed,
            feedback: settings.feedback,
        };
        let fit = als::fit(&user_items, &item_users, &options);
        let counts: Vec<u32> = (0..items.len())
            .map(|i| (item_users.indptr[i + 1] - item_users.indptr[i]) as u32)
            .collect();

        let pairs = user_items.indices.len();
        let mut metrics = Vec::new();
        if !implicit {
            let squares: f64 = (0..users.len())
                .into_par_iter()
                .map(|u| {
                    let (cols, vals) = user_items.row(u);
                    cols.iter()
                        .zip(vals)
                        .map(|(&i, &r)| (fit.predict(u, i as usize) - r).powi(2))
                        .sum::<f64>()
                })
                .sum();
            metrics.push(("rmse".to_string(), (squares / pairs as f64).sqrt()));
        }
        metrics.extend([
            ("users".to_string(), users.len() as f64),
            ("items".to_string(), items.len() as f64),
            ("pairs".to_string(), pairs as f64),
        ]);
        let mut warnings = Vec::new();
        if pairs < values.len() {
            warnings.push(format!(
                "{} rows repeated a (user, item) pair and were {}",
                values.len() - pairs,
                if implicit { "summed" } else { "averaged" }
            ));
        }
        let report = Report {
            rows_used: values.len() as u64,
            rows_skipped: null_rows + not_finite,
            skipped_because: skipped_because(null_rows, "user, item or value", not_finite),
            warnings,
            metrics,
        };
        Ok((
            Self {
                columns: columns.into(),
                feedback: settings.feedback,
                factors: settings.factors,
                l2_reg: settings.l2_reg,
                iterations: settings.iterations,
                mean: fit.mean,
                users,
                items,
                fit,
                seen: user_items,
                popular: by_popularity(&counts),
                item_users: counts,
            },
            report,
        ))
    }

    fn with_arrays(self, read: &dyn Fn(&str) -> Result<Vec<RecordBatch>>) -> Result<Self> {
        self.with_batches(read)
    }
}

impl Model for MatrixFactorizationModel {
    fn feature_names(&self) -> Vec<&str> {
        vec![&self.columns.user, &self.columns.item]
    }

    fn arrays(&self) -> Result<Vec<(&'static str, Vec<RecordBatch>)>> {
        Ok(self.batches()?.into())
    }

    fn uses(&self, model: &str) -> String {
        format!(
            "recommend({model}, user, k), predict({model}, user, item), SELECT * FROM \
             similar_items({model}, item, k) or SELECT * FROM evaluate({model}, ...)"
        )
    }

    fn score(&self, _scoring: Scoring, columns: &[ArrayRef]) -> Result<ArrayRef> {
        Ok(Arc::new(self.predict(&columns[0], &columns[1])?))
    }

    fn predict_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        let predicted =
            (scored.call)(Scoring::Predict).alias(format!("predicted_{}", self.columns.value));
        appended(input, [predicted])
    }

    /// Implicit feedback: ranking metrics of the top 10 for each user; explicit: the
    /// regression metrics of the predicted ratings (adjusted R² would need the number of
    /// free factors, which the ratings do not pin down: it is left equal to R²).
    fn evaluate_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        match self.feedback {
            Feedback::Implicit { .. } => {
                let aggregate =
                    AggregateUDF::new_from_impl(EvaluateRanking::bound(scored.resolved.clone())?);
                metrics_plan(
                    input,
                    aggregate.call(scored.features.clone()),
                    evaluate_ranking::fields(),
                )
            }
            Feedback::Explicit => labelled_metrics(
                input,
                scored,
                &self.columns.value,
                Metrics::Regression { parameters: 0 },
                |label| Ok(datafusion::logical_expr::cast(label, DataType::Float64)),
            ),
        }
    }
}

impl MatrixFactorizationModel {
    /// The predicted value of each (user, item) pair: a rating for explicit feedback, a
    /// preference for implicit; NULL where either id is NULL or was not in training.
    pub fn predict(&self, users: &ArrayRef, items: &ArrayRef) -> Result<Float64Array> {
        let u = self.users.positions(users, "user")?;
        let i = self.items.positions(items, "item")?;
        Ok(u.iter()
            .zip(&i)
            .map(|(u, i)| Some(self.fit.predict((*u)? as usize, (*i)? as usize)))
            .collect())
    }

    /// The users' factors, one row per user in the order of [`Self::users`].
    pub fn user_factors(&self) -> ArrayView2<'_, f64> {
        self.fit.users.view()
    }

    /// The items' factors, one row per item in the order of [`Self::items`].
    pub fn item_factors(&self) -> ArrayView2<'_, f64> {
        self.fit.items.view()
    }

    /// The best `k` items (best first; all of them when `k` is more) for each user index
    /// of `users`, ranked in parallel blocks, leaving out the items the user had unless
    /// `keep_seen`.
    pub fn recommend_many(&self, users: &[usize], k: usize, keep_seen: bool) -> Vec<Ranking> {
        self.fit.top_k_many(users, k, |u, i| {
            keep_seen || self.seen.row(u).0.binary_search(&(i as u32)).is_err()
        })
    }

    /// The `k` most popular items, with the share of users who had each as its score.
    pub fn popular(&self, k: usize) -> Ranking {
        let users = self.users.len().max(1) as f64;
        self.popular
            .iter()
            .take(k)
            .map(|&i| (f64::from(self.item_users[i as usize]) / users, i as usize))
            .collect()
    }

    /// The batches the store keeps: users (id, factors[, bias]), items (id, users who had
    /// it, factors[, bias]) and the training pairs (user and item index, value).
    pub fn batches(&self) -> Result<[(&'static str, Vec<RecordBatch>); 3]> {
        let side = |ids: &Ids,
                    factors: ArrayView2<f64>,
                    bias: &[f64],
                    extra: Option<ArrayRef>|
         -> Result<RecordBatch> {
            let n = ids.len();
            let mut fields = vec![Field::new("id", ids.data_type(), false)];
            let mut columns = vec![ids.take(0..n)];
            if let Some(users) = extra {
                fields.push(Field::new("users", DataType::UInt32, false));
                columns.push(users);
            }
            for (d, column) in factors.columns().into_iter().enumerate() {
                fields.push(Field::new(format!("f{d}"), DataType::Float64, false));
                columns.push(Arc::new(Float64Array::from_iter_values(
                    column.iter().copied(),
                )));
            }
            if !bias.is_empty() {
                fields.push(Field::new("bias", DataType::Float64, false));
                columns.push(Arc::new(Float64Array::from(bias.to_vec())));
            }
            Ok(RecordBatch::try_new(
                Arc::new(Schema::new(fields)),
                columns,
            )?)
        };
        let mut user_of = Vec::with_capacity(self.seen.indices.len());
        for u in 0..self.seen.rows() {
            user_of.extend(std::iter::repeat_n(u as u32, self.seen.row(u).0.len()));
        }
        let seen = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("user", DataType::UInt32, false),
                Field::new("item", DataType::UInt32, false),
                Field::new("value", DataType::Float64, false),
            ])),
            vec![
                Arc::new(UInt32Array::from(user_of)),
                Arc::new(UInt32Array::from(self.seen.indices.clone())),
                Arc::new(Float64Array::from(self.seen.values.clone())),
            ],
        )?;
        Ok([
            (
                USERS,
                vec![side(
                    &self.users,
                    self.fit.users.view(),
                    &self.fit.user_bias,
                    None,
                )?],
            ),
            (
                ITEMS,
                vec![side(
                    &self.items,
                    self.fit.items.view(),
                    &self.fit.item_bias,
                    Some(Arc::new(UInt32Array::from(self.item_users.clone()))),
                )?],
            ),
            (SEEN, vec![seen]),
        ])
    }

    /// The model with the arrays of [`Self::batches`] read back through `read`.
    fn with_batches(mut self, read: &dyn Fn(&str) -> Result<Vec<RecordBatch>>) -> Result<Self> {
        let f = self.factors;
        let side = |batches: Vec<RecordBatch>, counted: bool| -> Result<StoredSide> {
            let batch = concat(batches)?;
            let first = usize::from(counted) + 1;
            let biased = batch.num_columns() == first + f + 1;
            if batch.num_columns() != first + f && !biased {
                return store_err!("the stored factors have the wrong shape");
            }
            let id = batch.column(0);
            let ids = if is_text(id.data_type()) {
                Ids::Text(
                    id.as_string::<i32>()
                        .iter()
                        .map(|v| v.unwrap_or_default().to_string())
                        .collect(),
                )
            } else {
                Ids::Int(id.as_primitive::<Int64Type>().values().to_vec())
            };
            let n = batch.num_rows();
            let mut factors = Array2::zeros((n, f));
            for (d, mut column) in factors.columns_mut().into_iter().enumerate() {
                let values = batch.column(first + d).as_primitive::<Float64Type>();
                for (slot, v) in column.iter_mut().zip(values.values()) {
                    *slot = *v;
                }
            }
            let bias = if biased {
                batch
                    .column(first + f)
                    .as_primitive::<Float64Type>()
                    .values()
                    .to_vec()
            } else {
                vec![]
            };
            let counts = if counted {
                batch
                    .column(1)
                    .as_primitive::<UInt32Type>()
                    .values()
                    .to_vec()
            } else {
                vec![]
            };
            Ok(StoredSide {
                ids,
                factors,
                bias,
                counts,
            })
        };
        let users = side(read(USERS)?, false)?;
        let items = side(read(ITEMS)?, true)?;
        let seen = concat(read(SEEN)?)?;
        if seen.num_columns() != 3 {
            return store_err!("the stored training pairs have the wrong shape");
        }
        let u = seen.column(0).as_primitive::<UInt32Type>().values();
        let i = seen.column(1).as_primitive::<UInt32Type>().values();
        let v = seen.column(2).as_primitive::<Float64Type>().values();
        self.seen = Csr::from_triples(users.ids.len(), u, i, v, Duplicates::Sum);
        self.users = users.ids;
        self.items = items.ids;
        self.fit = Factors {
            users: users.factors,
            items: items.factors,
            mean: self.mean,
            user_bias: users.bias,
            item_bias: items.bias,
        };
        self.popular = by_popularity(&items.counts);
        self.item_users = items.counts;
        Ok(self)
    }
}

/// One side of a stored model as read back: ids, factors, biases (explicit feedback) and,
/// for items, how many users had each.
struct StoredSide {
    ids: Ids,
    factors: Array2<f64>,
    bias: Vec<f64>,
    counts: Vec<u32>,
}

/// Bytes ALS holds per interaction: the ids as read and as indices, the value, and both
/// sparse matrices.
const INTERACTION_BYTES: usize = 64;

const USERS: &str = "users";
const ITEMS: &str = "items";
const SEEN: &str = "seen";

fn concat(batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    match batches.first() {
        Some(first) => Ok(datafusion::arrow::compute::concat_batches(
            &first.schema(),
            &batches,
        )?),
        None => store_err!("a stored array of the model is empty"),
    }
}
