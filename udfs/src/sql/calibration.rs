//! `CALIBRATION('model', orders)` in FROM, and EVALUATE's plan for customer_value models:
//! the model's expected purchases after calibration_end against what the customers did.

use std::sync::LazyLock;

use datafusion::common::{Column, Result};
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{
    AggregateUDF, Documentation, Expr, LogicalPlan, LogicalPlanBuilder,
};
use datafusion::sql::sqlparser::ast::FunctionArg;

use super::TableForm;
use super::args::model_and_input;
use super::plan::{ScoredInput, metrics_plan};
use crate::evaluate_customer_value::{Holdout, group_fields, summary_fields};
use crate::model::{CustomerValueModel, ModelResolver, Scored};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The calibration check of a customer_value model, the standard plot of the BG/NBD \
         and Pareto/NBD papers: the calibration customers grouped by their repeat purchases \
         in calibration (frequency '0' to '6', and '7+'), with customers, actual (mean \
         purchase days per customer after calibration_end, up to the model's holdout_end or \
         else the input's last day) and predicted (the mean the model expects over that \
         time). Purchases on the same day count once; rows of customers first seen after \
         calibration_end are skipped. EVALUATE on the same model and orders gives the totals, \
         mae and rmse.",
        "SELECT * FROM calibration(model_name, table_or_subquery)",
    )
    .with_argument(
        "model_name",
        "Name of a customer_value model, as a string literal.",
    )
    .with_argument(
        "table_or_subquery",
        "The orders, with the model's customer and time columns: all of them, calibration \
         and after.",
    )
    .with_sql_example("```sql\nSELECT * FROM calibration('value', orders) ORDER BY frequency;\n```")
    .build()
});

pub(super) static FORM: TableForm = TableForm {
    name: "calibration",
    doc: Some(&DOC),
    plan,
};

fn plan(
    args: &[FunctionArg],
    context: &mut dyn RelationPlannerContext,
    models: &dyn ModelResolver,
) -> Result<LogicalPlan> {
    let (name, query) = model_and_input(FORM.name, args)?;
    let input = ScoredInput::new(FORM.name, name, query, context, models, None)?;
    input.resolved.downcast::<CustomerValueModel>(FORM.name)?;
    input.plan(|_, input, scored| customer_value_evaluate_plan(input, scored, true))
}

/// EVALUATE's one row (customers, holdout_actual, holdout_predicted, mae, rmse) or, with
/// `by_frequency`, CALIBRATION's rows, over the orders `input`.
pub(crate) fn customer_value_evaluate_plan(
    input: LogicalPlan,
    scored: &Scored,
    by_frequency: bool,
) -> Result<LogicalPlan> {
    let aggregate =
        AggregateUDF::new_from_impl(Holdout::new(scored.resolved.clone(), by_frequency));
    let call = aggregate.call(scored.features.clone());
    if !by_frequency {
        return metrics_plan(input, call, summary_fields());
    }
    let plan = LogicalPlanBuilder::from(input)
        .aggregate(Vec::<Expr>::new(), vec![call.alias("groups")])?
        .unnest_column("groups")?
        .build()?;
    let columns: Vec<Expr> = group_fields()
        .iter()
        .map(|f| {
            get_field(Expr::Column(Column::from_name("groups")), f.name().as_str()).alias(f.name())
        })
        .collect();
    LogicalPlanBuilder::from(plan).project(columns)?.build()
}
