//! Plan pieces shared by the table forms and by the model types' PREDICT and EVALUATE
//! plans.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use datafusion::common::{Column, Result, plan_err};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::execution::memory_pool::MemoryPool;
use datafusion::functions::core::expr_fn::{get_field, nullif};
use datafusion::functions::math::expr_fn::abs;
use datafusion::functions_aggregate::expr_fn::{avg, count};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{
    AggregateUDF, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, cast, lit, when,
};
use datafusion::sql::sqlparser::ast::{Query, TableFactor};

use super::batches::SessionPool;
use crate::evaluate::{EvaluateAggregate, Metrics};
use crate::model::matrix_factorization::{Ids, Ranking};
use crate::model::{
    MatrixFactorizationModel, Model, ModelResolver, ResolvedModel, Scored, Scoring,
    check_feature_types,
};
use crate::predict::bound_predict;

/// The input columns that carry the model's features, by name, in training order; the
/// error lists what is missing and what the input has.
fn match_features(input: &LogicalPlan, model_name: &str, model: &dyn Model) -> Result<Vec<Expr>> {
    let columns = input.schema().columns();
    let mut features = Vec::new();
    let mut missing = Vec::new();
    for name in model.feature_names() {
        match columns.iter().find(|c| c.name == name) {
            Some(c) => features.push(Expr::Column(c.clone())),
            None => missing.push(name.to_string()),
        }
    }
    if !missing.is_empty() {
        let have: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        return plan_err!(
            "model {model_name} needs the columns {} that the input lacks; the input has: {}",
            missing.join(", "),
            have.join(", ")
        );
    }
    Ok(features)
}

/// A model and the input it scores, its feature columns found by name: what PREDICT,
/// EVALUATE and SEGMENT in FROM build on.
pub(crate) struct ScoredInput {
    pub name: String,
    pub resolved: ResolvedModel,
    pub input: LogicalPlan,
    pub features: Vec<Expr>,
    /// The session's memory pool, for what the plan holds.
    pub pool: Arc<dyn MemoryPool>,
}

impl ScoredInput {
    /// The model `name` and `query` planned as a derived table, for the table form
    /// `function`; with `needs`, the model must support that scoring.
    pub fn new(
        function: &str,
        name: String,
        query: Box<Query>,
        context: &mut dyn RelationPlannerContext,
        models: &dyn ModelResolver,
        needs: Option<Scoring>,
    ) -> Result<Self> {
        let resolved = models.resolve(&name)?;
        if let Some(scoring) = needs {
            resolved.check_scoring(scoring, function)?;
        }
        let input = plan_derived(context, query)?;
        let pool = SessionPool::of(context.context_provider().options());
        Self::of_plan(function, resolved, input, pool)
    }

    /// The model `resolved` over the rows of `input`, for `function`.
    pub fn of_plan(
        function: &str,
        resolved: ResolvedModel,
        input: LogicalPlan,
        pool: Arc<dyn MemoryPool>,
    ) -> Result<Self> {
        let name = resolved.name.clone();
        let features = match_features(&input, &name, resolved.model.as_ref())?;
        let given = features
            .iter()
            .map(|f| Ok((f.get_type(input.schema())?, None)))
            .collect::<Result<Vec<_>>>()?;
        check_feature_types(function, Some(&name), resolved.model.as_ref(), &given)?;
        Ok(Self {
            name,
            resolved,
            input,
            features,
            pool,
        })
    }

    /// The model's scoring function `scoring` over the features.
    pub fn call(&self, scoring: Scoring) -> Expr {
        let udf = bound_predict(self.resolved.clone(), self.features.len(), scoring);
        Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::new(udf),
            self.features.clone(),
        ))
    }

    /// Builds the plan `f` makes from the input and the model's scoring functions.
    pub fn plan(
        self,
        f: impl FnOnce(&dyn Model, LogicalPlan, &Scored) -> Result<LogicalPlan>,
    ) -> Result<LogicalPlan> {
        let call = |scoring| self.call(scoring);
        let scored = Scored {
            name: &self.name,
            resolved: &self.resolved,
            features: self.features.clone(),
            call: &call,
            pool: self.pool.clone(),
        };
        f(self.resolved.model.as_ref(), self.input.clone(), &scored)
    }
}

/// Every column of `input`, then `more`.
pub(crate) fn appended(
    input: LogicalPlan,
    more: impl IntoIterator<Item = Expr>,
) -> Result<LogicalPlan> {
    let mut exprs: Vec<Expr> = input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    exprs.extend(more);
    LogicalPlanBuilder::from(input).project(exprs)?.build()
}

/// EVALUATE's plan for a supervised model: the metrics aggregate over the prediction and
/// the label column `label_name` made a number by `actual`, one column per metric.
pub(crate) fn labelled_metrics(
    input: LogicalPlan,
    scored: &Scored,
    label_name: &str,
    metrics: Metrics,
    actual: impl FnOnce(Expr) -> Result<Expr>,
) -> Result<LogicalPlan> {
    let Some(label) = input
        .schema()
        .columns()
        .into_iter()
        .find(|c| c.name == label_name)
    else {
        return plan_err!(
            "evaluate('{}', ...) needs the label column {label_name} in its input",
            scored.name
        );
    };
    let actual = actual(Expr::Column(label))?;
    let aggregate =
        AggregateUDF::new_from_impl(EvaluateAggregate::new(metrics, Some(scored.pool.clone())));
    metrics_plan(
        input,
        aggregate.call(vec![(scored.call)(Scoring::Predict), actual]),
        metrics.fields(),
    )
}

/// EVALUATE's plan for a forecast model: over the rows whose time is a step after their
/// series' end, MAPE, sMAPE (both as fractions; rows with a zero denominator left out) and
/// MASE (errors over the series' in-sample seasonal naive error), then rows and
/// rows_skipped.
pub(crate) fn forecast_evaluate_plan(
    input: LogicalPlan,
    model_name: &str,
    value_col: &str,
    forecast: Expr,
    scale: Expr,
) -> Result<LogicalPlan> {
    let Some(value) = input
        .schema()
        .columns()
        .into_iter()
        .find(|c| c.name == value_col)
    else {
        return plan_err!(
            "evaluate('{model_name}', ...) needs the value column {value_col} in its input"
        );
    };
    let plan = LogicalPlanBuilder::from(input)
        .project(vec![
            cast(Expr::Column(value), DataType::Float64).alias("y"),
            forecast.alias("f"),
            scale.alias("s"),
        ])?
        .build()?;
    let column = |name: &str| Expr::Column(Column::from_name(name));
    let (y, f) = (column("y"), column("f"));
    let used = y.clone().is_not_null().and(f.clone().is_not_null());
    let error = abs(y.clone() - f.clone());
    let over_used = |e: Expr| when(used.clone(), e).end();
    let metrics = vec![
        avg(over_used(error.clone() / nullif(abs(y.clone()), lit(0.0)))?).alias("mape"),
        avg(over_used(
            lit(2.0) * error.clone() / nullif(abs(y) + abs(f), lit(0.0)),
        )?)
        .alias("smape"),
        avg(over_used(error / column("s"))?).alias("mase"),
        count(over_used(lit(1))?).alias("rows"),
        (count(lit(1)) - count(over_used(lit(1))?)).alias("rows_skipped"),
    ];
    LogicalPlanBuilder::from(plan)
        .aggregate(Vec::<Expr>::new(), metrics)?
        .build()
}

/// One row of metrics: `aggregate` (a struct of `fields`) over the input, one column per
/// field.
pub(crate) fn metrics_plan(
    input: LogicalPlan,
    aggregate: Expr,
    fields: Fields,
) -> Result<LogicalPlan> {
    let plan = LogicalPlanBuilder::from(input)
        .aggregate(Vec::<Expr>::new(), vec![aggregate.alias("metrics")])?
        .build()?;
    let columns: Vec<Expr> = fields
        .iter()
        .map(|f| {
            get_field(
                Expr::Column(Column::from_name("metrics")),
                f.name().as_str(),
            )
            .alias(f.name())
        })
        .collect();
    LogicalPlanBuilder::from(plan).project(columns)?.build()
}

/// A plan that reads `batch`, named `name`.
pub(crate) fn batch_plan(name: &str, batch: RecordBatch) -> Result<LogicalPlan> {
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?.build()
}

/// Plans a parsed query as a derived table.
pub(crate) fn plan_derived(
    context: &mut dyn RelationPlannerContext,
    query: Box<Query>,
) -> Result<LogicalPlan> {
    context.plan(TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: None,
        sample: None,
    })
}

/// One row per ranked item: the key (ranking `r` is for id `keys[positions[r]]`), the
/// item, score and rank.
pub(crate) fn ranking_batch(
    m: &MatrixFactorizationModel,
    (key_name, keys, positions): (&str, &Ids, &[usize]),
    item_name: &str,
    rankings: &[Ranking],
) -> Result<RecordBatch> {
    let owner = rankings
        .iter()
        .enumerate()
        .flat_map(|(r, list)| std::iter::repeat_n(positions[r], list.len()));
    let flat: Vec<(f64, usize)> = rankings.iter().flatten().copied().collect();
    let columns: Vec<ArrayRef> = vec![
        keys.take(owner),
        m.items.take(flat.iter().map(|(_, i)| *i)),
        Arc::new(Float64Array::from_iter_values(flat.iter().map(|(s, _)| *s))),
        Arc::new(Int64Array::from_iter_values(
            rankings.iter().flat_map(|list| 1..=list.len() as i64),
        )),
    ];
    Ok(RecordBatch::try_new(
        ranking_schema(m, (key_name, keys), item_name),
        columns,
    )?)
}

/// The columns of a [`ranking_batch`].
pub(crate) fn ranking_schema(
    m: &MatrixFactorizationModel,
    (key_name, keys): (&str, &Ids),
    item_name: &str,
) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(key_name, keys.data_type(), false),
        Field::new(item_name, m.items.data_type(), false),
        Field::new("score", DataType::Float64, false),
        Field::new("rank", DataType::Int64, false),
    ]))
}
