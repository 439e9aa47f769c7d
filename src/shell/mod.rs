//! The interactive shell.

mod helper;
pub mod meta;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use cohort_udfs::error::describe;
use datafusion::common::{DataFusionError, Result};
use rustyline::Editor;
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;

use crate::engine::catalog::{functions, tables_and_columns};
use crate::engine::split::split_statements;
use crate::engine::{Engine, string_batch};
use crate::output::{Format, write_batches, write_stream};
use crate::script::{self, ScriptError, ScriptOptions, Source};
use helper::ShellHelper;
use meta::Meta;

/// How the shell starts.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    pub format: Format,
    pub maxrows: Option<usize>,
    pub timing: bool,
    /// Where history is kept; `None` keeps none.
    pub history: Option<PathBuf>,
    /// Colour SQL as it is typed.
    pub color: bool,
}

/// The default history file, in the user's data directory.
pub fn default_history_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("cohort").join("history.txt"))
}

struct Shell {
    engine: Engine,
    options: ShellOptions,
    /// `\o` target; results go to standard output when `None`.
    output: Option<(PathBuf, BufWriter<File>)>,
}

/// Runs the shell until `\q` or Ctrl-D.
pub async fn run(engine: Engine, options: ShellOptions) -> io::Result<()> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(10_000)
        .map_err(io::Error::other)?
        .build();
    let mut editor: Editor<ShellHelper, FileHistory> =
        Editor::with_config(config).map_err(io::Error::other)?;
    editor.set_helper(Some(ShellHelper::new(options.color)));
    if let Some(path) = &options.history {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // A missing history file is normal on first start.
        let _ = editor.load_history(path);
    }
    let mut shell = Shell {
        engine,
        options,
        output: None,
    };
    shell.refresh_names(&mut editor).await;
    loop {
        match editor.readline("cohort> ") {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                editor
                    .add_history_entry(line.trim_end())
                    .map_err(io::Error::other)?;
                if let Some(path) = &shell.options.history
                    && let Err(e) = editor.save_history(path)
                {
                    eprintln!("warning: cannot save history to {}: {e}", path.display());
                }
                if line.trim_start().starts_with('\\') {
                    match Meta::parse(&line) {
                        Ok(Meta::Quit) => break,
                        Ok(command) => shell.meta(command).await,
                        Err(message) => eprintln!("{message}"),
                    }
                } else {
                    shell.run_sql(&line).await;
                }
                shell.refresh_names(&mut editor).await;
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(io::Error::other(e)),
        }
    }
    shell.close_output();
    Ok(())
}

impl Shell {
    fn out(&mut self) -> Box<dyn Write + '_> {
        match &mut self.output {
            Some((_, file)) => Box::new(file),
            None => Box::new(io::stdout().lock()),
        }
    }

    /// Runs every statement in `text`; stops at the first error or on Ctrl-C.
    async fn run_sql(&mut self, text: &str) {
        for piece in split_statements(text) {
            let start = Instant::now();
            let (format, maxrows) = (self.options.format, self.options.maxrows);
            let timing = self.options.timing;
            let engine = self.engine.clone();
            let mut out = self.out();
            let run = async {
                let stream = engine.execute_stream(&piece.text).await?;
                write_stream(&mut out, format, stream, maxrows).await
            };
            let result = tokio::select! {
                r = run => r,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("Query cancelled.");
                    return;
                }
            };
            match result {
                Ok(summary) => {
                    let elapsed = timing.then(|| start.elapsed());
                    if format == Format::Table || format == Format::Markdown {
                        let _ = writeln!(out, "{}", summary.footer(elapsed));
                    }
                    let _ = out.flush();
                }
                Err(e) => {
                    drop(out);
                    report(&e);
                    return;
                }
            }
        }
    }

    async fn meta(&mut self, command: Meta) {
        let result = match command {
            Meta::Help => {
                print!("{}", meta::help());
                Ok(())
            }
            Meta::Quit => Ok(()),
            Meta::ListTables => {
                self.show_query(
                    "SELECT table_schema AS schema, table_name AS name, table_type AS type \
                     FROM information_schema.tables \
                     WHERE table_schema <> 'information_schema' \
                     ORDER BY table_schema, table_name",
                )
                .await
            }
            Meta::DescribeTable(name) => self.describe_table(&name).await,
            Meta::ListFunctions => self.list_functions(),
            Meta::DescribeFunction(name) => self.describe_function(&name),
            Meta::Models => {
                println!("Model store: {}", self.engine.store().root().display());
                self.show_query("SHOW MODELS").await
            }
            Meta::Timing(on) => {
                self.options.timing = on.unwrap_or(!self.options.timing);
                println!(
                    "Timing is {}.",
                    if self.options.timing { "on" } else { "off" }
                );
                Ok(())
            }
            Meta::Format(format) => {
                self.options.format = format;
                println!("Output format is {format}.");
                Ok(())
            }
            Meta::MaxRows(n) => {
                self.options.maxrows = n;
                match n {
                    Some(n) => println!("Printing at most {n} rows."),
                    None => println!("Printing all rows."),
                }
                Ok(())
            }
            Meta::Include(path) => self.include(path).await,
            Meta::Output(path) => self.set_output(path),
        };
        if let Err(e) = result {
            report(&e);
        }
    }

    /// Runs an introspection query and prints every row of it.
    async fn show_query(&mut self, sql: &str) -> Result<()> {
        let result = self.engine.execute(sql).await?;
        let format = self.options.format;
        let mut out = self.out();
        write_batches(&mut out, format, result.schema, &result.batches, None)?;
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
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let types: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect();
        let nullable: Vec<&str> = schema
            .fields()
            .iter()
            .map(|f| if f.is_nullable() { "YES" } else { "NO" })
            .collect();
        self.print_strings(
            &["column", "type", "nullable"],
            vec![
                names.into_iter().map(String::from).collect(),
                types,
                nullable.into_iter().map(String::from).collect(),
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
        let mut out = self.out();
        writeln!(out, "{}", text.join("\n"))?;
        Ok(())
    }

    /// Prints string columns in the current format.
    fn print_strings(&mut self, names: &[&str], columns: Vec<Vec<String>>) -> Result<()> {
        let Some(batch) = string_batch(names, columns)? else {
            return Ok(());
        };
        let format = self.options.format;
        let mut out = self.out();
        write_batches(&mut out, format, batch.schema(), &[batch], None)?;
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
        let options = ScriptOptions {
            format: self.options.format,
            maxrows: self.options.maxrows,
            quiet: false,
            timing: false,
            params: BTreeMap::new(),
        };
        let engine = self.engine.clone();
        let mut out = self.out();
        let result = tokio::select! {
            r = script::run(&engine, &sources, &mut out, &options) => r,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("Script cancelled.");
                return Ok(());
            }
        };
        match result {
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
            println!("Sending results to {}.", path.display());
            self.output = Some((path, BufWriter::new(file)));
        }
        Ok(())
    }

    fn close_output(&mut self) {
        if let Some((path, mut file)) = self.output.take()
            && let Err(e) = file.flush()
        {
            eprintln!("Error: cannot write {}: {e}", path.display());
        }
    }

    /// Refreshes the names completion offers: tables and views, their columns, functions.
    async fn refresh_names(&self, editor: &mut Editor<ShellHelper, FileHistory>) {
        let ctx = self.engine.context();
        let mut names: std::collections::BTreeSet<String> =
            functions(ctx).into_iter().map(|f| f.name).collect();
        if let Ok(tables) = tables_and_columns(ctx).await {
            for (table, columns) in tables {
                names.insert(table);
                names.extend(columns);
            }
        }
        if let Some(helper) = editor.helper_mut() {
            helper.names = names;
        }
    }
}

fn report(e: &DataFusionError) {
    eprintln!("Error: {}", describe(e));
}
