//! The table forms that take a table or subquery: `PREDICT('model', relation)` (every input
//! column, plus `predicted_<label>` and, for classifiers, `probability`) and
//! `EVALUATE('model', relation)` (one row of metrics). Features are matched by name.
//!
//! DataFusion's table functions only see literal arguments, so these forms are a relation
//! planner: it plans the table or subquery argument and builds the plan over it.

use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Fields};
use datafusion::common::{Column, Result, plan_err};
use datafusion::functions::core::expr_fn::{get_field, nullif};
use datafusion::functions::math::expr_fn::abs;
use datafusion::functions_aggregate::expr_fn::{avg, count};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{AggregateUDF, LogicalPlan, cast};
use datafusion::logical_expr::{Documentation, Expr, LogicalPlanBuilder, lit, when};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, Ident, ObjectName, Query, TableAlias,
    TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::wrong_model_type_err;
use crate::evaluate::{EvaluateAggregate, Metrics};
use crate::model::logistic::Classes;
use crate::model::{LogisticModel, Model, ModelResolver, Scored, Scoring};
use crate::predict::bound_predict;
use crate::segment_window::SEGMENT_WINDOW;

pub static DOC: LazyLock<Documentation> =
    LazyLock::new(|| {
        Documentation::builder(
        crate::DOC_SECTION,
        "Scores a table or subquery with a stored model, matching features by column name: \
         every input column is kept and predicted_<label> is appended (the predicted value \
         for linear_reg; the predicted class and its probability for logistic_reg).",
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

pub static LIFT_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Ranks labelled rows by a classifier's predicted probability, highest first, into \
         equal groups (deciles by default) and reports for each: decile, customers, positives, \
         rate, lift (rate over the overall rate) and cumulative_gain (the share of all \
         positives in this and the groups above it). Rows with a NULL label are left out.",
        "SELECT * FROM lift(model_name, table_or_subquery[, groups]) ORDER BY decile",
    )
    .with_argument("model_name", "Name of a logistic_reg model, as a string literal.")
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

/// The functions planned here, by their name in FROM.
const FORMS: [&str; 4] = ["predict", "evaluate", "lift", "segment"];

/// Every table form that takes a table argument, planned here or elsewhere in this crate.
const TABLE_ARGUMENT_FORMS: [&str; 6] =
    ["predict", "evaluate", "lift", "segment", "rfm", "recommend"];

/// Plans `predict('model', relation)` and `evaluate('model', relation)` in FROM clauses.
#[derive(Debug)]
pub struct PredictRelation {
    resolver: Arc<dyn ModelResolver>,
}

impl PredictRelation {
    pub fn new(resolver: Arc<dyn ModelResolver>) -> Self {
        Self { resolver }
    }
}

impl RelationPlanner for PredictRelation {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let Some((function, args, alias)) = table_form(&relation, &FORMS) else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let usage = || {
            plan_err!(
                "{function} in FROM takes the model name and a table or a (subquery), e.g. \
                 SELECT * FROM {function}('churn', customers)"
            )
        };
        let (model_arg, input_arg, groups) = match (function.as_str(), args) {
            (_, [m, i]) => (m, i, 10),
            (
                "lift",
                [
                    m,
                    i,
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(v))),
                ],
            ) => match &v.value {
                Value::Number(n, _) => match n.parse::<u32>() {
                    Ok(k) if (1..=1000).contains(&k) => (m, i, k),
                    _ => {
                        return plan_err!(
                            "lift's groups must be an integer from 1 to 1000, got {n}"
                        );
                    }
                },
                _ => return plan_err!("lift's third argument is the number of groups, e.g. 10"),
            },
            _ => return usage(),
        };
        let Some(model_name) = string_argument(model_arg) else {
            return usage();
        };
        let Some(query) = relation_query(input_arg)? else {
            return usage();
        };
        let plan = if function == "lift" {
            lift_plan(context, &model_name, self.resolver.as_ref(), &query, groups)?
        } else {
            let input = plan_derived(context, query)?;
            let resolved = self.resolver.resolve(&model_name)?;
            let model = resolved.model.as_ref();
            let features = match_features(&input, &model_name, model)?;
            let arity = features.len();
            let call = |scoring| {
                let udf = bound_predict(resolved.clone(), arity, scoring);
                Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(udf), features.clone()))
            };
            let scored = Scored {
                name: &model_name,
                key: format!("{}@{}", resolved.name, resolved.version),
                features: features.clone(),
                call: &call,
            };
            match function.as_str() {
                "segment" => {
                    if let Some(why) = model.refuses(Scoring::Segment, "segment", &model_name) {
                        return wrong_model_type_err!("{why}");
                    }
                    appended(
                        input,
                        [
                            call(Scoring::Segment).alias("segment"),
                            call(Scoring::Distance).alias("distance"),
                        ],
                    )?
                }
                "evaluate" => model.evaluate_plan(input, &scored)?,
                _ => model.predict_plan(input, &scored)?,
            }
        };
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan,
            alias.clone(),
        ))))
    }
}

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

/// The relation argument of a table form as a query: a `(subquery)` as it is, a table name
/// as `SELECT * FROM name`; `None` for anything else.
pub(crate) fn relation_query(arg: &FunctionArg) -> Result<Option<Box<Query>>> {
    let FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) = arg else {
        return Ok(None);
    };
    let table = match expr {
        SqlExpr::Subquery(query) => return Ok(Some(query.clone())),
        SqlExpr::Identifier(id) => id.to_string(),
        SqlExpr::CompoundIdentifier(ids) => ObjectName::from(ids.clone()).to_string(),
        _ => return Ok(None),
    };
    let query = Parser::new(&GenericDialect {})
        .try_with_sql(&format!("SELECT * FROM {table}"))
        .and_then(|mut p| p.parse_query())?;
    Ok(Some(query))
}

/// A named argument, `name => value`: the name in lower case and the value.
pub(crate) fn named_argument(arg: &FunctionArg) -> Option<(String, SqlExpr)> {
    match arg {
        FunctionArg::Named {
            name,
            arg: FunctionArgExpr::Expr(e),
            ..
        }
        | FunctionArg::ExprNamed {
            name: SqlExpr::Identifier(name),
            arg: FunctionArgExpr::Expr(e),
            ..
        } => Some((name.value.to_lowercase(), e.clone())),
        _ => None,
    }
}

/// A string literal argument's text.
pub(crate) fn string_argument(arg: &FunctionArg) -> Option<String> {
    match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(v))) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
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
    let aggregate = AggregateUDF::new_from_impl(EvaluateAggregate::new(metrics));
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

/// LIFT's plan: rows ranked by predicted probability into `groups` equal groups (deciles by
/// default), with customers, positives, rate, lift over the overall rate, and the
/// cumulative share of all positives. Written as SQL over the input and planned as a
/// derived table.
fn lift_plan(
    context: &mut dyn RelationPlannerContext,
    model_name: &str,
    resolver: &dyn ModelResolver,
    input: &Query,
    groups: u32,
) -> Result<LogicalPlan> {
    let resolved = resolver.resolve(model_name)?;
    if let Some(why) = resolved.model.refuses(Scoring::Churn, "lift", model_name) {
        return wrong_model_type_err!("{why}");
    }
    let m = resolved.downcast::<LogisticModel>("lift", "")?;
    let label = quote(&m.label);
    let actual = match &m.classes {
        Classes::Boolean => format!("CASE WHEN {label} THEN 1.0 WHEN NOT {label} THEN 0.0 END"),
        Classes::Numeric => format!("CAST({label} AS DOUBLE)"),
        Classes::Text { positive, .. } => format!(
            "CASE WHEN {label} IS NULL THEN NULL WHEN {label} = {} THEN 1.0 ELSE 0.0 END",
            literal(positive)
        ),
    };
    let features: Vec<String> = m.features.iter().map(|f| quote(f.name())).collect();
    let sql = format!(
        "WITH scored AS (\
            SELECT {actual} AS y, predict({}, {}) AS p FROM ({input}) AS input), \
         ranked AS (\
            SELECT y, ntile({groups}) OVER (ORDER BY p DESC) AS grp FROM scored \
            WHERE y IS NOT NULL AND p IS NOT NULL) \
         SELECT CAST(grp AS BIGINT) AS decile, count(*) AS customers, \
                CAST(sum(y) AS BIGINT) AS positives, avg(y) AS rate, \
                avg(y) / (SELECT avg(y) FROM ranked) AS lift, \
                sum(sum(y)) OVER (ORDER BY grp) / (SELECT sum(y) FROM ranked) AS cumulative_gain \
         FROM ranked GROUP BY grp ORDER BY grp",
        literal(model_name),
        features.join(", ")
    );
    plan_query(context, &sql)
}

/// The function (lower case), arguments and alias of a table function call in FROM, when
/// the function is one of `forms`.
pub(crate) fn table_form<'a>(
    relation: &'a TableFactor,
    forms: &[&str],
) -> Option<(String, &'a [FunctionArg], &'a Option<TableAlias>)> {
    let TableFactor::Table {
        name,
        alias,
        args: Some(args),
        ..
    } = relation
    else {
        return None;
    };
    let function = name.to_string().to_lowercase();
    forms
        .contains(&function.as_str())
        .then_some((function, args.args.as_slice(), alias))
}

/// An identifier quoted for SQL.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal for SQL.
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Plans a query written as SQL, as a derived table of the statement being planned.
pub(crate) fn plan_query(
    context: &mut dyn RelationPlannerContext,
    sql: &str,
) -> Result<LogicalPlan> {
    let query = Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_query())?;
    plan_derived(context, query)
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

/// Rewrites what DataFusion cannot plan as written, in a statement: a table name argument of
/// a table form, `predict('m', customers)`, becomes `predict('m', (SELECT * FROM
/// customers))` (DataFusion resolves a statement's tables before planning it and does not
/// look inside table function arguments); and `segment(k, ...) OVER (...)` calls the window
/// function `segment_window` (DataFusion plans a name with a scalar function as that
/// function even with OVER). Call it on statements (or queries) before planning them.
pub fn rewrite_cohort_forms<N: VisitMut>(statement: &mut N) -> Result<()> {
    struct Rewrite(Option<datafusion::common::DataFusionError>);
    impl VisitorMut for Rewrite {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut SqlExpr) -> ControlFlow<()> {
            if let SqlExpr::Function(f) = expr
                && f.over.is_some()
                && f.name.to_string().eq_ignore_ascii_case("segment")
            {
                f.name = ObjectName::from(vec![Ident::new(SEGMENT_WINDOW)]);
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table {
                name,
                args: Some(args),
                ..
            } = factor
            else {
                return ControlFlow::Continue(());
            };
            if !TABLE_ARGUMENT_FORMS.contains(&name.to_string().to_lowercase().as_str()) {
                return ControlFlow::Continue(());
            }
            for arg in &mut args.args {
                if !matches!(
                    arg,
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(
                        SqlExpr::Identifier(_) | SqlExpr::CompoundIdentifier(_)
                    ))
                ) {
                    continue;
                }
                match relation_query(arg) {
                    Ok(Some(query)) => {
                        *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Subquery(query)))
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.0 = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut rewrite = Rewrite(None);
    let _ = statement.visit(&mut rewrite);
    rewrite.0.map_or(Ok(()), Err)
}
