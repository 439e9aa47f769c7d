//! Scale out on Apache Ballista: the same binary runs the scheduler and the executors with
//! cohort's functions and codecs, and a client session (shell, scripts, `cohort serve`)
//! that plans locally and executes on the cluster.
//!
//! Every role registers the same functions; the functions that carry a model travel with it
//! ([`cohort_udfs::codec::FunctionCodec`]), and tables held in the client's memory travel
//! inside the query ([`tables`]). Models larger than the inline limit are loaded by
//! reference from a model store every process shares (`--store`).

pub mod codec;
mod planner;
pub mod tables;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use cohort_udfs::codec::FunctionCodec;
use cohort_udfs::model::ModelResolver;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::store::ModelStore;
pub use planner::Scheduler;

/// The scheduler's default port (Ballista's).
pub const SCHEDULER_PORT: u16 = 50050;

/// An executor's default Flight port; its gRPC port is the next one. Apart from `cohort
/// serve`'s 50051.
pub const EXECUTOR_PORT: u16 = 50060;

/// What a scheduler or executor loads models sent by reference from.
fn function_codec(store: Option<ModelStore>) -> FunctionCodec {
    FunctionCodec::new(store.map(|s| Arc::new(s) as Arc<dyn ModelResolver>))
}

/// A session of a cluster role (scheduler, executor): Ballista's, with cohort's functions;
/// models sent by reference load from `store`.
pub fn role_session(config: SessionConfig, store: &Option<ModelStore>) -> Result<SessionContext> {
    let ctx = SessionContext::new_with_state(default_session_builder(config)?);
    cohort_udfs::register_all(&ctx, resolver(store))?;
    Ok(ctx)
}

/// Models by name for a cluster role: the client resolves names while it plans, so a role
/// only needs them for the unbound forms a plan should never carry.
fn resolver(store: &Option<ModelStore>) -> Arc<dyn ModelResolver> {
    match store {
        Some(store) => Arc::new(store.clone()),
        None => Arc::new(NoStore),
    }
}

#[derive(Debug)]
struct NoStore;

impl ModelResolver for NoStore {
    fn resolve(&self, name: &str) -> Result<cohort_udfs::ResolvedModel> {
        Err(DataFusionError::Plan(format!(
            "model {name} is looked up on the client, not on the cluster; this process has \
             no --store"
        )))
    }
}

/// Options of `cohort scheduler`.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub listen: SocketAddr,
    /// The models sent by reference; needed when models larger than the inline limit are
    /// scored.
    pub store: Option<ModelStore>,
    /// How long an executor may miss heartbeats before its tasks run elsewhere.
    pub executor_timeout: Duration,
}

/// Runs a Ballista scheduler with cohort's functions until the process is stopped.
pub async fn run_scheduler(options: SchedulerOptions) -> Result<()> {
    let (logical, physical) = codec::codecs(function_codec(options.store.clone()));
    let store = options.store.clone();
    let timeout = options.executor_timeout.as_secs().max(2);
    let mut config = SchedulerConfig::default()
        .with_hostname(options.listen.ip().to_string())
        .with_port(options.listen.port())
        .with_override_session_builder(Arc::new(move |config: SessionConfig| {
            Ok(role_session(config, &store)?.state())
        }))
        .with_no_executors_grace_period_seconds(timeout);
    config.bind_host = options.listen.ip().to_string();
    config.executor_timeout_seconds = timeout;
    config.expire_dead_executor_interval_seconds = (timeout / 4).max(1);
    config.override_logical_codec = Some(logical);
    config.override_physical_codec = Some(physical);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista_error)?;
    eprintln!(
        "cohort scheduler listening on {} (clients: --ballista df://{})",
        options.listen, options.listen
    );
    start_server(cluster, options.listen, Arc::new(config))
        .await
        .map_err(ballista_error)
}

/// Options of `cohort executor`.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler: (String, u16),
    /// Flight (results and shuffle data); the executor's gRPC service listens on the next
    /// port.
    pub listen: SocketAddr,
    pub work_dir: Option<PathBuf>,
    pub store: Option<ModelStore>,
    /// Memory all of the executor's tasks may hold together; none: 70% of the host's.
    pub memory_limit: Option<usize>,
    /// Tasks at once.
    pub cores: usize,
    pub heartbeat: Duration,
}

/// Runs a Ballista executor with cohort's functions until the process is stopped.
pub async fn run_executor(options: ExecutorOptions) -> Result<()> {
    let (logical, physical) = codec::codecs(function_codec(options.store.clone()));
    let session = role_session(SessionConfig::new_with_ballista(), &options.store)?;
    let registry = BallistaFunctionRegistry::from(&session.state());
    let grpc_port = options.listen.port().checked_add(1).ok_or_else(|| {
        DataFusionError::Configuration(
            "the executor's port must leave room for its gRPC port (the next one)".to_string(),
        )
    })?;
    let host = options.listen.ip().to_string();
    let config = ExecutorProcessConfig {
        bind_host: host.clone(),
        external_host: Some(host),
        port: options.listen.port(),
        grpc_port,
        scheduler_host: options.scheduler.0.clone(),
        scheduler_port: options.scheduler.1,
        scheduler_connect_timeout_seconds: 30,
        vcores: options.cores,
        work_dir: options
            .work_dir
            .as_ref()
            .map(|d| d.to_string_lossy().into_owned()),
        memory_pool_size: options.memory_limit.map(|m| m as u64),
        executor_heartbeat_interval_seconds: options.heartbeat.as_secs().max(1),
        override_function_registry: Some(Arc::new(registry)),
        override_logical_codec: Some(logical),
        override_physical_codec: Some(physical),
        ..Default::default()
    };
    eprintln!(
        "cohort executor on {} (gRPC {grpc_port}), scheduler {}:{}",
        options.listen, options.scheduler.0, options.scheduler.1
    );
    start_executor_process(Arc::new(config))
        .await
        .map_err(ballista_error)
}

/// `ctx` made a client of the cluster whose scheduler `url` names (`df://HOST:PORT`):
/// queries are planned here and run on the cluster.
pub fn connect(ctx: SessionContext, url: &str, store: &ModelStore) -> Result<SessionContext> {
    let scheduler = Scheduler::parse(url)?;
    let (logical, physical) = codec::codecs(FunctionCodec::new(Some(Arc::new(store.clone()))));
    let state = ctx.state();
    let config = state
        .config()
        .clone()
        .with_ballista_logical_extension_codec(logical.clone())
        .with_ballista_physical_extension_codec(physical)
        .with_ballista_query_planner(Arc::new(planner::ClusterPlanner::new(
            scheduler.clone(),
            logical,
        )));
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build()
        .upgrade_for_ballista(scheduler.http())?;
    let ctx = SessionContext::new_with_state(state);
    // The upgrade replaced the session's functions with Ballista's; its planner stays.
    cohort_udfs::register_functions(&ctx, Arc::new(store.clone()))?;
    Ok(ctx)
}

fn ballista_error(e: ballista_core::error::BallistaError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
