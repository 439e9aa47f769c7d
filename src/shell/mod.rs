//! The interactive shell.

mod helper;
pub mod meta;
pub mod progress;

use std::io;
use std::path::PathBuf;

use cohort_udfs::error::describe;
use datafusion::common::{DataFusionError, Result};
use rustyline::Editor;
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;

use crate::engine::catalog::{functions, tables_and_columns};
use crate::engine::split::{has_code, split_statements};
use crate::session::{Flow, Session};
use helper::ShellHelper;
use meta::Meta;

/// How the shell starts.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    /// Where history is kept; `None` keeps none.
    pub history: Option<PathBuf>,
    /// Colour SQL as it is typed.
    pub color: bool,
}

/// The default history file, in the user's data directory.
pub fn default_history_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("cohort").join("history.txt"))
}

/// Runs the shell in `session` until `\q` or Ctrl-D.
pub async fn run(session: &mut Session<'_>, options: ShellOptions) -> io::Result<()> {
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
    refresh_names(session, &mut editor).await;
    loop {
        let line = match editor.readline("cohort> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(io::Error::other(e)),
        };
        if line.trim().is_empty() {
            continue;
        }
        remember(&mut editor, &options, &line)?;
        if run_input(session, &mut editor, &options, &line).await? == Flow::Quit {
            break;
        }
        refresh_names(session, &mut editor).await;
    }
    session.close_output();
    Ok(())
}

fn remember(
    editor: &mut Editor<ShellHelper, FileHistory>,
    options: &ShellOptions,
    text: &str,
) -> io::Result<()> {
    editor
        .add_history_entry(text.trim_end())
        .map_err(io::Error::other)?;
    if let Some(path) = &options.history
        && let Err(e) = editor.save_history(path)
    {
        eprintln!("warning: cannot save history to {}: {e}", path.display());
    }
    Ok(())
}

/// Runs every statement and meta-command in `text`; stops at the first error or on Ctrl-C.
async fn run_input(
    session: &mut Session<'_>,
    editor: &mut Editor<ShellHelper, FileHistory>,
    options: &ShellOptions,
    text: &str,
) -> io::Result<Flow> {
    for piece in split_statements(text) {
        let result = if piece.meta {
            match Meta::parse(&piece.text) {
                Ok(Meta::Edit) => {
                    let edited = match edit(session.last_sql().unwrap_or("")) {
                        Ok(edited) => edited,
                        Err(e) => {
                            report(&e);
                            return Ok(Flow::Continue);
                        }
                    };
                    if !has_code(&edited) {
                        return Ok(Flow::Continue);
                    }
                    println!("{}", edited.trim_end());
                    remember(editor, options, &edited)?;
                    return Box::pin(run_input(session, editor, options, &edited)).await;
                }
                Ok(command) => cancellable(session.meta(command), "Cancelled.").await,
                Err(message) => {
                    eprintln!("{message}");
                    return Ok(Flow::Continue);
                }
            }
        } else {
            cancellable(
                async {
                    session
                        .run_statement(&piece.text)
                        .await
                        .map(|_| Flow::Continue)
                },
                "Query cancelled.",
            )
            .await
        };
        match result {
            Some(Ok(Flow::Quit)) => return Ok(Flow::Quit),
            Some(Ok(Flow::Continue)) => {}
            Some(Err(e)) => {
                report(&e);
                break;
            }
            None => break,
        }
    }
    Ok(Flow::Continue)
}

/// Runs `work` until it ends or Ctrl-C; `None` (after saying `cancelled`) on Ctrl-C.
async fn cancellable<T>(work: impl Future<Output = T>, cancelled: &str) -> Option<T> {
    tokio::select! {
        r = work => Some(r),
        _ = tokio::signal::ctrl_c() => {
            eprintln!("{cancelled}");
            None
        }
    }
}

/// `\e`: opens `$VISUAL` or `$EDITOR` (else `vi`) on `sql` and returns what was saved.
fn edit(sql: &str) -> Result<String> {
    let fail = |what: String| DataFusionError::Execution(what);
    let file = tempfile::Builder::new()
        .prefix("cohort-edit-")
        .suffix(".sql")
        .tempfile()
        .map_err(|e| fail(format!("cannot make a file to edit: {e}")))?;
    let text = if sql.is_empty() {
        String::new()
    } else {
        format!("{sql};\n")
    };
    std::fs::write(file.path(), text).map_err(|e| fail(format!("cannot write {e}")))?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_string());
    // An editor setting may carry arguments ("code --wait").
    let mut words = editor.split_whitespace();
    let program = words.next().unwrap_or("vi");
    let status = std::process::Command::new(program)
        .args(words)
        .arg(file.path())
        .status()
        .map_err(|e| fail(format!("cannot start the editor {editor}: {e}; set EDITOR")))?;
    if !status.success() {
        return Err(fail(format!(
            "the editor {editor} failed ({status}); nothing was run"
        )));
    }
    std::fs::read_to_string(file.path())
        .map_err(|e| fail(format!("cannot read what the editor saved: {e}")))
}

/// Refreshes the names completion offers: tables and views, their columns, functions.
async fn refresh_names(session: &Session<'_>, editor: &mut Editor<ShellHelper, FileHistory>) {
    let ctx = session.engine().context();
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

fn report(e: &DataFusionError) {
    eprintln!("Error: {}", describe(e));
}
