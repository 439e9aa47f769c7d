//! The SQL layer: cohort's table forms in FROM, the readers of their arguments, the plan
//! pieces they share and the statement rewrite the engine applies before planning.
//!
//! A table form is a function in FROM that DataFusion's table functions cannot express: it
//! takes a table or subquery (`predict('m', customers)`), which must be planned with the
//! statement. Each form is a [`TableForm`] in its own file that names itself; one relation
//! planner, [`FormPlanner`], hands each call to the form of that name.
//!
//! Every form builds its plan with `LogicalPlanBuilder` and `Expr`, never by writing SQL
//! text and parsing it again: names need no quoting, a wrong column or type fails when the
//! plan is built with the column's own name, and the plan is made of nodes DataFusion can
//! serialize and distribute like any other query's.

use std::sync::{Arc, LazyLock};

use datafusion::common::Result;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{Documentation, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{FunctionArg, Ident, ObjectNamePart, TableFactor};

use crate::model::ModelResolver;

mod args;
mod batches;
mod calibration;
mod customer_value;
mod evaluate;
mod explain_predict;
mod lift;
mod plan;
mod predict;
mod recommend;
mod rewrite;
mod rfm;
mod segment;

pub(crate) use args::{
    argument_arrays, count_argument, model_name, model_name_argument, string_literal,
};
pub use batches::SessionPool;
pub(crate) use batches::{Budget, batch_bytes, generated};
pub(crate) use calibration::customer_value_evaluate_plan;
pub use evaluate::evaluate_rows;
pub(crate) use explain_predict::ExplainRow;
pub(crate) use plan::{
    appended, forecast_evaluate_plan, labelled_metrics, metrics_plan, ranking_batch, ranking_schema,
};
pub use recommend::{RecommendExec, RecommendNode, RecommendPlanner};
pub use rewrite::rewrite_cohort_forms;

/// A function in FROM planned by cohort rather than by DataFusion's table functions. Each
/// form's file defines one, `FORM`.
pub(crate) struct TableForm {
    /// Its name in FROM, in lower case.
    name: &'static str,
    /// Its documentation, for `\df`; `None` where another function's covers it.
    doc: Option<&'static LazyLock<Documentation>>,
    /// The plan of a call with these arguments.
    plan: fn(
        &[FunctionArg],
        &mut dyn RelationPlannerContext,
        &dyn ModelResolver,
    ) -> Result<LogicalPlan>,
}

/// Every table form. Each takes a table or subquery argument, which the statement rewrite
/// turns into a subquery where a table name is given.
static FORMS: [&TableForm; 9] = [
    &predict::FORM,
    &evaluate::FORM,
    &explain_predict::FORM,
    &lift::FORM,
    &segment::FORM,
    &rfm::FORM,
    &recommend::FORM,
    &customer_value::FORM,
    &calibration::FORM,
];

fn form(name: &str) -> Option<&'static TableForm> {
    FORMS.iter().copied().find(|f| f.name == name)
}

/// Plans the table forms in FROM clauses.
#[derive(Debug)]
pub struct FormPlanner {
    models: Arc<dyn ModelResolver>,
}

impl RelationPlanner for FormPlanner {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let mut relation = relation;
        let TableFactor::Table {
            name,
            alias,
            args: Some(args),
            ..
        } = &mut relation
        else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        // DataFusion looks table functions up by the name as written; normalised here, as
        // every other function name is, `FORECAST(...)` finds `forecast`.
        if let [ObjectNamePart::Identifier(ident)] = name.0.as_mut_slice() {
            *ident = Ident::new(context.normalize_ident(ident.clone()));
        }
        let Some(form) = form(&name.to_string().to_lowercase()) else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let plan = (form.plan)(&args.args, context, self.models.as_ref())?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan,
            alias.clone(),
        ))))
    }
}

/// Registers the table forms in `ctx`; they find models through `models`.
pub fn register(ctx: &SessionContext, models: Arc<dyn ModelResolver>) -> Result<()> {
    ctx.register_relation_planner(Arc::new(FormPlanner { models }))
}

/// The documented table forms, by name.
pub fn docs() -> impl Iterator<Item = (&'static str, &'static Documentation)> {
    FORMS.iter().filter_map(|f| Some((f.name, &**f.doc?)))
}
