//! What the integration tests share: engines, the test and reference files, query results
//! as plain vectors, and the `cohort` binary.

pub mod engines;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cohort::Engine;
use cohort::engine::files::register_files;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use tempfile::TempDir;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/data/NAME`.
pub fn data(name: &str) -> PathBuf {
    root().join("tests/data").join(name)
}

/// The lines of a CSV file (`path` from the repository root) split at commas, header first:
/// the test and reference files quote nothing.
pub fn csv(path: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(root().join(path))
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// The rows of `tests/reference/NAME` below its header.
pub fn reference(name: &str) -> Vec<Vec<String>> {
    let mut rows = csv(&format!("tests/reference/{name}"));
    rows.remove(0);
    rows
}

/// Asserts that `actual` is within relative `tol` of `expected`.
pub fn assert_rel(actual: f64, expected: f64, tol: f64, what: &str) {
    let rel = (actual - expected).abs() / expected.abs();
    assert!(
        rel <= tol,
        "{what}: {actual} vs {expected} (relative {rel:e})"
    );
}

/// An engine over a fresh store with `tests/data/FILE` registered.
pub async fn engine_with(file: &str) -> (Engine, TempDir) {
    let (engine, store) = engines::engine().unwrap();
    register_files(engine.context(), &[data(file)])
        .await
        .unwrap();
    (engine, store)
}

/// Runs `sql`; its result as one batch.
pub async fn query(engine: &Engine, sql: &str) -> RecordBatch {
    let result = engine.execute(sql).await.unwrap();
    let schema = result.batches[0].schema();
    concat_batches(&schema, &result.batches).unwrap()
}

/// The values of a Float64 column.
pub fn floats(column: &dyn Array) -> Vec<f64> {
    column.as_primitive::<Float64Type>().values().to_vec()
}

/// The values of an Int64 column.
pub fn ints(column: &dyn Array) -> Vec<i64> {
    column.as_primitive::<Int64Type>().values().to_vec()
}

/// The `cohort` binary this package builds.
pub fn cohort_binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cohort"))
}

/// Runs `command` with `input` on its standard input and collects what it wrote.
pub fn output_with_stdin(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// Two 24-byte Arrow IPC files in `dir` that declare 2 GB, each with how cohort refuses it:
/// `footer.arrow` (file format) declares a footer of 2 GB, `message.arrow` (stream format)
/// a first message of 2 GB of metadata.
pub fn oversized_arrow_files(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let huge = 0x7fff_ffffu32.to_le_bytes();
    let mut file = b"ARROW1\0\0".to_vec();
    file.extend([0xff; 4]);
    file.extend([0; 2]);
    file.extend(huge);
    file.extend(b"ARROW1");
    let mut stream = vec![0xff; 4];
    stream.extend(huge);
    stream.extend([0; 16]);
    [
        (
            "footer.arrow",
            file,
            "its footer declares 2147483647 bytes but the file holds 24",
        ),
        (
            "message.arrow",
            stream,
            "a message at byte 4 declares 2147483647 bytes of metadata but the file holds 24",
        ),
    ]
    .into_iter()
    .map(|(name, bytes, why)| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        (path, why)
    })
    .collect()
}

/// Splits `file` into `<stem>_train.csv` (its first `rows` rows) and `<stem>_test.csv` (the
/// rest) in `dir` and registers both.
pub async fn register_split(engine: &Engine, dir: &Path, file: &str, rows: usize) {
    let text = std::fs::read_to_string(data(file)).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let body: Vec<&str> = lines.collect();
    let stem = file.trim_end_matches(".csv");
    let train = dir.join(format!("{stem}_train.csv"));
    let test = dir.join(format!("{stem}_test.csv"));
    std::fs::write(&train, format!("{header}\n{}\n", body[..rows].join("\n"))).unwrap();
    std::fs::write(&test, format!("{header}\n{}\n", body[rows..].join("\n"))).unwrap();
    register_files(engine.context(), &[train, test])
        .await
        .unwrap();
}
