//! What every supervised model does before it fits: find the label, decide which rows count,
//! and fit the encoding of the features on those rows.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Schema};
use datafusion::common::{Result, plan_err};

use super::encoding::{FeatureEncoding, FeatureStats, as_f64};

/// The training rows of a query: label, features and which rows are used.
#[derive(Debug, Clone)]
pub struct TrainingSet {
    pub label: String,
    pub label_idx: usize,
    pub feature_idx: Vec<usize>,
    pub features: Vec<FeatureEncoding>,
    /// Per batch, per row: whether the row is used.
    pub keeps: Vec<Vec<bool>>,
    pub rows_used: u64,
    pub rows_null_label: u64,
    pub rows_not_finite: u64,
}

impl TrainingSet {
    /// Splits `schema` into the label and the features (every other column, in order),
    /// skips rows with a NULL label or a NaN/infinite number, and fits each feature's
    /// encoding on the rows left.
    pub fn prepare(schema: &Schema, batches: &[RecordBatch], label: &str) -> Result<Self> {
        let Some((label_idx, _)) = schema.column_with_name(label) else {
            let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return plan_err!(
                "label column {label} is not in the training query; its columns are: {}",
                names.join(", ")
            );
        };
        let feature_idx: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| i != label_idx)
            .collect();
        if feature_idx.is_empty() {
            return plan_err!(
                "the training query has only the label {label}; add feature columns to it"
            );
        }
        let mut stats = feature_idx
            .iter()
            .map(|&i| {
                let f = schema.field(i);
                FeatureStats::for_type(f.data_type(), f.name())
            })
            .collect::<Result<Vec<_>>>()?;
        // The numeric columns whose values must be finite: the features and a numeric label.
        let numeric: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| schema.field(i).data_type().is_numeric())
            .collect();
        let mut keeps = Vec::with_capacity(batches.len());
        let (mut null_label, mut not_finite) = (0u64, 0u64);
        for batch in batches {
            let label_column = batch.column(label_idx);
            let mut keep: Vec<bool> = (0..batch.num_rows())
                .map(|r| label_column.is_valid(r))
                .collect();
            null_label += keep.iter().filter(|k| !**k).count() as u64;
            // Numeric columns as Float64, cast once and reused for their statistics.
            let mut numbers: Vec<Option<ArrayRef>> = vec![None; batch.num_columns()];
            for &i in &numeric {
                let cast = as_f64(batch.column(i), schema.field(i).name())?;
                let x = cast.as_primitive::<Float64Type>();
                for (r, k) in keep.iter_mut().enumerate() {
                    if *k && x.is_valid(r) && !x.value(r).is_finite() {
                        *k = false;
                        not_finite += 1;
                    }
                }
                numbers[i] = Some(cast);
            }
            for (s, &i) in stats.iter_mut().zip(&feature_idx) {
                let column = numbers[i].as_ref().unwrap_or(batch.column(i));
                s.update(column, &keep, schema.field(i).name())?;
            }
            keeps.push(keep);
        }
        let rows_used: u64 = keeps.iter().flatten().map(|&k| u64::from(k)).sum();
        if rows_used == 0 {
            let why = if null_label + not_finite == 0 {
                "the training query returned no rows".to_string()
            } else {
                format!(
                    "every row was skipped ({null_label} with a NULL label, {not_finite} with \
                     NaN or infinite values)"
                )
            };
            return plan_err!("nothing to train on: {why}");
        }
        let features = stats
            .into_iter()
            .zip(&feature_idx)
            .map(|(s, &i)| s.finish(schema.field(i).name(), schema.field(i).data_type()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            label: label.to_string(),
            label_idx,
            feature_idx,
            features,
            keeps,
            rows_used,
            rows_null_label: null_label,
            rows_not_finite: not_finite,
        })
    }

    /// Names of the design columns.
    pub fn design_names(&self) -> Vec<String> {
        self.features
            .iter()
            .flat_map(|f| f.design_names())
            .collect()
    }

    /// The design columns of batch `i`, used rows only.
    pub fn design(&self, i: usize, batch: &RecordBatch) -> Result<Vec<Vec<f64>>> {
        let mut columns = Vec::new();
        for (f, &c) in self.features.iter().zip(&self.feature_idx) {
            f.encode(batch.column(c), &mut columns)?;
        }
        Ok(columns.into_iter().map(|c| self.kept(i, c)).collect())
    }

    /// The used rows of one column of batch `i`.
    pub fn kept<T>(&self, i: usize, values: impl IntoIterator<Item = T>) -> Vec<T> {
        values
            .into_iter()
            .zip(&self.keeps[i])
            .filter(|(_, k)| **k)
            .map(|(v, _)| v)
            .collect()
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
}

/// The label column of a batch as numbers.
pub fn label_values(batch: &RecordBatch, set: &TrainingSet) -> Result<ArrayRef> {
    as_f64(batch.column(set.label_idx), &set.label)
}
