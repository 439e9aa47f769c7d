//! Scale out on Ballista: the codecs that carry models between processes (no cluster), and a
//! real cluster of a scheduler and two executors, processes of the built binary on
//! 127.0.0.1, against which the example scripts run as they do locally.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cohort::cluster::codec::codecs;
use cohort::cluster::role_session;
use cohort::store::ModelStore;
use cohort_udfs::codec::FunctionCodec;
use cohort_udfs::error::describe;
use cohort_udfs::row_hash::row_hash;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::common::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::collect;
use datafusion::prelude::{SessionConfig, SessionContext, col};
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};

use tempfile::TempDir;

use crate::common::engines::demo_engine;
use crate::common::{cohort_binary, root};

/// The models the scripts train, on a small demo dataset.
const MODELS: &[&str] = &[
    "CREATE MODEL spend OPTIONS (model_type = 'linear_reg', label = 'monthly_charges') AS \
     SELECT monthly_charges, tenure_months, support_calls, plan FROM customers",
    "CREATE MODEL churn OPTIONS (model_type = 'logistic_reg', label = 'churned') AS \
     SELECT churned, tenure_months, monthly_charges, support_calls, plan FROM customers",
    "CREATE MODEL seg OPTIONS (model_type = 'kmeans', num_clusters = 3) AS \
     SELECT tenure_months, monthly_charges FROM customers",
    "CREATE MODEL recs OPTIONS (model_type = 'matrix_factorization', feedback_type = \
     'implicit', num_factors = 4) AS SELECT customer_id, product_id, count(*) AS n \
     FROM orders GROUP BY customer_id, product_id",
];

/// Every function that carries a model, in scalar and table forms.
const QUERIES: &[&str] = &[
    "SELECT customer_id, predict('spend', tenure_months, support_calls, plan) AS p \
     FROM customers",
    "SELECT customer_id, predict_churn('churn', tenure_months, monthly_charges, \
     support_calls, plan) AS p FROM customers",
    "SELECT customer_id, segment('seg', tenure_months, monthly_charges) AS s FROM customers",
    "SELECT customer_id, recommend('recs', customer_id, 3) AS r FROM customers \
     WHERE customer_id < 50",
    "SELECT * FROM predict('churn', (SELECT * FROM customers))",
    "SELECT * FROM segment('seg', (SELECT * FROM customers))",
    "SELECT * FROM evaluate('spend', (SELECT * FROM customers))",
    "SELECT * FROM evaluate('churn', (SELECT * FROM customers))",
    "SELECT * FROM explain_predict('churn', (SELECT * FROM customers WHERE customer_id < 50), \
     top_k => 2)",
    "SELECT * FROM evaluate('seg', (SELECT * FROM customers))",
    "SELECT * FROM evaluate('recs', (SELECT customer_id, product_id FROM orders))",
    "SELECT * FROM lift('churn', (SELECT * FROM customers), 10)",
    "SELECT * FROM recommend('recs', (SELECT customer_id FROM customers \
     WHERE customer_id < 30), 3)",
    "SELECT count(*) AS n, sum(rank) AS ranks FROM recommend('recs', 2)",
    "SELECT region, train_regression(monthly_charges, tenure_months, support_calls) AS m \
     FROM customers GROUP BY region",
];

/// Rows as text, sorted: partitions may order them differently.
fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let text = pretty_format_batches(batches).unwrap().to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// A session of another process: cohort's functions, no model store, no tables.
fn other_process() -> SessionContext {
    role_session(SessionConfig::new(), &None).unwrap()
}

/// Encodes `sql`'s optimized plan with `send`, decodes it in a session without models,
/// plans and encodes it again as the scheduler does, decodes it as an executor, and runs
/// it there.
async fn across_processes(
    ctx: &SessionContext,
    sql: &str,
    send: FunctionCodec,
    receive: FunctionCodec,
) -> Result<Vec<RecordBatch>> {
    let plan = ctx.sql(sql).await?.into_optimized_plan()?;
    plan_across_processes(&plan, send, receive).await
}

/// [`across_processes`] for a plan built here.
async fn plan_across_processes(
    plan: &LogicalPlan,
    send: FunctionCodec,
    receive: FunctionCodec,
) -> Result<Vec<RecordBatch>> {
    let (logical, _) = codecs(send);
    let bytes = logical_plan_to_bytes_with_extension_codec(plan, logical.as_ref())?;
    let (logical, physical) = codecs(receive);
    let scheduler = other_process();
    let decoded = logical_plan_from_bytes_with_extension_codec(
        &bytes,
        &scheduler.task_ctx(),
        logical.as_ref(),
    )?;
    let physical_plan = scheduler.state().create_physical_plan(&decoded).await?;
    let bytes = physical_plan_to_bytes_with_extension_codec(physical_plan, physical.as_ref())?;
    let executor = other_process();
    let task = executor.task_ctx();
    let decoded = physical_plan_from_bytes_with_extension_codec(&bytes, &task, physical.as_ref())?;
    collect(decoded, task).await
}

#[tokio::test]
async fn model_functions_travel_with_their_models() {
    let (engine, _store) = demo_engine(0.05).unwrap();
    for sql in MODELS {
        engine.execute(sql).await.unwrap();
    }
    for sql in QUERIES {
        let here = engine.execute(sql).await.unwrap();
        let there = across_processes(
            engine.context(),
            sql,
            FunctionCodec::new(None),
            FunctionCodec::new(None),
        )
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)));
        assert_eq!(rows(&here.batches), rows(&there), "{sql}");
        assert!(here.num_rows() > 0, "{sql}");
    }
}

/// The row hash CREATE MODEL draws evaluation rows and folds by gives the same numbers on
/// an executor as here.
#[tokio::test]
async fn the_row_hash_travels() {
    let (engine, _store) = demo_engine(0.05).unwrap();
    let frame = engine.context().table("customers").await.unwrap();
    let hash = Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(row_hash(7, 2)),
        vec![col("customer_id"), col("plan")],
    ));
    let plan = frame
        .select(vec![col("customer_id"), hash.alias("h")])
        .unwrap()
        .into_optimized_plan()
        .unwrap();
    let here = engine
        .context()
        .execute_logical_plan(plan.clone())
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let there = plan_across_processes(&plan, FunctionCodec::new(None), FunctionCodec::new(None))
        .await
        .unwrap_or_else(|e| panic!("{}", describe(&e)));
    assert_eq!(rows(&here), rows(&there));
}

#[tokio::test]
async fn large_models_travel_by_reference_to_a_shared_store() {
    let (engine, store_dir) = demo_engine(0.05).unwrap();
    for sql in MODELS {
        engine.execute(sql).await.unwrap();
    }
    let sql = "SELECT customer_id, recommend('recs', customer_id, 3) AS r FROM customers \
               WHERE customer_id < 20";
    let here = engine.execute(sql).await.unwrap();
    let by_reference = || FunctionCodec::new(None).with_inline_limit(0);
    let shared = ModelStore::open(store_dir.path()).unwrap();

    let there = across_processes(
        engine.context(),
        sql,
        by_reference(),
        FunctionCodec::new(Some(Arc::new(shared))),
    )
    .await
    .unwrap();
    assert_eq!(rows(&here.batches), rows(&there));

    // No store where the model is loaded: the error says what to give.
    let e = across_processes(
        engine.context(),
        sql,
        by_reference(),
        FunctionCodec::new(None),
    )
    .await
    .unwrap_err();
    let message = describe(&e);
    assert!(
        message.contains("model recs (version 1")
            && message.contains("start the scheduler and executors with --store DIR"),
        "{message}"
    );

    // Another store with another model of the same name and version: refused, not used.
    let (other, other_dir) = demo_engine(0.05).unwrap();
    other
        .execute(
            "CREATE MODEL recs OPTIONS (model_type = 'matrix_factorization', feedback_type = \
             'implicit', num_factors = 2) AS SELECT customer_id, product_id, 1 AS n FROM orders",
        )
        .await
        .unwrap();
    let elsewhere = ModelStore::open(other_dir.path()).unwrap();
    let e = across_processes(
        engine.context(),
        sql,
        by_reference(),
        FunctionCodec::new(Some(Arc::new(elsewhere))),
    )
    .await
    .unwrap_err();
    let message = describe(&e);
    assert!(message.contains("holds a different model"), "{message}");
}

#[tokio::test]
async fn tables_only_the_client_holds_travel_inline_up_to_a_limit() {
    let (engine, _store) = demo_engine(0.05).unwrap();
    let sql = "SELECT plan, count(*) AS n FROM customers GROUP BY plan";
    let here = engine.execute(sql).await.unwrap();
    let there = across_processes(
        engine.context(),
        sql,
        FunctionCodec::new(None),
        FunctionCodec::new(None),
    )
    .await
    .unwrap();
    assert_eq!(rows(&here.batches), rows(&there));

    // The full demo orders are more than a query carries.
    let (big, _store) = demo_engine(1.0).unwrap();
    let e = across_processes(
        big.context(),
        "SELECT count(*) FROM orders",
        FunctionCodec::new(None),
        FunctionCodec::new(None),
    )
    .await
    .unwrap_err();
    let message = describe(&e);
    assert!(
        message.contains("table orders is held in this process's memory")
            && message.contains("COPY orders TO"),
        "{message}"
    );
}

/// A scheduler and executors: processes of the built binary on 127.0.0.1, each stopped by
/// PID when the cluster is dropped.
struct Cluster {
    scheduler: Child,
    executors: Vec<Child>,
    port: u16,
    dir: TempDir,
}

impl Cluster {
    /// A scheduler and `executors` executors, once all have registered. Executors run in
    /// `cwd`, where the scripts' COPY TO writes.
    fn start(executors: usize, cwd: &Path) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let port = free_ports(1);
        let scheduler = cohort_binary()
            .args(["scheduler", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--executor-timeout", "4s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut cluster = Cluster {
            scheduler,
            executors: vec![],
            port,
            dir,
        };
        cluster.wait_for(|ready| ready.is_some());
        for i in 0..executors {
            let flight = free_ports(2);
            let work = cluster.dir.path().join(format!("executor{i}"));
            std::fs::create_dir_all(&work).unwrap();
            let child = cohort_binary()
                .current_dir(cwd)
                .args(["executor", "--scheduler", &format!("127.0.0.1:{port}")])
                .args(["--listen", &format!("127.0.0.1:{flight}")])
                .args(["--work-dir", work.to_str().unwrap()])
                .args(["--memory-limit", "1G", "--cores", "2", "--heartbeat", "1s"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            cluster.executors.push(child);
        }
        cluster.wait_for(|ready| ready == Some(executors));
        cluster
    }

    fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.port)
    }

    /// Polls the scheduler's readiness until `done` holds for the number of registered
    /// executors it reports (`None` before it answers).
    fn wait_for(&self, done: impl Fn(Option<usize>) -> bool) {
        let start = Instant::now();
        loop {
            let registered = ready_executors(self.port);
            if done(registered) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the cluster did not come up: {registered:?} executors"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.executors.iter_mut().chain([&mut self.scheduler]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The executors the scheduler at `port` reports registered, from its `/readyz`.
fn ready_executors(port: u16) -> Option<usize> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let body = answer.split_once("\r\n\r\n")?.1;
    // "ready: 2 executors registered" or "not ready: 0/1 executors registered".
    let count = body.split(": ").nth(1)?.split([' ', '/']).next()?;
    count.parse().ok()
}

/// `n` consecutive free ports on 127.0.0.1, the first returned.
fn free_ports(n: u16) -> u16 {
    loop {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        let rest: Vec<_> = (1..n)
            .map_while(|i| TcpListener::bind(("127.0.0.1", port.checked_add(i)?)).ok())
            .collect();
        if rest.len() + 1 == n as usize {
            return port;
        }
    }
}

/// The demo tables written as Parquet files in `dir`, for every process to read.
fn demo_parquet(dir: &Path) -> Vec<PathBuf> {
    let tables = [
        "customers",
        "orders",
        "products",
        "interactions",
        "daily_revenue",
    ];
    let mut command = cohort_binary();
    command.args(["--demo", "--demo-scale", "0.2", "-q"]);
    for table in tables {
        let path = dir.join(format!("{table}.parquet"));
        command.args([
            "-c",
            &format!("COPY {table} TO '{}' STORED AS PARQUET", path.display()),
        ]);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tables
        .iter()
        .map(|t| dir.join(format!("{t}.parquet")))
        .collect()
}

/// Runs `script` with the demo Parquet files in `cwd` and the `extra` arguments, on the
/// cluster when `ballista`.
fn run_script(
    script: &Path,
    files: &[PathBuf],
    cwd: &Path,
    ballista: Option<&str>,
    extra: &[&str],
) -> String {
    let mut command = cohort_binary();
    command
        .current_dir(cwd)
        .env_remove("COHORT_BALLISTA")
        .args(["--store", cwd.join("models").to_str().unwrap(), "-q"])
        .args(extra)
        .args(files)
        .args(["-f", script.to_str().unwrap()]);
    if let Some(url) = ballista {
        command.args(["--ballista", url]);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{} {}: {}",
        script.display(),
        if ballista.is_some() {
            "on the cluster"
        } else {
            "locally"
        },
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn example_scripts_give_the_same_results_on_a_cluster() {
    let data = tempfile::tempdir().unwrap();
    let files = demo_parquet(data.path());
    let (local, remote) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cluster = Cluster::start(2, remote.path());
    let queries = root().join("queries");
    for script in [
        "tour.sql",
        "churn.sql",
        "segments.sql",
        "recommend.sql",
        "forecast.sql",
    ] {
        let script = queries.join(script);
        let here = run_script(&script, &files, local.path(), None, &[]);
        let there = run_script(&script, &files, remote.path(), Some(&cluster.url()), &[]);
        let (here, there) = (untimed(&here), untimed(&there));
        // Only the where of training differs: a note in the warnings, which also widens the
        // tables.
        assert!(
            !script.ends_with("churn.sql") || there.contains("trained on the cluster: "),
            "{there}"
        );
        let (here, there) = (unbordered(&here), unbordered(&there));
        // k-means starts from rows in the order they arrive, which differs on a cluster
        // until its passes run there: segments.sql is compared up to its first model.
        let compared = |out: &str| match out.find("\n|model|") {
            Some(at) if script.ends_with("segments.sql") => out[..at].to_string(),
            _ => out.to_string(),
        };
        assert_eq!(compared(&here), compared(&there), "{}", script.display());
    }
    // COPY TO ran on the executors, into the client's directory (quoting every field, as
    // Ballista's CSV writer does). The model behind it was fitted on rows summed in another
    // order, so a probability rounded to 4 digits may move a customer across the 1,000th
    // place.
    let read = |dir: &Path| {
        std::fs::read_to_string(dir.join("riskiest_customers.csv"))
            .unwrap()
            .replace('"', "")
    };
    let (here, there) = (read(local.path()), read(remote.path()));
    let (here, there) = (sorted_lines(&here), sorted_lines(&there));
    assert_eq!(here.len(), there.len());
    let same = here
        .iter()
        .filter(|l| there.binary_search(l).is_ok())
        .count();
    assert!(
        same * 100 >= here.len() * 99,
        "{same} of {} rows agree",
        here.len()
    );
}

/// `output` without what CREATE MODEL measures of itself: the cells of the tables'
/// `training_seconds` columns are blanked.
fn untimed(output: &str) -> String {
    let mut timed: Option<usize> = None;
    let mut lines = Vec::new();
    for line in output.lines() {
        if !line.starts_with(['|', '+']) {
            timed = None;
        }
        let mut cells: Vec<&str> = line.split('|').collect();
        if line.starts_with('|') && timed.is_none() {
            timed = cells.iter().position(|c| c.trim() == "training_seconds");
        } else if let Some(at) = timed.filter(|&at| at < cells.len()) {
            cells[at] = "";
        }
        lines.push(cells.join("|"));
    }
    lines.join("\n")
}

/// `warning` without the notes that say where the model trained (on the cluster, or here
/// reading the rows again for every pass).
fn trained_where(warning: &str) -> String {
    const READ_AGAIN: &str = "the training rows did not fit the memory pool, so every pass \
                              read them again; raise --memory-limit (SET \
                              datafusion.runtime.memory_limit) to train in one read";
    warning
        .replace(READ_AGAIN, "")
        .split("; ")
        .filter(|w| {
            !w.is_empty()
                && !w.starts_with("trained on the cluster: ")
                && !w.starts_with("trained here")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Table output as trimmed cells without borders, and without [`trained_where`]'s notes.
fn unbordered(output: &str) -> String {
    output
        .lines()
        .filter(|l| !l.starts_with('+'))
        .map(|l| {
            l.split('|')
                .map(|c| trained_where(c.trim()))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn a_cluster_without_executors_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(0, dir.path());
    let out = cohort_binary()
        .args(["--store", dir.path().join("models").to_str().unwrap()])
        .args(["--ballista", &cluster.url(), "-c", "SELECT 1 + 1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("has no executor to run the query")
            && stderr.contains("start one with `cohort executor --scheduler 127.0.0.1:"),
        "{stderr}"
    );
    drop(cluster);

    let port = free_ports(1);
    let out = cohort_binary()
        .args(["--store", dir.path().join("models").to_str().unwrap()])
        .args([
            "--ballista",
            &format!("df://127.0.0.1:{port}"),
            "-c",
            "SELECT 1 + 1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot reach the cluster's scheduler at 127.0.0.1"),
        "{stderr}"
    );
}

#[test]
fn a_query_survives_or_fails_cleanly_when_an_executor_dies() {
    let dir = tempfile::tempdir().unwrap();
    // Two stages over many rows, so that tasks of both executors are in flight.
    let data = dir.path().join("big.parquet");
    let out = cohort_binary()
        .args([
            "--store",
            dir.path().join("models").to_str().unwrap(),
            "-q",
            "-c",
        ])
        .arg(format!(
            "COPY (SELECT value AS v, value % 100003 AS k FROM generate_series(1, 5000000)) \
             TO '{}' STORED AS PARQUET",
            data.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cluster = Cluster::start(2, dir.path());
    let sql = format!(
        "SELECT count(*) AS groups, sum(n) AS rows FROM (SELECT k, count(*) AS n FROM '{}' \
         GROUP BY k)",
        data.display()
    );
    // The query runs again and again with no pause (`\watch 0`), so once its first result is
    // out the next run is under way, however fast this machine: the executor dies mid-query.
    let mut query = cohort_binary()
        .args(["--store", dir.path().join("models").to_str().unwrap()])
        .args(["--ballista", &cluster.url(), "--format", "csv", "-q"])
        .args(["-c", &sql, "-c", "\\watch 0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let results = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let results = results.clone();
        let stdout = query.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                if line != "groups,rows" {
                    results.lock().unwrap().push(line);
                }
            }
        })
    };
    let count = || results.lock().unwrap().len();
    let start = Instant::now();
    while count() == 0 {
        assert!(
            query.try_wait().unwrap().is_none(),
            "the query failed before an executor died: {}",
            child_stderr(&mut query)
        );
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no result in 300 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = count();
    std::thread::sleep(Duration::from_millis(100));
    let killed = Instant::now();
    let victim = &mut cluster.executors[0];
    victim.kill().unwrap();
    victim.wait().unwrap();
    // The run in flight, then one more on the executor left, or a clean failure.
    let ended = loop {
        if let Some(status) = query.try_wait().unwrap() {
            break Some(status);
        }
        if count() >= before + 2 {
            let _ = query.kill();
            let _ = query.wait();
            break None;
        }
        if killed.elapsed() > Duration::from_secs(180) {
            let _ = query.kill();
            panic!("the query still ran 180 s after an executor died");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    reader.join().unwrap();
    let stderr = child_stderr(&mut query);
    let results = results.lock().unwrap().clone();
    eprintln!(
        "after the executor died: {:.1} s, {} result(s) before, {} after, exit {:?}: {stderr}",
        killed.elapsed().as_secs_f64(),
        before,
        results.len() - before,
        ended.map(|s| s.code())
    );
    assert!(
        results.iter().all(|r| r == "100003,5000000"),
        "{results:?} {stderr}"
    );
    if let Some(status) = ended {
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            !stderr.trim().is_empty() && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
}

/// What a finished child wrote to its piped standard error.
fn child_stderr(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    text
}

/// Rows of NDJSON output equal key by key, numbers within `tolerance` relative; the seconds
/// of training and the notes of where it trained apart.
fn assert_same(
    here: &[serde_json::Value],
    there: &[serde_json::Value],
    tolerance: f64,
    what: &str,
) {
    assert_eq!(here.len(), there.len(), "{what}");
    for (a, b) in here.iter().zip(there) {
        let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (key, x) in a {
            let y = &b[key];
            match (key.as_str(), x.as_f64(), y.as_f64()) {
                ("training_seconds", ..) => {}
                ("warnings", ..) => assert_eq!(
                    trained_where(x.as_str().unwrap()),
                    trained_where(y.as_str().unwrap())
                ),
                (_, Some(x), Some(y)) => assert!(
                    (x - y).abs() <= tolerance * x.abs().max(1e-3),
                    "{what}: {key} {x} here, {y} on the cluster"
                ),
                _ => assert_eq!(x, y, "{what}: {key}"),
            }
        }
    }
}

/// Runs `sql` with the demo Parquet files as NDJSON, on the cluster when `ballista`: one
/// JSON object per row.
fn ndjson(
    sql: &str,
    files: &[PathBuf],
    cwd: &Path,
    ballista: Option<&str>,
) -> Vec<serde_json::Value> {
    let script = cwd.join("script.sql");
    std::fs::write(&script, sql).unwrap();
    run_script(&script, files, cwd, ballista, &["--format", "ndjson"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn models_train_on_the_cluster_as_they_do_here() {
    let data = tempfile::tempdir().unwrap();
    let files = demo_parquet(data.path());
    let (local, remote) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cluster = Cluster::start(2, remote.path());
    // Each model with the relative tolerance of its coefficients: exact sums for linear
    // regression, Newton's method to its own tolerance for logistic.
    for (model, rows, tolerance) in [
        (
            "CREATE OR REPLACE MODEL m OPTIONS (model_type = 'linear_reg', label = 'monthly_charges') AS \
             SELECT monthly_charges, tenure_months, support_calls, age, plan, region \
             FROM customers WHERE customer_id % 7 <> 0;",
            "customers",
            1e-9,
        ),
        (
            "CREATE OR REPLACE MODEL m OPTIONS (model_type = 'logistic_reg', label = 'churned') AS \
             SELECT churned, tenure_months, monthly_charges, support_calls, plan, channel \
             FROM customers;",
            "customers",
            1e-6,
        ),
        (
            "CREATE OR REPLACE MODEL m OPTIONS (model_type = 'logistic_reg', label = 'plan', \
             positive_class = 'premium', class_weight = 'balanced', l2_reg = 0.5) AS \
             SELECT plan, tenure_months, monthly_charges, region FROM customers \
             WHERE plan IN ('basic', 'premium');",
            "customers WHERE plan IN ('basic', 'premium')",
            1e-6,
        ),
        // Rows that do not fit the client's memory pool are clustered in passes there too,
        // from the same sample's start.
        (
            "SET datafusion.runtime.memory_limit = '64K';\n\
             CREATE OR REPLACE MODEL m OPTIONS (model_type = 'kmeans', num_clusters = 4) AS \
             SELECT tenure_months, monthly_charges, support_calls, plan FROM customers;\n\
             SET datafusion.runtime.memory_limit = '1G';",
            "customers",
            1e-9,
        ),
    ] {
        let scored = if model.contains("kmeans") {
            format!(
                "SELECT segment('m', tenure_months, monthly_charges, support_calls, plan) AS s, \
                 count(*) AS n FROM {rows} GROUP BY 1 ORDER BY 1;"
            )
        } else {
            "SELECT * FROM explain_model('m') ORDER BY 1;".to_string()
        };
        let sql =
            format!("{model}\n{scored}\nSELECT * FROM evaluate('m', (SELECT * FROM {rows}));");
        let here = ndjson(&sql, &files, local.path(), None);
        let there = ndjson(&sql, &files, remote.path(), Some(&cluster.url()));
        assert_eq!(here.len(), there.len(), "{model}");
        let note = there[0]["warnings"].as_str().unwrap();
        assert!(
            note.contains("trained on the cluster: ") && note.contains("passes ran as aggregates"),
            "{note}"
        );
        assert_same(&here, &there, tolerance, model);
    }
    // Files queried by path: their names' dots must not read back as schema and table.
    let path = files[0].display();
    let sql = format!(
        "SELECT plan, count(*) AS n, sum(tenure_months) AS t FROM '{path}' WHERE age > 30 \
         GROUP BY plan ORDER BY plan;\n\
         CREATE OR REPLACE MODEL p OPTIONS (model_type = 'linear_reg', label = \
         'monthly_charges') AS SELECT monthly_charges, tenure_months, plan FROM '{path}';\n\
         SELECT * FROM explain_model('p') ORDER BY 1;"
    );
    let here = ndjson(&sql, &files, local.path(), None);
    let there = ndjson(&sql, &files, remote.path(), Some(&cluster.url()));
    assert_eq!(here.len(), 3 + 1 + 4, "{here:?}");
    assert_same(&here, &there, 1e-9, "by path");
    // One model per group: TRAIN_REGRESSION is an aggregate, merged across partitions.
    let sql = "SELECT region, predict(train_regression(monthly_charges, tenure_months, \
               support_calls), 24, 2) AS at_24_months FROM customers GROUP BY region \
               ORDER BY region;";
    let here = ndjson(sql, &files, local.path(), None);
    let there = ndjson(sql, &files, remote.path(), Some(&cluster.url()));
    assert_eq!(here.len(), 5);
    for (a, b) in here.iter().zip(&there) {
        assert_eq!(a["region"], b["region"]);
        let (x, y) = (
            a["at_24_months"].as_f64().unwrap(),
            b["at_24_months"].as_f64().unwrap(),
        );
        assert!(
            (x - y).abs() <= 1e-9 * x.abs(),
            "{x} here, {y} on the cluster"
        );
    }
}
