//! Runs every `tests/sql/*.slt` file through cohort's engine: the same entry point the shell,
//! the script runner and the server use. Each file gets a fresh engine with the demo data at
//! scale 0.1 (1,000 customers, seed 42) and an empty model store of its own.
//!
//! `cargo test --test sqllogictests -- NAME` runs only the files whose name contains NAME.

use std::path::PathBuf;

use async_trait::async_trait;
use cohort::Engine;
use cohort::demo::{DEFAULT_SEED, Dataset};
use cohort::store::ModelStore;
use cohort_udfs::error::describe;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::DataFusionError;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

struct CohortDb {
    engine: Engine,
    /// The model store, removed with the database.
    _store: tempfile::TempDir,
}

/// An engine error as users see it: what the expected messages in the .slt files match.
#[derive(Debug)]
struct Described(String);

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Described {}

impl From<DataFusionError> for Described {
    fn from(e: DataFusionError) -> Self {
        Described(describe(&e))
    }
}

#[async_trait]
impl AsyncDB for CohortDb {
    type Error = Described;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Described> {
        let result = self.engine.execute(sql).await?;
        if result.schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = result
            .schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let mut rows = Vec::new();
        for batch in &result.batches {
            rows.extend(format_rows(batch)?);
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "cohort"
    }
}

fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

fn format_rows(batch: &RecordBatch) -> Result<Vec<Vec<String>>, DataFusionError> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|row| {
            formatters
                .iter()
                .map(|f| match f.value(row).to_string() {
                    s if s.is_empty() => "(empty)".to_string(),
                    s => s,
                })
                .collect()
        })
        .collect())
}

async fn new_db() -> Result<CohortDb, Described> {
    let store = tempfile::tempdir().map_err(DataFusionError::from)?;
    let engine = Engine::new(ModelStore::open(store.path())?)?;
    Dataset::generate(0.1, DEFAULT_SEED)?.register(engine.context())?;
    Ok(CohortDb {
        engine,
        _store: store,
    })
}

fn main() -> std::process::ExitCode {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/sql exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            filter.as_ref().is_none_or(|f| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(f))
            })
        })
        .collect();
    files.sort();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let mut runner = sqllogictest::Runner::new(new_db);
        match runtime.block_on(runner.run_file_async(file)) {
            Ok(()) => {
                passed += 1;
                println!("test {} ... ok", file.display());
            }
            Err(e) => {
                failed += 1;
                println!("test {} ... FAILED\n{e}", file.display());
            }
        }
    }
    println!("\nsqllogictest: {passed} passed, {failed} failed");
    if failed == 0 && passed > 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
