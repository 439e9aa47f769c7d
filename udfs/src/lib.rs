//! cohort's SQL functions for DataFusion.
//!
//! Every function lives in a file of its own with its documentation; the numerical kernels
//! they call ([`kernels`]) know nothing of SQL, and [`model`] holds trained models and their
//! input encoding. Any DataFusion application gets all the functions with one call to
//! [`register_all`], giving it a [`ModelResolver`] that finds models by name. The table
//! forms in FROM (PREDICT, EVALUATE, LIFT, SEGMENT, RFM, RECOMMEND over a table or
//! subquery) and the statement rewrite they need are the [`sql`] layer.

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
pub mod segment_profile;
pub mod segment_window;
pub mod similar_items;
pub mod sql;
pub mod train_regression;

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::logical_expr::{AggregateUDF, DocSection, Documentation, ScalarUDF, WindowUDF};
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
/// through `models`.
pub fn register_all(ctx: &SessionContext, models: Arc<dyn ModelResolver>) -> Result<()> {
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
    ctx.register_udf(ScalarUDF::new_from_impl(recommend::Recommend::new(
        models.clone(),
    )));
    ctx.register_udaf(AggregateUDF::new_from_impl(
        train_regression::TrainRegression::default(),
    ));
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
        ])
        .collect();
    docs.sort_by_key(|(name, _)| *name);
    docs
}
