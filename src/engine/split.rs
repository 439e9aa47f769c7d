//! Splitting SQL text into statements.
//!
//! One lexical scanner serves the script runner (split a file into statements with their line
//! numbers) and the shell (is the typed input complete?). It understands single-quoted strings
//! (with `''` and, in `E'..'` strings, backslash escapes), double-quoted and backtick-quoted
//! identifiers, `--` line comments, nested `/* */` block comments and `$tag$` dollar quoting, so
//! a `;` inside any of them never ends a statement. A line that starts a statement with a
//! backslash is a meta-command (`\d`, `\chart`), ended by the end of the line as in psql.

/// One statement cut out of a larger text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The statement text without its terminating `;`.
    pub text: String,
    /// 1-based line, in the whole text, of the statement's first non-blank character.
    pub line: usize,
    /// Whether a `;` ended it (false only for the text after the last `;`).
    pub terminated: bool,
    /// A backslash meta-command (the whole line, backslash included) rather than SQL.
    pub meta: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    /// Inside '...'; `escapes` for E'...' strings, where a backslash escapes the next char.
    Str {
        escapes: bool,
    },
    /// Inside "..." or `...`.
    Ident(char),
    LineComment,
    /// Depth of nested /* */ comments.
    BlockComment(usize),
    /// Inside $tag$ ... $tag$; the index into `tags` of the opening delimiter.
    Dollar(usize),
}

/// Splits `sql` at every top-level `;`. Pieces that hold only whitespace and comments are
/// dropped. The last piece is returned with `terminated == false` when text follows the last
/// `;`.
pub fn split_statements(sql: &str) -> Vec<Piece> {
    let mut scan = Scanner::new(sql);
    let mut pieces = Vec::new();
    let mut start = 0;
    while let Some((end, boundary)) = scan.next_boundary() {
        match boundary {
            Boundary::Semicolon => {
                push_piece(&mut pieces, sql, start, end, true);
                start = end + 1;
            }
            Boundary::Meta => {
                let stop = scan.skip_line();
                let text = sql[end..stop].trim();
                pieces.push(Piece {
                    text: text.to_string(),
                    line: 1 + sql[..end].matches('\n').count(),
                    terminated: true,
                    meta: true,
                });
                start = stop;
            }
        }
    }
    push_piece(&mut pieces, sql, start, sql.len(), false);
    pieces
}

/// What ends a piece.
enum Boundary {
    Semicolon,
    /// A backslash where a statement would start.
    Meta,
}

/// True when `sql` holds at least one statement and everything in it is terminated by a `;`
/// outside strings, quoted identifiers and comments: what the shell waits for before running.
pub fn is_complete(sql: &str) -> bool {
    let pieces = split_statements(sql);
    !pieces.is_empty() && pieces.iter().all(|p| p.terminated)
}

fn push_piece(pieces: &mut Vec<Piece>, sql: &str, start: usize, end: usize, terminated: bool) {
    let raw = &sql[start..end];
    if !has_code(raw) {
        return;
    }
    let lead = raw.len() - raw.trim_start().len();
    let line = 1 + sql[..start + lead].matches('\n').count();
    pieces.push(Piece {
        text: raw.trim().to_string(),
        line,
        terminated,
        meta: false,
    });
}

/// Whether `text` holds anything besides whitespace and comments.
pub fn has_code(text: &str) -> bool {
    let mut scan = Scanner::new(text);
    scan.run(|state, c| state == State::Normal && !c.is_whitespace())
}

struct Scanner<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    state: State,
    prev: Option<char>,
    tags: Vec<String>,
    text: &'a str,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            chars: text.char_indices().peekable(),
            state: State::Normal,
            prev: None,
            tags: Vec::new(),
            text,
        }
    }

    /// Byte offset of the next top-level `;`, or of a backslash before any code of the
    /// next statement.
    fn next_boundary(&mut self) -> Option<(usize, Boundary)> {
        let mut found = None;
        let mut code = false;
        self.run_with_pos(|_, c, at| {
            found = match c {
                ';' => Some((at, Boundary::Semicolon)),
                '\\' if !code => Some((at, Boundary::Meta)),
                _ => {
                    code |= !c.is_whitespace();
                    None
                }
            };
            found.is_some()
        });
        found
    }

    /// Moves past the end of the current line; returns the offset after it.
    fn skip_line(&mut self) -> usize {
        for (at, c) in self.chars.by_ref() {
            if c == '\n' {
                self.prev = Some(c);
                return at + 1;
            }
        }
        self.text.len()
    }

    /// Feeds every code character (state and char) to `stop` until it returns true.
    fn run(&mut self, mut stop: impl FnMut(State, char) -> bool) -> bool {
        self.run_with_pos(|s, c, _| stop(s, c))
    }

    /// Advances through the text, calling `stop` with each character that is seen in the
    /// normal state (outside strings, identifiers and comments) or that opens one of them.
    /// Returns true if `stop` asked to stop.
    fn run_with_pos(&mut self, mut stop: impl FnMut(State, char, usize) -> bool) -> bool {
        while let Some((at, c)) = self.chars.next() {
            let prev = self.prev.replace(c);
            match self.state {
                State::Normal => {
                    let next = self.chars.peek().map(|&(_, n)| n);
                    match c {
                        '-' if next == Some('-') => {
                            self.chars.next();
                            self.state = State::LineComment;
                            continue;
                        }
                        '/' if next == Some('*') => {
                            self.chars.next();
                            self.prev = None;
                            self.state = State::BlockComment(1);
                            continue;
                        }
                        '\'' => {
                            let escapes = matches!(prev, Some('e' | 'E'))
                                && !self.text[..at.saturating_sub(1)]
                                    .ends_with(|ch: char| ch.is_alphanumeric() || ch == '_');
                            self.state = State::Str { escapes };
                        }
                        '"' | '`' => self.state = State::Ident(c),
                        '$' => {
                            if let Some(tag) = self.dollar_tag(at, prev) {
                                for _ in 1..tag.chars().count() {
                                    self.chars.next();
                                }
                                self.tags.push(tag);
                                self.state = State::Dollar(self.tags.len() - 1);
                            }
                        }
                        _ => {}
                    }
                    if stop(State::Normal, c, at) {
                        return true;
                    }
                }
                State::Str { escapes } => {
                    if escapes && c == '\\' {
                        self.chars.next();
                        self.prev = None;
                    } else if c == '\'' {
                        if self.chars.peek().map(|&(_, n)| n) == Some('\'') {
                            self.chars.next();
                        } else {
                            self.state = State::Normal;
                        }
                    }
                }
                State::Ident(q) => {
                    if c == q {
                        if self.chars.peek().map(|&(_, n)| n) == Some(q) {
                            self.chars.next();
                        } else {
                            self.state = State::Normal;
                        }
                    }
                }
                State::LineComment => {
                    if c == '\n' {
                        self.state = State::Normal;
                    }
                }
                State::BlockComment(depth) => {
                    let next = self.chars.peek().map(|&(_, n)| n);
                    if c == '*' && next == Some('/') {
                        self.chars.next();
                        self.prev = None;
                        self.state = if depth == 1 {
                            State::Normal
                        } else {
                            State::BlockComment(depth - 1)
                        };
                    } else if c == '/' && next == Some('*') {
                        self.chars.next();
                        self.prev = None;
                        self.state = State::BlockComment(depth + 1);
                    }
                }
                State::Dollar(i) => {
                    let tag = &self.tags[i];
                    if c == '$' && self.text[at..].starts_with(tag.as_str()) {
                        for _ in 1..tag.chars().count() {
                            self.chars.next();
                        }
                        self.state = State::Normal;
                    }
                }
            }
        }
        false
    }

    /// The `$tag$` delimiter starting at `at`, if one does (a `$1` placeholder or a `$` inside
    /// a word is not one).
    fn dollar_tag(&self, at: usize, prev: Option<char>) -> Option<String> {
        if prev.is_some_and(|p| p.is_alphanumeric() || p == '_') {
            return None;
        }
        let rest = &self.text[at + 1..];
        let end = rest.find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))?;
        let name = &rest[..end];
        if rest[end..].starts_with('$') && !name.starts_with(|ch: char| ch.is_ascii_digit()) {
            Some(format!("${name}$"))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_commands_end_at_the_line_end() {
        let sql = "\\timing off\nSELECT 1;\n  \\d customers\nSELECT '\\x'\n, 2; -- \\no\n\\q";
        let pieces: Vec<_> = split_statements(sql)
            .into_iter()
            .map(|p| (p.text, p.line, p.meta))
            .collect();
        assert_eq!(
            pieces,
            vec![
                ("\\timing off".into(), 1, true),
                ("SELECT 1".into(), 2, false),
                ("\\d customers".into(), 3, true),
                ("SELECT '\\x'\n, 2".into(), 4, false),
                ("\\q".into(), 6, true),
            ]
        );
        // A backslash inside a statement is the statement's.
        assert_eq!(split_statements("SELECT 1 \\ 2;").len(), 1);
    }

    fn texts(sql: &str) -> Vec<(String, usize, bool)> {
        split_statements(sql)
            .into_iter()
            .map(|p| (p.text, p.line, p.terminated))
            .collect()
    }

    #[test]
    fn splits_at_top_level_semicolons_with_lines() {
        let sql = "SELECT 1;\n\nSELECT 'a;b';\n  -- c; d\nSELECT \"x;y\" FROM t";
        assert_eq!(
            texts(sql),
            vec![
                ("SELECT 1".into(), 1, true),
                ("SELECT 'a;b'".into(), 3, true),
                ("-- c; d\nSELECT \"x;y\" FROM t".into(), 4, false),
            ]
        );
    }

    #[test]
    fn quotes_escapes_and_comments_hide_semicolons() {
        let sql =
            "SELECT 'it''s;', E'a\\';b', `q;`, /* x; /* nested; */ y; */ $$ a; $$, $t$ ; $t$;";
        let pieces = split_statements(sql);
        assert_eq!(pieces.len(), 1, "{pieces:?}");
        assert!(pieces[0].terminated);
    }

    #[test]
    fn placeholders_are_not_dollar_quotes() {
        let pieces = split_statements("SELECT $1; SELECT a$b$ FROM t; SELECT 2;");
        assert_eq!(pieces.len(), 3, "{pieces:?}");
    }

    #[test]
    fn comment_only_pieces_are_dropped() {
        assert!(split_statements("-- nothing\n/* here */ ;  ; ").is_empty());
        assert!(!has_code("  -- x\n/* y */"));
        assert!(has_code("-- x\nSELECT"));
    }

    #[test]
    fn completeness() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1; -- trailing comment"));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("SELECT ';"));
        assert!(!is_complete("SELECT 1 /* ; */"));
        assert!(!is_complete("SELECT 1; SELECT 2"));
        assert!(!is_complete(""));
        assert!(!is_complete("-- only a comment;"));
    }
}
