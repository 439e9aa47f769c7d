//! What CREATE MODEL measured of a model besides fitting it: its metrics on held-out
//! evaluation rows, their spread over cross-validation folds, and the tuning trials it was
//! chosen from. The store keeps it with the model; `EVALUATE('m')` and `TRIALS('m')` read
//! it back as rows.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::Result;
use serde::{Deserialize, Serialize};

/// With `data_split_method = 'auto'`, the fewest rows that are split: fewer are all used
/// for training, as BigQuery ML does.
pub const AUTO_SPLIT_MIN_ROWS: u64 = 500;
/// With `'auto'`, the share of the rows held out for evaluation...
pub const AUTO_SPLIT_FRACTION: f64 = 0.2;
/// ...but no more rows than this.
pub const AUTO_SPLIT_MAX_EVAL_ROWS: u64 = 25_000;

/// How a model type's rows are held out, for CREATE MODEL's evaluation split and
/// cross-validation folds.
#[derive(Debug, Clone, PartialEq)]
pub enum Holdout {
    /// Rows drawn at random (by a hash of their values and the seed).
    Random,
    /// Rows drawn at random within each value of the label, so every fold has the classes
    /// in the same proportions.
    Stratified { label: String },
    /// The last points of each series by time: a forecast is judged on what follows the
    /// rows it was fitted on.
    Series {
        time: Option<String>,
        id: Option<String>,
        /// The most points per series held out: the model forecasts no further.
        horizon: usize,
    },
    /// The type holds rows out itself; the message says how.
    Own(&'static str),
}

/// A metric's value as EVALUATE returns it: a count (rows, rows_skipped) or a number,
/// `None` where it has none (JSON has no NaN).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetricValue {
    Count(i64),
    Number(Option<f64>),
}

impl MetricValue {
    pub fn as_f64(self) -> Option<f64> {
        match self {
            MetricValue::Count(n) => Some(n as f64),
            MetricValue::Number(v) => v,
        }
    }
}

/// One row of EVALUATE: its columns, in order.
pub type MetricRow = Vec<(String, MetricValue)>;

/// A metric over cross-validation folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub metric: String,
    pub mean: f64,
    /// The population standard deviation over the folds, as `numpy.std` of scikit-learn's
    /// `cross_val_score`.
    pub std: f64,
}

/// One tuning trial: the options it tried, and how the model it fitted did on the
/// evaluation rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// 1-based, in the order the trials were drawn.
    pub trial: usize,
    /// The tuned options' values, as written in OPTIONS.
    pub options: Vec<(String, String)>,
    /// EVALUATE's row over the evaluation rows; empty where the fit failed.
    pub metrics: MetricRow,
    /// The tuning objective's value; `None` where the fit failed.
    pub objective: Option<f64>,
    pub seconds: f64,
    /// Why the fit failed, for a trial whose options do not fit these rows.
    pub error: Option<String>,
}

/// Everything measured at CREATE MODEL beyond the training metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// How the evaluation rows were chosen, in words; empty without a split.
    pub split: String,
    /// EVALUATE's row over the evaluation rows; empty without a split.
    pub eval: MetricRow,
    /// The number of cross-validation folds; 0 without.
    pub cv_folds: usize,
    pub cv: Vec<Spread>,
    pub trials: Vec<Trial>,
    /// The metric the trials were ranked by, and whether higher is better.
    pub objective: Option<(String, bool)>,
    /// The trial whose options the stored model has.
    pub best_trial: Option<usize>,
}

impl Assessment {
    pub fn is_empty(&self) -> bool {
        self.eval.is_empty() && self.cv.is_empty() && self.trials.is_empty()
    }

    /// The evaluation metrics as one row, with EVALUATE's column types (counts as Int64,
    /// metrics as Float64).
    pub fn eval_batch(&self) -> Result<RecordBatch> {
        let (fields, columns) = metric_columns(&self.eval, |_| Some(self.eval.as_slice()), 1);
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }

    /// One row per trial: trial, the tuned options (as Int64 or Float64 where all values are
    /// such numbers),
    /// the evaluation metrics, objective, seconds, is_best and error.
    pub fn trials_batch(&self) -> Result<RecordBatch> {
        let n = self.trials.len();
        let mut fields = vec![Field::new("trial", DataType::Int64, false)];
        let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(
            self.trials.iter().map(|t| t.trial as i64),
        ))];
        let option_names: Vec<&str> = self
            .trials
            .first()
            .map(|t| t.options.iter().map(|(k, _)| k.as_str()).collect())
            .unwrap_or_default();
        for (i, name) in option_names.iter().enumerate() {
            let values: Vec<Option<&str>> = self
                .trials
                .iter()
                .map(|t| t.options.get(i).map(|(_, v)| v.as_str()))
                .collect();
            let integers: Option<Vec<i64>> = values
                .iter()
                .map(|v| v.and_then(|v| v.parse().ok()))
                .collect();
            let numbers: Option<Vec<f64>> = values
                .iter()
                .map(|v| v.and_then(|v| v.parse().ok()))
                .collect();
            match (integers, numbers) {
                (Some(integers), _) => {
                    fields.push(Field::new(*name, DataType::Int64, false));
                    columns.push(Arc::new(Int64Array::from(integers)));
                }
                (None, Some(numbers)) => {
                    fields.push(Field::new(*name, DataType::Float64, false));
                    columns.push(Arc::new(Float64Array::from(numbers)));
                }
                (None, None) => {
                    fields.push(Field::new(*name, DataType::Utf8, true));
                    columns.push(Arc::new(StringArray::from(values)));
                }
            }
        }
        // The metric columns of the first trial that has them.
        let template = self
            .trials
            .iter()
            .find(|t| !t.metrics.is_empty())
            .map_or(&[][..], |t| t.metrics.as_slice());
        let (metric_fields, metric_columns) = metric_columns(
            template,
            |r| Some(self.trials[r].metrics.as_slice()).filter(|m| !m.is_empty()),
            n,
        );
        fields.extend(metric_fields);
        columns.extend(metric_columns);
        fields.extend([
            Field::new("objective", DataType::Float64, true),
            Field::new("seconds", DataType::Float64, false),
            Field::new("is_best", DataType::Boolean, false),
            Field::new("error", DataType::Utf8, true),
        ]);
        columns.extend([
            Arc::new(Float64Array::from_iter(
                self.trials.iter().map(|t| t.objective),
            )) as ArrayRef,
            Arc::new(Float64Array::from_iter_values(
                self.trials.iter().map(|t| t.seconds),
            )),
            Arc::new(BooleanArray::from_iter(
                self.trials
                    .iter()
                    .map(|t| Some(Some(t.trial) == self.best_trial)),
            )),
            Arc::new(StringArray::from_iter(
                self.trials.iter().map(|t| t.error.as_deref()),
            )),
        ]);
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }
}

/// Columns for the metrics named in `template` over `rows` rows, row `r`'s values from
/// `row(r)` (NULL where it has none): Int64 for counts, Float64 for the rest.
fn metric_columns<'a>(
    template: &[(String, MetricValue)],
    row: impl Fn(usize) -> Option<&'a [(String, MetricValue)]>,
    rows: usize,
) -> (Vec<Field>, Vec<ArrayRef>) {
    let value = |r: usize, name: &str| {
        row(r).and_then(|m| m.iter().find(|(k, _)| k == name).map(|(_, v)| *v))
    };
    template
        .iter()
        .map(|(name, kind)| match kind {
            MetricValue::Count(_) => (
                Field::new(name, DataType::Int64, true),
                Arc::new(Int64Array::from_iter((0..rows).map(|r| {
                    match value(r, name) {
                        Some(MetricValue::Count(n)) => Some(n),
                        _ => None,
                    }
                }))) as ArrayRef,
            ),
            MetricValue::Number(_) => (
                Field::new(name, DataType::Float64, true),
                Arc::new(Float64Array::from_iter(
                    (0..rows).map(|r| value(r, name).and_then(MetricValue::as_f64)),
                )) as ArrayRef,
            ),
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_as_json_and_read_back_as_rows() {
        let assessment = Assessment {
            split: "random, 20%, seed 42".into(),
            eval: vec![
                ("rows".into(), MetricValue::Count(200)),
                ("auc".into(), MetricValue::Number(Some(0.75))),
                ("f1".into(), MetricValue::Number(None)),
            ],
            trials: vec![
                Trial {
                    trial: 1,
                    options: vec![("l2_reg".into(), "0".into())],
                    metrics: vec![],
                    objective: None,
                    seconds: 0.5,
                    error: Some("separation".into()),
                },
                Trial {
                    trial: 2,
                    options: vec![("l2_reg".into(), "0.5".into())],
                    metrics: vec![("auc".into(), MetricValue::Number(Some(0.8)))],
                    objective: Some(0.8),
                    seconds: 0.25,
                    error: None,
                },
            ],
            best_trial: Some(2),
            ..Default::default()
        };
        let json = serde_json::to_string(&assessment).unwrap();
        let back: Assessment = serde_json::from_str(&json).unwrap();
        assert_eq!(back, assessment);

        let eval = back.eval_batch().unwrap();
        assert_eq!(eval.schema().field(0).data_type(), &DataType::Int64);
        assert_eq!(eval.schema().field(1).data_type(), &DataType::Float64);
        assert_eq!(eval.num_rows(), 1);

        let trials = back.trials_batch().unwrap();
        let names: Vec<&str> = trials
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(
            names,
            [
                "trial",
                "l2_reg",
                "auc",
                "objective",
                "seconds",
                "is_best",
                "error"
            ]
        );
        assert_eq!(trials.num_rows(), 2);
        assert_eq!(trials.column(2).null_count(), 1);
    }
}
