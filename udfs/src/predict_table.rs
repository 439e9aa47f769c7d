//! The table forms that take a table or subquery: `PREDICT('model', relation)` (every input
//! column, plus `predicted_<label>` and, for classifiers, `probability`) and
//! `EVALUATE('model', relation)` (one row of metrics). Features are matched by name.
//!
//! DataFusion's table functions only see literal arguments, so these forms are a relation
//! planner: it plans the table or subquery argument and builds the plan over it.

use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, Result, ScalarValue, plan_err};
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{AggregateUDF, LogicalPlan, cast};
use datafusion::logical_expr::{DocSection, Documentation, Expr, LogicalPlanBuilder, lit, when};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, ObjectName, TableFactor, Value, VisitMut,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::evaluate::{EvaluateAggregate, Metrics};
use crate::model::logistic::Classes;
use crate::model::{Model, ModelResolver};
use crate::predict::{Scoring, bound_predict};

pub static DOC: LazyLock<Documentation> =
    LazyLock::new(|| {
        Documentation::builder(
        DocSection {
            include: true,
            label: "cohort models",
            description: None,
        },
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

/// The functions planned here, by their name in FROM.
const FORMS: [&str; 2] = ["predict", "evaluate"];

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
        let TableFactor::Table {
            name,
            alias,
            args: Some(args),
            ..
        } = &relation
        else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let function = name.to_string().to_lowercase();
        if !FORMS.contains(&function.as_str()) {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        }
        let usage = || {
            plan_err!(
                "{function} in FROM takes the model name and a table or a (subquery), e.g. \
                 SELECT * FROM {function}('churn', customers)"
            )
        };
        let [model_arg, input_arg] = args.args.as_slice() else {
            return usage();
        };
        let model_name = match model_arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(v))) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                _ => return usage(),
            },
            _ => return usage(),
        };
        let input = match input_arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Subquery(query))) => {
                context.plan(TableFactor::Derived {
                    lateral: false,
                    subquery: query.clone(),
                    alias: None,
                    sample: None,
                })?
            }
            FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Identifier(id))) => {
                context.plan(table(ObjectName::from(vec![id.clone()])))?
            }
            FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::CompoundIdentifier(ids))) => {
                context.plan(table(ObjectName::from(ids.clone())))?
            }
            _ => return usage(),
        };

        let resolved = self.resolver.resolve(&model_name)?;
        let schema = input.schema().clone();
        let mut features = Vec::new();
        let mut missing = Vec::new();
        for name in resolved.model.feature_names() {
            match schema.columns().into_iter().find(|c| c.name == name) {
                Some(c) => features.push(Expr::Column(c)),
                None => missing.push(name.to_string()),
            }
        }
        if !missing.is_empty() {
            let have: Vec<String> = schema.columns().iter().map(|c| c.name.clone()).collect();
            return plan_err!(
                "model {model_name} needs the columns {} that the input lacks; the input has: {}",
                missing.join(", "),
                have.join(", ")
            );
        }
        let arity = features.len();
        let model = resolved.model.clone();
        let udf = bound_predict(resolved, arity, Scoring::Predict);
        let score = Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(udf), features));
        if function == "evaluate" {
            let plan = evaluate_plan(input, &model_name, &model, score)?;
            return Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
                plan,
                alias.clone(),
            ))));
        }
        let mut exprs: Vec<Expr> = schema.columns().into_iter().map(Expr::Column).collect();
        match model.as_ref() {
            Model::LinearReg(m) => exprs.push(score.alias(format!("predicted_{}", m.label))),
            Model::LogisticReg(m) => {
                let (positive, negative) = match &m.classes {
                    Classes::Boolean => (lit(true), lit(false)),
                    Classes::Numeric => (lit(1i64), lit(0i64)),
                    Classes::Text { positive, negative } => {
                        (lit(positive.as_str()), lit(negative.as_str()))
                    }
                };
                let probability = Column::from_name("probability");
                exprs.push(score.alias("probability"));
                // Computed over the probability column, so each row is scored once.
                let plan = LogicalPlanBuilder::from(input).project(exprs)?.build()?;
                let mut outer: Vec<Expr> = plan
                    .schema()
                    .columns()
                    .into_iter()
                    .map(Expr::Column)
                    .collect();
                let predicted = when(Expr::Column(probability).gt_eq(lit(0.5)), positive)
                    .otherwise(negative)?
                    .alias(format!("predicted_{}", m.label));
                outer.insert(outer.len() - 1, predicted);
                let plan = LogicalPlanBuilder::from(plan).project(outer)?.build()?;
                return Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
                    plan,
                    alias.clone(),
                ))));
            }
        }
        let plan = LogicalPlanBuilder::from(input).project(exprs)?.build()?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan,
            alias.clone(),
        ))))
    }
}

/// EVALUATE's plan: the metrics aggregate over (score, label as 0/1 or number), one column
/// per metric.
fn evaluate_plan(
    input: LogicalPlan,
    model_name: &str,
    model: &Model,
    score: Expr,
) -> Result<LogicalPlan> {
    let (label_name, metrics) = match model {
        Model::LinearReg(m) => (
            &m.label,
            Metrics::Regression {
                parameters: m
                    .coefficients
                    .std_err
                    .iter()
                    .filter(|s| s.is_finite())
                    .count(),
            },
        ),
        Model::LogisticReg(m) => (&m.label, Metrics::Classification),
    };
    let Some(label) = input
        .schema()
        .columns()
        .into_iter()
        .find(|c| c.name == *label_name)
    else {
        return plan_err!(
            "evaluate('{model_name}', ...) needs the label column {label_name} in its input"
        );
    };
    let label = Expr::Column(label);
    let null = lit(ScalarValue::Float64(None));
    let actual = match model {
        Model::LinearReg(_) => cast(label, DataType::Float64),
        Model::LogisticReg(m) => {
            let positive = match &m.classes {
                Classes::Boolean => label.clone(),
                Classes::Numeric => cast(label.clone(), DataType::Float64).eq(lit(1.0)),
                Classes::Text { positive, .. } => label.clone().eq(lit(positive.as_str())),
            };
            when(label.is_null(), null)
                .when(positive, lit(1.0))
                .otherwise(lit(0.0))?
        }
    };
    let aggregate = AggregateUDF::new_from_impl(EvaluateAggregate::new(metrics));
    let plan = LogicalPlanBuilder::from(input)
        .aggregate(
            Vec::<Expr>::new(),
            vec![aggregate.call(vec![score, actual]).alias("metrics")],
        )?
        .build()?;
    let columns: Vec<Expr> = metrics
        .fields()
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

/// Rewrites `predict('m', customers)` into `predict('m', (SELECT * FROM customers))` in a
/// statement. DataFusion resolves the tables a statement uses before planning it and does
/// not look inside table function arguments, so a bare table name there would be unknown;
/// as a subquery it is found. Call it on statements (or queries) before planning them.
pub fn table_arguments_as_subqueries<N: VisitMut>(statement: &mut N) -> Result<()> {
    struct Rewrite(Option<datafusion::common::DataFusionError>);
    impl VisitorMut for Rewrite {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table {
                name,
                args: Some(args),
                ..
            } = factor
            else {
                return ControlFlow::Continue(());
            };
            if !FORMS.contains(&name.to_string().to_lowercase().as_str()) {
                return ControlFlow::Continue(());
            }
            for arg in &mut args.args {
                let FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) = arg else {
                    continue;
                };
                let table = match expr {
                    SqlExpr::Identifier(id) => id.to_string(),
                    SqlExpr::CompoundIdentifier(ids) => ObjectName::from(ids.clone()).to_string(),
                    _ => continue,
                };
                let parsed = Parser::new(&GenericDialect {})
                    .try_with_sql(&format!("SELECT * FROM {table}"))
                    .and_then(|mut p| p.parse_query());
                match parsed {
                    Ok(query) => *expr = SqlExpr::Subquery(query),
                    Err(e) => {
                        self.0 = Some(e.into());
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

/// A plain table reference.
fn table(name: ObjectName) -> TableFactor {
    TableFactor::Table {
        name,
        alias: None,
        args: None,
        with_hints: vec![],
        version: None,
        with_ordinality: false,
        partitions: vec![],
        json_path: None,
        sample: None,
        index_hints: vec![],
    }
}
