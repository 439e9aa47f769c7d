//! One client statement from its start to its last row: the server's statement timeout
//! applies to all of it (planning, running, sending), and its audit line is written when it
//! ends, however it ends.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use datafusion::physical_plan::stream::{
    RecordBatchReceiverStreamBuilder, RecordBatchStreamAdapter,
};
use futures::{Stream, StreamExt};
use tokio::runtime::Handle;
use tokio::time::Sleep;
use tonic::Status;

use super::audit::{AuditLog, Entry, Event};
use super::service::status;

/// The error of a statement stopped by the server's statement timeout.
#[derive(Debug)]
pub struct StatementTimeout(pub Duration);

impl fmt::Display for StatementTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the statement was cancelled after {:?}, this server's statement timeout; make it \
             cheaper (filter or sample the rows) or ask the administrator to raise \
             --statement-timeout",
            self.0
        )
    }
}

impl std::error::Error for StatementTimeout {}

fn timed_out(timeout: Option<Duration>) -> DataFusionError {
    DataFusionError::External(Box::new(StatementTimeout(timeout.unwrap_or_default())))
}

/// A statement under way.
pub struct Statement {
    /// Where its work runs: not on the threads that answer clients, so a long step of one
    /// query holds up neither the others' requests nor its own deadline.
    runtime: Handle,
    audit: Option<Arc<AuditLog>>,
    event: Event,
    user: String,
    peer: Option<SocketAddr>,
    sql: String,
    started: Instant,
    timeout: Option<Duration>,
    deadline: Option<tokio::time::Instant>,
}

impl Statement {
    /// Starts the clock of `sql`, run by `user` from `peer`.
    pub fn start(
        runtime: Handle,
        audit: Option<Arc<AuditLog>>,
        event: Event,
        user: &str,
        peer: Option<SocketAddr>,
        sql: &str,
        timeout: Option<Duration>,
    ) -> Self {
        Self {
            runtime,
            audit,
            event,
            user: user.to_string(),
            peer,
            sql: sql.to_string(),
            started: Instant::now(),
            timeout,
            deadline: timeout.map(|t| tokio::time::Instant::now() + t),
        }
    }

    /// Runs one step of the statement (planning, or all of a statement that returns no
    /// stream) within what is left of its time; the step is aborted, which cancels it, when
    /// the time runs out.
    pub async fn run<T: Send + 'static>(
        &self,
        step: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T, Status> {
        let mut task = self.runtime.spawn(step);
        let joined = match self.deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(joined) => joined,
                Err(_) => {
                    task.abort();
                    return Err(status(timed_out(self.timeout)));
                }
            },
            None => task.await,
        };
        joined
            .map_err(|e| DataFusionError::Execution(format!("the statement stopped: {e}")))
            .and_then(|result| result)
            .map_err(status)
    }

    /// Ends the statement: writes its audit line.
    pub fn finish(self, outcome: Result<Option<u64>, &Status>) {
        if let Some(audit) = &self.audit {
            audit.record(&Entry {
                event: self.event,
                user: &self.user,
                peer: self.peer,
                statement: Some(&self.sql),
                outcome,
                elapsed: self.started.elapsed(),
            });
        }
    }

    /// Ends the statement with `result`, passed on.
    pub fn finish_with<T>(
        self,
        result: Result<T, Status>,
        rows: impl Fn(&T) -> Option<u64>,
    ) -> Result<T, Status> {
        match &result {
            Ok(value) => self.finish(Ok(rows(value))),
            Err(e) => self.finish(Err(e)),
        }
        result
    }

    /// The statement's rows as a stream that stops at the deadline and writes the audit
    /// line when it ends: at its last row, at an error, or when dropped unfinished (the
    /// client cancelled or went away).
    pub fn stream(self, inner: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let schema = inner.schema();
        // The query runs in a task of its own, so the deadline is seen on time even when one
        // step of the query takes long without yielding; dropping the stream aborts the task.
        let mut driver = RecordBatchReceiverStreamBuilder::new(schema.clone(), 2);
        let tx = driver.tx();
        driver.spawn_on(
            async move {
                let mut inner = inner;
                while let Some(batch) = inner.next().await {
                    if tx.send(batch).await.is_err() {
                        break;
                    }
                }
                Ok(())
            },
            &self.runtime,
        );
        Box::pin(Tracked {
            schema: schema.clone(),
            inner: Some(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                driver.build(),
            ))),
            sleep: self.deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            rows: 0,
            statement: Some(self),
        })
    }
}

struct Tracked {
    schema: SchemaRef,
    /// `None` once ended: dropping the query stops its execution and frees its memory.
    inner: Option<SendableRecordBatchStream>,
    sleep: Option<Pin<Box<Sleep>>>,
    rows: u64,
    /// `None` once its audit line is written.
    statement: Option<Statement>,
}

impl Tracked {
    fn end(&mut self, outcome: Result<(), &Status>) {
        self.inner = None;
        self.sleep = None;
        if let Some(statement) = self.statement.take() {
            statement.finish(outcome.map(|()| Some(self.rows)));
        }
    }
}

impl Stream for Tracked {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(sleep) = this.sleep.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            let timeout = this.statement.as_ref().and_then(|s| s.timeout);
            let e = timed_out(timeout);
            this.end(Err(&status(&e)));
            return Poll::Ready(Some(Err(e)));
        }
        let next = inner.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(batch))) => this.rows += batch.num_rows() as u64,
            Poll::Ready(Some(Err(e))) => this.end(Err(&status(e))),
            Poll::Ready(None) => this.end(Ok(())),
            Poll::Pending => {}
        }
        next
    }
}

impl RecordBatchStream for Tracked {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.statement.is_some() {
            self.end(Err(&Status::cancelled(
                "the client cancelled the statement or went away before its last row",
            )));
        }
    }
}
