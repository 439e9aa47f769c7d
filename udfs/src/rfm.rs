//! `RFM(orders, customer_col => ..., time_col => ..., amount_col => ..., as_of => ...)`:
//! recency, frequency and monetary value per customer, their quintile scores and the named
//! segment. Planned as plain SQL over the input (an aggregate and window functions), so it
//! runs, and would distribute, like any other query.

use std::sync::LazyLock;

use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::Documentation;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, TableFactor, Value};

use crate::predict_table::{
    literal, named_argument, plan_derived, plan_query, quote, relation_query, table_form,
};

pub static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Recency, frequency and monetary value of every customer in a table of orders, scored \
         1 to 5 in quintiles and named. Only orders before as_of count; rows with a NULL \
         customer or time are left out. recency_days: whole days from the customer's last \
         order to as_of; frequency: orders with a positive amount; monetary: the sum of all \
         amounts, so returns (negative amounts) are netted out but are not orders; a customer \
         without a positive order before as_of is left out. Scores: customers ranked by \
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

/// Plans `rfm(...)` in FROM clauses.
#[derive(Debug, Default)]
pub struct RfmRelation;

impl RelationPlanner for RfmRelation {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let Some((_, args, alias)) = table_form(&relation, &["rfm"]) else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let Some((first, named)) = args.split_first() else {
            return usage();
        };
        let Some(input) = relation_query(first)? else {
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
        let columns = plan_derived(context, input.clone())?.schema().clone();
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
            let Some(field) = columns.fields().iter().find(|f| *f.name() == column) else {
                let have: Vec<&str> = columns.fields().iter().map(|f| f.name().as_str()).collect();
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
            names.push(quote(&column));
        }
        let [customer, time, amount] = [&names[0], &names[1], &names[2]];
        let as_of = match &values[3] {
            Some(e) => format!("SELECT CAST({e} AS DATE) AS as_of"),
            None => format!(
                "SELECT max(CAST({time} AS DATE)) + INTERVAL '1 day' AS as_of \
                 FROM ({input}) AS input"
            ),
        };
        let customer_out = match &values[0] {
            Some(SqlExpr::Value(v)) => match &v.value {
                Value::SingleQuotedString(s) => quote(s),
                _ => customer.clone(),
            },
            _ => customer.clone(),
        };
        let score = |rank: &str| {
            format!(
                "CAST(CASE WHEN n = 1 THEN 1 \
                 ELSE greatest(1, (5 * ({rank} - 1) + n - 2) / (n - 1)) END AS INT)"
            )
        };
        let sql = format!(
            "WITH limits AS ({as_of}), \
             orders AS (\
                SELECT {customer} AS customer, CAST({time} AS DATE) AS day, \
                       CAST({amount} AS DOUBLE) AS amount, limits.as_of \
                FROM ({input}) AS input CROSS JOIN limits \
                WHERE {customer} IS NOT NULL AND {time} IS NOT NULL \
                  AND CAST({time} AS DATE) < limits.as_of), \
             customers AS (\
                SELECT customer, \
                       CAST(max(as_of) - max(CASE WHEN amount > 0 THEN day END) AS BIGINT) \
                         AS recency_days, \
                       count(CASE WHEN amount > 0 THEN 1 END) AS frequency, \
                       coalesce(sum(amount), 0.0) AS monetary \
                FROM orders GROUP BY customer \
                HAVING count(CASE WHEN amount > 0 THEN 1 END) > 0), \
             ranked AS (\
                SELECT *, \
                       row_number() OVER (ORDER BY recency_days DESC, customer) AS r_rank, \
                       row_number() OVER (ORDER BY frequency, customer) AS f_rank, \
                       row_number() OVER (ORDER BY monetary, customer) AS m_rank, \
                       count(*) OVER () AS n \
                FROM customers), \
             scored AS (\
                SELECT customer, recency_days, frequency, monetary, \
                       {} AS r_score, {} AS f_score, {} AS m_score FROM ranked) \
             SELECT customer AS {customer_out}, recency_days, frequency, monetary, \
                    r_score, f_score, m_score, \
                    CASE \
                      WHEN r_score <= 2 AND f_score <= 2 THEN {} \
                      WHEN r_score <= 2 AND f_score <= 4 THEN {} \
                      WHEN r_score <= 2 THEN {} \
                      WHEN r_score = 3 AND f_score <= 2 THEN {} \
                      WHEN r_score = 3 AND f_score = 3 THEN {} \
                      WHEN r_score <= 4 AND f_score >= 4 THEN {} \
                      WHEN r_score = 4 AND f_score = 1 THEN {} \
                      WHEN f_score = 1 THEN {} \
                      WHEN f_score <= 3 THEN {} \
                      ELSE {} \
                    END AS rfm_segment \
             FROM scored",
            score("r_rank"),
            score("f_rank"),
            score("m_rank"),
            literal("Lost"),
            literal("At Risk"),
            literal("Cannot Lose"),
            literal("Hibernating"),
            literal("Needs Attention"),
            literal("Loyal"),
            literal("Promising"),
            literal("New"),
            literal("Potential Loyalist"),
            literal("Champions"),
        );
        let plan = plan_query(context, &sql)?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan,
            alias.clone(),
        ))))
    }
}

fn usage() -> Result<RelationPlanning> {
    plan_err!(
        "rfm takes the orders and named columns, e.g. SELECT * FROM rfm(orders, customer_col \
         => 'customer_id', time_col => 'order_date', amount_col => 'amount', as_of => DATE \
         '2026-07-01')"
    )
}
