//! Backslash meta-commands of the interactive shell.

use std::path::PathBuf;

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
}

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
            _ => {
                return Err(format!(
                    "unknown command {cmd}{}; \\? lists the commands",
                    arg.map(|a| format!(" {a}")).unwrap_or_default()
                ));
            }
        })
    }
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
    }

    #[test]
    fn bad_commands_say_what_to_do() {
        assert_eq!(
            Meta::parse("\\x"),
            Err("unknown command \\x; \\? lists the commands".into())
        );
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
