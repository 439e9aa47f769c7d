//! cohort's SQL functions for DataFusion.
//!
//! Every function lives in a file of its own with its documentation; the numerical kernels
//! they call ([`kernels`]) know nothing of SQL, and [`model`] holds trained models and their
//! input encoding. Any DataFusion application gets all the functions with one call to
//! [`register_all`], giving it a [`ModelResolver`] that finds models by name. The table
//! forms in FROM (PREDICT, EVALUATE, LIFT, SEGMENT, RFM, RECOMMEND over a table or
//! subquery) and the statement rewrite they need are the [`sql`] layer.

pub mod bar;
pub mod codec;
pub mod customer_scores;
pub mod error;
pub mod evaluate;
pub mod evaluate_customer_value;
pub mod evaluate_kmeans;
pub mod evaluate_ranking;
pub mod explain_model;
pub mod forecast;
pub mod kernels;
pub mod model;
pub mod predict;
pub mod recommend;
pub mod row_hash;
pub mod segment_profile;
pub mod segment_window;
pub mod similar_items;
pub mod sql;
pub mod train_regression;
pub mod training_pass;
pub mod trials;

use std::sync::Arc;

use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{
    AggregateUDF, DocSection, Documentation, LogicalPlan, ScalarUDF, WindowUDF,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use datafusion::prelude::SessionContext;

pub use error::Error;
pub use model::{Model, ModelResolver, ResolvedModel};

/// Where cohort's functions appear in generated documentation.
pub(crate) const DOC_SECTION: DocSection = DocSection {
    include: true,
    label: "cohort models",
    description: None,
};

/// Registers every cohort function in `ctx`; functions that take a model name find it
/// through `models`. Also makes `ctx`'s query planner one that plans cohort's own plan
/// nodes ([`extension_planners`]).
pub fn register_all(ctx: &SessionContext, models: Arc<dyn ModelResolver>) -> Result<()> {
    register_functions(ctx, models)?;
    let state = ctx.state_ref();
    let mut state = state.write();
    *state = SessionStateBuilder::new_from_existing(state.clone())
        .with_query_planner(Arc::new(Planner))
        .build();
    Ok(())
}

/// The physical planners of cohort's plan nodes (RECOMMEND over a table), for a session
/// whose query planner is not the one [`register_all`] installs.
pub fn extension_planners() -> Vec<Arc<dyn ExtensionPlanner + Send + Sync>> {
    vec![Arc::new(sql::RecommendPlanner)]
}

/// DataFusion's physical planner with [`extension_planners`].
#[derive(Debug)]
struct Planner;

#[async_trait::async_trait]
impl QueryPlanner for Planner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(extension_planners())
            .create_physical_plan(plan, state)
            .await
    }
}

/// Registers the functions of [`register_all`] only, leaving the query planner as it is.
pub fn register_functions(ctx: &SessionContext, models: Arc<dyn ModelResolver>) -> Result<()> {
    for scoring in [
        model::Scoring::Predict,
        model::Scoring::Churn,
        model::Scoring::Segment,
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(predict::Predict::new(
            models.clone(),
            scoring,
        )));
    }
    for score in [
        customer_scores::CustomerScore::Alive,
        customer_scores::CustomerScore::ExpectedPurchases,
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(
            customer_scores::CustomerScoreUdf::new(models.clone(), score),
        ));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(bar::Bar::default()));
    ctx.register_udf(ScalarUDF::new_from_impl(recommend::Recommend::new(
        models.clone(),
    )));
    ctx.register_udaf(AggregateUDF::new_from_impl(
        train_regression::TrainRegression::default(),
    ));
    ctx.add_analyzer_rule(Arc::new(train_regression::NameGroups));
    ctx.register_udaf(AggregateUDF::new_from_impl(
        training_pass::TrainingPass::default(),
    ));
    sql::SessionPool::share(&mut ctx.state_ref().write());
    ctx.register_udwf(WindowUDF::new_from_impl(
        segment_window::SegmentWindow::default(),
    ));
    ctx.register_udtf(
        "explain_model",
        Arc::new(explain_model::ExplainModel::new(models.clone())),
    );
    ctx.register_udtf(
        "forecast",
        Arc::new(forecast::Forecast::new(models.clone())),
    );
    ctx.register_udtf(
        "similar_items",
        Arc::new(similar_items::SimilarItems::new(models.clone())),
    );
    ctx.register_udtf(
        "segment_profile",
        Arc::new(segment_profile::SegmentProfile::new(models.clone())),
    );
    ctx.register_udtf("trials", Arc::new(trials::Trials::new(models.clone())));
    sql::register(ctx, models)
}

/// Documentation of the table functions and table forms, which DataFusion does not carry
/// itself.
pub fn table_function_docs() -> Vec<(&'static str, &'static Documentation)> {
    let mut docs: Vec<_> = sql::docs()
        .chain([
            ("explain_model", &*explain_model::DOC),
            ("forecast", &*forecast::DOC),
            ("segment_profile", &*segment_profile::DOC),
            ("similar_items", &*similar_items::DOC),
            ("trials", &*trials::DOC),
        ])
        .collect();
    docs.sort_by_key(|(name, _)| *name);
    docs
}
