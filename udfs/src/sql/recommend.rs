//! `RECOMMEND` in FROM: the `k` best items for every user the model knows,
//! `recommend('m', k)`, or for the users of a table or subquery, `recommend('m', (SELECT
//! ...), k)`; one row per user and item with user, item, score, rank and source. Both forms
//! rank the users as the query runs, a few at a time, so that a batch holds about
//! `batch_size` rows whatever k is.

use std::sync::{Arc, LazyLock};

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, DFSchema, DFSchemaRef, Result, internal_err, plan_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{
    Documentation, Expr, Extension, LogicalPlan, LogicalPlanBuilder, UserDefinedLogicalNode,
    UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, FunctionArg, FunctionArgExpr, Value};
use futures::{StreamExt, stream};

use super::TableForm;
use super::args::{named_argument, relation_query, string_argument};
use super::batches::Budget;
use super::plan::{batch_plan, plan_derived};
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
    Ok(LogicalPlan::Extension(Extension {
        node: Arc::new(RecommendNode::new(users, resolved.clone(), k, keep_seen)?),
    }))
}

/// RECOMMEND in FROM as a plan node over its users (one column of distinct, non-NULL ids),
/// so that it travels to a cluster like any other node: the users' plan is its input.
#[derive(Debug, Clone)]
pub struct RecommendNode {
    pub(crate) users: LogicalPlan,
    pub(crate) model: ResolvedModel,
    pub(crate) k: usize,
    pub(crate) keep_seen: bool,
    schema: DFSchemaRef,
}

impl RecommendNode {
    pub(crate) fn new(
        users: LogicalPlan,
        model: ResolvedModel,
        k: usize,
        keep_seen: bool,
    ) -> Result<Self> {
        let schema = rows_schema(users.schema().field(0), &model)?;
        let schema = Arc::new(DFSchema::try_from_qualified_schema("recommend", &schema)?);
        Ok(Self {
            users,
            model,
            k,
            keep_seen,
            schema,
        })
    }

    /// What identifies the node besides its input.
    fn key(&self) -> (&str, u64, usize, bool) {
        (&self.model.name, self.model.version, self.k, self.keep_seen)
    }
}

impl PartialEq for RecommendNode {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key() && self.users == other.users
    }
}

impl Eq for RecommendNode {}

impl Hash for RecommendNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
        self.users.hash(state);
    }
}

impl PartialOrd for RecommendNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.key().cmp(&other.key()) {
            Ordering::Equal => self.users.partial_cmp(&other.users),
            unequal => Some(unequal),
        }
    }
}

impl UserDefinedLogicalNodeCore for RecommendNode {
    fn name(&self) -> &str {
        "Recommend"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.users]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "Recommend: model={} version={} k={} exclude_seen={}",
            self.model.name, self.model.version, self.k, !self.keep_seen
        )
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let Some(users) = inputs.pop() else {
            return internal_err!("recommend's plan node needs its users' plan");
        };
        Self::new(users, self.model.clone(), self.k, self.keep_seen)
    }
}

/// The rows' columns: the users' column, then item, score, rank and source.
fn rows_schema(user: &Field, model: &ResolvedModel) -> Result<Schema> {
    let m = model.downcast::<MatrixFactorizationModel>("recommend")?;
    Ok(Schema::new(vec![
        user.clone(),
        Field::new("item", m.items.data_type(), false),
        Field::new("score", DataType::Float64, false),
        Field::new("rank", DataType::Int64, false),
        Field::new("source", DataType::Utf8, false),
    ]))
}

/// Plans [`RecommendNode`] as [`RecommendExec`].
#[derive(Debug)]
pub struct RecommendPlanner;

#[async_trait]
impl ExtensionPlanner for RecommendPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<RecommendNode>() else {
            return Ok(None);
        };
        let [users] = physical_inputs else {
            return internal_err!("recommend's plan node needs its users' plan");
        };
        Ok(Some(Arc::new(RecommendExec::new(
            users.clone(),
            node.model.clone(),
            node.k,
            node.keep_seen,
        )?)))
    }
}

/// RECOMMEND in FROM when the query runs: ranks the users of each input batch a few at a
/// time, so that a batch holds about `batch_size` rows whatever k is.
#[derive(Debug)]
pub struct RecommendExec {
    pub(crate) users: Arc<dyn ExecutionPlan>,
    pub(crate) model: ResolvedModel,
    pub(crate) k: usize,
    pub(crate) keep_seen: bool,
    properties: Arc<PlanProperties>,
}

impl RecommendExec {
    pub(crate) fn new(
        users: Arc<dyn ExecutionPlan>,
        model: ResolvedModel,
        k: usize,
        keep_seen: bool,
    ) -> Result<Self> {
        let schema = Arc::new(rows_schema(users.schema().field(0), &model)?);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(users.output_partitioning().partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Self {
            users,
            model,
            k,
            keep_seen,
            properties: Arc::new(properties),
        })
    }
}

impl DisplayAs for RecommendExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "RecommendExec: model={} version={} k={}",
            self.model.name, self.model.version, self.k
        )
    }
}

impl ExecutionPlan for RecommendExec {
    fn name(&self) -> &str {
        "RecommendExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.users]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(users) = children.pop() else {
            return internal_err!("RecommendExec needs its users' plan");
        };
        Ok(Arc::new(Self::new(
            users,
            self.model.clone(),
            self.k,
            self.keep_seen,
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        ctx: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let (model, k, keep_seen, schema) =
            (self.model.clone(), self.k, self.keep_seen, self.schema());
        let budget = Arc::new(Budget::new(&ctx, "recommend", "k", k));
        let batch = ctx.session_config().batch_size();
        let users = self.users.execute(partition, ctx)?;
        let rows = users
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
            .flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), rows)))
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
    batch_plan("users", RecordBatch::try_new(schema, vec![ids])?)
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
