//! `CUSTOMER_VALUE('model', horizon => 52[, discount_rate => 0.01])` in FROM: every
//! calibration customer of a customer_value model with its summary and what the model
//! expects of it.

use std::sync::LazyLock;

use datafusion::common::{Result, plan_err};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{Documentation, LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, FunctionArg, FunctionArgExpr, Value};
use futures::StreamExt;

use super::TableForm;
use super::args::{named_argument, string_argument};
use super::batches::generated;
use crate::model::{CustomerValueModel, ModelResolver};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Every calibration customer of a customer_value model, one row each: the customer \
         column (by its own name); frequency (x, repeat purchase days in calibration), \
         recency (t_x, time from the first purchase to the last in calibration) and tenure \
         (T, time from the first purchase to calibration_end), in the model's time_unit; \
         p_alive, the probability the customer is still active at calibration_end; \
         expected_purchases over the next horizon time units; expected_spend per purchase \
         (the Gamma-Gamma conditional mean; the population mean for a customer without \
         repeat purchases; NULL without a spend model); clv, the expected revenue over the \
         horizon (expected_spend times the purchases expected in each time unit, discounted \
         by (1 + discount_rate) per unit).",
        "SELECT * FROM customer_value(model_name, horizon => 52[, discount_rate => 0.01])",
    )
    .with_argument(
        "model_name",
        "Name of a customer_value model, as a string literal.",
    )
    .with_argument(
        "horizon",
        "How far ahead, in the model's time units (52 with time_unit 'week' is a year): a \
         number > 0, by name or second.",
    )
    .with_argument(
        "discount_rate",
        "Discount rate per time unit, a number >= 0 (0 when left out), by name or third.",
    )
    .with_sql_example(
        "```sql\nSELECT customer_id, p_alive, clv FROM customer_value('value', horizon => 52) \
         ORDER BY clv DESC LIMIT 20;\n```",
    )
    .build()
});

pub(super) static FORM: TableForm = TableForm {
    name: "customer_value",
    doc: Some(&DOC),
    plan,
};

/// The most time units CUSTOMER_VALUE looks ahead (about 270 years of days).
const MAX_HORIZON: f64 = 100_000.0;

fn usage<T>() -> Result<T> {
    plan_err!(
        "customer_value takes the model name and the horizon, and optionally a discount rate \
         per time unit, e.g. SELECT * FROM customer_value('value', horizon => 52, \
         discount_rate => 0.01)"
    )
}

/// A number literal argument.
fn number(name: &str, expr: &SqlExpr) -> Result<f64> {
    match expr {
        SqlExpr::Value(v) => match &v.value {
            Value::Number(n, _) => n
                .parse()
                .or_else(|_| plan_err!("customer_value's {name} must be a number, got {n}")),
            other => plan_err!("customer_value's {name} must be a number, got {other}"),
        },
        other => plan_err!("customer_value's {name} must be a number literal, got {other}"),
    }
}

fn plan(
    args: &[FunctionArg],
    _context: &mut dyn RelationPlannerContext,
    models: &dyn ModelResolver,
) -> Result<LogicalPlan> {
    let Some((first, rest)) = args.split_first() else {
        return usage();
    };
    let Some(name) = string_argument(first) else {
        return usage();
    };
    let (mut horizon, mut rate) = (None, None);
    for (i, arg) in rest.iter().enumerate() {
        let (which, expr) = match (named_argument(arg), arg) {
            (Some((n, e)), _) => (n, e),
            (None, FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) => match i {
                0 => ("horizon".to_string(), e.clone()),
                1 => ("discount_rate".to_string(), e.clone()),
                _ => return usage(),
            },
            _ => return usage(),
        };
        match which.as_str() {
            "horizon" => horizon = Some(number("horizon", &expr)?),
            "discount_rate" => rate = Some(number("discount_rate", &expr)?),
            other => {
                return plan_err!(
                    "customer_value has no argument {other}; its arguments are horizon and \
                     discount_rate"
                );
            }
        }
    }
    let Some(horizon) = horizon else {
        return usage();
    };
    if !(horizon > 0.0 && horizon <= MAX_HORIZON) {
        return plan_err!(
            "customer_value's horizon must be above 0 and at most {MAX_HORIZON} time units, got \
             {horizon}"
        );
    }
    let rate = rate.unwrap_or(0.0);
    if !(rate >= 0.0 && rate.is_finite()) {
        return plan_err!("customer_value's discount_rate must be a number >= 0, got {rate}");
    }
    let resolved = models.resolve(&name)?;
    let schema = resolved
        .downcast::<CustomerValueModel>(FORM.name)?
        .value_schema();
    let provider = generated(schema, move |ctx| {
        let resolved = resolved.clone();
        let batch = ctx.session_config().batch_size().max(1);
        let n = resolved
            .downcast::<CustomerValueModel>(FORM.name)
            .map_or(0, |m| m.customers.len());
        futures::stream::iter((0..n.div_ceil(batch)).map(move |b| {
            let m = resolved.downcast::<CustomerValueModel>(FORM.name)?;
            m.value_batch(b * batch..((b + 1) * batch).min(n), horizon, rate)
        }))
        .boxed()
    })?;
    LogicalPlanBuilder::scan(FORM.name, provider_as_source(provider), None)?.build()
}
