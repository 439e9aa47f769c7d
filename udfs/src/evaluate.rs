//! The metrics aggregate behind `EVALUATE('model', table_or_subquery)` (planned in
//! [`crate::sql`]): one row of metrics of a model on labelled rows, defined as
//! scikit-learn defines them.
//!
//! Linear models: rows, rows_skipped, r2, adj_r2, mse, rmse, mae. Classifiers: rows,
//! rows_skipped, accuracy, precision, recall, f1 (at probability 0.5), auc, log_loss. Rows
//! whose label or prediction is NULL or NaN are skipped and counted.
//!
//! The (prediction, label) pairs are reserved in the session's memory pool. A classifier's
//! pairs that do not fit are counted per probability step instead, as logistic training
//! does for rows it does not keep: the AUC is then that of the probabilities rounded to
//! 1/2^20 (the other metrics are unchanged), in a constant 16 MiB (pairs past 16 MiB keep
//! that much room for the switch). A regression's that do
//! not fit end the query, naming --memory-limit.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, ListArray, StructArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Fields, Float64Type, Int64Type, UInt64Type,
};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryPool, MemoryReservation, UnboundedMemoryPool, human_readable_size,
};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::model::logistic::Scores;

/// Which metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Metrics {
    /// `parameters`: the fitted coefficients besides the intercept, for adjusted R².
    Regression {
        parameters: usize,
    },
    Classification,
}

impl Metrics {
    /// The output columns.
    pub fn fields(self) -> Fields {
        let mut fields = vec![
            Field::new("rows", DataType::Int64, false),
            Field::new("rows_skipped", DataType::Int64, false),
        ];
        let names: &[&str] = match self {
            Metrics::Regression { .. } => &["r2", "adj_r2", "mse", "rmse", "mae"],
            Metrics::Classification => {
                &["accuracy", "precision", "recall", "f1", "auc", "log_loss"]
            }
        };
        fields.extend(
            names
                .iter()
                .map(|n| Field::new(*n, DataType::Float64, true)),
        );
        Fields::from(fields)
    }

    fn compute(self, scores: Scores) -> Vec<f64> {
        match (self, scores) {
            (Metrics::Regression { parameters }, Scores::Exact(pairs)) => {
                let n = pairs.len() as f64;
                let mean = pairs.iter().map(|(_, y)| y).sum::<f64>() / n;
                let sst: f64 = pairs.iter().map(|(_, y)| (y - mean).powi(2)).sum();
                let sse: f64 = pairs.iter().map(|(p, y)| (y - p).powi(2)).sum();
                let sae: f64 = pairs.iter().map(|(p, y)| (y - p).abs()).sum();
                let r2 = 1.0 - sse / sst;
                let adj_r2 = 1.0 - (1.0 - r2) * (n - 1.0) / (n - parameters as f64 - 1.0);
                vec![r2, adj_r2, sse / n, (sse / n).sqrt(), sae / n]
            }
            (Metrics::Classification, scores) => {
                let (tp, fp, fn_) = scores.confusion();
                let (tp, fp, fn_) = (tp as f64, fp as f64, fn_ as f64);
                // scikit-learn's zero_division: a ratio with nothing to divide by is 0.
                let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
                let precision = ratio(tp, tp + fp);
                let recall = ratio(tp, tp + fn_);
                let f1 = ratio(2.0 * precision * recall, precision + recall);
                let named = scores.metrics();
                let metric = |name: &str| {
                    named
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or(f64::NAN, |(_, v)| *v)
                };
                vec![
                    metric("accuracy"),
                    precision,
                    recall,
                    f1,
                    metric("auc"),
                    metric("log_loss"),
                ]
            }
            // Regression pairs are never binned.
            (Metrics::Regression { .. }, Scores::Binned { .. }) => {
                vec![f64::NAN; self.fields().len() - 2]
            }
        }
    }
}

/// The aggregate behind EVALUATE: collects (prediction, label) pairs in `pool`, partial
/// states merge by concatenation, and the metrics come out as one struct.
#[derive(Debug)]
pub struct EvaluateAggregate {
    signature: Signature,
    pub(crate) metrics: Metrics,
    pool: Arc<dyn MemoryPool>,
}

impl EvaluateAggregate {
    /// The aggregate of `metrics`, holding its rows in `pool` (the session's; unbounded
    /// when `None`).
    pub fn new(metrics: Metrics, pool: Option<Arc<dyn MemoryPool>>) -> Self {
        Self {
            signature: Signature::exact(
                vec![DataType::Float64, DataType::Float64],
                Volatility::Immutable,
            ),
            metrics,
            pool: pool.unwrap_or_else(|| Arc::new(UnboundedMemoryPool::default())),
        }
    }
}

impl PartialEq for EvaluateAggregate {
    fn eq(&self, other: &Self) -> bool {
        self.metrics == other.metrics && Arc::ptr_eq(&self.pool, &other.pool)
    }
}
impl Eq for EvaluateAggregate {}
impl Hash for EvaluateAggregate {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.metrics.hash(state);
    }
}

impl AggregateUDFImpl for EvaluateAggregate {
    fn name(&self) -> &str {
        "evaluate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(self.metrics.fields()))
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(EvaluateAccumulator {
            metrics: self.metrics,
            scores: Scores::Exact(Vec::new()),
            skipped: 0,
            reservation: MemoryConsumer::new("evaluate").register(&self.pool),
        }))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |t: DataType| DataType::List(Arc::new(Field::new_list_field(t, true)));
        Ok(vec![
            Arc::new(Field::new("predicted", list(DataType::Float64), true)),
            Arc::new(Field::new("actual", list(DataType::Float64), true)),
            Arc::new(Field::new("skipped", DataType::Int64, true)),
            // The binned counts, empty while the pairs are kept.
            Arc::new(Field::new("positive", list(DataType::UInt64), true)),
            Arc::new(Field::new("negative", list(DataType::UInt64), true)),
            Arc::new(Field::new("loss", DataType::Float64, true)),
            Arc::new(Field::new("correct", DataType::UInt64, true)),
        ])
    }
}

#[derive(Debug)]
struct EvaluateAccumulator {
    metrics: Metrics,
    scores: Scores,
    skipped: i64,
    /// What `scores` holds, in the session's pool.
    reservation: MemoryReservation,
}

impl EvaluateAccumulator {
    /// Makes room for `more` pairs: reserves them, or for a classifier that cannot keep
    /// them, turns to counts per probability step.
    fn reserve(&mut self, more: usize) -> Result<()> {
        if let Scores::Exact(pairs) = &self.scores {
            let rows = pairs.len().saturating_add(more);
            let bytes = rows.saturating_mul(Scores::PAIR_BYTES);
            // Pairs larger than the counts keep room for them, so that turning to them
            // needs nothing more from the pool.
            let held = if bytes >= Scores::BINNED_BYTES {
                bytes.saturating_add(Scores::BINNED_BYTES)
            } else {
                bytes
            };
            if self.reservation.try_resize(held).is_ok() {
                return Ok(());
            }
            if let Metrics::Regression { .. } = self.metrics {
                return Err(self.too_large(bytes, rows));
            }
            self.bin()?;
        }
        Ok(())
    }

    /// Counts the pairs per probability step, in a constant size.
    fn bin(&mut self) -> Result<()> {
        let scores = std::mem::replace(&mut self.scores, Scores::Exact(Vec::new()));
        // The pairs are converted while their reservation is still held.
        let rows = scores.rows();
        let needed = (rows * Scores::PAIR_BYTES).saturating_add(Scores::BINNED_BYTES);
        if self.reservation.size() < needed && self.reservation.try_resize(needed).is_err() {
            return Err(self.too_large(needed, rows));
        }
        self.scores = scores.into_binned();
        self.reservation.resize(Scores::BINNED_BYTES);
        Ok(())
    }

    fn too_large(&self, bytes: usize, rows: usize) -> DataFusionError {
        DataFusionError::ResourcesExhausted(format!(
            "evaluate: the predictions and labels of {rows} rows need {}, more than the \
             memory limit leaves; raise --memory-limit (SET datafusion.runtime.memory_limit) \
             or evaluate fewer rows",
            human_readable_size(bytes)
        ))
    }
}

impl Accumulator for EvaluateAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let p = values[0].as_primitive::<Float64Type>();
        let y = values[1].as_primitive::<Float64Type>();
        let kept: Vec<usize> = (0..p.len())
            .filter(|&i| {
                p.is_valid(i) && y.is_valid(i) && p.value(i).is_finite() && y.value(i).is_finite()
            })
            .collect();
        self.skipped += (p.len() - kept.len()) as i64;
        self.reserve(kept.len())?;
        let p: Vec<f64> = kept.iter().map(|&i| p.value(i)).collect();
        let y: Vec<f64> = kept.iter().map(|&i| y.value(i)).collect();
        self.scores.add(&p, &y);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (predicted, actual) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        let (positive, negative) = (states[3].as_list::<i32>(), states[4].as_list::<i32>());
        let loss = states[5].as_primitive::<Float64Type>();
        let correct = states[6].as_primitive::<UInt64Type>();
        for r in 0..predicted.len() {
            let counts = |l: &ListArray| {
                l.is_valid(r)
                    .then(|| l.value(r).as_primitive::<UInt64Type>().values().to_vec())
                    .filter(|c| !c.is_empty())
            };
            if let (Some(positive), Some(negative)) = (counts(positive), counts(negative)) {
                if let Scores::Exact(_) = self.scores {
                    self.bin()?;
                }
                self.scores.merge(Scores::Binned {
                    positive,
                    negative,
                    loss: loss.value(r),
                    correct: correct.value(r),
                });
            } else if predicted.is_valid(r) && actual.is_valid(r) {
                let (p, y) = (predicted.value(r), actual.value(r));
                let (p, y) = (
                    p.as_primitive::<Float64Type>().values(),
                    y.as_primitive::<Float64Type>().values(),
                );
                self.reserve(p.len())?;
                self.scores.add(p, y);
            }
        }
        let skipped = states[2].as_primitive::<Int64Type>();
        self.skipped += skipped.iter().flatten().sum::<i64>();
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = |v: &mut dyn Iterator<Item = f64>| {
            ScalarValue::List(Arc::new(
                ListArray::from_iter_primitive::<Float64Type, _, _>([Some(v.map(Some))]),
            ))
        };
        let counts = |v: &[u64]| {
            ScalarValue::List(Arc::new(
                ListArray::from_iter_primitive::<UInt64Type, _, _>([Some(
                    v.iter().map(|c| Some(*c)),
                )]),
            ))
        };
        Ok(match &self.scores {
            Scores::Exact(pairs) => vec![
                list(&mut pairs.iter().map(|(p, _)| *p)),
                list(&mut pairs.iter().map(|(_, y)| *y)),
                ScalarValue::Int64(Some(self.skipped)),
                counts(&[]),
                counts(&[]),
                ScalarValue::Float64(Some(0.0)),
                ScalarValue::UInt64(Some(0)),
            ],
            Scores::Binned {
                positive,
                negative,
                loss,
                correct,
            } => vec![
                list(&mut std::iter::empty()),
                list(&mut std::iter::empty()),
                ScalarValue::Int64(Some(self.skipped)),
                counts(positive),
                counts(negative),
                ScalarValue::Float64(Some(*loss)),
                ScalarValue::UInt64(Some(*correct)),
            ],
        })
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let fields = self.metrics.fields();
        let rows = self.scores.rows();
        let scores = std::mem::replace(&mut self.scores, Scores::Exact(Vec::new()));
        let values = if rows == 0 {
            vec![f64::NAN; fields.len() - 2]
        } else {
            self.metrics.compute(scores)
        };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![rows as i64])),
            Arc::new(Int64Array::from(vec![self.skipped])),
        ];
        columns.extend(
            values.into_iter().map(|v| {
                Arc::new(Float64Array::from(vec![v.is_finite().then_some(v)])) as ArrayRef
            }),
        );
        Ok(ScalarValue::Struct(Arc::new(StructArray::try_new(
            fields, columns, None,
        )?)))
    }

    /// The pairs are in the reservation, not counted again here.
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}
