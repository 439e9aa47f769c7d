//! `cohort serve` with the arrow-flight Flight SQL client: login, queries, prepared
//! statements with a bound parameter, cohort's own statements, catalog listings, error codes,
//! sessions per client, and a drain on SIGTERM.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables};
use arrow_flight::{FlightInfo, Ticket};
use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use futures::TryStreamExt;
use std::sync::Arc;
use tonic::transport::{Channel, Endpoint};

use cohort::server::{Role, Users};

use crate::common::{cohort_binary, output_with_stdin, root};

const PASSWORD: &str = "correct horse";

/// How the client reports the gRPC codes (by their descriptions).
const UNAUTHENTICATED: &str = "does not have valid authentication credentials";
const NOT_FOUND: &str = "Some requested entity was not found";
const INVALID_ARGUMENT: &str = "Client specified an invalid argument";
const PERMISSION_DENIED: &str =
    "The caller does not have permission to execute the specified operation";
const DEADLINE_EXCEEDED: &str = "Deadline expired before operation could complete";
const RESOURCE_EXHAUSTED: &str = "Some resource has been exhausted";

struct Server {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        Self::start_with(&[])
    }

    /// The server with more `serve` options.
    fn start_with(options: &[&str]) -> Server {
        let login = ["--user", "ana", "--password-env", "COHORT_TEST_PASSWORD"];
        Self::launch(&[&login, options].concat())
    }

    fn launch(options: &[&str]) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = tempfile::tempdir().unwrap();
        let child = cohort_binary()
            .args(["--demo", "--demo-scale", "0.1", "--store"])
            .arg(store.path())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(options)
            .env("COHORT_TEST_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Server {
            child,
            port,
            _store: store,
        }
    }

    async fn client(&self) -> FlightSqlServiceClient<Channel> {
        let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{}", self.port)).unwrap();
        let start = Instant::now();
        loop {
            match endpoint.connect().await {
                Ok(channel) => return FlightSqlServiceClient::new(channel),
                Err(_) if start.elapsed() < Duration::from_secs(30) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("the server did not start: {e}"),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn fetch(client: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket: Ticket = endpoint.ticket.unwrap();
        let stream = client.do_get(ticket).await.unwrap();
        batches.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    batches
}

async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<RecordBatch> {
    let info = client.execute(sql.to_string(), None).await.unwrap();
    fetch(client, info).await
}

async fn error(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> String {
    match client.execute(sql.to_string(), None).await {
        Ok(_) => panic!("{sql} succeeded"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn flight_sql_end_to_end() {
    let server = Server::start();
    let mut client = server.client().await;

    // No token, then a wrong password: both refused.
    let e = error(&mut client, "SELECT 1").await;
    assert!(
        e.contains(UNAUTHENTICATED) && e.contains("log in first"),
        "{e}"
    );
    let e = client
        .handshake("ana", "wrong")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(UNAUTHENTICATED) && e.contains("wrong user or password"),
        "{e}"
    );
    client.handshake("ana", PASSWORD).await.unwrap();

    // A query; strings arrive as Utf8, not Utf8View.
    let batches = query(
        &mut client,
        "SELECT count(*) AS n, min(plan) AS plan FROM customers",
    )
    .await;
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        1000
    );
    assert_eq!(batches[0].schema().field(1).data_type(), &DataType::Utf8);

    // Cohort's own statements, then a prepared PREDICT_CHURN with a bound parameter.
    let created = query(
        &mut client,
        "CREATE MODEL churn OPTIONS (model_type = 'logistic_reg', label = 'churned') AS \
         SELECT churned, tenure_months, monthly_charges FROM customers",
    )
    .await;
    assert_eq!(created[0].column(0).as_string::<i32>().value(0), "churn");
    let mut prepared = client
        .prepare(
            "SELECT customer_id, PREDICT_CHURN('churn', tenure_months, monthly_charges) AS p \
             FROM customers WHERE customer_id = $1"
                .to_string(),
            None,
        )
        .await
        .unwrap();
    let parameters = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![7]))],
    )
    .unwrap();
    prepared.set_parameters(parameters).unwrap();
    let info = prepared.execute().await.unwrap();
    let rows = fetch(&mut client, info).await;
    assert_eq!(rows[0].num_rows(), 1);
    assert_eq!(rows[0].column(0).as_primitive::<Int64Type>().value(0), 7);
    let p = rows[0].column(1).as_primitive::<Float64Type>().value(0);
    assert!(p > 0.0 && p < 1.0, "{p}");
    prepared.close().await.unwrap();

    // Catalog listings: a NULL filter means all.
    let info = client
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: true,
        })
        .await
        .unwrap();
    let tables = fetch(&mut client, info).await;
    let names: Vec<String> = tables
        .iter()
        .flat_map(|b| {
            let names = b.column_by_name("table_name").unwrap().as_string::<i32>();
            (0..names.len())
                .map(|i| names.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for t in ["customers", "orders", "models"] {
        assert!(names.iter().any(|n| n == t), "{names:?}");
    }
    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .unwrap();
    let schemas = fetch(&mut client, info).await;
    let names = schemas[0]
        .column_by_name("db_schema_name")
        .unwrap()
        .as_string::<i32>();
    let names: Vec<&str> = (0..names.len()).map(|i| names.value(i)).collect();
    assert!(
        names.contains(&"public") && names.contains(&"cohort"),
        "{names:?}"
    );
    let info = client.get_catalogs().await.unwrap();
    assert_eq!(fetch(&mut client, info).await[0].num_rows(), 1);
    let info = client.get_sql_info(vec![]).await.unwrap();
    assert!(fetch(&mut client, info).await[0].num_rows() > 5);

    // Error codes, messages intact.
    let e = error(&mut client, "SELECT * FROM nowhere").await;
    assert!(e.contains(NOT_FOUND) && e.contains("nowhere"), "{e}");
    let e = error(&mut client, "SELECT PREDICT('chrn', 1, 2)").await;
    assert!(
        e.contains(NOT_FOUND) && e.contains("did you mean churn"),
        "{e}"
    );
    let e = error(&mut client, "SELEC 1").await;
    assert!(e.contains(INVALID_ARGUMENT), "{e}");

    // CancelFlightInfo stops a query whose result was not fetched; then it is gone.
    let info = client
        .execute("SELECT * FROM orders".to_string(), None)
        .await
        .unwrap();
    let cancel = |info: &FlightInfo| arrow_flight::Action {
        r#type: "CancelFlightInfo".to_string(),
        body: prost::Message::encode_to_vec(&arrow_flight::CancelFlightInfoRequest::new(
            info.clone(),
        ))
        .into(),
    };
    client.do_action(cancel(&info)).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let e = client.do_get(ticket).await.unwrap_err().to_string();
    assert!(e.contains(NOT_FOUND), "{e}");
    let e = client
        .do_action(cancel(&info))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(NOT_FOUND), "{e}");
    // ... and one being sent: the stream ends early.
    let info = client
        .execute(
            "SELECT * FROM orders CROSS JOIN (SELECT * FROM generate_series(1, 50))".to_string(),
            None,
        )
        .await
        .unwrap();
    let mut stream = client
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    assert!(stream.try_next().await.unwrap().is_some());
    client.do_action(cancel(&info)).await.unwrap();
    let mut rest = 0;
    while let Ok(Some(batch)) = stream.try_next().await {
        rest += batch.num_rows();
    }
    assert!(rest < 1_000_000, "{rest} rows after the cancel");

    // A client that sends the user and password with every call, without a handshake.
    let mut preset = server.client().await;
    preset.set_header("authorization", basic("ana", PASSWORD));
    let batches = query(&mut preset, "SELECT count(*) FROM customers").await;
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        1000
    );
    preset.set_header("authorization", basic("ana", "wrong"));
    let e = error(&mut preset, "SELECT 1").await;
    assert!(e.contains(UNAUTHENTICATED), "{e}");

    // Settings belong to the client that made them.
    let mut other = server.client().await;
    other.handshake("ana", PASSWORD).await.unwrap();
    client
        .execute_update(
            "SET datafusion.execution.batch_size = 123".to_string(),
            None,
        )
        .await
        .unwrap();
    let setting = "SELECT value FROM information_schema.df_settings \
                   WHERE name = 'datafusion.execution.batch_size'";
    let mine = query(&mut client, setting).await;
    let theirs = query(&mut other, setting).await;
    assert_eq!(mine[0].column(0).as_string::<i32>().value(0), "123");
    assert_eq!(theirs[0].column(0).as_string::<i32>().value(0), "8192");

    // An analyst's views and tables are its session's own.
    for sql in [
        "CREATE VIEW premium AS SELECT * FROM customers WHERE plan = 'premium'",
        "CREATE TABLE my_plans AS SELECT DISTINCT plan FROM customers",
    ] {
        client.execute_update(sql.to_string(), None).await.unwrap();
    }
    let mine = query(&mut client, "SELECT count(*) FROM premium").await;
    assert!(mine[0].column(0).as_primitive::<Int64Type>().value(0) > 0);
    let e = error(&mut other, "SELECT count(*) FROM premium").await;
    assert!(e.contains(NOT_FOUND) && e.contains("premium"), "{e}");
    let plans = query(&mut client, "SELECT count(*) FROM my_plans").await;
    assert_eq!(plans[0].column(0).as_primitive::<Int64Type>().value(0), 3);
    let e = error(&mut other, "SELECT count(*) FROM my_plans").await;
    assert!(e.contains(NOT_FOUND) && e.contains("my_plans"), "{e}");
    client
        .execute_update("DROP VIEW premium".to_string(), None)
        .await
        .unwrap();
    let e = error(&mut client, "SELECT count(*) FROM premium").await;
    assert!(e.contains(NOT_FOUND), "{e}");

    // SIGTERM while a client is still connected: the server drains and exits 0.
    drop(other);
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopping = Instant::now();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(stopping.elapsed() < Duration::from_secs(15));
    drop(client);
}

/// `authorization` header of a client that sends its user and password with every call.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[tokio::test]
async fn users_file_logins_reloads_and_throttling() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users");
    let mut users = Users::default();
    users.add("ana", Role::Admin, "ana's").unwrap();
    users.add("bob", Role::Reader, "bob's").unwrap();
    users.save(&path).unwrap();
    let server = Server::launch(&["--users", path.to_str().unwrap()]);
    // A client logged in by handshake, or the error.
    let login = async |user: &str, password: &str| {
        let mut client = server.client().await;
        match client.handshake(user, password).await {
            Ok(_) => Ok(client),
            Err(e) => Err(e.to_string()),
        }
    };

    let mut ana = login("ana", "ana's").await.unwrap();
    assert_eq!(query(&mut ana, "SELECT 1").await[0].num_rows(), 1);
    let mut bob = server.client().await;
    bob.set_header("authorization", basic("bob", "bob's"));
    assert_eq!(query(&mut bob, "SELECT 1").await[0].num_rows(), 1);
    let e = login("bob", "ana's").await.unwrap_err();
    assert!(e.contains("wrong user or password"), "{e}");

    // Five failed logins for one name, then that name's attempts wait; others do not.
    for _ in 0..4 {
        assert!(login("carl", "guess").await.is_err());
    }
    assert!(login("carl", "guess").await.is_err());
    let mut carl = server.client().await;
    carl.set_header("authorization", basic("carl", "guess"));
    let start = Instant::now();
    assert!(carl.execute("SELECT 1".to_string(), None).await.is_err());
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    login("ana", "ana's").await.unwrap();

    // Users removed from the file cannot log in any more; sessions already open go on.
    users.remove("bob").unwrap();
    users.save(&path).unwrap();
    let e = error(&mut bob, "SELECT 1").await;
    assert!(e.contains("wrong user or password"), "{e}");
    let e = login("bob", "bob's").await.unwrap_err();
    assert!(e.contains("wrong user or password"), "{e}");
    assert_eq!(query(&mut ana, "SELECT 1").await[0].num_rows(), 1);

    // A broken file keeps the users read before; SIGHUP re-reads it and serving goes on.
    std::fs::write(&path, "ana chief\n").unwrap();
    login("ana", "ana's").await.unwrap();
    users.set_password("ana", "new").unwrap();
    users.save(&path).unwrap();
    let pid = server.child.id().to_string();
    let hup = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(hup.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(login("ana", "ana's").await.is_err());
    let mut ana = login("ana", "new").await.unwrap();
    assert_eq!(query(&mut ana, "SELECT 1").await[0].num_rows(), 1);
}

#[tokio::test]
async fn server_files_stay_confined() {
    let folder = tempfile::tempdir().unwrap();
    let allowed = folder.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::write(allowed.join("data.csv"), "a\n1\n").unwrap();
    let server = Server::start_with(&["--allow-files", allowed.to_str().unwrap()]);
    let mut client = server.client().await;
    client.handshake("ana", PASSWORD).await.unwrap();
    let outside = folder.path().join("outside.csv");
    let escape = allowed.join("../escape.csv");
    let inside = allowed.join("copy.csv");
    let allowed = allowed.display();
    // Every client is an analyst for now: the server's files are the admins'.
    for (sql, says) in [
        (
            "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'".to_string(),
            "reading '/etc/passwd' is refused: role analyst may not use the server's files",
        ),
        (
            "SELECT * FROM '/etc/passwd'".to_string(),
            "reading '/etc/passwd' is refused",
        ),
        (
            format!("SELECT * FROM '{allowed}/data.csv'"),
            "only for admins",
        ),
        (
            format!("COPY (SELECT 1 AS a) TO '{}'", outside.display()),
            "writing",
        ),
        (
            format!("COPY (SELECT 1 AS a) TO '{}'", escape.display()),
            "--allow-files",
        ),
        (
            format!("COPY customers TO '{}'", inside.display()),
            "role analyst may not use the server's files",
        ),
        (
            "SET datafusion.runtime.memory_limit = '1T'".to_string(),
            "role analyst may not change datafusion.runtime.memory_limit",
        ),
    ] {
        let e = error(&mut client, &sql).await;
        assert!(
            e.contains(PERMISSION_DENIED) && e.contains(says),
            "{sql}: {e}"
        );
        let e = client
            .execute_update(sql.clone(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(PERMISSION_DENIED), "{sql}: {e}");
        let e = client
            .prepare(sql.clone(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(PERMISSION_DENIED), "{sql}: {e}");
    }
    for target in [outside, escape, inside] {
        assert!(!target.exists(), "{} was created", target.display());
    }
    // Dropping a shared table needs an admin.
    let e = error(&mut client, "DROP TABLE customers").await;
    assert!(
        e.contains(PERMISSION_DENIED) && e.contains("role analyst may not drop customers"),
        "{e}"
    );
    let rows = query(&mut client, "SELECT count(*) FROM customers").await;
    assert_eq!(rows[0].column(0).as_primitive::<Int64Type>().value(0), 1000);
}

#[test]
fn serve_refuses_a_missing_allowed_folder() {
    let store = tempfile::tempdir().unwrap();
    let missing = store.path().join("missing");
    let output = cohort_binary()
        .arg("--store")
        .arg(store.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-files"])
        .arg(&missing)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("--allow-files {}", missing.display())),
        "{stderr}"
    );
}

/// A Python with the client libraries BI tools and notebooks use (from pip): the ADBC Flight
/// SQL driver with pyarrow, and the SQLAlchemy Flight SQL dialect Superset can use. A virtual
/// environment in the target directory, made on first use and kept; tests running at the
/// same time wait for the one that makes it.
fn client_python() -> std::path::PathBuf {
    static PYTHON: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(make_client_python).clone()
}

fn make_client_python() -> std::path::PathBuf {
    const PACKAGES: [&str; 5] = [
        "adbc-driver-flightsql",
        "pyarrow",
        "flightsql-dbapi",
        "sqlalchemy",
        "pandas",
    ];
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("client-venv");
    let python = venv.join("bin").join("python");
    let ready = || {
        Command::new(&python)
            .args([
                "-c",
                "import adbc_driver_flightsql, pyarrow, flightsql, sqlalchemy, pandas",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 is needed for the Python client tests");
        assert!(made.success(), "python3 -m venv failed");
        let installed = Command::new(&python)
            .args(["-m", "pip", "install", "-q"])
            .args(PACKAGES)
            .status()
            .unwrap();
        assert!(installed.success(), "pip install {PACKAGES:?} failed");
    }
    python
}

/// Runs `tests/python/SCRIPT` against a fresh server and checks it printed `ok_line`.
async fn python_client(script: &str, address: impl FnOnce(u16) -> String, ok_line: &str) {
    let server = Server::start();
    let address = address(server.port);
    run_python(&server, script, &[&address, "ana", PASSWORD], ok_line).await;
}

/// Runs `tests/python/SCRIPT ARGS` against `server` and checks it printed `ok_line`.
async fn run_python(server: &Server, script: &str, args: &[&str], ok_line: &str) {
    // Wait until it answers.
    drop(server.client().await);
    let script = root().join("tests/python").join(script);
    // The server is another process: blocking here holds nothing up.
    let out = Command::new(client_python())
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(ok_line));
}

#[tokio::test]
async fn python_adbc_driver() {
    python_client(
        "adbc_client.py",
        |port| format!("grpc://127.0.0.1:{port}"),
        "adbc ok",
    )
    .await;
}

/// RECOMMEND, SIMILAR_ITEMS and FORECAST with outsized k and horizon through the ADBC
/// driver (tests/python/adbc_sizes.py): each answers within the memory limit or fails with
/// a message naming the argument, and the server keeps serving.
#[tokio::test]
async fn outsized_table_function_arguments_through_adbc() {
    let server = Server::start_with(&["--session-memory-limit", "200M"]);
    let uri = format!("grpc://127.0.0.1:{}", server.port);
    run_python(
        &server,
        "adbc_sizes.py",
        &[&uri, "ana", PASSWORD],
        "sizes ok",
    )
    .await;
}

#[tokio::test]
async fn python_sqlalchemy_dialect_as_superset_uses_it() {
    python_client(
        "sqlalchemy_client.py",
        |port| port.to_string(),
        "sqlalchemy ok",
    )
    .await;
}

/// The error a query's rows end with.
async fn fetch_error(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> String {
    let info = client.execute(sql.to_string(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let rows = async { client.do_get(ticket).await?.try_collect::<Vec<_>>().await };
    match rows.await {
        Ok(_) => panic!("{sql} succeeded"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_session_limits_and_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let server = Server::start_with(&[
        "--statement-timeout",
        "1s",
        "--session-memory-limit",
        "32M",
        "--max-sessions",
        "2",
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    let mut client = server.client().await;
    assert!(client.handshake("ana", "guess").await.is_err());
    client.handshake("ana", PASSWORD).await.unwrap();

    // A runaway query is stopped at the timeout, and the server goes on serving.
    let start = Instant::now();
    let runaway = "SELECT v % 1000 AS k, count(*) FROM generate_series(1, 1000000000000) t(v) \
                   GROUP BY k";
    let e = fetch_error(&mut client, runaway).await;
    assert!(
        e.contains(DEADLINE_EXCEEDED) && e.contains("statement timeout"),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let batches = query(&mut client, "SELECT count(*) FROM customers").await;
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        1000
    );

    // A query past the session's memory is refused with its own code.
    let e = fetch_error(
        &mut client,
        "SELECT array_agg(v) FROM generate_series(1, 20000000) t(v)",
    )
    .await;
    assert!(
        e.contains(RESOURCE_EXHAUSTED) && e.contains("session's memory limit of 32.0 MB"),
        "{e}"
    );

    // An expression nested past any sensible depth is refused, and serving goes on.
    let deep = format!("SELECT {} AS s", vec!["1"; 100_000].join("+"));
    let e = error(&mut client, &deep).await;
    assert!(
        e.contains(INVALID_ARGUMENT) && e.contains("nests expressions more than 1000 deep"),
        "{e}"
    );
    let batches = query(&mut client, "SELECT count(*) FROM customers").await;
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        1000
    );

    // Two sessions at most: a third login is turned away until one goes.
    let mut second = server.client().await;
    second.handshake("ana", PASSWORD).await.unwrap();
    let mut third = server.client().await;
    let e = third
        .handshake("ana", PASSWORD)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(RESOURCE_EXHAUSTED) && e.contains("--max-sessions"),
        "{e}"
    );

    // One audit line per login attempt and per statement: who, from where, what, how it
    // ended, rows, seconds; never a password.
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(
        !text.contains(PASSWORD) && !text.contains("guess"),
        "{text}"
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logins: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "login")
        .map(|l| (l["user"].as_str().unwrap(), l["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        logins,
        [
            ("ana", "failed"),
            ("ana", "ok"),
            ("ana", "ok"),
            ("ana", "ok")
        ]
    );
    let statements: Vec<_> = lines.iter().filter(|l| l["event"] == "statement").collect();
    let outcomes: Vec<_> = statements
        .iter()
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["timeout", "ok", "error", "error", "ok"],
        "{lines:?}"
    );
    let ok = statements[1];
    assert_eq!(ok["user"], "ana");
    assert_eq!(ok["statement"], "SELECT count(*) FROM customers");
    assert_eq!(ok["rows"], 1);
    assert!(ok["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(statements[0]["code"], "DeadlineExceeded");
    assert!(statements[0]["seconds"].as_f64().unwrap() >= 1.0);
    assert_eq!(statements[2]["code"], "ResourceExhausted");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&audit).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// A CREATE MODEL stopped by the statement timeout stops its training too: the server's CPU
/// time stays still afterwards, no model is saved, and the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg(target_os = "linux")]
async fn timed_out_training_stops() {
    let server = Server::start_with(&["--statement-timeout", "2s"]);
    let mut client = server.client().await;
    client.handshake("ana", PASSWORD).await.unwrap();
    // Reading the rows takes well under the timeout; fitting 100 runs of 50 clusters to
    // uniform noise takes minutes.
    let e = error(
        &mut client,
        "CREATE MODEL slow OPTIONS (model_type = 'kmeans', num_clusters = 50, n_init = 100, \
         max_iterations = 10000) AS SELECT random() AS a, random() AS b, random() AS c, \
         random() AS d FROM generate_series(1, 300000)",
    )
    .await;
    assert!(e.contains(DEADLINE_EXCEEDED), "{e}");
    // The fit sees the interrupt at its next pass.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = cpu_seconds(server.child.id());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = cpu_seconds(server.child.id()) - before;
    assert!(used < 0.5, "training went on: {used} s of CPU in 3 s");
    let batches = query(
        &mut client,
        "SELECT count(*) FROM cohort.models WHERE model = 'slow'",
    )
    .await;
    assert_eq!(batches[0].column(0).as_primitive::<Int64Type>().value(0), 0);
}

/// User and system CPU seconds a process has used, all its threads together.
#[cfg(target_os = "linux")]
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // The kernel reports in USER_HZ, 100 on Linux.
    ticks as f64 / 100.0
}

/// What a client with a valid login can try, through the real ADBC driver
/// (tests/python/adbc_attack.py): server files outside and inside the allowed folder, `..`
/// and link escapes, each role's allowed and refused statements, the statement timeout and
/// login throttling; then the audit log, the users file and the model store as they are left
/// on disk.
#[tokio::test]
async fn attacks_through_adbc() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let (allowed, outside) = (base.join("allowed"), base.join("outside"));
    std::fs::create_dir(&allowed).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(allowed.join("data.csv"), "amount\n10\n20\n").unwrap();
    std::fs::write(outside.join("secret.csv"), "secret\n42\n").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.csv"), allowed.join("link.csv")).unwrap();
    std::os::unix::fs::symlink(&outside, allowed.join("linkdir")).unwrap();

    // The users, made as an administrator would: `cohort users`, the password on stdin.
    let users = base.join("users");
    for (user, password) in [
        ("reader", "reader pass 1"),
        ("analyst", "analyst pass 2"),
        ("admin", "admin pass 3"),
    ] {
        let mut add = cohort_binary();
        add.args(["users", "--file"])
            .arg(&users)
            .args(["add", user, "--role", user]);
        let o = output_with_stdin(&mut add, &format!("{password}\n"));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let audit = base.join("audit.jsonl");
    let server = Server::launch(&[
        "--users",
        users.to_str().unwrap(),
        "--allow-files",
        allowed.to_str().unwrap(),
        "--statement-timeout",
        "2s",
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    let uri = format!("grpc://127.0.0.1:{}", server.port);
    let base_arg = base.to_str().unwrap();
    run_python(
        &server,
        "adbc_attack.py",
        &[&uri, base_arg],
        "attacks refused",
    )
    .await;

    // The audit log: every login attempt and statement, refusals with their code, and no
    // password anywhere.
    let text = std::fs::read_to_string(&audit).unwrap();
    for secret in ["pass 1", "pass 2", "pass 3", "guess"] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Logins, or statements (which ADBC prepares before it runs them).
    let count = |login: bool, user: &str, outcome: &str| {
        lines
            .iter()
            .filter(|l| (l["event"] == "login") == login)
            .filter(|l| l["user"] == user && l["outcome"] == outcome)
            .count()
    };
    assert_eq!(count(true, "reader", "failed"), 8, "{text}");
    assert_eq!(count(false, "admin", "refused"), 12, "{text}");
    assert_eq!(count(false, "reader", "timeout"), 1, "{text}");
    let passwd = lines
        .iter()
        .find(|l| l["statement"] == "SELECT * FROM '/etc/passwd'" && l["user"] == "analyst")
        .unwrap();
    assert_eq!(passwd["code"], "PermissionDenied");
    assert!(passwd["peer"].as_str().unwrap().starts_with("127.0.0.1:"));

    // Owner-only on disk: the users file, the audit log, the model store.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&users), 0o600);
    assert_eq!(mode(&audit), 0o600);
    let mut stack = vec![server._store.path().join("churn")];
    assert!(stack[0].is_dir());
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            assert_eq!(mode(&path), 0o700, "{}", path.display());
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

/// Latency percentile of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_and_a_dropped_stream() {
    const CLIENTS: usize = 32;
    const QUERIES: usize = 200;
    let server = Server::start();
    drop(server.client().await);

    // A client that walks away in the middle of a large result.
    let mut quitter = server.client().await;
    quitter.handshake("ana", PASSWORD).await.unwrap();
    let info = quitter
        .execute(
            "SELECT * FROM orders CROSS JOIN (SELECT * FROM generate_series(1, 50))".to_string(),
            None,
        )
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = quitter.do_get(ticket).await.unwrap();
    assert!(stream.try_next().await.unwrap().is_some());
    drop(stream);
    drop(quitter);

    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = server.client().await;
        tasks.push(tokio::spawn(async move {
            client.handshake("ana", PASSWORD).await.unwrap();
            let mut latencies = Vec::with_capacity(QUERIES);
            for q in 0..QUERIES {
                let sql = format!(
                    "SELECT plan, count(*) AS n FROM customers WHERE customer_id % {} = {} \
                     GROUP BY plan",
                    CLIENTS + 1,
                    (c + q) % (CLIENTS + 1)
                );
                let start = Instant::now();
                let batches = query(&mut client, &sql).await;
                latencies.push(start.elapsed());
                assert!(batches.iter().map(|b| b.num_rows()).sum::<usize>() <= 3);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    latencies.sort();
    assert_eq!(latencies.len(), CLIENTS * QUERIES);
    println!(
        "{CLIENTS} clients x {QUERIES} queries: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    // Still serving after all that.
    let mut client = server.client().await;
    client.handshake("ana", PASSWORD).await.unwrap();
    let batches = query(&mut client, "SELECT count(*) FROM customers").await;
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        1000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_placeholders_neither_stall_nor_block_other_clients() {
    const PLACEHOLDERS: usize = 30_000;
    let server = Server::start();
    let mut preparer = server.client().await;
    preparer.handshake("ana", PASSWORD).await.unwrap();
    let mut other = server.client().await;
    other.handshake("ana", PASSWORD).await.unwrap();

    let list = (1..=PLACEHOLDERS)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let in_list = format!("SELECT count(*) FROM customers WHERE customer_id IN ({list})");
    let preparing = tokio::spawn(async move {
        let started = Instant::now();
        let mut rounds = 0;
        while rounds < 3 || started.elapsed() < Duration::from_secs(3) {
            let prepared = preparer.prepare(in_list.clone(), None).await.unwrap();
            assert_eq!(
                prepared.parameter_schema().unwrap().fields().len(),
                PLACEHOLDERS
            );
            rounds += 1;
        }
        (preparer, started.elapsed() / rounds)
    });
    // Another client's statements are answered while the preparing goes on.
    let mut slowest = Duration::ZERO;
    while !preparing.is_finished() {
        let started = Instant::now();
        let batches = query(&mut other, "SELECT 1").await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(batches[0].num_rows(), 1);
    }
    let (mut preparer, each) = preparing.await.unwrap();
    println!("preparing {PLACEHOLDERS} placeholders: {each:?}; slowest SELECT 1: {slowest:?}");
    assert!(each < Duration::from_secs(10), "{each:?}");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");

    // A SELECT list that would take long to plan is refused at once.
    let started = Instant::now();
    let e = match preparer.prepare(format!("SELECT {list}"), None).await {
        Ok(_) => panic!("a SELECT list of {PLACEHOLDERS} items was prepared"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains(INVALID_ARGUMENT), "{e}");
    assert!(
        e.contains("a SELECT list of the statement has 30000 items, more than the 4096"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn tls_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (cert, key, ca) = (path("cert.pem"), path("key.pem"), path("ca.pem"));
    std::fs::write(path("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    // A test CA, and a certificate for localhost that it signs.
    let openssl = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .stderr(Stdio::null())
            .status()
            .expect("openssl makes the test certificates")
            .success();
        assert!(ok, "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        &path("ca.key"),
        "-out",
        &ca,
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &key,
        "-out",
        &path("cert.csr"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path("cert.csr"),
        "-CA",
        &ca,
        "-CAkey",
        &path("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &path("san.ext"),
        "-out",
        &cert,
    ]);
    let server = Server::start_with(&["--tls-cert", &cert, "--tls-key", &key]);
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(&ca).unwrap(),
        ))
        .domain_name("localhost");
    let endpoint = Endpoint::from_shared(format!("https://127.0.0.1:{}", server.port))
        .unwrap()
        .tls_config(tls)
        .unwrap();
    let start = Instant::now();
    let channel = loop {
        match endpoint.connect().await {
            Ok(channel) => break channel,
            Err(_) if start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no TLS connection: {e:?}"),
        }
    };
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake("ana", PASSWORD).await.unwrap();
    let batches = query(&mut client, "SELECT count(*) FROM customers").await;
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        1000
    );

    // A plain-text client gets nowhere.
    let mut plain = server.client().await;
    assert!(plain.handshake("ana", PASSWORD).await.is_err());
}
