//! `EVALUATE('model', table_or_subquery)` in FROM: one row of the model's metrics on
//! labelled rows, as the model type defines them.

use std::sync::{Arc, LazyLock};

use datafusion::common::{Result, plan_err};
use datafusion::execution::memory_pool::MemoryPool;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{Documentation, LogicalPlan};
use datafusion::sql::sqlparser::ast::FunctionArg;

use super::TableForm;
use super::args::{model_and_input, string_argument};
use super::plan::{ScoredInput, batch_plan};
use crate::model::{ModelResolver, ResolvedModel};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Evaluates a stored model on labelled rows and returns one row of metrics, defined as \
         scikit-learn defines them. linear_reg and boosted_tree_regressor: rows, \
         rows_skipped, r2, adj_r2, mse, rmse, mae. logistic_reg and boosted_tree_classifier: \
         rows, rows_skipped, accuracy, precision, recall, f1 (at \
         probability 0.5), auc, log_loss. Features are matched by name; the label column must \
         be in the input. Rows with a NULL label or prediction are skipped and counted. \
         kmeans: rows, rows_skipped, inertia, davies_bouldin, silhouette. \
         matrix_factorization with explicit feedback: the linear_reg metrics of the predicted \
         ratings (pairs with a user or item unseen in training are skipped); with implicit \
         feedback: rows, rows_skipped, users, k, precision_at_k, recall_at_k, ndcg_at_k and \
         map_at_k of each user's top 10 (training items left out) against that user's \
         (user, item) rows in the input, averaged over users; precision is the hits out of \
         min(10, the user's held-out items). forecast: mape, smape (both \
         as fractions), mase (errors over the series' in-sample seasonal naive error), rows \
         and rows_skipped, over the input's ([id,] time, value) rows whose time is a step \
         after their series' end.",
        "SELECT * FROM evaluate(model_name[, table_or_subquery])",
    )
    .with_argument("model_name", "Name of a model made with CREATE MODEL, as a string literal.")
    .with_argument(
        "table_or_subquery",
        "A table name or a (SELECT ...) with the model's features and its label. Left out: \
         the metrics CREATE MODEL measured on its evaluation rows (data_split_method), in \
         the same columns.",
    )
    .with_sql_example(
        "```sql\nSELECT auc, log_loss FROM evaluate('churn', (SELECT * FROM customers WHERE customer_id % 5 = 0));\n```",
    )
    .build()
});

pub(super) static FORM: TableForm = TableForm {
    name: "evaluate",
    doc: Some(&DOC),
    plan,
};

fn plan(
    args: &[FunctionArg],
    context: &mut dyn RelationPlannerContext,
    models: &dyn ModelResolver,
) -> Result<LogicalPlan> {
    if let [model] = args
        && let Some(name) = string_argument(model)
    {
        return stored(&name, models);
    }
    let (name, query) = model_and_input(FORM.name, args)?;
    ScoredInput::new(FORM.name, name, query, context, models, None)?
        .plan(|model, input, scored| model.evaluate_plan(input, scored))
}

/// The metrics CREATE MODEL measured on the model's evaluation rows.
fn stored(name: &str, models: &dyn ModelResolver) -> Result<LogicalPlan> {
    // An unknown model is reported as such, with the near names.
    models.resolve(name)?;
    match models.assessment(name)? {
        Some(a) if !a.eval.is_empty() => batch_plan(FORM.name, a.eval_batch()?),
        _ => plan_err!(
            "model {name} has no stored evaluation: it was trained without evaluation rows \
             (data_split_method = 'none', or 'auto' with fewer than {} rows); evaluate it on \
             rows, evaluate('{name}', table), or create it with data_split_method = 'random'",
            crate::model::assessment::AUTO_SPLIT_MIN_ROWS
        ),
    }
}

/// EVALUATE's plan for `resolved` over the rows of `input`, as the engine runs it on the
/// evaluation rows at CREATE MODEL.
pub fn evaluate_rows(
    resolved: ResolvedModel,
    input: LogicalPlan,
    pool: Arc<dyn MemoryPool>,
) -> Result<LogicalPlan> {
    ScoredInput::of_plan(FORM.name, resolved, input, pool)?
        .plan(|model, input, scored| model.evaluate_plan(input, scored))
}
