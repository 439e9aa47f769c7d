//! `TRAIN_REGRESSION(label, f1, ..., fn)`: an aggregate that trains a model and returns it as
//! a value (its JSON description), so `GROUP BY` gives one model per group. PREDICT accepts
//! the value in place of a model name.
//!
//! A numeric label gives linear regression, from mergeable moments in one pass; a boolean
//! label gives logistic regression, whose partial states are the rows themselves (Newton's
//! method needs several passes). Features must be numeric; rows with a NULL or NaN value are
//! skipped. For categorical features and stored models use CREATE MODEL.
//!
//! An accumulator does not know the group it trains. So that a group that cannot be trained
//! is named in the error, the analyzer rule [`NameGroups`] passes the `GROUP BY` keys to
//! each call as trailing arguments, which only the message reads.

use std::any::Any;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, ListArray, RecordBatch,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::grouping_set_to_exprlist;
use datafusion::logical_expr::{
    Accumulator, Aggregate, AggregateUDF, AggregateUDFImpl, Documentation, Expr, LogicalPlan,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use crate::error::{Error, bad_input, bad_input_err};
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
    /// The names of the `GROUP BY` keys passed after the features by [`NameGroups`]; empty
    /// as called by the user.
    group_keys: Vec<String>,
}

impl Default for TrainRegression {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
            group_keys: Vec::new(),
        }
    }
}

impl TrainRegression {
    /// The aggregate as [`NameGroups`] passes it the `GROUP BY` keys named `group_keys`.
    pub fn grouped(group_keys: Vec<String>) -> Self {
        Self {
            group_keys,
            ..Self::default()
        }
    }

    /// The names of the `GROUP BY` keys passed after the features.
    pub fn group_keys(&self) -> &[String] {
        &self.group_keys
    }

    /// The label and features, without the group keys.
    fn model_args<'a, T>(&self, args: &'a [T]) -> &'a [T] {
        &args[..args.len().saturating_sub(self.group_keys.len())]
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
        let Some((label, features)) = self.model_args(arg_fields).split_first() else {
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
        let model_args = self.model_args(args.expr_fields);
        let names: Vec<String> = model_args.iter().map(|f| f.name().clone()).collect();
        let Some(label) = model_args.first() else {
            return plan_err!("train_regression needs a label and at least one feature");
        };
        let logistic = is_logistic(label.data_type());
        let k = names.len();
        let key_types = args.expr_fields[k..]
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(Box::new(TrainAccumulator {
            names,
            logistic,
            moments: Moments::new(k),
            rows: Vec::new(),
            skipped: 0,
            key_names: self.group_keys.clone(),
            key_types,
            key: None,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
        let keys = args.input_fields.len() - self.model_args(args.input_fields).len();
        Ok([
            Field::new("data", list, true),
            Field::new("skipped", DataType::Int64, true),
        ]
        .into_iter()
        .chain(
            args.input_fields[args.input_fields.len() - keys..]
                .iter()
                .enumerate()
                .map(|(i, f)| Field::new(format!("key_{i}"), f.data_type().clone(), true)),
        )
        .map(Arc::new)
        .collect())
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
    /// The names and types of the group keys passed after the features.
    key_names: Vec<String>,
    key_types: Vec<DataType>,
    /// The group's key values, from its first row.
    key: Option<Vec<ScalarValue>>,
}

impl TrainAccumulator {
    /// Keeps the group's key values from the first row of `keys`, if not known yet.
    fn note_key(&mut self, keys: &[ArrayRef]) -> Result<()> {
        if self.key.is_none() && keys.first().is_some_and(|k| !k.is_empty()) {
            self.key = Some(
                keys.iter()
                    .map(|k| ScalarValue::try_from_array(k, 0))
                    .collect::<Result<_>>()?,
            );
        }
        Ok(())
    }

    /// "the group plan = 'basic'", or "" when no keys were passed.
    fn group(&self) -> String {
        let Some(key) = &self.key else {
            return String::new();
        };
        let pairs: Vec<String> = self
            .key_names
            .iter()
            .zip(key)
            .map(|(name, value)| match value {
                v if v.is_null() => format!("{name} IS NULL"),
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)) => format!("{name} = '{s}'"),
                v => format!("{name} = {v}"),
            })
            .collect();
        format!(" for the group {}", pairs.join(", "))
    }

    /// The model of the group's rows.
    fn train(&self) -> Result<String> {
        let label = &self.names[0];
        let rows = if self.logistic {
            self.rows.len()
        } else {
            self.moments.count() as usize
        };
        if rows == 0 {
            let which = if self.key.is_some() { "the" } else { "a" };
            return bad_input_err!(
                "TRAIN_REGRESSION: {which} group has no row with label {label} and every \
                 feature non-NULL and finite ({} row(s) skipped); filter such groups out \
                 (WHERE {label} IS NOT NULL) or fill the labels (COALESCE)",
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
        Ok(model.to_string())
    }
}

impl Accumulator for TrainAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (values, keys) = values.split_at(self.names.len());
        self.note_key(keys)?;
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
        self.note_key(&states[2..])
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let data = if self.logistic {
            self.rows.clone()
        } else {
            self.moments.to_vec()
        };
        Ok([
            ScalarValue::List(Arc::new(
                ListArray::from_iter_primitive::<Float64Type, _, _>([Some(
                    data.into_iter().map(Some),
                )]),
            )),
            ScalarValue::Int64(Some(self.skipped)),
        ]
        .into_iter()
        .chain(match &self.key {
            Some(key) => key.clone(),
            None => self
                .key_types
                .iter()
                .map(ScalarValue::try_from)
                .collect::<Result<_>>()?,
        })
        .collect())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match self.train() {
            Ok(model) => Ok(ScalarValue::Utf8(Some(model))),
            Err(e) if self.key.is_some() => {
                let message =
                    Error::find(&e).map_or_else(|| e.strip_backtrace(), |e| e.to_string());
                let message = message
                    .strip_prefix("TRAIN_REGRESSION: ")
                    .unwrap_or(&message);
                Err(bad_input(format!(
                    "TRAIN_REGRESSION{}: {message}",
                    self.group()
                )))
            }
            Err(e) => Err(e),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + 8 * (self.rows.capacity() + self.moments.width() * (self.moments.width() + 1))
    }
}

/// Passes the `GROUP BY` keys of each aggregate to its TRAIN_REGRESSION calls, after the
/// features, so that a group that cannot be trained is named in the error. The calls keep
/// their output names.
#[derive(Debug, Default)]
pub struct NameGroups;

impl AnalyzerRule for NameGroups {
    fn name(&self) -> &str {
        "train_regression_name_groups"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| match plan {
            LogicalPlan::Aggregate(aggregate) => name_groups(aggregate),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }
}

/// Whether `f` is TRAIN_REGRESSION as the user called it (not yet given the keys).
fn is_unnamed_train_regression(f: &AggregateUDF) -> bool {
    (f.inner().as_ref() as &dyn Any)
        .downcast_ref::<TrainRegression>()
        .is_some_and(|t| t.group_keys.is_empty())
}

fn name_groups(aggregate: Aggregate) -> Result<Transformed<LogicalPlan>> {
    let keys: Vec<Expr> = grouping_set_to_exprlist(&aggregate.group_expr)?
        .into_iter()
        .cloned()
        .collect();
    let mut calls = false;
    for e in &aggregate.aggr_expr {
        calls |= e.exists(|e| {
            Ok(matches!(e, Expr::AggregateFunction(f) if is_unnamed_train_regression(&f.func)))
        })?;
    }
    if keys.is_empty() || !calls {
        return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
    }
    let named = Arc::new(AggregateUDF::new_from_impl(TrainRegression::grouped(
        keys.iter()
            .map(|k| match k {
                Expr::Column(c) => c.name.clone(),
                k => k.schema_name().to_string(),
            })
            .collect(),
    )));
    let aggr_expr = aggregate
        .aggr_expr
        .into_iter()
        .map(|e| {
            let name = e.schema_name().to_string();
            e.transform(|e| match e {
                Expr::AggregateFunction(mut f) if is_unnamed_train_regression(&f.func) => {
                    f.func = named.clone();
                    f.params.args.extend(keys.iter().cloned());
                    Ok(Transformed::yes(Expr::AggregateFunction(f)))
                }
                e => Ok(Transformed::no(e)),
            })?
            .data
            .alias_if_changed(name)
        })
        .collect::<Result<_>>()?;
    Aggregate::try_new(aggregate.input, aggregate.group_expr, aggr_expr)
        .map(|a| Transformed::yes(LogicalPlan::Aggregate(a)))
}
