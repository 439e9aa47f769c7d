//! Backslash meta-commands of the interactive shell.

use std::path::PathBuf;
use std::time::Duration;

use crate::chart::ChartSpec;
use crate::output::Format;

/// Every meta-command with its one-line help, in the order `\?` lists them.
pub const META_COMMANDS: &[(&str, &str)] = &[
    ("\\?", "show this help"),
    ("\\q", "quit (Ctrl-D works too)"),
    ("\\d", "list tables and views"),
    ("\\d NAME", "describe a table: columns, types, nullability"),
    ("\\df", "list functions with a one-line description"),
    (
        "\\df NAME",
        "show a function's documentation: syntax, arguments, example",
    ),
    ("\\models", "show where models are stored, and list them"),
    (
        "\\timing [on|off]",
        "show or hide the elapsed time under results",
    ),
    (
        "\\format FMT",
        "set the output format: table, csv, json, ndjson, markdown",
    ),
    (
        "\\maxrows N|all",
        "limit the rows printed in table and markdown output",
    ),
    ("\\i FILE", "run the statements in FILE"),
    (
        "\\o [FILE]",
        "send results to FILE; without FILE, back to the terminal",
    ),
    (
        "\\x [on|off|auto]",
        "expanded display: each row as a record of name | value lines",
    ),
    (
        "\\digits N|full",
        "significant digits of floats in table output (default 6); csv and json keep all",
    ),
    ("\\e", "edit the last statement in $EDITOR, then run it"),
    (
        "\\copy [(QUERY)] TO FILE",
        "write the last result (or QUERY's) to a local .csv, .json, .ndjson or .md file",
    ),
    (
        "\\chart [line|bar|scatter] [X] [Y...] [> FILE]",
        "draw the last result (X: first column, Y: numeric ones); FILE: .svg or .png",
    ),
    (
        "\\watch [SECONDS] [c=N]",
        "run the last statement again every SECONDS (default 2) until Ctrl-C, or N times",
    ),
];

/// A parsed meta-command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    Help,
    Quit,
    ListTables,
    DescribeTable(String),
    ListFunctions,
    DescribeFunction(String),
    Models,
    Timing(Option<bool>),
    Format(Format),
    MaxRows(Option<usize>),
    Include(PathBuf),
    Output(Option<PathBuf>),
    Expanded(Option<ExpandedMode>),
    Digits(Option<usize>),
    Edit,
    Copy {
        /// The query to run; the last result when `None`.
        query: Option<String>,
        path: PathBuf,
    },
    Chart(ChartSpec),
    Watch {
        every: Duration,
        /// Runs before stopping; until Ctrl-C when `None`.
        times: Option<usize>,
    },
}

/// `\x` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpandedMode {
    Off,
    On,
    /// Records only for a table wider than the terminal.
    Auto,
}

/// Most significant digits `\digits` accepts: all an f64 has.
pub const MAX_DIGITS: usize = 17;

impl Meta {
    /// Parses a line that starts with a backslash.
    pub fn parse(line: &str) -> Result<Self, String> {
        let line = line.trim().trim_end_matches(';').trim_end();
        let (cmd, arg) = match line.split_once(char::is_whitespace) {
            Some((c, a)) => (c, Some(a.trim()).filter(|a| !a.is_empty())),
            None => (line, None),
        };
        let needs = |what: &str| format!("{cmd} needs {what}; see \\?");
        Ok(match (cmd, arg) {
            ("\\?" | "\\h" | "\\help", None) => Meta::Help,
            ("\\q" | "\\quit", None) => Meta::Quit,
            ("\\d", None) => Meta::ListTables,
            ("\\d", Some(name)) => Meta::DescribeTable(name.to_string()),
            ("\\df", None) => Meta::ListFunctions,
            ("\\df", Some(name)) => Meta::DescribeFunction(name.to_string()),
            ("\\models", None) => Meta::Models,
            ("\\timing", None) => Meta::Timing(None),
            ("\\timing", Some("on")) => Meta::Timing(Some(true)),
            ("\\timing", Some("off")) => Meta::Timing(Some(false)),
            ("\\timing", Some(_)) => return Err(needs("on or off")),
            ("\\format", Some(f)) => Meta::Format(f.parse()?),
            ("\\format", None) => return Err(needs(&format!("one of {}", Format::NAMES))),
            ("\\maxrows", Some("all" | "inf" | "0")) => Meta::MaxRows(None),
            ("\\maxrows", Some(n)) => {
                Meta::MaxRows(Some(n.parse().map_err(|_| needs("a number or all"))?))
            }
            ("\\maxrows", None) => return Err(needs("a number or all")),
            ("\\i", Some(path)) => Meta::Include(PathBuf::from(path)),
            ("\\i", None) => return Err(needs("a file name")),
            ("\\o", path) => Meta::Output(path.map(PathBuf::from)),
            ("\\x", None) => Meta::Expanded(None),
            ("\\x", Some("on")) => Meta::Expanded(Some(ExpandedMode::On)),
            ("\\x", Some("off")) => Meta::Expanded(Some(ExpandedMode::Off)),
            ("\\x", Some("auto")) => Meta::Expanded(Some(ExpandedMode::Auto)),
            ("\\x", Some(_)) => return Err(needs("on, off or auto")),
            ("\\digits", Some("full" | "all")) => Meta::Digits(None),
            ("\\digits", Some(n)) => match n.parse() {
                Ok(n) if (1..=MAX_DIGITS).contains(&n) => Meta::Digits(Some(n)),
                _ => return Err(needs(&format!("a number from 1 to {MAX_DIGITS}, or full"))),
            },
            ("\\digits", None) => {
                return Err(needs(&format!("a number from 1 to {MAX_DIGITS}, or full")));
            }
            ("\\e" | "\\edit", None) => Meta::Edit,
            ("\\copy", Some(arg)) => parse_copy(arg).ok_or_else(|| {
                needs("a target: \\copy TO 'file.csv' or \\copy (SELECT ...) TO 'file.csv'")
            })?,
            ("\\copy", None) => return Err(needs("a target: \\copy TO 'file.csv'")),
            ("\\chart", arg) => Meta::Chart(ChartSpec::parse(arg.unwrap_or(""))?),
            ("\\watch", arg) => parse_watch(arg.unwrap_or("")).map_err(|e| needs(&e))?,
            _ => {
                return Err(format!(
                    "unknown command {cmd}{}; \\? lists the commands",
                    arg.map(|a| format!(" {a}")).unwrap_or_default()
                ));
            }
        })
    }
}

/// `[(QUERY)] TO FILE`: the file may be quoted; `TO` is optional without a query.
fn parse_copy(arg: &str) -> Option<Meta> {
    let (query, rest) = match arg.strip_prefix('(') {
        Some(inner) => {
            let close = inner.rfind(')')?;
            (
                Some(inner[..close].trim().to_string()),
                inner[close + 1..].trim(),
            )
        }
        None => (None, arg),
    };
    let rest = match rest.split_once(char::is_whitespace) {
        Some((to, path)) if to.eq_ignore_ascii_case("to") => path.trim(),
        _ if query.is_some() => return None,
        _ => rest,
    };
    let path = rest.trim_matches(|c| c == '\'' || c == '"');
    let query_ok = query.as_ref().is_none_or(|q| !q.is_empty());
    (!path.is_empty() && query_ok).then(|| Meta::Copy {
        query,
        path: PathBuf::from(path),
    })
}

/// `[SECONDS] [c=N]`, as psql's `\watch` (also `i=SECONDS`, `count=N`, `interval=SECONDS`).
fn parse_watch(arg: &str) -> Result<Meta, String> {
    let mut every = Duration::from_secs(2);
    let mut times = None;
    let bad = || "a number of seconds and optionally c=TIMES".to_string();
    for word in arg.split_whitespace() {
        match word.split_once('=') {
            Some(("c" | "count", n)) => {
                times = Some(n.parse().ok().filter(|&n: &usize| n > 0).ok_or_else(bad)?);
            }
            Some(("i" | "interval", s)) => every = seconds(s).ok_or_else(bad)?,
            None => every = seconds(word).ok_or_else(bad)?,
            Some(_) => return Err(bad()),
        }
    }
    Ok(Meta::Watch { every, times })
}

fn seconds(s: &str) -> Option<Duration> {
    s.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// The text `\?` prints.
pub fn help() -> String {
    let width = META_COMMANDS
        .iter()
        .map(|(c, _)| c.len())
        .max()
        .unwrap_or(0);
    let mut text = String::from(
        "Type SQL ending with ; to run it (it may span lines). Tab completes keywords, tables,\n\
         columns and functions; Ctrl-C cancels a running query; Ctrl-D quits.\n\n",
    );
    for (cmd, what) in META_COMMANDS {
        text += &format!("  {cmd:width$}  {what}\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        assert_eq!(Meta::parse("\\?"), Ok(Meta::Help));
        assert_eq!(Meta::parse("  \\q  "), Ok(Meta::Quit));
        assert_eq!(Meta::parse("\\d"), Ok(Meta::ListTables));
        assert_eq!(
            Meta::parse("\\d customers;"),
            Ok(Meta::DescribeTable("customers".into()))
        );
        assert_eq!(Meta::parse("\\df"), Ok(Meta::ListFunctions));
        assert_eq!(
            Meta::parse("\\df abs"),
            Ok(Meta::DescribeFunction("abs".into()))
        );
        assert_eq!(Meta::parse("\\models"), Ok(Meta::Models));
        assert_eq!(Meta::parse("\\timing"), Ok(Meta::Timing(None)));
        assert_eq!(Meta::parse("\\timing off"), Ok(Meta::Timing(Some(false))));
        assert_eq!(Meta::parse("\\format CSV"), Ok(Meta::Format(Format::Csv)));
        assert_eq!(Meta::parse("\\maxrows 5"), Ok(Meta::MaxRows(Some(5))));
        assert_eq!(Meta::parse("\\maxrows all"), Ok(Meta::MaxRows(None)));
        assert_eq!(
            Meta::parse("\\i jobs/a.sql"),
            Ok(Meta::Include("jobs/a.sql".into()))
        );
        assert_eq!(Meta::parse("\\o"), Ok(Meta::Output(None)));
        assert_eq!(
            Meta::parse("\\o out.txt"),
            Ok(Meta::Output(Some("out.txt".into())))
        );
        assert_eq!(Meta::parse("\\x"), Ok(Meta::Expanded(None)));
        assert_eq!(
            Meta::parse("\\x auto"),
            Ok(Meta::Expanded(Some(ExpandedMode::Auto)))
        );
        assert_eq!(Meta::parse("\\digits 3"), Ok(Meta::Digits(Some(3))));
        assert_eq!(Meta::parse("\\digits full"), Ok(Meta::Digits(None)));
        assert_eq!(Meta::parse("\\e"), Ok(Meta::Edit));
        assert_eq!(
            Meta::parse("\\copy to 'out.csv'"),
            Ok(Meta::Copy {
                query: None,
                path: "out.csv".into()
            })
        );
        assert_eq!(
            Meta::parse("\\copy (SELECT (1)) TO out.json"),
            Ok(Meta::Copy {
                query: Some("SELECT (1)".into()),
                path: "out.json".into()
            })
        );
        assert_eq!(
            Meta::parse("\\watch"),
            Ok(Meta::Watch {
                every: Duration::from_secs(2),
                times: None
            })
        );
        assert_eq!(
            Meta::parse("\\watch 0.5 c=3"),
            Ok(Meta::Watch {
                every: Duration::from_millis(500),
                times: Some(3)
            })
        );
    }

    #[test]
    fn bad_commands_say_what_to_do() {
        assert_eq!(
            Meta::parse("\\xx"),
            Err("unknown command \\xx; \\? lists the commands".into())
        );
        assert!(Meta::parse("\\digits 40").unwrap_err().contains("1 to 17"));
        assert!(Meta::parse("\\watch c=0").is_err());
        assert!(Meta::parse("\\copy (SELECT 1) 'x.csv'").is_err());
        assert!(
            Meta::parse("\\format xml")
                .unwrap_err()
                .contains("table, csv")
        );
        assert_eq!(
            Meta::parse("\\timing maybe"),
            Err("\\timing needs on or off; see \\?".into())
        );
        assert!(Meta::parse("\\i").unwrap_err().contains("file name"));
    }
}
