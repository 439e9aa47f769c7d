//! The rows of a training query, as a fit reads them.
//!
//! They are read once and kept in memory when they (and the design a fit derives from them,
//! about as large again) fit the session's memory pool (`SET datafusion.runtime.memory_limit`
//! or `--memory-limit`); otherwise the plan runs again for every pass of the fit, one
//! bounded group of batches in memory at a time. On a cluster, a model whose passes are
//! aggregates leaves the rows there: each pass runs on the executors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::{DataFusionError, Result};
use datafusion::dataframe::DataFrame;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::logical_expr::{AggregateUDF, Expr, lit};
use futures::StreamExt;
use tokio::runtime::Handle;

use cohort_udfs::model::pass::Remote;
use cohort_udfs::model::training::{Full, Source, reserve_in};
use cohort_udfs::training_pass::TrainingPass;

/// Input bytes a group of a re-read source holds at most.
const GROUP_BYTES: usize = 32 << 20;

/// Where the training rows are.
pub enum TrainingRows {
    InMemory {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        /// Holds the batches' share of the memory pool until training ends.
        _reservation: MemoryReservation,
        /// Where what a fit keeps besides them comes from.
        pool: Arc<dyn MemoryPool>,
    },
    Replay(Box<Replay>),
}

/// A query planned and run again for each pass (a physical plan cannot always run twice);
/// its batches are read from a blocking thread.
pub struct Replay {
    schema: SchemaRef,
    frame: DataFrame,
    handle: Handle,
    reservation: MemoryReservation,
    pool: Arc<dyn MemoryPool>,
    /// On a cluster: the passes run there so far; `None` when the rows come here.
    passes: Option<AtomicUsize>,
}

impl TrainingRows {
    /// The rows of `frame` left on the cluster it runs on: each pass of a fit runs there.
    pub fn on_cluster(frame: DataFrame) -> Self {
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let pool = frame.task_ctx().memory_pool().clone();
        let reservation = MemoryConsumer::new("CREATE MODEL").register(&pool);
        Self::Replay(Box::new(Replay {
            schema,
            frame,
            handle: Handle::current(),
            reservation,
            pool,
            passes: Some(AtomicUsize::new(0)),
        }))
    }

    /// Runs `frame`, keeping its batches while the memory pool has room for twice their
    /// size; at the first batch it does not, lets them go and reads again per pass.
    /// Counts the rows read in `read`.
    ///
    /// Each partition is read by a task of its own and the batches are kept in partition
    /// order, not in the order the tasks deliver them: a fit then sees the rows in the same
    /// order on every run, so what it draws by row position (subsample, eval_fraction, a
    /// sample to start from) is the same for the same seed.
    pub async fn read(frame: DataFrame, read: &AtomicU64) -> Result<Self> {
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let pool = frame.task_ctx().memory_pool().clone();
        let reservation = MemoryConsumer::new("CREATE MODEL").register(&pool);
        let streams = frame.clone().execute_stream_partitioned().await?;
        let mut parts = vec![Vec::new(); streams.len()];
        let (send, mut receive) = tokio::sync::mpsc::channel(2 * streams.len().max(1));
        // Dropped on every way out: the readers still running stop.
        let mut readers = tokio::task::JoinSet::new();
        for (part, mut stream) in streams.into_iter().enumerate() {
            let send = send.clone();
            readers.spawn(async move {
                while let Some(batch) = stream.next().await {
                    let failed = batch.is_err();
                    if send.send((part, batch)).await.is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(send);
        while let Some((part, batch)) = receive.recv().await {
            let batch: RecordBatch = batch?;
            read.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            if reservation
                .try_grow(2 * batch.get_array_memory_size())
                .is_err()
            {
                drop(readers);
                drop(parts);
                reservation.free();
                return Ok(Self::Replay(Box::new(Replay {
                    schema,
                    frame,
                    handle: Handle::current(),
                    reservation,
                    pool,
                    passes: None,
                })));
            }
            parts[part].push(batch);
        }
        // A reader that panicked has sent less than its partition's rows.
        while let Some(done) = readers.join_next().await {
            done.map_err(|e| {
                DataFusionError::Execution(format!("reading the training rows failed: {e}"))
            })?;
        }
        Ok(Self::InMemory {
            schema,
            batches: parts.concat(),
            _reservation: reservation,
            pool,
        })
    }
}

impl Replay {
    /// How many passes ran on the cluster; `None` when the rows came here.
    pub fn passes(&self) -> Option<usize> {
        self.passes.as_ref().map(|p| p.load(Ordering::Relaxed))
    }

    fn execute(&self) -> Result<SendableRecordBatchStream> {
        self.handle.block_on(self.frame.clone().execute_stream())
    }

    /// The next group of batches: up to [`GROUP_BYTES`] and what the memory pool allows, but
    /// at least one batch; empty at the end of the stream.
    fn next_group(&self, stream: &mut SendableRecordBatchStream) -> Result<Vec<RecordBatch>> {
        self.reservation.free();
        let mut group = Vec::new();
        let mut bytes = 0;
        while bytes < GROUP_BYTES {
            let Some(batch) = self.handle.block_on(stream.next()) else {
                break;
            };
            let batch = batch?;
            let size = 2 * batch.get_array_memory_size();
            bytes += size;
            let fits = self.reservation.try_grow(size).is_ok();
            group.push(batch);
            if !fits {
                break;
            }
        }
        Ok(group)
    }
}

impl Source for Replay {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn resident(&self) -> Option<&[RecordBatch]> {
        None
    }

    fn scan(&self, visit: &mut dyn FnMut(&[RecordBatch]) -> Result<()>) -> Result<()> {
        let mut stream = self.execute()?;
        loop {
            let group = self.next_group(&mut stream)?;
            if group.is_empty() {
                return Ok(());
            }
            visit(&group)?;
        }
    }

    fn reserve(&self, held: &mut Option<MemoryReservation>, bytes: usize) -> Result<(), Full> {
        reserve_in(&self.pool, held, bytes)
    }

    fn remote(&self) -> Option<&dyn Remote> {
        self.passes.is_some().then_some(self as &dyn Remote)
    }

    /// Rows left on a cluster bring no sample here.
    fn first(&self, visit: &mut dyn FnMut(&[RecordBatch])) -> Result<bool> {
        if self.passes.is_some() {
            return Ok(false);
        }
        let mut stream = self.execute()?;
        let group = self.next_group(&mut stream)?;
        if group.is_empty() {
            return Ok(false);
        }
        visit(&group);
        Ok(true)
    }
}

impl Remote for Replay {
    fn aggregate(&self, envelope: String) -> Result<String> {
        let pass = AggregateUDF::new_from_impl(TrainingPass::default());
        let args = std::iter::once(lit(envelope))
            .chain(self.frame.schema().columns().into_iter().map(Expr::Column))
            .collect();
        let frame = self
            .frame
            .clone()
            .aggregate(vec![], vec![pass.call(args).alias("state")])?;
        let batches = self.handle.block_on(frame.collect())?;
        if let Some(passes) = &self.passes {
            passes.fetch_add(1, Ordering::Relaxed);
        }
        batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .and_then(|b| b.column(0).as_string_opt::<i32>())
            .filter(|states| states.is_valid(0))
            .map(|states| states.value(0).to_string())
            .ok_or_else(|| {
                DataFusionError::Internal("a training pass on the cluster returned no state".into())
            })
    }
}
