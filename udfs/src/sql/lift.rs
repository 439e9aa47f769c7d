//! `LIFT('model', table_or_subquery[, groups])` in FROM: labelled rows ranked by a
//! classifier's probability into equal groups, with each group's rate and lift.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, Result, plan_err};
use datafusion::functions_aggregate::expr_fn::{avg, count, sum};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::functions_window::expr_fn::ntile;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{
    Documentation, Expr, ExprFunctionExt, LogicalPlan, LogicalPlanBuilder, cast, lit,
};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, FunctionArg, FunctionArgExpr, Value};

use super::TableForm;
use super::args::{model_and_input_usage, model_and_relation};
use super::plan::ScoredInput;
use crate::model::{ModelResolver, Scoring};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Ranks labelled rows by a classifier's predicted probability, highest first, into \
         equal groups (deciles by default) and reports for each: decile, customers, positives, \
         rate, lift (rate over the overall rate) and cumulative_gain (the share of all \
         positives in this and the groups above it). Rows with a NULL label are left out.",
        "SELECT * FROM lift(model_name, table_or_subquery[, groups]) ORDER BY decile",
    )
    .with_argument(
        "model_name",
        "Name of a logistic_reg or boosted_tree_classifier model, as a string literal.",
    )
    .with_argument(
        "table_or_subquery",
        "A table name or a (SELECT ...) with the model's features and its label.",
    )
    .with_argument("groups", "Number of groups, 1 to 1000; 10 when left out.")
    .with_sql_example(
        "```sql\nSELECT * FROM lift('churn', (SELECT * FROM customers WHERE customer_id % 5 = 0)) ORDER BY decile;\n```",
    )
    .build()
});

pub(super) static FORM: TableForm = TableForm {
    name: "lift",
    doc: Some(&DOC),
    plan,
};

/// Rows ranked by predicted probability into `groups` equal groups, with customers,
/// positives, rate, lift over the overall rate, and the cumulative share of all
/// positives.
fn plan(
    args: &[FunctionArg],
    context: &mut dyn RelationPlannerContext,
    models: &dyn ModelResolver,
) -> Result<LogicalPlan> {
    let (model, input, groups) = match args {
        [m, i] => (m, i, 10),
        [
            m,
            i,
            FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(v))),
        ] => match &v.value {
            Value::Number(n, _) => match n.parse::<u32>() {
                Ok(k) if (1..=1000).contains(&k) => (m, i, k),
                _ => {
                    return plan_err!("lift's groups must be an integer from 1 to 1000, got {n}");
                }
            },
            _ => return plan_err!("lift's third argument is the number of groups, e.g. 10"),
        },
        _ => return model_and_input_usage(FORM.name),
    };
    let (name, query) = model_and_relation(FORM.name, model, input)?;
    let scored = ScoredInput::new(
        FORM.name,
        name,
        query,
        context,
        models,
        Some(Scoring::Churn),
    )?;
    let model = scored.resolved.model.as_ref();
    let label = model.label().and_then(|label| {
        scored
            .input
            .schema()
            .columns()
            .into_iter()
            .find(|c| c.name == label)
    });
    let actual = match label.and_then(|l| model.is_positive(Expr::Column(l))) {
        Some(actual) => actual?,
        None => {
            return plan_err!(
                "lift('{}', ...) needs the label column {} in its input",
                scored.name,
                model.label().unwrap_or_default()
            );
        }
    };
    let column = |name: &str| Expr::Column(Column::from_name(name));
    let over_all = |e: Expr| Expr::from(WindowFunction::new(sum_udaf(), vec![e]));
    LogicalPlanBuilder::from(scored.input.clone())
        .project(vec![
            actual.alias("y"),
            scored.call(Scoring::Predict).alias("p"),
        ])?
        .filter(column("y").is_not_null().and(column("p").is_not_null()))?
        .window(vec![
            ntile(lit(i64::from(groups)))
                .order_by(vec![column("p").sort(false, true)])
                .build()?
                .alias("grp"),
        ])?
        .aggregate(
            vec![column("grp")],
            vec![
                count(lit(1)).alias("customers"),
                sum(column("y")).alias("sum_y"),
                avg(column("y")).alias("rate"),
            ],
        )?
        // The labels are 0 or 1, so these sums of the groups' sums are exact.
        .window(vec![
            over_all(column("sum_y")).alias("all_positives"),
            over_all(column("customers")).alias("all_customers"),
        ])?
        // A window node per ordering, as DataFusion's physical planner requires.
        .window(vec![
            Expr::from(WindowFunction::new(sum_udaf(), vec![column("sum_y")]))
                .order_by(vec![column("grp").sort(true, false)])
                .build()?
                .alias("positives_so_far"),
        ])?
        .sort(vec![column("grp").sort(true, false)])?
        .project(vec![
            cast(column("grp"), DataType::Int64).alias("decile"),
            column("customers"),
            cast(column("sum_y"), DataType::Int64).alias("positives"),
            column("rate"),
            (column("rate")
                / (column("all_positives") / cast(column("all_customers"), DataType::Float64)))
            .alias("lift"),
            (column("positives_so_far") / column("all_positives")).alias("cumulative_gain"),
        ])?
        .build()
}
