//! `PREDICT('model', table_or_subquery)` in FROM: every input column, plus what the model
//! predicts for each row.

use std::sync::LazyLock;

use datafusion::common::Result;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{Documentation, LogicalPlan};
use datafusion::sql::sqlparser::ast::FunctionArg;

use super::TableForm;
use super::args::model_and_input;
use super::plan::ScoredInput;
use crate::model::ModelResolver;

static DOC: LazyLock<Documentation> =
    LazyLock::new(|| {
        Documentation::builder(
        crate::DOC_SECTION,
        "Scores a table or subquery with a stored model, matching features by column name: \
         every input column is kept and predicted_<label> is appended (the predicted value \
         for linear_reg and boosted_tree_regressor; the predicted class and its probability \
         for logistic_reg and boosted_tree_classifier).",
        "SELECT * FROM predict(model_name, table_or_subquery)",
    )
    .with_argument("model_name", "Name of a model made with CREATE MODEL, as a string literal.")
    .with_argument(
        "table_or_subquery",
        "A table name or a (SELECT ...) holding the model's features, in any order.",
    )
    .with_sql_example(
        "```sql\nSELECT customer_id, probability FROM predict('churn', (SELECT * FROM customers \
         WHERE region = 'North')) ORDER BY probability DESC LIMIT 10;\n```",
    )
    .build()
    });

pub(super) static FORM: TableForm = TableForm {
    name: "predict",
    doc: Some(&DOC),
    plan,
};

fn plan(
    args: &[FunctionArg],
    context: &mut dyn RelationPlannerContext,
    models: &dyn ModelResolver,
) -> Result<LogicalPlan> {
    let (name, query) = model_and_input(FORM.name, args)?;
    ScoredInput::new(FORM.name, name, query, context, models, None)?
        .plan(|model, input, scored| model.predict_plan(input, scored))
}
