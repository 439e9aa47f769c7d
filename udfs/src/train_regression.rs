//! `TRAIN_REGRESSION(label, f1, ..., fn)`: an aggregate that trains a model and returns it as
//! a value (its JSON description), so `GROUP BY` gives one model per group. PREDICT accepts
//! the value in place of a model name.
//!
//! A numeric label gives linear regression, from mergeable moments in one pass; a boolean
//! label gives logistic regression, whose partial states are the rows themselves (Newton's
//! method needs several passes). Features must be numeric; rows with a NULL or NaN value are
//! skipped. For categorical features and stored models use CREATE MODEL.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, ListArray, RecordBatch,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type, Schema};
use datafusion::common::{DataFusionError, Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use crate::error::bad_input_err;
use crate::kernels::linear::LinearOptions;
use crate::kernels::moments::Moments;
use crate::model::training::InMemory;
use crate::model::{self, LinearModel, LogisticModel, LogisticSettings, ModelKind};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Trains a regression model over the rows of each group and returns it as a value that \
         PREDICT accepts in place of a model name. A numeric label gives linear regression \
         (one pass, mergeable across partitions); a boolean label gives logistic regression. \
         Features must be numeric (text is not read as a number: cast it); rows with a NULL \
         or NaN value are skipped. Use CREATE MODEL \
         for categorical features and for models stored by name.",
        "train_regression(label, feature_1[, ..., feature_n])",
    )
    .with_argument("label", "The numeric or boolean column to predict.")
    .with_argument("feature_i", "Numeric feature columns.")
    .with_sql_example(
        "```sql\n\
         WITH m AS (SELECT region, TRAIN_REGRESSION(monthly_charges, tenure_months, age) AS model\n\
                    FROM customers GROUP BY region)\n\
         SELECT c.customer_id, PREDICT(m.model, c.tenure_months, c.age) AS expected\n\
         FROM customers c JOIN m USING (region);\n\
         ```",
    )
    .build()
});

/// The `train_regression` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TrainRegression {
    signature: Signature,
}

impl Default for TrainRegression {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

fn is_logistic(label: &DataType) -> bool {
    matches!(label, DataType::Boolean)
}

impl AggregateUDFImpl for TrainRegression {
    fn name(&self) -> &str {
        "train_regression"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    /// Checks the arguments, naming the one of the wrong type.
    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        let Some((label, features)) = arg_fields.split_first() else {
            return plan_err!("train_regression needs a label and at least one feature");
        };
        if features.is_empty() {
            return plan_err!("train_regression needs a label and at least one feature");
        }
        let t = label.data_type();
        if !(t.is_numeric() || is_logistic(t)) {
            return plan_err!(
                "TRAIN_REGRESSION: label '{}' has type {t}; it must be numeric (linear \
                 regression) or boolean (logistic regression)",
                label.name()
            );
        }
        // Text is not read as a number, as for PREDICT's features.
        if let Some(f) = features.iter().find(|f| !f.data_type().is_numeric()) {
            return plan_err!(
                "TRAIN_REGRESSION: feature '{}' expects a number, got {}; cast it, or use \
                 CREATE MODEL, which one-hot encodes categories",
                f.name(),
                f.data_type()
            );
        }
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let names: Vec<String> = args.expr_fields.iter().map(|f| f.name().clone()).collect();
        let logistic = is_logistic(args.expr_fields[0].data_type());
        let k = names.len();
        Ok(Box::new(TrainAccumulator {
            names,
            logistic,
            moments: Moments::new(k),
            rows: Vec::new(),
            skipped: 0,
        }))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
        Ok(vec![
            Arc::new(Field::new("data", list, true)),
            Arc::new(Field::new("skipped", DataType::Int64, true)),
        ])
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// Label first, then features, as given to the aggregate.
#[derive(Debug)]
struct TrainAccumulator {
    names: Vec<String>,
    logistic: bool,
    /// Linear: moments of (features..., label).
    moments: Moments,
    /// Logistic: the rows, (label, features...) each, flattened.
    rows: Vec<f64>,
    skipped: i64,
}

impl Accumulator for TrainAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let columns = values
            .iter()
            .map(|v| cast(v, &DataType::Float64))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let columns: Vec<&Float64Array> = columns
            .iter()
            .map(|c| c.as_primitive::<Float64Type>())
            .collect();
        let rows = columns.first().map_or(0, |c| c.len());
        let keep: Vec<bool> = (0..rows)
            .map(|r| {
                columns
                    .iter()
                    .all(|c| c.is_valid(r) && c.value(r).is_finite())
            })
            .collect();
        self.skipped += keep.iter().filter(|k| !**k).count() as i64;
        if self.logistic {
            for (r, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
                self.rows.extend(columns.iter().map(|c| c.value(r)));
            }
        } else {
            // Moments take the label last.
            let kept: Vec<Vec<f64>> = columns[1..]
                .iter()
                .chain(std::iter::once(&columns[0]))
                .map(|c| (0..rows).filter(|&r| keep[r]).map(|r| c.value(r)).collect())
                .collect();
            self.moments
                .update(&kept.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for data in states[0].as_list::<i32>().iter().flatten() {
            let data = data.as_primitive::<Float64Type>().values();
            if self.logistic {
                self.rows.extend(data.iter());
            } else {
                let other = Moments::from_slice(self.names.len(), data).ok_or_else(|| {
                    DataFusionError::Internal("train_regression state of the wrong size".into())
                })?;
                self.moments.merge(&other);
            }
        }
        self.skipped += states[1]
            .as_primitive::<Int64Type>()
            .iter()
            .flatten()
            .sum::<i64>();
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let data = if self.logistic {
            self.rows.clone()
        } else {
            self.moments.to_vec()
        };
        Ok(vec![
            ScalarValue::List(Arc::new(
                ListArray::from_iter_primitive::<Float64Type, _, _>([Some(
                    data.into_iter().map(Some),
                )]),
            )),
            ScalarValue::Int64(Some(self.skipped)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let label = &self.names[0];
        let rows = if self.logistic {
            self.rows.len()
        } else {
            self.moments.count() as usize
        };
        if rows == 0 {
            // The group's key is not known here; the rows skipped and the fix are.
            return bad_input_err!(
                "TRAIN_REGRESSION: a group has no row with label {label} and every feature \
                 non-NULL and finite ({} row(s) skipped); filter such groups out (WHERE \
                 {label} IS NOT NULL) or fill the labels (COALESCE)",
                self.skipped
            );
        }
        let model = if self.logistic {
            let k = self.names.len();
            let n = self.rows.len() / k;
            let value = |r: usize, j: usize| self.rows[r * k + j];
            let mut fields = vec![Field::new(label, DataType::Boolean, false)];
            let mut columns: Vec<ArrayRef> = vec![Arc::new(BooleanArray::from(
                (0..n).map(|r| value(r, 0) == 1.0).collect::<Vec<_>>(),
            ))];
            for (j, name) in self.names.iter().enumerate().skip(1) {
                fields.push(Field::new(name, DataType::Float64, false));
                columns.push(Arc::new(Float64Array::from(
                    (0..n).map(|r| value(r, j)).collect::<Vec<_>>(),
                )));
            }
            let schema = Schema::new(fields);
            let batch = RecordBatch::try_new(Arc::new(schema.clone()), columns)?;
            let (m, _) = LogisticModel::train(
                &InMemory {
                    schema: &schema,
                    batches: &[batch],
                    pool: None,
                },
                &LogisticSettings {
                    label: label.to_string(),
                    ..LogisticSettings::default()
                },
            )?;
            model::to_json(&m)?
        } else {
            let features: Vec<(String, String)> = self.names[1..]
                .iter()
                .map(|n| (n.clone(), DataType::Float64.to_string()))
                .collect();
            let (m, _) = LinearModel::from_moments(
                label,
                &features,
                &self.moments,
                LinearOptions::default(),
            )?;
            model::to_json(&m)?
        };
        Ok(ScalarValue::Utf8(Some(model.to_string())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + 8 * (self.rows.capacity() + self.moments.width() * (self.moments.width() + 1))
    }
}
