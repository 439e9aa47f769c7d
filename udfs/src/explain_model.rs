//! `EXPLAIN_MODEL('model')`: a model's weights in the original units of its features.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::Documentation;

use crate::model::{Explained, Importance, ModelResolver, Parameter, wrong_type};
use crate::sql::model_name_argument;

pub static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Explains a stored model. For linear_reg and logistic_reg, one row per weight: \
         feature (the column name, column=level for a category, or (intercept)), weight in \
         the original units of the feature (log-odds for logistic_reg), std_err, z_or_t (t \
         for linear_reg, z for logistic_reg), p_value, and importance (|weight| in \
         standardized units, comparable across features). For boosted_tree_classifier and \
         boosted_tree_regressor, one row per feature: feature, gain (the loss reduction of \
         all its splits), splits (how many there are) and importance (its share of the total \
         gain). For a customer_value model, one row per fitted parameter: parameter (r, \
         alpha, a, b for BG/NBD or r, alpha, s, beta for Pareto/NBD, then the Gamma-Gamma p, \
         q, gamma), value and std_err (from the observed information; NULL where it is not \
         positive definite).",
        "SELECT * FROM explain_model(model_name)",
    )
    .with_argument("model_name", "Name of a linear_reg, logistic_reg, boosted tree or customer_value model, as a string literal.")
    .with_sql_example(
        "```sql\nSELECT feature, weight, p_value FROM explain_model('spend') ORDER BY importance DESC;\n```",
    )
    .build()
});

/// The table function behind `explain_model`.
#[derive(Debug)]
pub struct ExplainModel {
    resolver: Arc<dyn ModelResolver>,
}

impl ExplainModel {
    pub fn new(resolver: Arc<dyn ModelResolver>) -> Self {
        Self { resolver }
    }
}

impl TableFunctionImpl for ExplainModel {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let name = model_name_argument("explain_model", args.exprs())?;
        let resolved = self.resolver.resolve(&name)?;
        if let Some(rows) = resolved.model.explain() {
            return weights_table(&rows);
        }
        if let Some(estimates) = resolved.model.estimates() {
            return estimates_table(&estimates);
        }
        match resolved.model.importance() {
            Some(rows) => importance_table(&rows),
            None => Err(wrong_type(
                "explain_model",
                "models with weights, trees or fitted parameters",
                Some(&name),
                resolved.model.as_ref(),
            )),
        }
    }
}

/// A linear model's weights.
fn weights_table(rows: &[Explained]) -> Result<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("feature", DataType::Utf8, false),
        Field::new("weight", DataType::Float64, false),
        Field::new("std_err", DataType::Float64, true),
        Field::new("z_or_t", DataType::Float64, true),
        Field::new("p_value", DataType::Float64, true),
        Field::new("importance", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| &r.feature),
            )),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.weight),
            )),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.std_err))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.statistic))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.p_value))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.importance))),
        ],
    )?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// A tree model's features: the gain and number of their splits, and the share of the
/// gain.
fn importance_table(rows: &[Importance]) -> Result<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("feature", DataType::Utf8, false),
        Field::new("gain", DataType::Float64, false),
        Field::new("splits", DataType::Int64, false),
        Field::new("importance", DataType::Float64, false),
    ]));
    let total: f64 = rows.iter().map(|r| r.gain).sum();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| &r.feature),
            )),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.gain))),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.splits as i64),
            )),
            Arc::new(Float64Array::from_iter_values(
                rows.iter()
                    .map(|r| if total > 0.0 { r.gain / total } else { 0.0 }),
            )),
        ],
    )?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// EXPLAIN_MODEL of a model with fitted parameters: parameter, value and std_err.
fn estimates_table(estimates: &[Parameter]) -> Result<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("parameter", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
        Field::new("std_err", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                estimates.iter().map(|p| &p.name),
            )),
            Arc::new(Float64Array::from_iter_values(
                estimates.iter().map(|p| p.value),
            )),
            Arc::new(Float64Array::from_iter(estimates.iter().map(|p| p.std_err))),
        ],
    )?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}
