//! The metrics aggregate behind `EVALUATE('model', table_or_subquery)` (planned in
//! [`crate::sql`]): one row of metrics of a model on labelled rows, defined as
//! scikit-learn defines them.
//!
//! Linear models: rows, rows_skipped, r2, adj_r2, mse, rmse, mae. Classifiers: rows,
//! rows_skipped, accuracy, precision, recall, f1 (at probability 0.5), auc, log_loss. Rows
//! whose label or prediction is NULL or NaN are skipped and counted.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, ListArray, StructArray,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::model::logistic::{accuracy, auc, log_loss};

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

    fn compute(self, predicted: &[f64], actual: &[f64]) -> Vec<f64> {
        let n = predicted.len() as f64;
        match self {
            Metrics::Regression { parameters } => {
                let mean = actual.iter().sum::<f64>() / n;
                let sst: f64 = actual.iter().map(|y| (y - mean).powi(2)).sum();
                let sse: f64 = predicted
                    .iter()
                    .zip(actual)
                    .map(|(p, y)| (y - p).powi(2))
                    .sum();
                let sae: f64 = predicted
                    .iter()
                    .zip(actual)
                    .map(|(p, y)| (y - p).abs())
                    .sum();
                let r2 = 1.0 - sse / sst;
                let adj_r2 = 1.0 - (1.0 - r2) * (n - 1.0) / (n - parameters as f64 - 1.0);
                vec![r2, adj_r2, sse / n, (sse / n).sqrt(), sae / n]
            }
            Metrics::Classification => {
                let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
                for (p, y) in predicted.iter().zip(actual) {
                    match (*p >= 0.5, *y == 1.0) {
                        (true, true) => tp += 1.0,
                        (true, false) => fp += 1.0,
                        (false, true) => fn_ += 1.0,
                        (false, false) => {}
                    }
                }
                // scikit-learn's zero_division: a ratio with nothing to divide by is 0.
                let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
                let precision = ratio(tp, tp + fp);
                let recall = ratio(tp, tp + fn_);
                let f1 = ratio(2.0 * precision * recall, precision + recall);
                vec![
                    accuracy(predicted, actual),
                    precision,
                    recall,
                    f1,
                    auc(&mut predicted
                        .iter()
                        .copied()
                        .zip(actual.iter().copied())
                        .collect::<Vec<_>>()),
                    log_loss(predicted, actual),
                ]
            }
        }
    }
}

/// The aggregate behind EVALUATE: collects (prediction, label) pairs, partial states merge
/// by concatenation, and the metrics come out as one struct.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EvaluateAggregate {
    signature: Signature,
    pub(crate) metrics: Metrics,
}

impl EvaluateAggregate {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            signature: Signature::exact(
                vec![DataType::Float64, DataType::Float64],
                Volatility::Immutable,
            ),
            metrics,
        }
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
            predicted: Vec::new(),
            actual: Vec::new(),
            skipped: 0,
        }))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
        Ok(vec![
            Arc::new(Field::new("predicted", list.clone(), true)),
            Arc::new(Field::new("actual", list, true)),
            Arc::new(Field::new("skipped", DataType::Int64, true)),
        ])
    }
}

#[derive(Debug)]
struct EvaluateAccumulator {
    metrics: Metrics,
    predicted: Vec<f64>,
    actual: Vec<f64>,
    skipped: i64,
}

impl Accumulator for EvaluateAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let p = values[0].as_primitive::<Float64Type>();
        let y = values[1].as_primitive::<Float64Type>();
        for i in 0..p.len() {
            if p.is_valid(i) && y.is_valid(i) && p.value(i).is_finite() && y.value(i).is_finite() {
                self.predicted.push(p.value(i));
                self.actual.push(y.value(i));
            } else {
                self.skipped += 1;
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for (list, out) in [
            (&states[0], &mut self.predicted),
            (&states[1], &mut self.actual),
        ] {
            for values in list.as_list::<i32>().iter().flatten() {
                out.extend(values.as_primitive::<Float64Type>().values().iter());
            }
        }
        let skipped = states[2].as_primitive::<Int64Type>();
        self.skipped += skipped.iter().flatten().sum::<i64>();
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = |v: &[f64]| {
            ScalarValue::List(Arc::new(
                ListArray::from_iter_primitive::<Float64Type, _, _>([Some(
                    v.iter().map(|x| Some(*x)),
                )]),
            ))
        };
        Ok(vec![
            list(&self.predicted),
            list(&self.actual),
            ScalarValue::Int64(Some(self.skipped)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let fields = self.metrics.fields();
        let values = if self.predicted.is_empty() {
            vec![f64::NAN; fields.len() - 2]
        } else {
            self.metrics.compute(&self.predicted, &self.actual)
        };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![self.predicted.len() as i64])),
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

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + 8 * (self.predicted.capacity() + self.actual.capacity())
    }
}
