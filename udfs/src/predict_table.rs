//! `SELECT * FROM PREDICT('model', table_or_subquery)`: every input column, plus
//! `predicted_<label>` (and `probability` for classifiers). Features are matched by name.
//!
//! DataFusion's table functions only see literal arguments, so this form is a relation
//! planner: it plans the table or subquery argument and projects the prediction over it.

use std::sync::Arc;

use datafusion::common::{Column, Result, plan_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, lit, when};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, ObjectName, TableFactor, Value, VisitMut,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::model::logistic::Classes;
use crate::model::{Model, ModelResolver};
use crate::predict::{Scoring, bound_predict};

/// Plans `predict('model', relation)` in FROM clauses.
#[derive(Debug)]
pub struct PredictRelation {
    resolver: Arc<dyn ModelResolver>,
}

impl PredictRelation {
    pub fn new(resolver: Arc<dyn ModelResolver>) -> Self {
        Self { resolver }
    }
}

const USAGE: &str = "predict in FROM takes the model name and a table or a (subquery), e.g. \
                     SELECT * FROM predict('churn', customers)";

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
        if !name.to_string().eq_ignore_ascii_case("predict") {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        }
        let [model_arg, input_arg] = args.args.as_slice() else {
            return plan_err!("{USAGE}");
        };
        let model_name = match model_arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(v))) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                _ => return plan_err!("{USAGE}"),
            },
            _ => return plan_err!("{USAGE}"),
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
            _ => return plan_err!("{USAGE}"),
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
            if !name.to_string().eq_ignore_ascii_case("predict") {
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
