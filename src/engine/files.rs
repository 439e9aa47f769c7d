//! Registering data files given on the command line as tables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::listing::ListingOptions;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};

use super::ipc_check;
use super::ipc_format::CheckedArrowFormat;

/// The kinds of file cohort reads, told apart by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Comma- or tab-separated text, optionally compressed.
    Delimited {
        delimiter: u8,
        compression: FileCompressionType,
    },
    Parquet,
    /// Newline-delimited JSON, optionally compressed.
    Json {
        compression: FileCompressionType,
    },
    ArrowIpc,
}

/// A file (or directory) argument resolved to a table name and a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    pub path: PathBuf,
    pub table: String,
    pub kind: FileKind,
    /// The extension (with compression suffix) the reader must look for, e.g. `.csv.gz`.
    pub extension: String,
}

const COMPRESSIONS: [(&str, FileCompressionType); 4] = [
    ("gz", FileCompressionType::GZIP),
    ("zst", FileCompressionType::ZSTD),
    ("bz2", FileCompressionType::BZIP2),
    ("xz", FileCompressionType::XZ),
];

impl DataFile {
    /// Works out the table name and format of `path`. A directory is read as one table of
    /// the files in it, which must share one format.
    pub fn resolve(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| {
            DataFusionError::Execution(format!("cannot read {}: {e}", path.display()))
        })?;
        if let Some(special) = super::local_files::special_file(path) {
            return Err(special.into());
        }
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| unreadable(path, "the name is not valid UTF-8"))?;
        if meta.is_dir() {
            let mut found = None;
            let entries = std::fs::read_dir(path)
                .map_err(|e| unreadable(path, &e.to_string()))?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file());
            for entry in entries {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || name.starts_with('_') {
                    continue;
                }
                let Some((kind, ext)) = kind_of(&name) else {
                    continue;
                };
                match &found {
                    None => found = Some((kind, ext)),
                    Some((_, seen)) if *seen != ext => {
                        return Err(unreadable(
                            path,
                            &format!(
                                "it mixes {seen} and {ext} files; keep one format per directory"
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            let (kind, extension) = found.ok_or_else(|| {
                unreadable(path, "it holds no .parquet, .csv, .json or .arrow files")
            })?;
            return Ok(Self {
                path: path.to_path_buf(),
                table: table_name(file_name),
                kind,
                extension,
            });
        }
        let (kind, extension) = kind_of(file_name).ok_or_else(|| {
            unreadable(
                path,
                "unknown file type; use .csv, .tsv, .parquet, .json, .ndjson, .arrow or .feather \
                 (CSV and JSON may end in .gz, .zst, .bz2 or .xz)",
            )
        })?;
        let stem = &file_name[..file_name.len() - extension.len()];
        Ok(Self {
            path: path.to_path_buf(),
            table: table_name(stem),
            kind,
            extension,
        })
    }

    async fn register(&self, ctx: &SessionContext) -> Result<()> {
        let path = self.path.to_string_lossy();
        let ext = self.extension.as_str();
        match self.kind {
            FileKind::Delimited {
                delimiter,
                compression,
            } => {
                let options = CsvReadOptions::new()
                    .delimiter(delimiter)
                    .file_extension(ext)
                    .file_compression_type(compression);
                ctx.register_csv(&self.table, path, options).await
            }
            FileKind::Parquet => {
                let options = ParquetReadOptions {
                    file_extension: ext,
                    ..Default::default()
                };
                ctx.register_parquet(&self.table, path, options).await
            }
            FileKind::Json { compression } => {
                let options = JsonReadOptions::default()
                    .file_extension(ext)
                    .file_compression_type(compression);
                ctx.register_json(&self.table, path, options).await
            }
            FileKind::ArrowIpc => {
                // Checked here too, for a usage error before anything is registered.
                check_ipc_files(&self.path, ext)?;
                let options = ListingOptions::new(Arc::new(CheckedArrowFormat::default()))
                    .with_file_extension(ext);
                ctx.register_listing_table(&self.table, path, options, None, None)
                    .await
            }
        }
        .map_err(|e| unreadable(&self.path, &e.strip_backtrace()))
    }
}

/// Refuses the Arrow IPC file at `path`, or any in the directory `path` with extension
/// `ext`, whose declared lengths run past its end, naming the file (see [`ipc_check`]).
fn check_ipc_files(path: &Path, ext: &str) -> Result<()> {
    let files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .map_err(|e| unreadable(path, &e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.to_string_lossy().ends_with(ext))
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    for file in files {
        ipc_check::refuse_unreadable(&file)?;
    }
    Ok(())
}

/// Registers every file as a table, or none of them: the first file that cannot be read is
/// named in the error and the tables registered before it are removed again.
pub async fn register_files(ctx: &SessionContext, paths: &[PathBuf]) -> Result<Vec<String>> {
    let files = paths
        .iter()
        .map(|p| DataFile::resolve(p))
        .collect::<Result<Vec<_>>>()?;
    for (i, f) in files.iter().enumerate() {
        if let Some(other) = files[..i].iter().find(|o| o.table == f.table) {
            return Err(DataFusionError::Plan(format!(
                "{} and {} would both be table {}; rename one of the files",
                other.path.display(),
                f.path.display(),
                f.table
            )));
        }
        if ctx.table_exist(f.table.as_str())? {
            return Err(DataFusionError::Plan(format!(
                "{} would be table {}, which already exists; rename the file",
                f.path.display(),
                f.table
            )));
        }
    }
    for (i, f) in files.iter().enumerate() {
        if let Err(e) = f.register(ctx).await {
            for done in &files[..i] {
                ctx.deregister_table(done.table.as_str())?;
            }
            return Err(e);
        }
    }
    Ok(files.into_iter().map(|f| f.table).collect())
}

/// The format of a file name and the full extension that marks it.
fn kind_of(name: &str) -> Option<(FileKind, String)> {
    let lower = name.to_ascii_lowercase();
    let (base, compression, suffix) = COMPRESSIONS
        .iter()
        .find_map(|(ext, c)| {
            lower
                .strip_suffix(&format!(".{ext}"))
                .map(|b| (b, *c, format!(".{ext}")))
        })
        .unwrap_or((
            lower.as_str(),
            FileCompressionType::UNCOMPRESSED,
            String::new(),
        ));
    let (dot, ext) = base.rsplit_once('.')?;
    if dot.is_empty() {
        return None;
    }
    let kind = match ext {
        "csv" => FileKind::Delimited {
            delimiter: b',',
            compression,
        },
        "tsv" => FileKind::Delimited {
            delimiter: b'\t',
            compression,
        },
        "json" | "ndjson" | "jsonl" => FileKind::Json { compression },
        "parquet" if compression == FileCompressionType::UNCOMPRESSED => FileKind::Parquet,
        "arrow" | "feather" | "ipc" if compression == FileCompressionType::UNCOMPRESSED => {
            FileKind::ArrowIpc
        }
        _ => return None,
    };
    // Keep the case of the real file name: the reader matches extensions exactly.
    let full = &name[name.len() - (ext.len() + 1 + suffix.len())..];
    Some((kind, full.to_string()))
}

/// A table name from a file stem: lower case, with anything but letters, digits and `_`
/// replaced by `_`, so it can be written unquoted in SQL.
fn table_name(stem: &str) -> String {
    let mut name: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) || name.is_empty() {
        name.insert(0, '_');
    }
    name
}

pub(crate) fn unreadable(path: &Path, why: &str) -> DataFusionError {
    DataFusionError::Execution(format!("cannot read {}: {why}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_extension() {
        let csv = |c| FileKind::Delimited {
            delimiter: b',',
            compression: c,
        };
        assert_eq!(
            kind_of("a.csv"),
            Some((csv(FileCompressionType::UNCOMPRESSED), ".csv".into()))
        );
        assert_eq!(
            kind_of("Sales.CSV.gz"),
            Some((csv(FileCompressionType::GZIP), ".CSV.gz".into()))
        );
        assert_eq!(
            kind_of("e.jsonl.zst"),
            Some((
                FileKind::Json {
                    compression: FileCompressionType::ZSTD
                },
                ".jsonl.zst".into()
            ))
        );
        assert_eq!(
            kind_of("x.feather"),
            Some((FileKind::ArrowIpc, ".feather".into()))
        );
        assert_eq!(kind_of("x.parquet.gz"), None);
        assert_eq!(kind_of("x.txt"), None);
        assert_eq!(kind_of(".csv"), None);
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        assert_eq!(table_name("Customers 2026-Q1"), "customers_2026_q1");
        assert_eq!(table_name("2026_orders"), "_2026_orders");
    }
}
