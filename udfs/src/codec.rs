//! How the functions that carry a model travel to another process (a distributed engine's
//! scheduler and executors).
//!
//! DataFusion's protobuf codecs find a function by name on the other side, which gives the
//! unbound function there: the model a bound PREDICT, RECOMMEND or EVALUATE holds would be
//! lost. [`FunctionCodec`] writes such a function as bytes instead: which function, its
//! arguments' count, and the model, inline (parameters as JSON and arrays as Arrow IPC) up
//! to [`FunctionCodec::inline_limit`] bytes, or above it as a reference to a model store the
//! processes share (name, version and a digest that must match). Functions without a model
//! write nothing and travel by name.
//!
//! A codec keeps what it decoded by the digest of the bytes, so the tasks of a query that
//! all carry the same model decode it once per process.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use blake2::{Blake2b, Digest, digest::consts::U16};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::Result;
use datafusion::logical_expr::{AggregateUDF, LogicalPlan, ScalarUDF, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::evaluate::{EvaluateAggregate, Metrics};
use crate::evaluate_kmeans::EvaluateKMeans;
use crate::evaluate_ranking::EvaluateRanking;
use crate::model::{self, Model, ModelResolver, ResolvedModel, Scoring};
use crate::predict::{BoundPredict, bound_predict};
use crate::recommend::{BoundRecommend, bound_recommend};
use crate::row_hash::{RowHash, row_hash};
use crate::sql::{ExplainRow, RecommendExec, RecommendNode};
use crate::train_regression::TrainRegression;

/// The first bytes of every function this codec writes, with its format version.
const MAGIC: &[u8; 8] = b"cohortF1";

/// Models up to this many bytes travel inside the plan: gRPC messages are capped at 16 MiB
/// by default and every task carries its own copy of the plan.
pub const DEFAULT_INLINE_LIMIT: usize = 1 << 20;

/// How many decoded functions a process keeps.
const CACHED: usize = 32;

/// Writes and reads the model-carrying functions; see the module's documentation.
#[derive(Debug, Clone)]
pub struct FunctionCodec {
    /// Where a model sent by reference is loaded from; `None` where no store is shared.
    store: Option<Arc<dyn ModelResolver>>,
    inline_limit: usize,
    /// What this codec decoded lately, by the digest of its bytes; shared by its clones.
    decoded: Arc<Mutex<Vec<(String, Decoded)>>>,
}

impl FunctionCodec {
    /// A codec that loads models sent by reference from `store` (when given), and sends
    /// models larger than [`DEFAULT_INLINE_LIMIT`] by reference.
    pub fn new(store: Option<Arc<dyn ModelResolver>>) -> Self {
        Self {
            store,
            inline_limit: DEFAULT_INLINE_LIMIT,
            decoded: Arc::default(),
        }
    }

    /// The same codec with another limit for models sent inline, in bytes.
    pub fn with_inline_limit(mut self, bytes: usize) -> Self {
        self.inline_limit = bytes;
        self
    }

    /// The largest model, in bytes, that travels inside a plan.
    pub fn inline_limit(&self) -> usize {
        self.inline_limit
    }

    /// Writes `udf` into `buf` when it carries a model; leaves `buf` empty otherwise.
    pub fn encode_udf(&self, udf: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        let inner = udf.inner();
        if let Some(f) = inner.downcast_ref::<BoundPredict>() {
            let function = Function::Score {
                scoring: f.scoring.into(),
                arity: f.arity(),
            };
            self.write(function, Some(&f.model), buf)
        } else if let Some(f) = inner.downcast_ref::<BoundRecommend>() {
            let function = Function::Recommend {
                keep_seen: f.keep_seen,
            };
            self.write(function, Some(&f.model), buf)
        } else if let Some(f) = inner.downcast_ref::<ExplainRow>() {
            let function = Function::Explain {
                arity: f.arity,
                top_k: f.top_k,
            };
            self.write(function, Some(&f.model), buf)
        } else if let Some(f) = inner.downcast_ref::<RowHash>() {
            let function = Function::RowHash {
                seed: f.seed,
                arity: f.arity,
            };
            self.write(function, None, buf)
        } else {
            Ok(())
        }
    }

    /// The function [`FunctionCodec::encode_udf`] wrote.
    pub fn decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match self.decode(name, buf)? {
            Decoded::Scalar(udf) => Ok(udf),
            _ => Err(damaged(name, "it is not a scalar function")),
        }
    }

    /// Writes `udaf` into `buf` when it carries a model, its metrics, or (TRAIN_REGRESSION)
    /// the names of its groups' keys; leaves `buf` empty otherwise.
    pub fn encode_udaf(&self, udaf: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        let inner = udaf.inner();
        if let Some(f) = inner.downcast_ref::<EvaluateAggregate>() {
            self.write(Function::Evaluate { metrics: f.metrics }, None, buf)
        } else if let Some(f) = inner.downcast_ref::<EvaluateKMeans>() {
            self.write(Function::EvaluateKMeans, Some(&f.resolved), buf)
        } else if let Some(f) = inner.downcast_ref::<EvaluateRanking>() {
            self.write(Function::EvaluateRanking, Some(&f.resolved), buf)
        } else if let Some(f) = inner.downcast_ref::<TrainRegression>()
            && !f.group_keys().is_empty()
        {
            let group_keys = f.group_keys().to_vec();
            self.write(Function::TrainRegression { group_keys }, None, buf)
        } else {
            Ok(())
        }
    }

    /// The aggregate [`FunctionCodec::encode_udaf`] wrote.
    pub fn decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        match self.decode(name, buf)? {
            Decoded::Aggregate(udaf) => Ok(udaf),
            _ => Err(damaged(name, "it is not an aggregate function")),
        }
    }

    /// Writes cohort's plan node `node` (RECOMMEND over a table) into `buf`; `Ok(false)`
    /// for other nodes.
    pub fn encode_node(
        &self,
        node: &dyn UserDefinedLogicalNode,
        buf: &mut Vec<u8>,
    ) -> Result<bool> {
        let Some(n) = node.as_any().downcast_ref::<RecommendNode>() else {
            return Ok(false);
        };
        let function = Function::RecommendTable {
            k: n.k,
            keep_seen: n.keep_seen,
        };
        self.write(function, Some(&n.model), buf)?;
        Ok(true)
    }

    /// The node [`FunctionCodec::encode_node`] wrote, over `inputs`; `None` when `buf` is
    /// not one.
    pub fn decode_node(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
    ) -> Result<Option<Arc<dyn UserDefinedLogicalNode>>> {
        if !buf.starts_with(MAGIC) {
            return Ok(None);
        }
        let (k, keep_seen, model, users) = self.recommend_parts(buf, inputs)?;
        Ok(Some(Arc::new(RecommendNode::new(
            users.clone(),
            model,
            k,
            keep_seen,
        )?)))
    }

    /// Writes cohort's operator `plan` (RECOMMEND over a table) into `buf`; `Ok(false)` for
    /// other operators.
    pub fn encode_exec(&self, plan: &dyn ExecutionPlan, buf: &mut Vec<u8>) -> Result<bool> {
        let Some(e) = plan.downcast_ref::<RecommendExec>() else {
            return Ok(false);
        };
        let function = Function::RecommendTable {
            k: e.k,
            keep_seen: e.keep_seen,
        };
        self.write(function, Some(&e.model), buf)?;
        Ok(true)
    }

    /// The operator [`FunctionCodec::encode_exec`] wrote, over `inputs`; `None` when `buf`
    /// is not one.
    pub fn decode_exec(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if !buf.starts_with(MAGIC) {
            return Ok(None);
        }
        let (k, keep_seen, model, users) = self.recommend_parts(buf, inputs)?;
        Ok(Some(Arc::new(RecommendExec::new(
            users.clone(),
            model,
            k,
            keep_seen,
        )?)))
    }

    /// k, keep_seen, the model and the one input of a RECOMMEND node or operator.
    fn recommend_parts<'a, T>(
        &self,
        buf: &[u8],
        inputs: &'a [T],
    ) -> Result<(usize, bool, ResolvedModel, &'a T)> {
        match (self.decode("recommend", buf)?, inputs) {
            (Decoded::Parts(Function::RecommendTable { k, keep_seen }, model), [users]) => {
                Ok((k, keep_seen, model, users))
            }
            _ => Err(damaged("recommend", "it is not a RECOMMEND over one input")),
        }
    }

    fn write(
        &self,
        function: Function,
        model: Option<&ResolvedModel>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let (model, arrays) = match model {
            Some(m) => {
                let (header, arrays) = self.model_header(m)?;
                (Some(header), arrays)
            }
            None => (None, vec![]),
        };
        let header = serde_json::to_vec(&Header { function, model })
            .map_err(|e| Error::Store(format!("a function's model does not encode: {e}")))?;
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&(header.len() as u64).to_le_bytes());
        buf.extend_from_slice(&header);
        for bytes in arrays {
            buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            buf.extend_from_slice(&bytes);
        }
        Ok(())
    }

    /// The model's header, and its arrays as Arrow IPC when it travels inline.
    fn model_header(&self, m: &ResolvedModel) -> Result<(ModelHeader, Vec<Vec<u8>>)> {
        let parameters = model::to_json(m.model.as_ref())?;
        let digest = model_digest(&m.name, m.version, &parameters);
        let mut names = Vec::new();
        let mut arrays = Vec::new();
        let mut size = parameters.to_string().len();
        for (name, batches) in m.model.arrays()? {
            let bytes = ipc_bytes(&batches)?;
            size += bytes.len();
            names.push(name.to_string());
            arrays.push(bytes);
        }
        let inline = size <= self.inline_limit;
        let header = ModelHeader {
            name: m.name.clone(),
            version: m.version,
            digest,
            size,
            parameters: inline.then_some(parameters),
            arrays: if inline { names } else { vec![] },
        };
        Ok((header, if inline { arrays } else { vec![] }))
    }

    fn decode(&self, name: &str, buf: &[u8]) -> Result<Decoded> {
        let key = blake2_hex(buf);
        if let Some(found) = self.cached(&key) {
            return Ok(found);
        }
        let (header, mut rest) = split_header(name, buf)?;
        let model = match &header.model {
            Some(m) => Some(self.model(name, m, &mut rest)?),
            None => None,
        };
        let decoded = match (header.function, model) {
            (Function::Score { scoring, arity }, Some(m)) => {
                Decoded::Scalar(Arc::new(bound_predict(m, arity, scoring.into())))
            }
            (Function::Recommend { keep_seen }, Some(m)) => {
                Decoded::Scalar(Arc::new(bound_recommend(m, keep_seen)))
            }
            (Function::Evaluate { metrics }, None) => Decoded::Aggregate(Arc::new(
                AggregateUDF::new_from_impl(EvaluateAggregate::new(metrics, None)),
            )),
            (Function::EvaluateKMeans, Some(m)) => Decoded::Aggregate(Arc::new(
                AggregateUDF::new_from_impl(EvaluateKMeans::bound(m)?),
            )),
            (Function::EvaluateRanking, Some(m)) => Decoded::Aggregate(Arc::new(
                AggregateUDF::new_from_impl(EvaluateRanking::bound(m)?),
            )),
            (Function::TrainRegression { group_keys }, None) => Decoded::Aggregate(Arc::new(
                AggregateUDF::new_from_impl(TrainRegression::grouped(group_keys)),
            )),
            (f @ Function::RecommendTable { .. }, Some(m)) => Decoded::Parts(f, m),
            (Function::Explain { arity, top_k }, Some(m)) => Decoded::Scalar(Arc::new(
                ScalarUDF::new_from_impl(ExplainRow::new(m, arity, top_k)?),
            )),
            (Function::RowHash { seed, arity }, None) => {
                Decoded::Scalar(Arc::new(row_hash(seed, arity)))
            }
            _ => return Err(damaged(name, "its model is missing or unexpected")),
        };
        self.remember(key, decoded.clone());
        Ok(decoded)
    }

    fn cached(&self, key: &str) -> Option<Decoded> {
        let mut cache = self.decoded.lock().ok()?;
        let at = cache.iter().position(|(k, _)| k == key)?;
        // Most recently used last.
        let entry = cache.remove(at);
        let found = entry.1.clone();
        cache.push(entry);
        Some(found)
    }

    fn remember(&self, key: String, decoded: Decoded) {
        if let Ok(mut cache) = self.decoded.lock() {
            if cache.len() >= CACHED {
                cache.remove(0);
            }
            cache.push((key, decoded));
        }
    }

    /// The model a function's bytes carry or name.
    fn model(&self, function: &str, m: &ModelHeader, rest: &mut &[u8]) -> Result<ResolvedModel> {
        let model: Arc<dyn Model> = match &m.parameters {
            Some(parameters) => {
                let mut arrays = Vec::with_capacity(m.arrays.len());
                for array in &m.arrays {
                    let bytes = take_chunk(function, rest)?;
                    arrays.push((array.as_str(), read_ipc(function, bytes)?));
                }
                let read = |name: &str| {
                    arrays
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, batches)| batches.clone())
                        .ok_or_else(|| damaged(function, &format!("array {name} is missing")))
                };
                model::from_json(parameters.clone(), &read)?
            }
            None => return self.by_reference(m),
        };
        Ok(ResolvedModel {
            name: m.name.clone(),
            version: m.version,
            model,
        })
    }

    /// A model sent by reference, loaded from the shared store and checked against the
    /// digest the sender computed.
    fn by_reference(&self, m: &ModelHeader) -> Result<ResolvedModel> {
        let why = format!(
            "model {} (version {}, {} bytes) is larger than the {} bytes that travel inside a \
             query, so every process loads it from a model store they share",
            m.name, m.version, m.size, self.inline_limit
        );
        let Some(store) = &self.store else {
            return Err(Error::Store(format!(
                "{why}; this process has none: start the scheduler and executors with \
                 --store DIR on a directory the client's store also is"
            ))
            .into());
        };
        let loaded = store.resolve_version(&m.name, m.version).map_err(|e| {
            Error::Store(format!(
                "{why}; this process cannot load it: {}",
                crate::error::describe(&e)
            ))
        })?;
        let digest = model_digest(
            &loaded.name,
            loaded.version,
            &model::to_json(loaded.model.as_ref())?,
        );
        if digest != m.digest {
            return Err(Error::Store(format!(
                "{why}; the store of this process holds a different model under that name \
                 and version: give every process the same --store directory"
            ))
            .into());
        }
        Ok(loaded)
    }
}

/// What the bytes of a function say, besides its model's arrays.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    function: Function,
    model: Option<ModelHeader>,
}

/// Which function, with what it needs besides the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "function", rename_all = "snake_case")]
enum Function {
    Score { scoring: ScoringName, arity: usize },
    Recommend { keep_seen: bool },
    RecommendTable { k: usize, keep_seen: bool },
    Evaluate { metrics: Metrics },
    EvaluateKMeans,
    EvaluateRanking,
    TrainRegression { group_keys: Vec<String> },
    RowHash { seed: u64, arity: usize },
    Explain { arity: usize, top_k: Option<usize> },
}

/// [`Scoring`] as it is written.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScoringName {
    Predict,
    Churn,
    Segment,
    Distance,
    ForecastScale,
}

impl From<Scoring> for ScoringName {
    fn from(s: Scoring) -> Self {
        match s {
            Scoring::Predict => Self::Predict,
            Scoring::Churn => Self::Churn,
            Scoring::Segment => Self::Segment,
            Scoring::Distance => Self::Distance,
            Scoring::ForecastScale => Self::ForecastScale,
        }
    }
}

impl From<ScoringName> for Scoring {
    fn from(s: ScoringName) -> Self {
        match s {
            ScoringName::Predict => Self::Predict,
            ScoringName::Churn => Self::Churn,
            ScoringName::Segment => Self::Segment,
            ScoringName::Distance => Self::Distance,
            ScoringName::ForecastScale => Self::ForecastScale,
        }
    }
}

/// A model as a function carries it: inline with `parameters` and the named arrays that
/// follow the header, or by reference when `parameters` is `None`.
#[derive(Debug, Serialize, Deserialize)]
struct ModelHeader {
    name: String,
    version: u64,
    /// Of the name, version and parameters: what a process that loads the model by
    /// reference checks.
    digest: String,
    /// Bytes of the parameters and arrays.
    size: usize,
    parameters: Option<serde_json::Value>,
    arrays: Vec<String>,
}

#[derive(Debug, Clone)]
enum Decoded {
    Scalar(Arc<ScalarUDF>),
    Aggregate(Arc<AggregateUDF>),
    /// A plan node's or operator's own arguments and model.
    Parts(Function, ResolvedModel),
}

fn blake2_hex(bytes: &[u8]) -> String {
    let digest = Blake2b::<U16>::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn model_digest(name: &str, version: u64, parameters: &serde_json::Value) -> String {
    blake2_hex(format!("{name}\0{version}\0{parameters}").as_bytes())
}

/// `batches` as one Arrow IPC stream; nothing for no batches.
pub fn ipc_bytes(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let Some(first) = batches.first() else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &first.schema())?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    drop(writer);
    Ok(out)
}

fn read_ipc(function: &str, bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    ipc_batches(bytes).map_err(|e| damaged(function, &format!("an array does not read: {e}")))
}

/// The batches [`ipc_bytes`] wrote.
pub fn ipc_batches(bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    if bytes.is_empty() {
        return Ok(vec![]);
    }
    let reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}

/// The header, and the bytes after it.
fn split_header<'a>(function: &str, buf: &'a [u8]) -> Result<(Header, &'a [u8])> {
    let Some(rest) = buf.strip_prefix(MAGIC) else {
        return Err(damaged(
            function,
            "it was not written by this version of cohort; run the same cohort on every \
             process",
        ));
    };
    let mut rest = rest;
    let header = take_chunk(function, &mut rest)?;
    let header = serde_json::from_slice(header)
        .map_err(|e| damaged(function, &format!("its header does not read: {e}")))?;
    Ok((header, rest))
}

/// A length-prefixed chunk off the front of `rest`.
fn take_chunk<'a>(function: &str, rest: &mut &'a [u8]) -> Result<&'a [u8]> {
    let truncated = || damaged(function, "its bytes end early");
    let (len, tail) = rest.split_first_chunk::<8>().ok_or_else(truncated)?;
    let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| truncated())?;
    if tail.len() < len {
        return Err(truncated());
    }
    let (chunk, tail) = tail.split_at(len);
    *rest = tail;
    Ok(chunk)
}

fn damaged(function: &str, why: &str) -> datafusion::error::DataFusionError {
    Error::Store(format!(
        "function {function} arrived from another process damaged: {why}"
    ))
    .into()
}
