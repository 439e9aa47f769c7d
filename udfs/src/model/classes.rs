//! The two values of a binary classifier's label: which one is positive, the label read as
//! 0/1, and the expressions PREDICT and EVALUATE build from them.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Column, Result, ScalarValue};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, lit, when};
use serde::{Deserialize, Serialize};

use super::encoding::{as_f64, as_text, is_categorical};
use super::training::TrainingSet;
use crate::error::bad_input_err;
use crate::sql::appended;

/// The two values of a label and which one is positive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Classes {
    /// true is positive.
    Boolean,
    /// 1 is positive, 0 negative.
    Numeric,
    Text {
        positive: String,
        negative: String,
    },
}

impl Classes {
    /// The classes of label `label` of type `t`, whose text values `set` collected; a
    /// string label needs `positive_class` to say which is positive. `model_type` names
    /// the model in messages.
    pub fn of_label(
        t: &DataType,
        label: &str,
        set: &TrainingSet,
        positive_class: Option<&str>,
        model_type: &str,
    ) -> Result<Self> {
        if matches!(t, DataType::Boolean) {
            return Ok(Classes::Boolean);
        }
        if t.is_numeric() {
            return Ok(Classes::Numeric);
        }
        if !is_categorical(t) {
            return bad_input_err!(
                "label {label} has type {t}; {model_type} needs a boolean, 0/1 or two-valued \
                 string label"
            );
        }
        let values: Vec<String> = set.label_values.iter().cloned().collect();
        if values.len() != 2 {
            // The training set collects at most six values: enough to tell.
            let (count, more) = match values.len() {
                n if n > 5 => ("more than 5".to_string(), ", ..."),
                n => (n.to_string(), ""),
            };
            let shown = values
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            return bad_input_err!(
                "label {label} has {count} distinct values ({shown}{more}); {model_type} needs \
                 exactly two"
            );
        }
        match positive_class {
            Some(p) if values.iter().any(|v| v == p) => Ok(Classes::Text {
                positive: p.to_string(),
                negative: values.iter().find(|v| *v != p).cloned().unwrap_or_default(),
            }),
            Some(p) => bad_input_err!(
                "positive_class '{p}' is not a value of label {label}; its values are '{}' and \
                 '{}'",
                values[0],
                values[1]
            ),
            None => bad_input_err!(
                "label {label} has the values '{}' and '{}'; say which is positive with \
                 positive_class = '{}' (or '{}')",
                values[0],
                values[1],
                values[1],
                values[0]
            ),
        }
    }

    /// The label as 0/1 (NULLs, which training skips, as 0).
    pub fn label_01(&self, column: &ArrayRef, label: &str) -> Result<Vec<f64>> {
        Ok(match self {
            Classes::Boolean => {
                let b = column.as_boolean();
                (0..b.len())
                    .map(|r| f64::from(u8::from(b.is_valid(r) && b.value(r))))
                    .collect()
            }
            Classes::Numeric => {
                let v = as_f64(column, label)?;
                v.as_primitive::<Float64Type>().values().to_vec()
            }
            Classes::Text { positive, .. } => {
                let t = as_text(column, label)?;
                let t = t.as_string::<i32>();
                (0..t.len())
                    .map(|r| f64::from(u8::from(t.is_valid(r) && t.value(r) == positive)))
                    .collect()
            }
        })
    }

    /// 1.0 where `label` holds the positive class, 0.0 where it holds the other and NULL
    /// where it is NULL.
    pub fn is_positive(&self, label: Expr) -> Result<Expr> {
        let positive = match self {
            Classes::Boolean => label.clone(),
            Classes::Numeric => cast(label.clone(), DataType::Float64).eq(lit(1.0)),
            Classes::Text { positive, .. } => label.clone().eq(lit(positive.as_str())),
        };
        when(label.is_null(), lit(ScalarValue::Float64(None)))
            .when(positive, lit(1.0))
            .otherwise(lit(0.0))
    }

    /// PREDICT in FROM for a classifier: `input`, then `predicted_<label>` (the class of
    /// probability 0.5 or more) and `probability`, computed once per row by `probability`.
    pub fn predict_plan(
        &self,
        input: LogicalPlan,
        label: &str,
        probability: Expr,
    ) -> Result<LogicalPlan> {
        let (positive, negative) = match self {
            Classes::Boolean => (lit(true), lit(false)),
            Classes::Numeric => (lit(1i64), lit(0i64)),
            Classes::Text { positive, negative } => {
                (lit(positive.as_str()), lit(negative.as_str()))
            }
        };
        let plan = appended(input, [probability.alias("probability")])?;
        let mut outer: Vec<Expr> = plan
            .schema()
            .columns()
            .into_iter()
            .map(Expr::Column)
            .collect();
        let predicted = when(
            Expr::Column(Column::from_name("probability")).gt_eq(lit(0.5)),
            positive,
        )
        .otherwise(negative)?
        .alias(format!("predicted_{label}"));
        outer.insert(outer.len() - 1, predicted);
        LogicalPlanBuilder::from(plan).project(outer)?.build()
    }
}
