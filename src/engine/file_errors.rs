//! Errors from reading data files, naming the file: DataFusion's readers say what is wrong
//! (a value that does not parse, a damaged Parquet page) but not where. Files are read
//! while a query runs ([`FilesRead`]) and before: CREATE EXTERNAL TABLE and the planning
//! of a scan read Parquet footers ([`Locations`]).

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::common::DataFusionError;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::listing::{ListingTable, ListingTableUrl};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::source_as_provider;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{StreamExt, TryStreamExt};

/// How many files an error lists when the failing one cannot be told apart.
const FILES_SHOWN: usize = 5;

/// The files a plan scans, and the columns of each scan's files.
#[derive(Debug, Default)]
pub struct FilesRead {
    scans: Vec<(Vec<String>, SchemaRef)>,
}

impl FilesRead {
    /// The files every scan of `plan` reads.
    pub fn of(plan: &Arc<dyn ExecutionPlan>) -> Self {
        let mut scans = Vec::new();
        let _ = plan.apply(|node| {
            let config = node
                .downcast_ref::<DataSourceExec>()
                .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>());
            if let Some(config) = config {
                // Local paths as paths, other stores' as URLs.
                let store = &config.object_store_url;
                let prefix = if *store == ObjectStoreUrl::local_filesystem() {
                    "/"
                } else {
                    store.as_str()
                };
                let files = config
                    .file_groups
                    .iter()
                    .flat_map(|group| group.files())
                    .map(|f| format!("{prefix}{}", f.object_meta.location))
                    .collect();
                scans.push((files, config.file_schema().clone()));
            }
            Ok(TreeNodeRecursion::Continue)
        });
        Self { scans }
    }

    /// `stream` with its errors from reading files naming the file read. Arrow's readers
    /// panic on some damaged files (a buffer shorter than its column needs): such a panic
    /// ends the stream with an error naming the file, not the process.
    pub fn name_in_errors(self, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
        if self.scans.is_empty() {
            return stream;
        }
        let schema = stream.schema();
        let stream = AssertUnwindSafe(stream)
            .catch_unwind()
            .map(|item| item.unwrap_or_else(|panic| Err(damaged(panic.as_ref()))));
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            stream.map_err(move |e| self.name(e)),
        ))
    }

    /// `e` naming the file (or files) it came from, when it is an error of reading one.
    fn name(&self, e: DataFusionError) -> DataFusionError {
        // One scan whose files can be named; with several, which failed is unknown.
        let [(files, schema)] = self.scans.as_slice() else {
            return e;
        };
        if !is_reading(&e) || files.is_empty() {
            return e;
        }
        let root = e.find_root();
        let shown = shown(files);
        // The CSV reader numbers the column; name it too.
        let renamed = match root {
            DataFusionError::ArrowError(a, _) => match a.as_ref() {
                ArrowError::ParseError(m) => {
                    Some(ArrowError::ParseError(with_column_name(m, schema)))
                }
                ArrowError::CsvError(m) => Some(ArrowError::CsvError(with_column_name(m, schema))),
                _ => None,
            },
            _ => None,
        };
        cannot_read(&shown, &renamed.map_or(e, DataFusionError::from))
    }
}

/// `files` for a message: the one, or "one of" the first few.
fn shown(files: &[String]) -> String {
    match files {
        [one] => one.clone(),
        many => {
            let mut shown = many[..many.len().min(FILES_SHOWN)].join(", ");
            if many.len() > FILES_SHOWN {
                shown.push_str(&format!(" and {} more", many.len() - FILES_SHOWN));
            }
            format!("one of {shown}")
        }
    }
}

/// The locations of the files a logical plan reads before it runs: the LOCATION of CREATE
/// EXTERNAL TABLE, and the paths of the file tables it scans.
#[derive(Debug, Default)]
pub struct Locations(Vec<String>);

impl Locations {
    pub fn of(plan: &LogicalPlan) -> Self {
        let mut found = Vec::new();
        let _ = plan.apply_with_subqueries(|node| {
            match node {
                LogicalPlan::Ddl(DdlStatement::CreateExternalTable(create)) => {
                    found.extend(create.locations.iter().cloned())
                }
                LogicalPlan::TableScan(scan) => {
                    if let Ok(provider) = source_as_provider(&scan.source)
                        && let Some(listing) = provider.downcast_ref::<ListingTable>()
                    {
                        found.extend(listing.table_paths().iter().map(location));
                    }
                }
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
        found.dedup();
        Self(found)
    }

    /// `e` naming the locations it came from, when it is an error of reading a file.
    pub fn name(&self, e: DataFusionError) -> DataFusionError {
        if self.0.is_empty() || !is_reading(&e) {
            return e;
        }
        cannot_read(&shown(&self.0), &e)
    }
}

/// A table path as a user wrote it: a local path as a path, others as URLs.
fn location(url: &ListingTableUrl) -> String {
    if url.scheme() == "file" {
        format!("/{}", url.prefix())
    } else {
        url.as_str().to_string()
    }
}

/// Whether `e` comes from reading a data file: a value that does not parse, a damaged file.
pub(crate) fn is_reading(e: &DataFusionError) -> bool {
    match e.find_root() {
        DataFusionError::ParquetError(_) => true,
        DataFusionError::ArrowError(e, _) => matches!(
            e.as_ref(),
            ArrowError::ParseError(_)
                | ArrowError::CsvError(_)
                | ArrowError::JsonError(_)
                | ArrowError::IpcError(_)
                | ArrowError::ParquetError(_)
                // A damaged Arrow file: buffers that do not decompress, offsets or
                // nodes that do not fit the schema.
                | ArrowError::IoError(..)
                | ArrowError::SchemaError(_)
                | ArrowError::InvalidArgumentError(_)
        ),
        _ => false,
    }
}

/// The error for a reader that panicked on what it read.
pub(crate) fn damaged(panic: &(dyn Any + Send)) -> DataFusionError {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("no reason given");
    let message = format!("the reader stopped on damaged data: {what}");
    ArrowError::IoError(message.clone(), std::io::Error::other(message)).into()
}

/// `e`, an error of reading `file`, naming it, and for a damaged file saying what to do.
pub(crate) fn cannot_read(file: &str, e: &DataFusionError) -> DataFusionError {
    let damaged = matches!(e.find_root(), DataFusionError::ParquetError(_))
        || matches!(
            e.find_root(),
            DataFusionError::ArrowError(a, _) if matches!(a.as_ref(), ArrowError::ParquetError(_))
        );
    let fix = if damaged {
        "; the file is damaged or not Parquet: write it again, or move it out of the \
         table's location"
    } else {
        ""
    };
    DataFusionError::Execution(format!("cannot read {file}: {}{fix}", e.strip_backtrace()))
}

/// The CSV reader's "for column 3" with the column's name added.
fn with_column_name(message: &str, schema: &SchemaRef) -> String {
    const AT: &str = "for column ";
    let Some(start) = message.find(AT).map(|i| i + AT.len()) else {
        return message.to_string();
    };
    let digits = message[start..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(message.len(), |end| start + end);
    match message[start..digits].parse::<usize>() {
        Ok(i) if i < schema.fields().len() => format!(
            "{} ({}){}",
            &message[..digits],
            schema.field(i).name(),
            &message[digits..]
        ),
        _ => message.to_string(),
    }
}
