//! `RECOMMEND` in FROM: the `k` best items for every user the model knows,
//! `recommend('m', k)`, or for the users of a table or subquery, `recommend('m', (SELECT
//! ...), k)`; one row per user and item with user, item, score, rank and source. Both forms
//! call the bound scalar RECOMMEND once per user and unnest its list.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::{Column, Result, plan_err};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{Documentation, Expr, LogicalPlan, LogicalPlanBuilder, lit};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, FunctionArg, FunctionArgExpr, Value};

use super::TableForm;
use super::args::{named_argument, relation_query, string_argument};
use super::plan::plan_derived;
use crate::model::{MatrixFactorizationModel, ModelResolver};
use crate::recommend::bound_recommend;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The k best items for every user a stored matrix_factorization model knows, or for \
         each distinct user of a table or subquery: one row per user and item with user, \
         item, score, rank (1 = best) and source. Items a user had in training are left out \
         unless exclude_seen => false. Users the model does not know get the most popular \
         items, scored by the share of users who had them, with source 'popular' (otherwise \
         'model'); NULL users are skipped.",
        "SELECT * FROM recommend(model_name, [users,] k[, exclude_seen => false])",
    )
    .with_argument(
        "model_name",
        "Name of a matrix_factorization model, as a string literal.",
    )
    .with_argument(
        "users",
        "Optional: a table name or (SELECT ...) of user ids, as its only column or its column \
         named like the model's user column. Without it, every user the model knows.",
    )
    .with_argument("k", "How many items per user, an integer of at least 1.")
    .with_argument(
        "exclude_seen",
        "Named, optional: false keeps the items each user had in training.",
    )
    .with_sql_example(
        "```sql\nSELECT * FROM recommend('recs', 10) WHERE user = 42 ORDER BY rank;\n\
         SELECT * FROM recommend('recs', (SELECT customer_id FROM vip), 5, exclude_seen => false);\n```",
    )
    .build()
});

pub(super) static FORM: TableForm = TableForm {
    name: "recommend",
    doc: Some(&DOC),
    plan,
};

fn plan(
    args: &[FunctionArg],
    context: &mut dyn RelationPlannerContext,
    models: &dyn ModelResolver,
) -> Result<LogicalPlan> {
    let usage = || {
        plan_err!(
            "recommend in FROM takes the model name, optionally the users as a table or \
             (subquery), and k, e.g. SELECT * FROM recommend('recs', 10) or SELECT * FROM \
             recommend('recs', (SELECT customer_id FROM vip), 10)"
        )
    };
    let mut keep_seen = false;
    let mut positional = Vec::new();
    for arg in args {
        match named_argument(arg) {
            Some((name, value)) if name == "exclude_seen" => {
                keep_seen = match value {
                    SqlExpr::Value(v) => match v.value {
                        Value::Boolean(exclude) => !exclude,
                        _ => {
                            return plan_err!("recommend's exclude_seen must be true or false");
                        }
                    },
                    _ => return plan_err!("recommend's exclude_seen must be true or false"),
                }
            }
            Some((name, _)) => {
                return plan_err!("recommend has no argument {name}; it has exclude_seen");
            }
            None => positional.push(arg),
        }
    }
    let (name, users, k) = match positional.as_slice() {
        [name, k] => (name, None, k),
        [name, users, k] => (name, Some(users), k),
        _ => return usage(),
    };
    let Some(name) = string_argument(name) else {
        return usage();
    };
    let k = match k {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(v))) => match &v.value {
            Value::Number(n, _) => match n.parse::<i64>() {
                Ok(k) if k >= 1 => k,
                _ => {
                    return plan_err!("recommend's k must be an integer of at least 1, got {n}");
                }
            },
            other => return plan_err!("recommend's k must be an integer literal, got {other}"),
        },
        _ => return usage(),
    };
    let resolved = models.resolve(&name)?;
    let m = resolved.downcast::<MatrixFactorizationModel>("recommend")?;
    let users = match users {
        None => all_users(m)?,
        Some(arg) => {
            let Some(query) = relation_query(arg)? else {
                return usage();
            };
            let input = plan_derived(context, query)?;
            let user = user_column(&input, &name, &m.columns.user)?;
            LogicalPlanBuilder::from(input)
                .filter(Expr::Column(user.clone()).is_not_null())?
                .project(vec![Expr::Column(user).alias("user")])?
                .distinct()?
                .build()?
        }
    };
    let call = bound_recommend(resolved.clone(), keep_seen, true)
        .call(vec![Expr::Column(Column::from_name("user")), lit(k)]);
    let ranking = || Expr::Column(Column::from_name("ranking"));
    let mut columns = vec![Expr::Column(Column::from_name("user"))];
    columns.extend(
        ["item", "score", "rank", "source"].map(|field| get_field(ranking(), field).alias(field)),
    );
    LogicalPlanBuilder::from(users)
        .project(vec![
            Expr::Column(Column::from_name("user")),
            call.alias("ranking"),
        ])?
        .unnest_column("ranking")?
        .project(columns)?
        .build()
}

/// Every user the model knows, as a one-column plan.
fn all_users(m: &MatrixFactorizationModel) -> Result<LogicalPlan> {
    let ids = m.users.take(0..m.users.len());
    let schema = Arc::new(Schema::new(vec![Field::new(
        "user",
        m.users.data_type(),
        false,
    )]));
    let batch = RecordBatch::try_new(schema.clone(), vec![ids])?;
    let table = MemTable::try_new(schema, vec![vec![batch]])?;
    LogicalPlanBuilder::scan("users", provider_as_source(Arc::new(table)), None)?.build()
}

/// The column of user ids in the users argument: its only column, or the one named like
/// the model's user column.
fn user_column(input: &LogicalPlan, model: &str, user_col: &str) -> Result<Column> {
    let columns = input.schema().columns();
    if let [only] = columns.as_slice() {
        return Ok(only.clone());
    }
    match columns.iter().find(|c| c.name == user_col) {
        Some(c) => Ok(c.clone()),
        None => {
            let have: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            plan_err!(
                "recommend('{model}', users, k) needs one column of user ids, or a column named \
                 {user_col}; the users have: {}",
                have.join(", ")
            )
        }
    }
}
