//! Line editing support: multi-line input, completion and highlighting.

use std::borrow::Cow;
use std::collections::BTreeSet;

use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::meta::META_COMMANDS;
use crate::engine::split::is_complete;

const KEYWORD: &str = "\x1b[1;34m";
const STRING: &str = "\x1b[32m";
const COMMENT: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// The shell's rustyline helper. `names` (tables, columns, functions) is refreshed by the
/// shell after every statement, so completion sees tables created a moment ago.
pub struct ShellHelper {
    pub names: BTreeSet<String>,
    files: FilenameCompleter,
    color: bool,
}

impl ShellHelper {
    pub fn new(color: bool) -> Self {
        Self {
            names: BTreeSet::new(),
            files: FilenameCompleter::new(),
            color,
        }
    }
}

impl Helper for ShellHelper {}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Validator for ShellHelper {
    /// A statement runs once it ends with `;` outside strings and comments; meta-commands
    /// and blank lines run at once.
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        if input.is_empty() || input.starts_with('\\') || is_complete(input) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let trimmed = before.trim_start();
        if trimmed.starts_with('\\') {
            if !trimmed.contains(char::is_whitespace) {
                let start = pos - trimmed.len();
                let pairs = META_COMMANDS
                    .iter()
                    .filter(|(cmd, _)| cmd.starts_with(trimmed))
                    .map(|(cmd, _)| pair(cmd))
                    .collect();
                return Ok((start, pairs));
            }
            if trimmed.starts_with("\\i ") || trimmed.starts_with("\\o ") {
                return self.files.complete(line, pos, ctx);
            }
        }
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| {
                i + before[i..].chars().next().map_or(1, char::len_utf8)
            });
        let word = &before[start..];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let lower = word.to_lowercase();
        let upper_case = word.chars().any(char::is_uppercase);
        let mut out: Vec<Pair> = self
            .names
            .iter()
            .filter(|n| n.to_lowercase().starts_with(&lower))
            .map(|n| pair(n))
            .collect();
        out.extend(
            ALL_KEYWORDS
                .iter()
                .filter(|k| k.to_lowercase().starts_with(&lower))
                .map(|k| {
                    if upper_case {
                        pair(k)
                    } else {
                        pair(&k.to_lowercase())
                    }
                }),
        );
        out.dedup_by(|a, b| a.replacement == b.replacement);
        Ok((start, out))
    }
}

fn pair(s: &str) -> Pair {
    Pair {
        display: s.to_string(),
        replacement: s.to_string(),
    }
}

impl Highlighter for ShellHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.color || line.trim_start().starts_with('\\') {
            return Cow::Borrowed(line);
        }
        Cow::Owned(highlight_sql(line))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

/// Colours keywords, string literals and comments with ANSI escapes.
fn highlight_sql(line: &str) -> String {
    let mut out = String::with_capacity(line.len() * 2);
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            let mut end = line.len();
            let mut closed = false;
            while let Some((j, d)) = chars.next() {
                if d == '\'' {
                    if chars.peek().map(|&(_, n)| n) == Some('\'') {
                        chars.next();
                        continue;
                    }
                    end = j + 1;
                    closed = true;
                    break;
                }
            }
            let end = if closed { end } else { line.len() };
            out += &format!("{STRING}{}{RESET}", &line[i..end]);
        } else if c == '-' && chars.peek().map(|&(_, n)| n) == Some('-') {
            let end = line[i..].find('\n').map_or(line.len(), |e| i + e);
            out += &format!("{COMMENT}{}{RESET}", &line[i..end]);
            while chars.peek().is_some_and(|&(j, _)| j < end) {
                chars.next();
            }
        } else if c.is_alphabetic() || c == '_' {
            let mut end = line.len();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    chars.next();
                } else {
                    end = j;
                    break;
                }
            }
            let word = &line[i..end];
            if ALL_KEYWORDS
                .binary_search(&word.to_ascii_uppercase().as_str())
                .is_ok()
            {
                out += &format!("{KEYWORD}{word}{RESET}");
            } else {
                out += word;
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_keywords_strings_and_comments() {
        assert_eq!(
            highlight_sql("select 'it''s' AS x -- note"),
            format!(
                "{KEYWORD}select{RESET} {STRING}'it''s'{RESET} {KEYWORD}AS{RESET} x {COMMENT}-- note{RESET}"
            )
        );
        assert_eq!(highlight_sql("'open"), format!("{STRING}'open{RESET}"));
    }
}
