//! Running SQL scripts for scheduled jobs (`-f`, `-c`, standard input).
//!
//! A script is split into statements (strings, quoted identifiers and comments respected) and
//! backslash meta-commands (one a line, as in psql), `${name}` parameters are substituted, and
//! they run in order in a [`Session`]. The first failing statement stops the run; the error
//! carries the script's name and the line of the statement.

use std::collections::BTreeMap;
use std::fmt;

use cohort_udfs::error::describe;
use datafusion::common::DataFusionError;

use crate::engine::split::split_statements;
use crate::output::is_broken_pipe;
use crate::session::{Flow, Session};
use crate::shell::meta::Meta;

/// SQL text and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// A file path, `-c` or `<stdin>`: what error messages call it.
    pub name: String,
    pub text: String,
}

/// Why a script stopped.
#[derive(Debug)]
pub enum ScriptError {
    /// A statement failed: its source, line and the error.
    Statement {
        source: String,
        line: usize,
        error: DataFusionError,
    },
    /// The reader of the output went away (`| head`): not a failure.
    BrokenPipe,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptError::Statement {
                source,
                line,
                error,
            } => write!(f, "{source}:{line}: {}", describe(error)),
            ScriptError::BrokenPipe => f.write_str("broken pipe"),
        }
    }
}

/// Runs every statement and meta-command of every source in order in `session`; `\q`
/// ends the run early.
pub async fn run(session: &mut Session<'_>, sources: &[Source]) -> Result<(), ScriptError> {
    for source in sources {
        for piece in split_statements(&source.text) {
            let fail = |line: usize, error: DataFusionError| {
                if is_broken_pipe(&error) {
                    ScriptError::BrokenPipe
                } else {
                    ScriptError::Statement {
                        source: source.name.clone(),
                        line,
                        error,
                    }
                }
            };
            let text =
                substitute(&piece.text, &session.settings.params).map_err(|(offset, error)| {
                    fail(
                        piece.line + piece.text[..offset].matches('\n').count(),
                        error,
                    )
                })?;
            let start = std::time::Instant::now();
            if piece.meta {
                let command = Meta::parse(&text)
                    .map_err(|message| fail(piece.line, DataFusionError::Plan(message)))?;
                let flow = session
                    .meta(command)
                    .await
                    .map_err(|e| fail(piece.line, e))?;
                if flow == Flow::Quit {
                    return Ok(());
                }
                continue;
            }
            session
                .run_statement(&text)
                .await
                .map_err(|e| fail(piece.line, e))?;
            if session.settings.timing && !session.settings.interactive {
                eprintln!(
                    "{}:{}: {:.6} s",
                    source.name,
                    piece.line,
                    start.elapsed().as_secs_f64()
                );
            }
        }
    }
    Ok(())
}

/// Replaces each `${name}` with its parameter value; `$${` stands for a literal `${`. On an
/// unknown name returns the byte offset of the reference and an error that says how to pass
/// the parameter.
pub fn substitute(
    text: &str,
    params: &BTreeMap<String, String>,
) -> Result<String, (usize, DataFusionError)> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let offset = text.len() - rest.len() + at;
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        if name.is_empty() || !after[name_len..].starts_with('}') {
            out.push_str("${");
            rest = after;
            continue;
        }
        let value = params.get(name).ok_or_else(|| {
            let known = if params.is_empty() {
                "none were given".to_string()
            } else {
                format!(
                    "given: {}",
                    params.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            (
                offset,
                DataFusionError::Plan(format!(
                    "unknown parameter ${{{name}}} ({known}); pass it with --param {name}=VALUE"
                )),
            )
        })?;
        out.push_str(value);
        rest = &after[name_len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses a `--param name=value` argument.
pub fn parse_param(arg: &str) -> Result<(String, String), String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("expected name=value, got '{arg}'"))?;
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(format!(
            "parameter name '{name}' must be letters, digits and _, not starting with a digit"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BTreeMap<String, String> {
        [("day", "2026-11-01"), ("n", "5")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_known_parameters() {
        assert_eq!(
            substitute("SELECT '${day}' AS d, ${n} + 1 -- ${n}", &params()).unwrap(),
            "SELECT '2026-11-01' AS d, 5 + 1 -- 5"
        );
    }

    #[test]
    fn escapes_and_non_parameters_are_left_alone() {
        assert_eq!(
            substitute("SELECT '$${day}', '${ x}', '$1', '${'", &params()).unwrap(),
            "SELECT '${day}', '${ x}', '$1', '${'"
        );
    }

    #[test]
    fn unknown_parameter_reports_offset_and_fix() {
        let (offset, e) = substitute("SELECT 1,\n ${missing}", &params()).unwrap_err();
        assert_eq!(offset, 11);
        assert_eq!(
            e.strip_backtrace(),
            "Error during planning: unknown parameter ${missing} (given: day, n); pass it with --param missing=VALUE"
        );
    }

    #[test]
    fn param_arguments() {
        assert_eq!(
            parse_param("day=2026-11-01=x"),
            Ok(("day".into(), "2026-11-01=x".into()))
        );
        assert!(parse_param("day").is_err());
        assert!(parse_param("1x=2").is_err());
        assert!(parse_param("a-b=2").is_err());
    }
}
