//! Tables whose rows are made a batch at a time while the query runs: FORECAST,
//! SIMILAR_ITEMS and RECOMMEND in FROM. A large horizon or k then streams through the plan
//! instead of being built whole, and each batch is first reserved in the session's memory
//! pool, so that past `--memory-limit` the query fails naming the argument to lower rather
//! than the process running out of memory. Scalar RECOMMEND reserves the lists of each
//! call in the same pool, found through [`SessionPool`].

use std::any::Any;
use std::fmt::{self, Debug};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::config::{ConfigEntry, ConfigExtension, ConfigOptions, ExtensionOptions};
use datafusion::common::{DataFusionError, Result, plan_err};
use datafusion::execution::SessionState;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryPool, MemoryReservation, UnboundedMemoryPool, human_readable_size,
};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::stream::BoxStream;

/// Bytes a batch of `rows` rows of `row_bytes` each needs, with `extra` on top; saturated
/// rather than wrapped, so that a size past `usize` is refused by the pool like any other.
pub(crate) fn batch_bytes(rows: usize, row_bytes: usize, extra: usize) -> usize {
    rows.saturating_mul(row_bytes).saturating_add(extra)
}

/// The memory a function's output holds in the session's pool: one batch's worth, taken
/// before the batch is made.
pub(crate) struct Budget {
    reservation: MemoryReservation,
    function: &'static str,
    /// The argument that sets the output's size and its value, for the message.
    argument: &'static str,
    value: usize,
}

impl Budget {
    pub fn new(
        ctx: &TaskContext,
        function: &'static str,
        argument: &'static str,
        value: usize,
    ) -> Self {
        Self::in_pool(ctx.memory_pool(), function, argument, value)
    }

    /// A budget in the pool of the session whose settings are `config`, for a scalar
    /// function, which is given the settings but not the pool. Unbounded where the session
    /// carries no [`SessionPool`].
    pub fn in_settings(
        config: &ConfigOptions,
        function: &'static str,
        argument: &'static str,
        value: usize,
    ) -> Self {
        Self::in_pool(&SessionPool::of(config), function, argument, value)
    }

    fn in_pool(
        pool: &Arc<dyn MemoryPool>,
        function: &'static str,
        argument: &'static str,
        value: usize,
    ) -> Self {
        Self {
            reservation: MemoryConsumer::new(function).register(pool),
            function,
            argument,
            value,
        }
    }

    /// Holds `bytes` for the next batch in place of the last one's; `what` says what the
    /// batch is for the message when the pool cannot give them.
    pub fn hold(&self, bytes: usize, what: impl FnOnce() -> String) -> Result<()> {
        self.reservation.try_resize(bytes).map_err(|_| {
            let Self {
                function,
                argument,
                value,
                ..
            } = self;
            DataFusionError::ResourcesExhausted(format!(
                "{function}: {argument} = {value} would need {} for {}, more than the memory \
                 limit leaves; lower {argument} or raise --memory-limit",
                human_readable_size(bytes),
                what()
            ))
        })
    }
}

/// The stream of a [`generated`] table, made when the query runs.
type Make = dyn Fn(Arc<TaskContext>) -> BoxStream<'static, Result<RecordBatch>> + Send + Sync;

/// A table of `schema` whose rows are the batches of the stream `make` starts each time
/// the table is read.
pub(crate) fn generated(
    schema: SchemaRef,
    make: impl Fn(Arc<TaskContext>) -> BoxStream<'static, Result<RecordBatch>> + Send + Sync + 'static,
) -> Result<Arc<dyn TableProvider>> {
    let partition = Arc::new(Generated {
        schema: schema.clone(),
        make: Box::new(make),
    });
    Ok(Arc::new(StreamingTable::try_new(schema, vec![partition])?))
}

struct Generated {
    schema: SchemaRef,
    make: Box<Make>,
}

impl Debug for Generated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generated")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PartitionStream for Generated {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            (self.make)(ctx),
        ))
    }
}

/// The session's memory pool, carried in its settings for scalar functions: DataFusion
/// gives them the settings, not the pool. The pool is shared, not copied, on purpose: it is
/// the session's one account. [`SessionPool::share`] puts it there; call it again whenever
/// the session's runtime (its pool) is replaced, as `SET datafusion.runtime.memory_limit`
/// does.
#[derive(Debug, Clone)]
pub struct SessionPool(Arc<dyn MemoryPool>);

impl SessionPool {
    /// The pool of the session whose settings are `config`; unbounded where the session
    /// carries none.
    pub fn of(config: &ConfigOptions) -> Arc<dyn MemoryPool> {
        config.extensions.get::<SessionPool>().map_or_else(
            || Arc::new(UnboundedMemoryPool::default()) as Arc<dyn MemoryPool>,
            |p| p.0.clone(),
        )
    }

    /// Makes `state`'s memory pool the one its scalar functions reserve in.
    pub fn share(state: &mut SessionState) {
        let pool = Self(state.runtime_env().memory_pool.clone());
        let extensions = &mut state.config_mut().options_mut().extensions;
        if !extensions
            .get::<SessionPool>()
            .is_some_and(|current| Arc::ptr_eq(&current.0, &pool.0))
        {
            extensions.insert(pool);
        }
    }
}

impl ConfigExtension for SessionPool {
    const PREFIX: &'static str = "cohort_memory_pool";
}

impl ExtensionOptions for SessionPool {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, _value: &str) -> Result<()> {
        plan_err!("{key} is not a setting; the memory pool is set with --memory-limit")
    }

    /// Nothing to list in SHOW ALL.
    fn entries(&self) -> Vec<ConfigEntry> {
        Vec::new()
    }
}
