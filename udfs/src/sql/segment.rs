//! `SEGMENT('model', table_or_subquery)` in FROM: every input column, plus each row's
//! cluster and its distance to the cluster's centre.

use datafusion::common::Result;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::sql::sqlparser::ast::FunctionArg;

use super::TableForm;
use super::args::model_and_input;
use super::plan::{ScoredInput, appended};
use crate::model::{ModelResolver, Scoring};

pub(super) static FORM: TableForm = TableForm {
    name: "segment",
    // The scalar SEGMENT's documentation covers this form.
    doc: None,
    plan,
};

fn plan(
    args: &[FunctionArg],
    context: &mut dyn RelationPlannerContext,
    models: &dyn ModelResolver,
) -> Result<LogicalPlan> {
    let (name, query) = model_and_input(FORM.name, args)?;
    let needs = Some(Scoring::Segment);
    let scored = ScoredInput::new(FORM.name, name, query, context, models, needs)?;
    appended(
        scored.input.clone(),
        [
            scored.call(Scoring::Segment).alias("segment"),
            scored.call(Scoring::Distance).alias("distance"),
        ],
    )
}
