//! `RFM(orders, customer_col => ..., time_col => ..., amount_col => ..., as_of => ...)` in
//! FROM: recency, frequency and monetary value per customer, their quintile scores and the
//! named segment. An aggregate and window functions over the input, so it runs, and would
//! distribute, like any other query.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, Result, ScalarValue, plan_err};
use datafusion::functions::core::expr_fn::{coalesce, greatest};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::expr_fn::{count, max, sum};
use datafusion::functions_aggregate::min_max::max_udaf;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{
    Documentation, Expr, ExprFunctionExt, LogicalPlan, LogicalPlanBuilder, cast, lit, when,
};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, FunctionArg, Value};

use super::TableForm;
use super::args::{named_argument, relation_query};
use super::plan::plan_derived;
use crate::model::ModelResolver;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Recency, frequency and monetary value of every customer in a table of orders, scored \
         1 to 5 in quintiles and named. Only orders before as_of count; rows with a NULL \
         customer or time are left out. Every customer with a row before as_of is listed. \
         An order is a row whose amount is not negative (zero-amount orders count; a NULL \
         amount is an order of unknown value); a negative amount is a return. recency_days: \
         whole days from the customer's last order (last return, for a customer with only \
         returns) to as_of; frequency: orders; monetary: the sum of all amounts, so returns \
         are netted out. A customer whose amounts total zero or less ranks lowest in money, \
         m_score 1 (with at least five customers). Scores: customers ranked by \
         value, ties by customer id, and the ranks 1..n cut into five equal bins as pandas \
         qcut(rank, 5) cuts them (bin k holds ranks up to 1 + k(n - 1)/5); r_score is 5 for \
         the most recent, f_score and m_score 5 for the most orders and money; one customer \
         alone scores 1. rfm_segment, from (r_score, f_score): Champions r 5, f 4-5; Loyal r \
         3-4, f 4-5; Potential Loyalist r 4-5, f 2-3; New r 5, f 1; Promising r 4, f 1; \
         Needs Attention r 3, f 3; Hibernating r 3, f 1-2; Cannot Lose r 1-2, f 5; At Risk r \
         1-2, f 3-4; Lost r 1-2, f 1-2. No orders before as_of gives no rows.",
        "SELECT * FROM rfm(table_or_subquery, customer_col => 'customer_id', \
         time_col => 'order_date', amount_col => 'amount'[, as_of => DATE '2026-07-01'])",
    )
    .with_argument(
        "table_or_subquery",
        "The orders: a table name or a (SELECT ...).",
    )
    .with_argument("customer_col", "Name of the customer column, a string.")
    .with_argument(
        "time_col",
        "Name of the order date or timestamp column, a string.",
    )
    .with_argument(
        "amount_col",
        "Name of the numeric order amount column, a string.",
    )
    .with_argument(
        "as_of",
        "The day recency is measured to, a DATE (or timestamp) literal; orders on or after \
         it are left out. The day after the last order when left out.",
    )
    .with_sql_example(
        "```sql\nSELECT rfm_segment, count(*) FROM rfm(orders, customer_col => 'customer_id', \
         time_col => 'order_date', amount_col => 'amount', as_of => DATE '2026-07-01') \
         GROUP BY 1 ORDER BY 2 DESC;\n```",
    )
    .build()
});

/// The named arguments, in the order the documentation gives them.
const ARGUMENTS: [&str; 4] = ["customer_col", "time_col", "amount_col", "as_of"];

/// Scores from a low to a high one, both included; `None` for any score.
type Scores = Option<(i32, i32)>;

/// The segment of each (r_score, f_score) region, tried in order.
const SEGMENTS: [(Scores, Scores, &str); 9] = [
    (Some((1, 2)), Some((1, 2)), "Lost"),
    (Some((1, 2)), Some((3, 4)), "At Risk"),
    (Some((1, 2)), None, "Cannot Lose"),
    (Some((3, 3)), Some((1, 2)), "Hibernating"),
    (Some((3, 3)), Some((3, 3)), "Needs Attention"),
    (Some((3, 4)), Some((4, 5)), "Loyal"),
    (Some((4, 4)), Some((1, 1)), "Promising"),
    (None, Some((1, 1)), "New"),
    (None, Some((2, 3)), "Potential Loyalist"),
];
/// The segment of the scores no region takes.
const OTHERS: &str = "Champions";

pub(super) static FORM: TableForm = TableForm {
    name: "rfm",
    doc: Some(&DOC),
    plan: plan_call,
};

fn plan_call(
    args: &[FunctionArg],
    context: &mut dyn RelationPlannerContext,
    _models: &dyn ModelResolver,
) -> Result<LogicalPlan> {
    let Some((first, named)) = args.split_first() else {
        return usage();
    };
    let Some(query) = relation_query(first)? else {
        return usage();
    };
    let mut values: [Option<SqlExpr>; 4] = Default::default();
    for arg in named {
        let Some((name, value)) = named_argument(arg) else {
            return usage();
        };
        match ARGUMENTS.iter().position(|a| *a == name) {
            Some(i) => values[i] = Some(value),
            None => {
                return plan_err!(
                    "rfm has no argument {name}; its arguments are {}",
                    ARGUMENTS.join(", ")
                );
            }
        }
    }
    let input = plan_derived(context, query)?;
    let mut names = Vec::new();
    for (i, argument) in ARGUMENTS[..3].iter().enumerate() {
        let column = match &values[i] {
            Some(SqlExpr::Value(v)) => match &v.value {
                Value::SingleQuotedString(s) => s.clone(),
                _ => return plan_err!("rfm's {argument} must be a column name string"),
            },
            Some(_) => return plan_err!("rfm's {argument} must be a column name string"),
            None => return plan_err!("rfm needs {argument} => '<column>'"),
        };
        let columns = input.schema().fields();
        let Some(field) = columns.iter().find(|f| *f.name() == column) else {
            let have: Vec<&str> = columns.iter().map(|f| f.name().as_str()).collect();
            return plan_err!(
                "rfm's {argument} {column} is not a column of the input; it has: {}",
                have.join(", ")
            );
        };
        let t = field.data_type();
        let fits = match *argument {
            "time_col" => t.is_temporal(),
            "amount_col" => t.is_numeric(),
            _ => true,
        };
        if !fits {
            return plan_err!(
                "rfm's {argument} {column} has type {t}; it needs {}",
                if *argument == "time_col" {
                    "a date or timestamp (CAST it in a subquery)"
                } else {
                    "a number"
                }
            );
        }
        names.push(column);
    }
    let as_of = match values[3].take() {
        Some(e) => Some(cast(
            context.sql_to_expr(e, input.schema())?,
            DataType::Date32,
        )),
        None => None,
    };
    plan(input, [&names[0], &names[1], &names[2]], as_of)
}

/// The plan over `input` with the customer, time and amount columns named `columns`;
/// `as_of` is the day after the last order when `None`.
fn plan(input: LogicalPlan, columns: [&String; 3], as_of: Option<Expr>) -> Result<LogicalPlan> {
    let column = |name: &str| Expr::Column(Column::from_name(name));
    let [customer, time, amount] = columns.map(|name| {
        let found = input
            .schema()
            .columns()
            .into_iter()
            .find(|c| c.name == *name);
        Expr::Column(found.unwrap_or_else(|| Column::from_name(name)))
    });
    let orders = LogicalPlanBuilder::from(input).project(vec![
        customer.alias("customer"),
        cast(time, DataType::Date32).alias("day"),
        cast(amount, DataType::Float64).alias("amount"),
    ])?;
    let orders = match as_of {
        Some(as_of) => orders.project(vec![
            column("customer"),
            column("day"),
            column("amount"),
            as_of.alias("as_of"),
        ])?,
        None => orders
            .window(vec![
                Expr::from(WindowFunction::new(max_udaf(), vec![column("day")])).alias("last_day"),
            ])?
            .project(vec![
                column("customer"),
                column("day"),
                column("amount"),
                (column("last_day") + lit(ScalarValue::new_interval_mdn(0, 1, 0))).alias("as_of"),
            ])?,
    };
    let customers = orders
        .filter(
            column("customer")
                .is_not_null()
                .and(column("day").is_not_null())
                .and(column("day").lt(column("as_of"))),
        )?
        .project(vec![
            column("customer"),
            column("as_of"),
            column("day"),
            // An order is a row whose amount is not negative: zero-amount orders (free or
            // fully discounted) count, a NULL amount is an order of unknown value; negative
            // amounts are returns.
            when(column("amount").lt(lit(0i64)).is_not_true(), column("day"))
                .end()?
                .alias("order_day"),
            column("amount"),
        ])?
        .aggregate(
            vec![column("customer")],
            vec![
                max(column("as_of")).alias("as_of"),
                max(column("order_day")).alias("last_order"),
                max(column("day")).alias("last_row"),
                count(column("order_day")).alias("frequency"),
                sum(column("amount")).alias("amount"),
            ],
        )?
        .project(vec![
            column("customer"),
            // A customer with only returns: recency from the last of them.
            cast(
                column("as_of") - coalesce(vec![column("last_order"), column("last_row")]),
                DataType::Int64,
            )
            .alias("recency_days"),
            column("frequency"),
            coalesce(vec![column("amount"), lit(0.0)]).alias("monetary"),
        ])?;
    // Ranks by value, ties by customer id.
    let rank = |value: &str, ascending: bool| -> Result<Expr> {
        row_number()
            .order_by(vec![
                column(value).sort(ascending, !ascending),
                column("customer").sort(true, false),
            ])
            .build()
    };
    // The ranks 1..n cut into five equal bins, as pandas' qcut(rank, 5).
    let score = |rank: &str| -> Result<Expr> {
        let (rank, n) = (column(rank), column("n"));
        let bin =
            (lit(5i64) * (rank - lit(1i64)) + n.clone() - lit(2i64)) / (n.clone() - lit(1i64));
        Ok(cast(
            when(n.eq(lit(1i64)), lit(1i64)).otherwise(greatest(vec![lit(1i64), bin]))?,
            DataType::Int32,
        ))
    };
    let scored = customers
        // A window node per ordering, as DataFusion's physical planner requires.
        .window(vec![rank("recency_days", false)?.alias("r_rank")])?
        .window(vec![rank("frequency", true)?.alias("f_rank")])?
        .window(vec![rank("monetary", true)?.alias("m_rank")])?
        .window(vec![
            Expr::from(WindowFunction::new(count_udaf(), vec![lit(1i64)])).alias("n"),
        ])?
        .project(vec![
            column("customer"),
            column("recency_days"),
            column("frequency"),
            column("monetary"),
            score("r_rank")?.alias("r_score"),
            score("f_rank")?.alias("f_score"),
            score("m_rank")?.alias("m_score"),
        ])?;
    let within = |score: &str, range: Scores| match range {
        Some((low, high)) => column(score).between(lit(low), lit(high)),
        None => lit(true),
    };
    let region = |(r, f): (Scores, Scores)| within("r_score", r).and(within("f_score", f));
    let [(r, f, first), rest @ ..] = SEGMENTS;
    let mut segment = when(region((r, f)), lit(first));
    for (r, f, name) in rest {
        segment.when(region((r, f)), lit(name));
    }
    let segment = segment.otherwise(lit(OTHERS))?;
    scored
        .project(vec![
            column("customer").alias(columns[0].as_str()),
            column("recency_days"),
            column("frequency"),
            column("monetary"),
            column("r_score"),
            column("f_score"),
            column("m_score"),
            segment.alias("rfm_segment"),
        ])?
        .build()
}

fn usage() -> Result<LogicalPlan> {
    plan_err!(
        "rfm takes the orders and named columns, e.g. SELECT * FROM rfm(orders, customer_col \
         => 'customer_id', time_col => 'order_date', amount_col => 'amount', as_of => DATE \
         '2026-07-01')"
    )
}
