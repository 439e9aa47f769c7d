//! The one way SQL runs in cohort.
//!
//! The shell, the script runner and the Flight SQL server all call [`Engine::execute`] or
//! [`Engine::execute_stream`] with one statement. The engine recognises cohort's own
//! statements (see [`parser`]) and hands everything else to DataFusion, so a statement behaves
//! the same wherever it is typed.

pub mod catalog;
mod create_model;
mod file_errors;
pub mod files;
mod holdout;
mod ipc_check;
mod ipc_format;
mod local_files;
pub mod parser;
pub mod progress;
mod session_views;
pub mod split;
mod training_rows;
mod tuning;

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;

use cohort_udfs::Error;
use cohort_udfs::sql::SessionPool;
use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{
    CatalogProviderList, DynamicFileCatalog, MemorySchemaProvider, SchemaProvider,
};
use datafusion::common::{DataFusionError, ParamValues, Result, TableReference, plan_err};
use datafusion::datasource::dynamic_file::DynamicListTableFactory;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::MemoryPool;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::planner::object_name_to_table_reference;
use datafusion::sql::sqlparser::ast::ObjectName;
use futures::{FutureExt, TryStreamExt};

use crate::server::{Access, Role};
use crate::store::{ModelStore, ModelsTable};
use file_errors::{FilesRead, Locations};
use session_views::SessionCatalogs;

pub use parser::{CreateModel, ModelStatement, OptionValue, Statement, parse_statement};

/// A statement's whole result.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// A DataFusion session with cohort's functions and statements over one model store.
#[derive(Clone)]
pub struct Engine {
    ctx: SessionContext,
    store: ModelStore,
    /// The shared catalogs without the lookup of files by path, which each server session
    /// puts in front confined to what its user may read.
    tables: Arc<dyn CatalogProviderList>,
    /// A server session's own views and tables; `None` for the shell's and scripts' engine.
    own: Option<Arc<SessionCatalogs>>,
    /// Whether queries run on a Ballista cluster.
    cluster: bool,
    /// How far the statement running now has got.
    progress: Arc<progress::Progress>,
}

impl Engine {
    /// A session with information_schema (for `SHOW TABLES` and `\d`), files queryable by
    /// path (`SELECT * FROM 'sales.parquet'`), every cohort function registered, and the
    /// store's models as the table `cohort.models`.
    pub fn new(store: ModelStore) -> Result<Self> {
        Self::with_config(SessionConfig::new(), store)
    }

    /// Like [`Engine::new`], starting from `config` (partitions, batch size, ...).
    pub fn with_config(config: SessionConfig, store: ModelStore) -> Result<Self> {
        Self::build(config, store, None)
    }

    /// Like [`Engine::new`], with queries planned here and run on the Ballista cluster
    /// whose scheduler `scheduler` names (`df://HOST:PORT`). cohort's own statements
    /// (CREATE MODEL, SHOW MODELS, ...) run here, their queries on the cluster.
    pub fn on_cluster(store: ModelStore, scheduler: &str) -> Result<Self> {
        Self::build(SessionConfig::new(), store, Some(scheduler))
    }

    fn build(config: SessionConfig, store: ModelStore, cluster: Option<&str>) -> Result<Self> {
        let ctx = SessionContext::new_with_config(config.with_information_schema(true));
        cohort_udfs::register_all(&ctx, Arc::new(store.clone()))?;
        // Before the lookup of files by path, which holds on to the session it is made in.
        let ctx = match cluster {
            Some(scheduler) => crate::cluster::connect(ctx, scheduler, &store)?,
            None => ctx,
        };
        let tables = ctx.state().catalog_list().clone();
        let ctx = ctx.enable_url_table();
        ctx.register_object_store(
            ObjectStoreUrl::local_filesystem().as_ref(),
            Arc::new(local_files::RegularFiles::default()),
        );
        // Every Arrow file SQL reads (by path, STORED AS ARROW) is checked before Arrow's
        // readers allocate what it declares. On a cluster the executors read the files, with
        // the format the plan names.
        if cluster.is_none() {
            ctx.state_ref()
                .write()
                .register_file_format(Arc::new(ipc_format::CheckedArrowFormatFactory), true)?;
        }
        let schema = MemorySchemaProvider::new();
        schema.register_table(
            "models".to_string(),
            Arc::new(ModelsTable::new(store.clone())),
        )?;
        let catalog = ctx.catalog("datafusion").ok_or_else(|| {
            DataFusionError::Internal("the default catalog is missing".to_string())
        })?;
        catalog.register_schema("cohort", Arc::new(schema))?;
        Ok(Self {
            ctx,
            store,
            tables,
            own: None,
            cluster: cluster.is_some(),
            progress: Arc::default(),
        })
    }

    /// The underlying DataFusion session: for registering tables and reading the catalog.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Whether queries run on a Ballista cluster ([`Engine::on_cluster`]).
    pub fn is_on_cluster(&self) -> bool {
        self.cluster
    }

    /// How far the statement running now has got, for a progress display.
    pub fn progress(&self) -> &Arc<progress::Progress> {
        &self.progress
    }

    /// The model store this engine reads and writes.
    pub fn store(&self) -> &ModelStore {
        &self.store
    }

    /// Runs one statement and collects its result.
    pub async fn execute(&self, sql: &str) -> Result<QueryResult> {
        let stream = self.execute_stream(sql).await?;
        let schema = stream.schema();
        let batches = stream.try_collect().await?;
        Ok(QueryResult { schema, batches })
    }

    /// Runs one statement and returns its result as a stream. Dropping the stream cancels
    /// the query.
    pub async fn execute_stream(&self, sql: &str) -> Result<SendableRecordBatchStream> {
        self.execute_with(sql, None).await
    }

    /// Runs one statement with values for its `$1`, `$2`, ... placeholders.
    pub async fn execute_with(
        &self,
        sql: &str,
        params: Option<ParamValues>,
    ) -> Result<SendableRecordBatchStream> {
        self.progress.clear();
        let result = match parse_statement(sql)? {
            Statement::Sql(sql) => {
                let run = async {
                    let mut plan = self.plan_sql(&sql).await?;
                    if let Some(params) = params {
                        plan = plan.with_param_values(params)?;
                    }
                    // CREATE EXTERNAL TABLE and the planning of a scan read Parquet
                    // footers: their errors name the files too.
                    let locations = Locations::of(&plan);
                    let frame = self
                        .ctx
                        .execute_logical_plan(plan)
                        .await
                        .map_err(|e| locations.name(e))?;
                    let task = Arc::new(frame.task_ctx());
                    let physical = frame
                        .create_physical_plan()
                        .await
                        .map_err(|e| locations.name(e))?;
                    self.progress.query(&physical);
                    let files = FilesRead::of(&physical);
                    Ok(files.name_in_errors(execute_stream(physical, task)?))
                };
                // Planning reads files' metadata (schemas, Parquet footers), and the
                // readers panic on some damaged ones: an error, not the end of the process.
                AssertUnwindSafe(run)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| Err(file_errors::damaged(panic.as_ref())))
            }
            Statement::Model(statement) => self.execute_model_statement(statement).await,
        };
        result.map_err(unwrap_optimizer_context)
    }

    /// What a prepared statement returns and takes: the result's schema and the types of
    /// its placeholders, in order. Cohort's own statements take none, and their result is
    /// known once they run (an empty schema here).
    pub async fn describe(&self, sql: &str) -> Result<(SchemaRef, Vec<DataType>)> {
        match parse_statement(sql)? {
            Statement::Sql(sql) => {
                let plan = self
                    .plan_sql(&sql)
                    .await
                    .map_err(unwrap_optimizer_context)?;
                let mut params: Vec<(usize, DataType)> = plan
                    .get_parameter_types()?
                    .into_iter()
                    .map(|(id, t)| (placeholder_number(&id), t.unwrap_or(DataType::Utf8)))
                    .collect();
                // $1, $2, ...: in number order, not text order.
                params.sort_unstable_by_key(|(n, _)| *n);
                let params = params.into_iter().map(|(_, t)| t).collect();
                Ok((Arc::new(plan.schema().as_arrow().clone()), params))
            }
            Statement::Model(_) => Ok((Arc::new(Schema::empty()), vec![])),
        }
    }

    /// A new session over the same tables, functions, memory pool and model store, with
    /// its own settings and views, for a Flight SQL client with `access`: files are found
    /// by path only where `access` lets it use them, and the tables of a user who may not
    /// change shared tables are the session's own, as its views are.
    pub fn session_for(&self, access: &Access) -> Engine {
        let urls = Arc::new(DynamicListTableFactory::default());
        let files = DynamicFileCatalog::new(self.tables.clone(), access.confine(urls.clone()));
        let own = Arc::new(SessionCatalogs::new(
            Arc::new(files),
            access.role() < Role::Admin,
        ));
        let state = SessionStateBuilder::new_from_existing(self.ctx.state())
            .with_catalog_list(own.clone())
            .with_session_id(uuid::Uuid::new_v4().to_string())
            .build();
        let ctx = SessionContext::new_with_state(state);
        // Files are read with the session's own settings.
        urls.session_store().with_state(ctx.state_weak_ref());
        Engine {
            ctx,
            store: self.store.clone(),
            tables: self.tables.clone(),
            own: Some(own),
            cluster: self.cluster,
            progress: Arc::default(),
        }
    }

    /// Draws this session's query memory from the pool `pool` makes of the current one.
    pub fn set_memory_pool(
        &self,
        pool: impl FnOnce(Arc<dyn MemoryPool>) -> Arc<dyn MemoryPool>,
    ) -> Result<()> {
        let state = self.ctx.state_ref();
        let mut state = state.write();
        let runtime = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
            .with_memory_pool(pool(state.runtime_env().memory_pool.clone()))
            .build_arc()?;
        // Replaced in place, as `SET datafusion.runtime...` does: what holds the session's
        // state (the lookup of files by path) keeps seeing it.
        *state = SessionStateBuilder::new_from_existing(state.clone())
            .with_runtime_env(runtime)
            .build();
        Ok(())
    }

    /// Whether `table` exists, as the session's own or shared.
    pub(crate) fn has_table(&self, table: &TableReference) -> bool {
        matches!(self.ctx.table_exist(table.clone()), Ok(true))
    }

    /// A name as planning reads it (unquoted parts lower-cased, as the settings say).
    pub(crate) fn table_reference(&self, name: &ObjectName) -> Result<TableReference> {
        let state = self.ctx.state_ref();
        let normalize = state
            .read()
            .config_options()
            .sql_parser
            .enable_ident_normalization;
        object_name_to_table_reference(name.clone(), normalize)
    }

    /// Whether `table` is a view or table this server session made itself.
    pub(crate) fn owns_table(&self, table: &TableReference) -> bool {
        let Some(own) = &self.own else {
            return false;
        };
        let state = self.ctx.state_ref();
        let state = state.read();
        let defaults = &state.config_options().catalog;
        let t = table
            .clone()
            .resolve(&defaults.default_catalog, &defaults.default_schema);
        own.owns(&t.catalog, &t.schema, &t.table)
    }

    /// Parses ordinary SQL as it is planned: table arguments of cohort's table forms
    /// (`predict('m', customers)`) made visible to DataFusion's table resolution and `?`
    /// placeholders numbered.
    pub(crate) fn parse_sql(&self, sql: &str) -> Result<DFStatement> {
        parse_in(&self.ctx.state_ref().read(), sql)
    }

    /// Every table and view a parsed statement names (not its CTEs), as planning looks
    /// them up.
    pub(crate) fn table_references(&self, statement: &DFStatement) -> Result<Vec<TableReference>> {
        self.ctx
            .state_ref()
            .read()
            .resolve_table_references(statement)
    }

    /// Plans ordinary SQL (see [`Engine::parse_sql`]).
    async fn plan_sql(&self, sql: &str) -> Result<LogicalPlan> {
        // The last statement may have replaced the pool (SET datafusion.runtime...).
        SessionPool::share(&mut self.ctx.state_ref().write());
        let state = self.ctx.state();
        let statement = parse_in(&state, sql)?;
        let tables = state.resolve_table_references(&statement)?;
        state
            .statement_to_plan(statement)
            .await
            .map_err(|e| Self::name_read_file(self.name_missing_table(e, &tables), &tables))
    }

    /// A planning error from reading the one file the statement names by path (DataFusion
    /// reads a Parquet file's footer to plan it), naming the file.
    fn name_read_file(e: DataFusionError, tables: &[TableReference]) -> DataFusionError {
        let mut files = tables.iter().filter(|t| Path::new(t.table()).is_file());
        match (files.next(), files.next()) {
            (Some(file), None) if file_errors::is_reading(&e) => {
                file_errors::cannot_read(file.table(), &e)
            }
            _ => e,
        }
    }

    /// A planning error as [`Error::TableNotFound`] when a table the statement names does
    /// not exist: that is what stopped it, and clients act on it differently.
    fn name_missing_table(&self, e: DataFusionError, tables: &[TableReference]) -> DataFusionError {
        let missing = tables
            .iter()
            .find(|t| !matches!(self.ctx.table_exist((*t).clone()), Ok(true)));
        match (missing, &e) {
            (Some(table), DataFusionError::Plan(_) | DataFusionError::Diagnostic(..)) => {
                // DataFusion finds no table at a path it cannot read; say why for a FIFO.
                if let Some(special) = local_files::special_file(Path::new(table.table())) {
                    return special.into();
                }
                Error::TableNotFound {
                    table: table.to_string(),
                    message: e.find_root().message().into_owned(),
                }
                .into()
            }
            _ => e,
        }
    }

    async fn execute_model_statement(
        &self,
        statement: ModelStatement,
    ) -> Result<SendableRecordBatchStream> {
        match statement {
            ModelStatement::Create(c) => create_model::create_model(self, c).await,
            ModelStatement::Show => {
                self.ctx
                    .sql("SELECT * FROM cohort.models ORDER BY model")
                    .await?
                    .execute_stream()
                    .await
            }
            ModelStatement::Drop { name, if_exists } => {
                if !self.store.drop_model(&name)? && !if_exists {
                    return plan_err!("{}", self.store.unknown(&name)?);
                }
                rows(&[], vec![])
            }
            ModelStatement::Describe { name } => {
                let d = self.store.load(&name)?.description;
                let mut props: Vec<(String, String)> = vec![
                    ("model".into(), d.name.clone()),
                    ("model_type".into(), d.model_type.clone()),
                    ("version".into(), d.version.to_string()),
                    ("label".into(), d.label.clone().unwrap_or_default()),
                ];
                for (i, f) in d.features.iter().enumerate() {
                    props.push((
                        format!("feature {}", i + 1),
                        format!("{} ({}, {})", f.name, f.data_type, f.encoding),
                    ));
                }
                for (k, v) in &d.options {
                    props.push((format!("option {k}"), v.clone()));
                }
                props.push(("training_rows".into(), d.training_rows.to_string()));
                props.push(("rows_skipped".into(), d.rows_skipped.to_string()));
                for (k, v) in &d.metrics {
                    props.push((format!("metric {k}"), v.to_string()));
                }
                let a = &d.assessment;
                if !a.split.is_empty() {
                    props.push(("eval split".into(), a.split.clone()));
                }
                for (k, v) in &a.eval {
                    let shown = v.as_f64().map_or_else(|| "NULL".into(), |v| v.to_string());
                    props.push((format!("eval {k}"), shown));
                }
                for s in &a.cv {
                    props.push((
                        format!("cv {} ({} folds)", s.metric, a.cv_folds),
                        format!("{} ± {}", s.mean, s.std),
                    ));
                }
                if let (Some(best), Some((metric, _))) = (a.best_trial, &a.objective) {
                    props.push((
                        "tuning".into(),
                        format!("trial {best} of {}, by {metric}", a.trials.len()),
                    ));
                }
                props.push(("created_at".into(), d.created_at.clone()));
                let (keys, values) = props.into_iter().unzip();
                rows(&["property", "value"], vec![keys, values])
            }
        }
    }
}

/// See [`Engine::parse_sql`].
fn parse_in(state: &SessionState, sql: &str) -> Result<DFStatement> {
    let dialect = state.config().options().sql_parser.dialect;
    let mut statement = state.sql_to_statement(sql, &dialect)?;
    check_depth(&statement)?;
    check_width(&statement)?;
    expose_table_arguments(&mut statement)?;
    number_placeholders(&mut statement)?;
    Ok(statement)
}

/// The deepest nesting of expressions a statement may have, as DuckDB's
/// `max_expression_depth`: a chain of `+` or `OR` nests one level per operator, and planning
/// costs grow with the square of the depth (every level's name spells out the levels below).
const MAX_EXPRESSION_DEPTH: usize = 1000;

/// Refuses a statement whose expressions nest deeper than [`MAX_EXPRESSION_DEPTH`], before
/// anything else walks it.
fn check_depth(statement: &DFStatement) -> Result<()> {
    use datafusion::sql::parser::CopyToSource;
    use datafusion::sql::sqlparser::ast::{Expr, Visit, Visitor};
    use std::ops::ControlFlow;

    struct Depth(usize);
    impl Visitor for Depth {
        type Break = ();
        fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.0 += 1;
            if self.0 > MAX_EXPRESSION_DEPTH {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.0 -= 1;
            ControlFlow::Continue(())
        }
    }
    let too_deep = match statement {
        DFStatement::Statement(s) => s.visit(&mut Depth(0)).is_break(),
        DFStatement::CopyTo(copy) => match &copy.source {
            CopyToSource::Query(q) => q.visit(&mut Depth(0)).is_break(),
            CopyToSource::Relation(_) => false,
        },
        DFStatement::Explain(explain) => return check_depth(&explain.statement),
        _ => false,
    };
    if too_deep {
        return Err(Error::InvalidArgument(format!(
            "the statement nests expressions more than {MAX_EXPRESSION_DEPTH} deep (each + or \
             OR of a chain is one level); write long OR chains as IN (...), or compute parts \
             in a CTE"
        ))
        .into());
    }
    Ok(())
}

/// The most expressions one SELECT list may have, as PostgreSQL limits a target list:
/// DataFusion's planning compares each item of a SELECT list with every one before it, so its
/// cost grows with the square of their number (30,000 items take many seconds).
const MAX_SELECT_ITEMS: usize = 4096;

/// Refuses a statement with a SELECT list longer than [`MAX_SELECT_ITEMS`], anywhere in it,
/// before it is planned.
fn check_width(statement: &DFStatement) -> Result<()> {
    use datafusion::sql::parser::CopyToSource;
    use datafusion::sql::sqlparser::ast::{Query, SetExpr, Visit, Visitor};
    use std::ops::ControlFlow;

    fn widest(body: &SetExpr) -> usize {
        match body {
            SetExpr::Select(select) => select.projection.len(),
            SetExpr::SetOperation { left, right, .. } => widest(left).max(widest(right)),
            SetExpr::Query(query) => widest(&query.body),
            _ => 0,
        }
    }
    struct Width;
    impl Visitor for Width {
        type Break = usize;
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<usize> {
            match widest(&query.body) {
                n if n > MAX_SELECT_ITEMS => ControlFlow::Break(n),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    let found = match statement {
        DFStatement::Statement(s) => s.visit(&mut Width),
        DFStatement::CopyTo(copy) => match &copy.source {
            CopyToSource::Query(q) => q.visit(&mut Width),
            CopyToSource::Relation(_) => ControlFlow::Continue(()),
        },
        DFStatement::Explain(explain) => return check_width(&explain.statement),
        _ => ControlFlow::Continue(()),
    };
    if let ControlFlow::Break(n) = found {
        return Err(Error::InvalidArgument(format!(
            "a SELECT list of the statement has {n} items, more than the {MAX_SELECT_ITEMS} one \
             SELECT may have; select fewer columns per query, or pass many values as an IN \
             list or an array"
        ))
        .into());
    }
    Ok(())
}

/// The number of placeholder `$n`; past every number for a named one.
fn placeholder_number(id: &str) -> usize {
    id.strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Applies [`cohort_udfs::sql::rewrite_cohort_forms`] to every query in
/// a statement, DataFusion's own statements (COPY, EXPLAIN) included.
fn expose_table_arguments(statement: &mut DFStatement) -> Result<()> {
    use cohort_udfs::sql::rewrite_cohort_forms;
    use datafusion::sql::parser::CopyToSource;
    match statement {
        DFStatement::Statement(s) => rewrite_cohort_forms(s.as_mut()),
        DFStatement::CopyTo(copy) => match &mut copy.source {
            CopyToSource::Query(q) => rewrite_cohort_forms(q.as_mut()),
            CopyToSource::Relation(_) => Ok(()),
        },
        DFStatement::Explain(explain) => expose_table_arguments(&mut explain.statement),
        _ => Ok(()),
    }
}

/// Turns the positional `?` placeholders that JDBC and ADBC's SQLAlchemy layer write into
/// DataFusion's `$1`, `$2`, ... in the order they appear.
fn number_placeholders(statement: &mut DFStatement) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{Expr, Value, visit_expressions_mut};
    use std::ops::ControlFlow;
    let DFStatement::Statement(s) = statement else {
        return Ok(());
    };
    let (mut positional, mut numbered) = (0, false);
    let _ = visit_expressions_mut(s.as_mut(), |expr| {
        if let Expr::Value(v) = expr
            && let Value::Placeholder(p) = &mut v.value
        {
            if p == "?" {
                positional += 1;
                *p = format!("${positional}");
            } else {
                numbered = true;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    if positional > 0 && numbered {
        return plan_err!("use either ? or $1, $2, ... placeholders in one statement, not both");
    }
    Ok(())
}

/// A planning mistake found while the optimizer rewrote the query (an unknown model in
/// PREDICT, say) is the user's error: report it without the optimizer's wrapping.
fn unwrap_optimizer_context(e: DataFusionError) -> DataFusionError {
    match e {
        DataFusionError::Context(context, inner)
            if context.starts_with("Optimizer rule")
                && matches!(inner.as_ref(), DataFusionError::Plan(_)) =>
        {
            *inner
        }
        other => other,
    }
}

/// A batch of non-null string columns; `None` when there are no columns.
pub fn string_batch(names: &[&str], columns: Vec<Vec<String>>) -> Result<Option<RecordBatch>> {
    if names.is_empty() {
        return Ok(None);
    }
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as _)
        .collect();
    Ok(Some(RecordBatch::try_new(schema, arrays)?))
}

/// A result of string columns (none for a statement that returns nothing).
pub(crate) fn rows(names: &[&str], columns: Vec<Vec<String>>) -> Result<SendableRecordBatchStream> {
    let (schema, batches) = match string_batch(names, columns)? {
        Some(batch) => (batch.schema(), vec![batch]),
        None => (Arc::new(Schema::empty()), vec![]),
    };
    Ok(Box::pin(MemoryStream::try_new(batches, schema, None)?))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn engine() -> (Engine, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::new(ModelStore::open(dir.path()).unwrap()).unwrap();
        (engine, dir)
    }

    /// The quickest of three runs of describing an IN list of `n` `?` placeholders.
    async fn describe_in_list(engine: &Engine, n: usize) -> Duration {
        let sql = format!("SELECT 1 WHERE 1 IN ({})", vec!["?"; n].join(", "));
        let mut quickest = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let (_, params) = engine.describe(&sql).await.unwrap();
            quickest = quickest.min(started.elapsed());
            assert_eq!(params.len(), n);
        }
        quickest
    }

    #[tokio::test]
    async fn placeholders_are_numbered_and_typed_in_linear_time() {
        let (engine, _dir) = engine();
        let small = describe_in_list(&engine, 25_000).await;
        let large = describe_in_list(&engine, 100_000).await;
        // Four times the placeholders: about four times the time, sixteen if quadratic.
        assert!(
            large < small * 10,
            "25,000 placeholders took {small:?}, 100,000 took {large:?}"
        );
        assert!(large < Duration::from_secs(60), "{large:?}");
    }

    #[tokio::test]
    async fn select_lists_past_the_limit_are_refused_before_planning() {
        let (engine, _dir) = engine();
        let list = |n: usize| {
            (1..=n)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (_, params) = engine
            .describe(&format!("SELECT {}", list(MAX_SELECT_ITEMS)))
            .await
            .unwrap();
        assert_eq!(params.len(), MAX_SELECT_ITEMS);
        let started = Instant::now();
        let sql = format!("SELECT * FROM (SELECT 1) UNION ALL SELECT {}", list(30_000));
        let e = engine.describe(&sql).await.unwrap_err().to_string();
        assert!(
            e.contains("a SELECT list of the statement has 30000 items, more than the 4096"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
