//! The one way SQL runs in cohort.
//!
//! The shell, the script runner and the Flight SQL server all call [`Engine::execute`] or
//! [`Engine::execute_stream`] with one statement. The engine recognises cohort's own
//! statements (see [`parser`]) and hands everything else to DataFusion, so a statement behaves
//! the same wherever it is typed.

pub mod catalog;
pub mod files;
pub mod parser;
pub mod split;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{Result, plan_err};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;

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

/// A DataFusion session with cohort's functions and statements.
#[derive(Clone)]
pub struct Engine {
    ctx: SessionContext,
}

impl Engine {
    /// A session with information_schema (for `SHOW TABLES` and `\d`), files queryable by
    /// path (`SELECT * FROM 'sales.parquet'`) and every cohort function registered.
    pub fn new() -> Result<Self> {
        Self::with_config(SessionConfig::new())
    }

    /// Like [`Engine::new`], starting from `config` (partitions, batch size, ...).
    pub fn with_config(config: SessionConfig) -> Result<Self> {
        let ctx = SessionContext::new_with_config(config.with_information_schema(true))
            .enable_url_table();
        cohort_udfs::register_all(&ctx)?;
        Ok(Self { ctx })
    }

    /// The underlying DataFusion session: for registering tables and reading the catalog.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
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
        match parse_statement(sql)? {
            Statement::Sql(sql) => self.ctx.sql(&sql).await?.execute_stream().await,
            Statement::Model(statement) => self.execute_model_statement(statement).await,
        }
    }

    async fn execute_model_statement(
        &self,
        statement: ModelStatement,
    ) -> Result<SendableRecordBatchStream> {
        let what = match statement {
            ModelStatement::Create(c) => format!("CREATE MODEL {}", c.name),
            ModelStatement::Drop { name, .. } => format!("DROP MODEL {name}"),
            ModelStatement::Show => "SHOW MODELS".to_string(),
            ModelStatement::Describe { name } => format!("DESCRIBE MODEL {name}"),
        };
        plan_err!(
            "{what}: model support is not built yet in this version of cohort; \
             the statement was parsed but nothing was trained or stored"
        )
    }
}
