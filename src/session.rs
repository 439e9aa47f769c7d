//! What statements and meta-commands run in, for the shell and for scripts alike.
//!
//! A [`Session`] holds the engine, the settings meta-commands change (`\format`, `\x`,
//! `\digits`, ...), where results go (`\o`) and the last statement with as much of its result
//! as `\chart` and `\copy` need. The shell feeds it what is typed, the script runner what
//! `-c` and `-f` give, so a meta-command does the same in both.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use futures::StreamExt;

use crate::chart::{self, ChartSpec};
use crate::engine::catalog::functions;
use crate::engine::{Engine, string_batch};
use crate::output::{Expanded, Format, Sink, Style, write_batches, write_stream};
use crate::script::{self, ScriptError, Source};
use crate::shell::meta::{self, ExpandedMode, Meta};
use crate::shell::progress::Ticker;

/// Rows of the last result kept for `\chart` and `\copy`: a chart shows no more, and a
/// larger result is better written by running its query again.
pub const KEPT_ROWS: usize = 100_000;

/// What meta-commands change.
#[derive(Debug, Clone)]
pub struct Settings {
    pub format: Format,
    pub maxrows: Option<usize>,
    /// Significant digits of floats in table and markdown output; `None` for all.
    pub digits: Option<usize>,
    pub expanded: ExpandedMode,
    /// The shell: elapsed time under each result. Scripts: each statement's time on
    /// standard error.
    pub timing: bool,
    /// Leave out row counts and confirmations.
    pub quiet: bool,
    /// `${name}` substitutions of scripts.
    pub params: BTreeMap<String, String>,
    /// A person is typing: confirmations go to standard output rather than standard error.
    pub interactive: bool,
    /// Show a progress line on standard error while a statement runs.
    pub progress: bool,
}

/// What to do after a meta-command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// The last statement's result, or as much of it as is kept.
pub struct LastResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// Rows beyond [`KEPT_ROWS`] were left out.
    pub truncated: bool,
}

pub struct Session<'a> {
    engine: Engine,
    pub settings: Settings,
    /// Standard output, or the file of `-o`.
    base: &'a mut dyn Write,
    /// `\o`'s file.
    redirect: Option<(PathBuf, BufWriter<File>)>,
    last_sql: Option<String>,
    last: Option<LastResult>,
}

impl<'a> Session<'a> {
    pub fn new(engine: Engine, settings: Settings, out: &'a mut dyn Write) -> Self {
        Self {
            engine,
            settings,
            base: out,
            redirect: None,
            last_sql: None,
            last: None,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The statement run last (for `\e` and `\watch`).
    pub fn last_sql(&self) -> Option<&str> {
        self.last_sql.as_deref()
    }

    /// Where results go now.
    pub fn out(&mut self) -> &mut dyn Write {
        match &mut self.redirect {
            Some((_, file)) => file,
            None => &mut *self.base,
        }
    }

    /// The layout results are written in now.
    pub fn style(&self) -> Style {
        let expanded = match self.settings.expanded {
            ExpandedMode::Off => Expanded::Off,
            ExpandedMode::On => Expanded::On,
            ExpandedMode::Auto => match terminal_width() {
                Some(columns) if self.redirect.is_none() => Expanded::Wider(columns),
                _ => Expanded::Off,
            },
        };
        Style {
            format: self.settings.format,
            maxrows: self.settings.maxrows,
            digits: self.settings.digits,
            expanded,
        }
    }

    /// A confirmation of a setting: on standard output in the shell, on standard error in
    /// scripts (where standard output holds results), nowhere when quiet.
    fn note(&self, message: &str) {
        if self.settings.quiet {
            return;
        }
        if self.settings.interactive {
            println!("{message}");
        } else {
            eprintln!("{message}");
        }
    }

    /// Runs one SQL statement and writes its result, keeping it as the last result.
    pub async fn run_statement(&mut self, sql: &str) -> Result<()> {
        let start = Instant::now();
        self.last_sql = Some(sql.to_string());
        self.last = None;
        let style = self.style();
        let mut ticker = self
            .settings
            .progress
            .then(|| Ticker::start(self.engine.progress().clone()));
        let mut stream = self.engine.execute_stream(sql).await?;
        let schema = stream.schema();
        let mut kept = LastResult {
            schema: schema.clone(),
            batches: Vec::new(),
            truncated: false,
        };
        let mut rows = 0;
        let out = self.out();
        let mut sink = Sink::new(out, &style, schema);
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            // The progress line goes before the first row is written.
            ticker = None;
            let room = KEPT_ROWS.saturating_sub(rows);
            kept.truncated |= batch.num_rows() > room;
            kept.batches
                .push(batch.slice(0, batch.num_rows().min(room)));
            rows += batch.num_rows();
            sink.push(&batch)?;
        }
        drop(ticker);
        let summary = sink.finish()?;
        let elapsed = start.elapsed();
        // Scripts' markdown is a document: no row count under it.
        let footer = style.format == Format::Table
            || (style.format == Format::Markdown && self.settings.interactive);
        if footer && !self.settings.quiet {
            let shown = (self.settings.interactive && self.settings.timing).then_some(elapsed);
            writeln!(self.out(), "{}", summary.footer(shown))?;
        }
        self.out().flush()?;
        self.last = Some(kept);
        Ok(())
    }

    /// Runs a meta-command.
    pub async fn meta(&mut self, command: Meta) -> Result<Flow> {
        match command {
            Meta::Help => print!("{}", meta::help()),
            Meta::Quit => return Ok(Flow::Quit),
            Meta::ListTables => {
                self.show_query(
                    "SELECT table_schema AS schema, table_name AS name, table_type AS type \
                     FROM information_schema.tables \
                     WHERE table_schema <> 'information_schema' \
                     ORDER BY table_schema, table_name",
                )
                .await?
            }
            Meta::DescribeTable(name) => self.describe_table(&name).await?,
            Meta::ListFunctions => self.list_functions()?,
            Meta::DescribeFunction(name) => self.describe_function(&name)?,
            Meta::Models => {
                let root = self.engine.store().root().display().to_string();
                writeln!(self.out(), "Model store: {root}")?;
                self.show_query("SHOW MODELS").await?
            }
            Meta::Timing(on) => {
                self.settings.timing = on.unwrap_or(!self.settings.timing);
                let state = if self.settings.timing { "on" } else { "off" };
                self.note(&format!("Timing is {state}."));
            }
            Meta::Format(format) => {
                self.settings.format = format;
                self.note(&format!("Output format is {format}."));
            }
            Meta::MaxRows(n) => {
                self.settings.maxrows = n;
                match n {
                    Some(n) => self.note(&format!("Printing at most {n} rows.")),
                    None => self.note("Printing all rows."),
                }
            }
            Meta::Expanded(mode) => {
                let mode = mode.unwrap_or(match self.settings.expanded {
                    ExpandedMode::Off => ExpandedMode::On,
                    _ => ExpandedMode::Off,
                });
                self.settings.expanded = mode;
                self.note(match mode {
                    ExpandedMode::Off => "Expanded display is off.",
                    ExpandedMode::On => "Expanded display is on.",
                    ExpandedMode::Auto => "Expanded display is used automatically.",
                });
            }
            Meta::Digits(digits) => {
                self.settings.digits = digits;
                match digits {
                    Some(n) => self.note(&format!(
                        "Floats show {n} significant digits in table output."
                    )),
                    None => self.note("Floats show every digit."),
                }
            }
            Meta::Include(path) => self.include(path).await?,
            Meta::Output(path) => self.set_output(path)?,
            Meta::Edit => {
                return Err(DataFusionError::Plan(
                    "\\e works only in the interactive shell".to_string(),
                ));
            }
            Meta::Copy { query, path } => self.copy(query.as_deref(), &path).await?,
            Meta::Watch { every, times } => self.watch(every, times).await?,
            Meta::Chart(spec) => self.chart(&spec)?,
        }
        Ok(Flow::Continue)
    }

    /// Runs an introspection query and prints every row of it.
    async fn show_query(&mut self, sql: &str) -> Result<()> {
        let result = self.engine.execute(sql).await?;
        let style = Style {
            maxrows: None,
            ..self.style()
        };
        let out = self.out();
        write_batches(out, &style, result.schema, &result.batches)?;
        out.flush()?;
        Ok(())
    }

    async fn describe_table(&mut self, name: &str) -> Result<()> {
        let ctx = self.engine.context();
        let provider = match ctx.table_provider(name).await {
            Ok(p) => p,
            Err(_) => ctx.table_provider(name.to_lowercase()).await.map_err(|_| {
                DataFusionError::Plan(format!("no table or view named {name}; \\d lists them"))
            })?,
        };
        let schema = provider.schema();
        let fields = schema.fields();
        self.print_strings(
            &["column", "type", "nullable"],
            vec![
                fields.iter().map(|f| f.name().to_string()).collect(),
                fields.iter().map(|f| f.data_type().to_string()).collect(),
                fields
                    .iter()
                    .map(|f| if f.is_nullable() { "YES" } else { "NO" }.to_string())
                    .collect(),
            ],
        )
    }

    fn list_functions(&mut self) -> Result<()> {
        let all = functions(self.engine.context());
        let names = all.iter().map(|f| f.name.clone()).collect();
        let kinds = all.iter().map(|f| f.kind.to_string()).collect();
        let summaries = all.iter().map(|f| f.summary()).collect();
        self.print_strings(
            &["name", "kind", "description"],
            vec![names, kinds, summaries],
        )
    }

    fn describe_function(&mut self, name: &str) -> Result<()> {
        let all = functions(self.engine.context());
        let lower = name.to_lowercase();
        let found: Vec<_> = all
            .iter()
            .filter(|f| f.name == lower || f.name == name)
            .collect();
        if found.is_empty() {
            let near: Vec<_> = all
                .iter()
                .filter(|f| f.name.contains(&lower))
                .map(|f| f.name.as_str())
                .take(8)
                .collect();
            let hint = if near.is_empty() {
                "\\df lists every function".to_string()
            } else {
                format!("did you mean {}?", near.join(", "))
            };
            return Err(DataFusionError::Plan(format!(
                "no function named {name}; {hint}"
            )));
        }
        let text: Vec<String> = found.iter().map(|f| f.describe()).collect();
        writeln!(self.out(), "{}", text.join("\n"))?;
        Ok(())
    }

    /// Prints string columns in the current format.
    fn print_strings(&mut self, names: &[&str], columns: Vec<Vec<String>>) -> Result<()> {
        let Some(batch) = string_batch(names, columns)? else {
            return Ok(());
        };
        let style = Style {
            maxrows: None,
            ..self.style()
        };
        let out = self.out();
        write_batches(out, &style, batch.schema(), &[batch])?;
        out.flush()?;
        Ok(())
    }

    async fn include(&mut self, path: PathBuf) -> Result<()> {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            DataFusionError::Execution(format!("cannot read {}: {e}", path.display()))
        })?;
        let sources = [Source {
            name: path.display().to_string(),
            text,
        }];
        // An included script may include others.
        match Box::pin(script::run(self, &sources)).await {
            Ok(()) | Err(ScriptError::BrokenPipe) => Ok(()),
            Err(e) => Err(DataFusionError::Execution(e.to_string())),
        }
    }

    fn set_output(&mut self, path: Option<PathBuf>) -> Result<()> {
        self.close_output();
        if let Some(path) = path {
            let file = File::create(&path).map_err(|e| {
                DataFusionError::Execution(format!("cannot write {}: {e}", path.display()))
            })?;
            self.note(&format!("Sending results to {}.", path.display()));
            self.redirect = Some((path, BufWriter::new(file)));
        }
        Ok(())
    }

    /// Flushes and closes `\o`'s file.
    pub fn close_output(&mut self) {
        if let Some((path, mut file)) = self.redirect.take()
            && let Err(e) = file.flush()
        {
            eprintln!("Error: cannot write {}: {e}", path.display());
        }
    }

    /// `\copy`: the last result, or `query`'s, to a local file in the format its extension
    /// names, every digit kept.
    async fn copy(&mut self, query: Option<&str>, path: &Path) -> Result<()> {
        let format = copy_format(path)?;
        let style = Style {
            digits: None,
            ..Style::new(format)
        };
        let cannot = |e: io::Error| {
            DataFusionError::Execution(format!("cannot write {}: {e}", path.display()))
        };
        let mut file = BufWriter::new(File::create(path).map_err(cannot)?);
        let summary = match query {
            Some(sql) => {
                let stream = self.engine.execute_stream(sql).await?;
                write_stream(&mut file, &style, stream).await?
            }
            None => {
                let last = self.last_result()?;
                if last.truncated {
                    return Err(DataFusionError::Plan(format!(
                        "the last result has more than {KEPT_ROWS} rows, more than is kept; \
                         \\copy (QUERY) TO '{}' runs the query again into the file",
                        path.display()
                    )));
                }
                write_batches(&mut file, &style, last.schema.clone(), &last.batches)?
            }
        };
        file.flush().map_err(cannot)?;
        let noun = if summary.rows == 1 { "row" } else { "rows" };
        self.note(&format!(
            "Wrote {} {noun} to {}.",
            summary.rows,
            path.display()
        ));
        Ok(())
    }

    /// The last statement's kept result; an error that says what to do when there is none.
    pub fn last_result(&self) -> Result<&LastResult> {
        self.last.as_ref().ok_or_else(|| {
            DataFusionError::Plan("there is no result yet; run a query first".to_string())
        })
    }

    /// `\chart`: draws the last result in the terminal, or into an .svg or .png file.
    fn chart(&mut self, spec: &ChartSpec) -> Result<()> {
        let last = self.last_result()?;
        let (schema, batches) = (last.schema.clone(), last.batches.clone());
        if let Some(path) = &spec.file {
            chart::to_file(&schema, &batches, spec, path)?;
            self.note(&format!("Wrote the chart to {}.", path.display()));
            return Ok(());
        }
        let terminal = self.redirect.is_none() && io::stdout().is_terminal();
        let (rows, columns) = match terminal {
            true => console::Term::stdout().size(),
            false => (24, 80),
        };
        let size = (
            usize::from(columns).clamp(20, 200) - 1,
            usize::from(rows).saturating_sub(4).clamp(8, 24),
        );
        let color = terminal && std::env::var_os("NO_COLOR").is_none();
        let text = chart::to_text(&schema, &batches, spec, size, color)?;
        let out = self.out();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    }

    /// `\watch`: runs the last statement every `every` until cancelled, or `times` times.
    async fn watch(&mut self, every: Duration, times: Option<usize>) -> Result<()> {
        let sql = self.last_sql.clone().ok_or_else(|| {
            DataFusionError::Plan("\\watch runs the last statement; run one first".to_string())
        })?;
        for run in 1.. {
            if !self.settings.quiet {
                let of = times.map(|t| format!(" of {t}")).unwrap_or_default();
                writeln!(
                    self.out(),
                    "Run {run}{of}, every {} s (Ctrl-C stops):",
                    every.as_secs_f64()
                )?;
            }
            self.run_statement(&sql).await?;
            if times.is_some_and(|t| run >= t) {
                break;
            }
            tokio::time::sleep(every).await;
        }
        Ok(())
    }
}

/// The output format a file's extension names, for `\copy`.
fn copy_format(path: &Path) -> Result<Format> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("csv") => Ok(Format::Csv),
        Some("json") => Ok(Format::Json),
        Some("ndjson" | "jsonl") => Ok(Format::Ndjson),
        Some("md") => Ok(Format::Markdown),
        _ => Err(DataFusionError::Plan(format!(
            "\\copy writes .csv, .json, .ndjson or .md files, not {}; for Parquet use COPY \
             (SELECT ...) TO 'file.parquet'",
            path.display()
        ))),
    }
}

/// Columns of the terminal on standard output, when it is one.
pub fn terminal_width() -> Option<usize> {
    if !io::stdout().is_terminal() {
        return None;
    }
    console::Term::stdout()
        .size_checked()
        .map(|(_, columns)| usize::from(columns))
}
