//! The client's query planner. A plan that reads only what the client holds (tables in its
//! memory, the rows FORECAST, SIMILAR_ITEMS or EXPLAIN_MODEL make from a model, the
//! catalog) runs on the client, where its data is; every other plan goes to the cluster,
//! after checking that the cluster can run it, so that a scheduler without executors is an
//! error rather than a query that waits for ever.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ballista_core::config::BallistaConfig;
use ballista_core::planner::{BallistaQueryPlanner, scans_only_information_schema};
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DataFusionError, Result, TableReference};
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::source_as_provider;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::{Expr, LogicalPlan, TableScanBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::protobuf::LogicalPlanNode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the scheduler may take to say whether it has executors.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The address of a cluster's scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    pub host: String,
    pub port: u16,
}

impl Scheduler {
    /// `df://HOST[:PORT]` (or `HOST[:PORT]`); the port defaults to the scheduler's.
    pub fn parse(url: &str) -> Result<Self> {
        let address = url
            .strip_prefix("df://")
            .unwrap_or(url)
            .trim_end_matches('/');
        let bad = || {
            DataFusionError::Configuration(format!(
                "--ballista expects df://HOST:PORT (the scheduler's address), got '{url}'"
            ))
        };
        if address.is_empty() || address.contains(['/', '@', '?', '#', ' ']) {
            return Err(bad());
        }
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') => {
                (host, port.parse::<u16>().map_err(|_| bad())?)
            }
            _ => (address, super::SCHEDULER_PORT),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }

    /// The URL Ballista's client takes.
    pub fn http(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }

    /// Asks the scheduler whether it has an executor: an error saying what is missing when
    /// it cannot be reached or has none.
    pub async fn check_ready(&self) -> Result<()> {
        let answer = tokio::time::timeout(READY_TIMEOUT, self.readyz()).await;
        let unreachable = |why: String| {
            DataFusionError::Execution(format!(
                "cannot reach the cluster's scheduler at {}:{} ({why}); start it with \
                 `cohort scheduler --listen {}:{}` or give --ballista the right address",
                self.host, self.port, self.host, self.port
            ))
        };
        let (status, body) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable(format!("no answer in {READY_TIMEOUT:?}"))),
        };
        match status {
            200 => Ok(()),
            503 => Err(DataFusionError::Execution(format!(
                "the cluster's scheduler at {}:{} has no executor to run the query ({}); \
                 start one with `cohort executor --scheduler {}:{}`",
                self.host,
                self.port,
                body.trim(),
                self.host,
                self.port
            ))),
            other => Err(unreachable(format!("it answered HTTP {other}"))),
        }
    }

    /// The status and body of the scheduler's `/readyz`.
    async fn readyz(&self) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect((self.host.as_str(), self.port)).await?;
        let request = format!(
            "GET /readyz HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n",
            self.host, self.port
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        // A status line and a short body; more is not a scheduler.
        stream.take(64 * 1024).read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response);
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| text.strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other("it does not answer as a Ballista scheduler"))?;
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
            .to_string();
        Ok((status, body))
    }
}

/// `plan` with a relative `COPY ... TO` path made absolute here: the user means the client's
/// directory, and the scheduler would otherwise resolve it in its own.
fn with_absolute_output(plan: &LogicalPlan) -> Result<LogicalPlan> {
    match plan {
        LogicalPlan::Copy(copy)
            if !copy.output_url.contains("://") && Path::new(&copy.output_url).is_relative() =>
        {
            let mut copy = copy.clone();
            let absolute = std::path::absolute(&copy.output_url)?;
            // A trailing slash asks for a directory of files: keep it.
            let slash = if copy.output_url.ends_with('/') {
                "/"
            } else {
                ""
            };
            copy.output_url = format!("{}{slash}", absolute.display());
            Ok(LogicalPlan::Copy(copy))
        }
        other => Ok(other.clone()),
    }
}

/// `plan` with every table it scans under a name that survives the plan's encoding: a
/// file scanned by its path (`FROM 'sales.parquet'`) is named by the path, whose dots would
/// read back on the scheduler as schema and table in the qualifiers of its columns.
fn with_plain_scan_names(plan: LogicalPlan) -> Result<LogicalPlan> {
    let mut renamed: HashMap<TableReference, TableReference> = HashMap::new();
    let requalify = |e: Expr, renamed: &HashMap<TableReference, TableReference>| {
        e.transform(|e| match e {
            Expr::Column(Column {
                relation: Some(r),
                name,
                spans,
            }) if renamed.contains_key(&r) => Ok(Transformed::yes(Expr::Column(Column {
                relation: renamed.get(&r).cloned(),
                name,
                spans,
            }))),
            e => Ok(Transformed::no(e)),
        })
    };
    plan.transform_up_with_subqueries(|node| {
        let node = match node {
            LogicalPlan::TableScan(scan)
                if TableReference::from(scan.table_name.to_string()) != scan.table_name =>
            {
                let plain = TableReference::bare(format!("scan_{}", renamed.len() + 1));
                renamed.insert(scan.table_name.clone(), plain.clone());
                let filters = scan
                    .filters
                    .into_iter()
                    .map(|f| requalify(f, &renamed).map(|t| t.data))
                    .collect::<Result<Vec<_>>>()?;
                let scan = TableScanBuilder::new(plain, scan.source)
                    .with_projection(scan.projection)
                    .with_filters(filters)
                    .with_fetch(scan.fetch)
                    .with_statistics_requests(scan.statistics_requests)
                    .build()?;
                return Ok(Transformed::yes(LogicalPlan::TableScan(scan)));
            }
            node => node,
        };
        if renamed.is_empty() {
            return Ok(Transformed::no(node));
        }
        let node = node
            .map_expressions(|e| requalify(e, &renamed))?
            .data
            .recompute_schema()?;
        Ok(Transformed::yes(node))
    })
    .map(|t| t.data)
}

/// Whether `plan` scans tables and none of them is files the executors could read.
fn reads_only_the_client(plan: &LogicalPlan) -> Result<bool> {
    let (mut scans, mut files) = (0, 0);
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            scans += 1;
            let is_files = source_as_provider(&scan.source)
                .map_or(true, |p| p.downcast_ref::<ListingTable>().is_some());
            files += usize::from(is_files);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(scans > 0 && files == 0)
}

/// Ballista's planner, after [`Scheduler::check_ready`] for the plans that go to the
/// cluster.
#[derive(Debug)]
pub struct ClusterPlanner {
    scheduler: Scheduler,
    ballista: BallistaQueryPlanner<LogicalPlanNode>,
}

impl ClusterPlanner {
    pub fn new(scheduler: Scheduler, codec: Arc<dyn LogicalExtensionCodec>) -> Self {
        let ballista = BallistaQueryPlanner::with_extension(
            scheduler.http(),
            BallistaConfig::default(),
            codec,
        );
        Self {
            scheduler,
            ballista,
        }
    }
}

#[async_trait]
impl QueryPlanner for ClusterPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if reads_only_the_client(plan)? || scans_only_information_schema(plan)? {
            return DefaultPhysicalPlanner::with_extension_planners(
                cohort_udfs::extension_planners(),
            )
            .create_physical_plan(plan, state)
            .await;
        }
        if !matches!(plan, LogicalPlan::EmptyRelation(_)) {
            self.scheduler.check_ready().await?;
        }
        let plan = with_plain_scan_names(with_absolute_output(plan)?)?;
        self.ballista.create_physical_plan(&plan, state).await
    }
}
