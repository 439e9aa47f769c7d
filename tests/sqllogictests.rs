//! Runs every `tests/sql/*.slt` file through cohort's engine: the same entry point the shell,
//! the script runner and the server use. Each file gets a fresh engine with the demo data at
//! scale 0.1 (1,000 customers, seed 42) and an empty model store of its own.
//!
//! `cargo test --test sqllogictests -- NAME` runs only the files whose name contains NAME;
//! `-- --complete` (with or without NAME) rewrites the expected results and errors in the
//! files from what the engine now returns, leaving the records that already pass as written.

#[path = "integration/common/engines.rs"]
mod engines;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cohort::Engine;
use cohort_udfs::error::describe;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::DataFusionError;
use sqllogictest::{
    AsyncDB, DBOutput, Runner, default_column_validator, default_normalizer, default_validator,
};

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

/// A result column's type letter, as DataFusion's own .slt files write them: `B`oolean,
/// `I`nteger, `R`eal, `T`ext. Letters read from a file are kept as written, so `--complete`
/// rewrites only what differs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ColumnType(char);

impl sqllogictest::ColumnType for ColumnType {
    fn from_char(letter: char) -> Option<Self> {
        Some(Self(letter))
    }

    fn to_char(&self) -> char {
        self.0
    }
}

#[async_trait]
impl AsyncDB for CohortDb {
    type Error = Described;
    type ColumnType = ColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<ColumnType>, Described> {
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

fn column_type(t: &DataType) -> ColumnType {
    ColumnType(if t.is_integer() {
        'I'
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        'R'
    } else if t == &DataType::Boolean {
        'B'
    } else {
        'T'
    })
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
    let (engine, store) = engines::demo_engine(0.1)?;
    Ok(CohortDb {
        engine,
        _store: store,
    })
}

/// Rewrites `file` with the results the engine gives now; whether anything changed.
async fn complete(file: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    let before = std::fs::read_to_string(file)?;
    Runner::new(new_db)
        .update_test_file(
            file,
            " ",
            default_validator,
            default_normalizer,
            default_column_validator,
        )
        .await?;
    Ok(std::fs::read_to_string(file)? != before)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let completing = args.iter().any(|a| a == "--complete");
    let filter = args.iter().find(|a| !a.starts_with('-'));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/sql exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            filter.is_none_or(|f| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(f.as_str()))
            })
        })
        .collect();
    files.sort();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let outcome = if completing {
            runtime
                .block_on(complete(file))
                .map(|changed| if changed { "rewritten" } else { "ok" })
                .map_err(|e| e.to_string())
        } else {
            runtime
                .block_on(Runner::new(new_db).run_file_async(file))
                .map(|()| "ok")
                .map_err(|e| e.to_string())
        };
        match outcome {
            Ok(outcome) => {
                passed += 1;
                println!("test {} ... {outcome}", file.display());
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
