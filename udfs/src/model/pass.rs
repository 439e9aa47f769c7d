//! One pass of a fit over the training rows, as a mergeable aggregate.
//!
//! A fit that reads its rows again and again (the encoding, the moments of linear
//! regression, each Newton step of logistic regression) states each pass as a [`Pass`]: a
//! state per batch that merges exactly. On one machine [`run`] folds the batches of the
//! source in parallel; on a cluster the same pass runs as the aggregate `training_pass`
//! on the executors (see [`crate::training_pass`]) and only the merged state comes back to
//! the client. Either way the state of every batch comes from the same code.

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::{DataFusionError, Result};
use rayon::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::sync::Arc;

use super::kmeans::passes::{LloydPass, SamplePass};
use super::linear::MomentsPass;
use super::logistic::{CountPass, StepPass, SummaryPass};
use super::training::{EncodingPass, Source};

/// A pass over the training rows whose state merges exactly.
pub trait Pass: Serialize + DeserializeOwned + Debug + Send + Sync + 'static {
    /// Names the pass where it travels to the executors.
    const NAME: &'static str;
    type State: Serialize + DeserializeOwned + Send;

    /// The state of no rows.
    fn zero(&self) -> Self::State;

    /// Adds the rows of `batch`, whose columns are the training query's.
    fn add(&self, state: &mut Self::State, batch: &RecordBatch) -> Result<()>;

    /// Adds the rows `other` was made of.
    fn merge(&self, state: &mut Self::State, other: Self::State);
}

/// A source whose rows stay where they are (on a cluster's executors): each pass runs there
/// as an aggregate of the training query.
pub trait Remote: Sync {
    /// The merged state, as JSON, of the pass that `envelope` (an [`Envelope`] as JSON)
    /// describes, over every row of the training query.
    fn aggregate(&self, envelope: String) -> Result<String>;
}

/// What travels to the executors: which pass, its parameters, and the names of the
/// training query's columns, which the aggregate receives in order.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub pass: String,
    pub columns: Vec<String>,
    pub spec: serde_json::Value,
}

/// The pass over every row of `source`: on the cluster when the source is remote, else over
/// its groups of batches, each group split into one run of batches per thread (so the
/// order of the merges, and with it the result, does not depend on scheduling).
pub fn run<P: Pass>(source: &dyn Source, pass: &P) -> Result<P::State> {
    if let Some(remote) = source.remote() {
        let envelope = Envelope {
            pass: P::NAME.to_string(),
            columns: source
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
            spec: serde_json::to_value(pass).map_err(json_error)?,
        };
        let envelope = serde_json::to_string(&envelope).map_err(json_error)?;
        return serde_json::from_str(&remote.aggregate(envelope)?).map_err(json_error);
    }
    let mut total = pass.zero();
    source.scan(&mut |group| {
        let per_thread = group.len().div_ceil(rayon::current_num_threads()).max(1);
        let parts = group
            .par_chunks(per_thread)
            .map(|batches| {
                let mut state = pass.zero();
                for batch in batches {
                    pass.add(&mut state, batch)?;
                }
                Ok(state)
            })
            .collect::<Result<Vec<_>>>()?;
        for part in parts {
            pass.merge(&mut total, part);
        }
        Ok(())
    })?;
    Ok(total)
}

/// A pass that arrived as an [`Envelope`], with its state so far: the aggregate's
/// accumulator, whatever the pass.
pub trait Running: Send + Sync + Debug {
    /// Adds rows given as the training query's columns, in order.
    fn update(&mut self, columns: &[ArrayRef]) -> Result<()>;
    /// Adds a state another partition made ([`Running::state`]).
    fn merge(&mut self, state: &str) -> Result<()>;
    /// The state as JSON.
    fn state(&self) -> Result<String>;
}

/// The pass in `envelope` (JSON), with the state of no rows; an error for a pass this
/// build does not know.
pub fn running(envelope: &str) -> Result<Box<dyn Running>> {
    let envelope: Envelope = serde_json::from_str(envelope).map_err(json_error)?;
    // Every pass a fit may send to a cluster; a new one is one line here.
    match envelope.pass.as_str() {
        EncodingPass::NAME => Started::<EncodingPass>::boxed(envelope),
        MomentsPass::NAME => Started::<MomentsPass>::boxed(envelope),
        CountPass::NAME => Started::<CountPass>::boxed(envelope),
        StepPass::NAME => Started::<StepPass>::boxed(envelope),
        SummaryPass::NAME => Started::<SummaryPass>::boxed(envelope),
        SamplePass::NAME => Started::<SamplePass>::boxed(envelope),
        LloydPass::NAME => Started::<LloydPass>::boxed(envelope),
        other => Err(DataFusionError::Plan(format!(
            "training pass {other} is not one this build of cohort knows; run the same \
             version of cohort on the client and the executors"
        ))),
    }
}

#[derive(Debug)]
struct Started<P: Pass> {
    pass: P,
    schema: Vec<String>,
    state: P::State,
}

impl<P: Pass> Started<P>
where
    P::State: Debug + Sync,
{
    fn boxed(envelope: Envelope) -> Result<Box<dyn Running>> {
        let pass: P = serde_json::from_value(envelope.spec).map_err(json_error)?;
        let state = pass.zero();
        Ok(Box::new(Self {
            pass,
            schema: envelope.columns,
            state,
        }))
    }
}

impl<P: Pass> Running for Started<P>
where
    P::State: Debug + Sync,
{
    fn update(&mut self, columns: &[ArrayRef]) -> Result<()> {
        if columns.len() != self.schema.len() {
            return Err(DataFusionError::Internal(format!(
                "training pass {} got {} columns for {}",
                P::NAME,
                columns.len(),
                self.schema.len()
            )));
        }
        let schema = Schema::new(
            self.schema
                .iter()
                .zip(columns)
                .map(|(name, c)| Field::new(name, c.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        let batch = RecordBatch::try_new(Arc::new(schema), columns.to_vec())?;
        self.pass.add(&mut self.state, &batch)
    }

    fn merge(&mut self, state: &str) -> Result<()> {
        let other = serde_json::from_str(state).map_err(json_error)?;
        self.pass.merge(&mut self.state, other);
        Ok(())
    }

    fn state(&self) -> Result<String> {
        serde_json::to_string(&self.state).map_err(json_error)
    }
}

fn json_error(e: serde_json::Error) -> DataFusionError {
    DataFusionError::Internal(format!("a training pass's state does not convert: {e}"))
}
