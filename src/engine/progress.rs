//! What the statement running now has done, for a progress display to poll.
//!
//! A query's scans count the rows (and Parquet the bytes) they have read in their metrics
//! as they go; the plan's statistics know the total where the files say it. `CREATE MODEL`
//! counts the training rows it reads, then the fit counts its passes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cohort_udfs::kernels::progress::{FitProgress, Stage};
use datafusion::common::stats::Precision;
use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext};

/// Shared by an engine's clones: the shell polls it while a statement runs.
#[derive(Debug, Default)]
pub struct Progress {
    now: Mutex<Option<Running>>,
}

#[derive(Debug)]
enum Running {
    Query(Arc<dyn ExecutionPlan>),
    Training(Arc<Training>),
}

/// A `CREATE MODEL`'s progress.
#[derive(Debug, Default)]
pub struct Training {
    /// Training rows read.
    pub rows: AtomicU64,
    pub fit: Arc<FitProgress>,
}

/// How far the running statement has got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Snapshot {
    /// Nothing known yet (planning, or a source that counts nothing).
    Unknown,
    /// A query's scans: rows read, of `total` where known, and bytes where counted.
    Scan {
        rows: u64,
        total: Option<u64>,
        bytes: Option<u64>,
    },
    /// A fit: its stage, passes started, training rows and rows visited per second.
    Fit {
        stage: Stage,
        pass: u64,
        rows_per_second: f64,
    },
    /// Training rows read so far.
    Reading { rows: u64 },
}

impl Progress {
    /// Forgets the last statement's progress.
    pub fn clear(&self) {
        self.set(None);
    }

    /// Follows the scans of `plan`.
    pub fn query(&self, plan: &Arc<dyn ExecutionPlan>) {
        self.set(Some(Running::Query(plan.clone())));
    }

    /// Follows a `CREATE MODEL`; the returned counters are the training's to advance.
    pub fn training(&self) -> Arc<Training> {
        let training = Arc::new(Training::default());
        self.set(Some(Running::Training(training.clone())));
        training
    }

    fn set(&self, running: Option<Running>) {
        if let Ok(mut now) = self.now.lock() {
            *now = running;
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let running = match self.now.lock() {
            Ok(now) => match &*now {
                Some(Running::Query(plan)) => Running::Query(plan.clone()),
                Some(Running::Training(t)) => Running::Training(t.clone()),
                None => return Snapshot::Unknown,
            },
            Err(_) => return Snapshot::Unknown,
        };
        match running {
            Running::Query(plan) => scans(&plan),
            Running::Training(training) => {
                let rows = training.rows.load(Ordering::Relaxed);
                match training.fit.get() {
                    Some((stage, pass, started)) => Snapshot::Fit {
                        stage,
                        pass,
                        // Each pass visits every training row once.
                        rows_per_second: rows as f64 * pass.saturating_sub(1) as f64
                            / started.elapsed().as_secs_f64().max(1e-3),
                    },
                    None => Snapshot::Reading { rows },
                }
            }
        }
    }
}

/// Rows and bytes the scans (leaves) of `plan` have read, and their total where every
/// counting scan knows its own.
fn scans(plan: &Arc<dyn ExecutionPlan>) -> Snapshot {
    let mut rows = 0;
    let mut total = Some(0);
    let mut bytes = None;
    let mut counted = false;
    let mut stack = vec![plan.clone()];
    while let Some(node) = stack.pop() {
        let children = node.children();
        if !children.is_empty() {
            stack.extend(children.into_iter().cloned());
            continue;
        }
        let Some(metrics) = node.metrics() else {
            continue;
        };
        let Some(read) = metrics.output_rows() else {
            continue;
        };
        counted = true;
        rows += read as u64;
        if let Some(b) = metrics.sum_by_name("bytes_scanned") {
            *bytes.get_or_insert(0) += b.as_usize() as u64;
        }
        let known = StatisticsContext::default()
            .compute(node.as_ref(), &StatisticsArgs::new())
            .ok()
            .and_then(|s| match s.num_rows {
                Precision::Exact(n) | Precision::Inexact(n) => Some(n as u64),
                Precision::Absent => None,
            });
        total = total.zip(known).map(|(t, k)| t + k);
    }
    if !counted {
        return Snapshot::Unknown;
    }
    Snapshot::Scan {
        rows,
        total: total.filter(|&t| t >= rows && t > 0),
        bytes,
    }
}
