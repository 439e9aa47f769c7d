//! `RECOMMEND` in FROM: the `k` best items for every user the model knows,
//! `recommend('m', k)`, or for the users of a table or subquery, `recommend('m', (SELECT
//! ...), k)`; one row per user and item with user, item, score, rank and source. Both forms
//! rank the users as the query runs, a few at a time, so that a batch holds about
//! `batch_size` rows whatever k is.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Column, Result, plan_err};
use datafusion::datasource::{MemTable, TableType, provider_as_source};
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{Documentation, Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, FunctionArg, FunctionArgExpr, Value};
use futures::{StreamExt, stream};

use super::TableForm;
use super::args::{named_argument, relation_query, string_argument};
use super::batches::{Budget, generated};
use super::plan::plan_derived;
use crate::model::matrix_factorization::Ranking;
use crate::model::{MatrixFactorizationModel, ModelResolver, ResolvedModel};
use crate::recommend::recommend_rows;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The k best items for every user a stored matrix_factorization model knows, or for \
         each distinct user of a table or subquery: one row per user and item with user, \
         item, score, rank (1 = best) and source. Items a user had in training are left out \
         unless exclude_seen => false. Users the model does not know get the most popular \
         items, scored by the share of users who had them, with source 'popular' (otherwise \
         'model'); NULL users are skipped. A k past the number of items gives every item \
         (as LIMIT does). The rows are made a batch at a time as the query reads them, within \
         the memory limit.",
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
    .with_argument(
        "k",
        "How many items per user, an integer of at least 1; more than the model has gives \
         them all.",
    )
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
                Ok(k) if k >= 1 => k as usize,
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
    let user = users.schema().field(0).as_ref().clone();
    let table = RecommendTable {
        schema: Arc::new(Schema::new(vec![
            user,
            Field::new("item", m.items.data_type(), false),
            Field::new("score", DataType::Float64, false),
            Field::new("rank", DataType::Int64, false),
            Field::new("source", DataType::Utf8, false),
        ])),
        users,
        model: resolved.clone(),
        k,
        keep_seen,
    };
    LogicalPlanBuilder::scan("recommend", provider_as_source(Arc::new(table)), None)?.build()
}

/// RECOMMEND in FROM: the users' rows, ranked when the query runs a few users at a time,
/// so that a batch holds about `batch_size` rows whatever k is.
#[derive(Debug)]
struct RecommendTable {
    schema: SchemaRef,
    /// One column of distinct, non-NULL user ids.
    users: LogicalPlan,
    model: ResolvedModel,
    k: usize,
    keep_seen: bool,
}

#[async_trait]
impl TableProvider for RecommendTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let users = state.create_physical_plan(&self.users).await?;
        let (model, k, keep_seen) = (self.model.clone(), self.k, self.keep_seen);
        let schema = self.schema.clone();
        let table = generated(self.schema.clone(), move |ctx| {
            let budget = Arc::new(Budget::new(&ctx, "recommend", "k", k));
            let batch = ctx.session_config().batch_size();
            let (model, schema) = (model.clone(), schema.clone());
            match execute_stream(users.clone(), ctx) {
                Ok(users) => users
                    .map(move |users| match users {
                        Ok(users) => stream::iter(Ranked {
                            users: users.column(0).clone(),
                            done: 0,
                            model: model.clone(),
                            schema: schema.clone(),
                            k,
                            keep_seen,
                            batch,
                            budget: budget.clone(),
                        })
                        .boxed(),
                        Err(e) => stream::once(async { Err(e) }).boxed(),
                    })
                    .flatten()
                    .boxed(),
                Err(e) => stream::once(async { Err(e) }).boxed(),
            }
        })?;
        table.scan(state, projection, filters, limit).await
    }
}

/// The rows of one batch of users, made a few users at a time.
struct Ranked {
    users: ArrayRef,
    /// Users ranked so far.
    done: usize,
    model: ResolvedModel,
    schema: SchemaRef,
    k: usize,
    keep_seen: bool,
    batch: usize,
    budget: Arc<Budget>,
}

impl Ranked {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let m = self
            .model
            .downcast::<MatrixFactorizationModel>("recommend")?;
        let left = self.users.len() - self.done;
        if left == 0 {
            return Ok(None);
        }
        // Each user has at most every item.
        let per_user = self.k.min(m.items.len()).max(1);
        let n = (self.batch / per_user).clamp(1, left);
        let users = self.users.slice(self.done, n);
        self.done += n;
        let k: ArrayRef = Arc::new(Int64Array::from_value(self.k as i64, n));
        let lists = recommend_rows(
            m,
            &self.model.name,
            &users,
            &k,
            self.keep_seen,
            &self.budget,
        )?;
        let lengths: Vec<usize> = lists
            .iter()
            .map(|l| l.as_ref().map_or(0, |(l, _)| l.len()))
            .collect();
        let owner = UInt32Array::from_iter_values(
            lengths
                .iter()
                .enumerate()
                .flat_map(|(r, &len)| std::iter::repeat_n(r as u32, len)),
        );
        let lists: Vec<&(Ranking, &str)> = lists.iter().flatten().collect();
        let flat = || lists.iter().flat_map(|(l, _)| l.iter());
        // A string array is built from a sized iterator.
        let sources: Vec<&str> = lists
            .iter()
            .flat_map(|(l, source)| std::iter::repeat_n(*source, l.len()))
            .collect();
        let columns: Vec<ArrayRef> = vec![
            take(&users, &owner, None)?,
            m.items.take(flat().map(|(_, i)| *i)),
            Arc::new(Float64Array::from_iter_values(flat().map(|(s, _)| *s))),
            Arc::new(Int64Array::from_iter_values(
                lists.iter().flat_map(|(l, _)| 1..=l.len() as i64),
            )),
            Arc::new(StringArray::from_iter_values(sources)),
        ];
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }
}

impl Iterator for Ranked {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
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
