//! The front end for cohort's own statements.
//!
//! DataFusion's parser has no hook for new statements, so every statement is first looked at
//! here: `CREATE [OR REPLACE] MODEL`, `DROP MODEL`, `SHOW MODELS` and `DESCRIBE MODEL` become a
//! typed [`ModelStatement`]; anything else is handed to DataFusion untouched.

pub use cohort_udfs::model::OptionValue;
use datafusion::common::{DataFusionError, Result};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Word};

/// A statement as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// One of cohort's model statements.
    Model(ModelStatement),
    /// Anything else: DataFusion parses and plans the text itself.
    Sql(String),
}

/// cohort's model DDL, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelStatement {
    Create(CreateModel),
    Drop { name: String, if_exists: bool },
    Show,
    Describe { name: String },
}

/// `CREATE [OR REPLACE] MODEL [IF NOT EXISTS] name OPTIONS (...) AS query`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateModel {
    pub name: String,
    pub or_replace: bool,
    pub if_not_exists: bool,
    /// Options in the order written; keys lower-cased.
    pub options: Vec<(String, OptionValue)>,
    /// The training query's text exactly as written.
    pub query: String,
}

impl CreateModel {
    /// The value of option `key` (case-insensitive).
    pub fn option(&self, key: &str) -> Option<&OptionValue> {
        let key = key.to_ascii_lowercase();
        self.options.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// Parses one statement. Model statements are recognised by their first words; everything
/// else is returned as [`Statement::Sql`] for DataFusion.
pub fn parse_statement(sql: &str) -> Result<Statement> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| DataFusionError::SQL(Box::new(e.into()), None))?;
    let mut p = Cursor::new(sql, tokens);
    let statement = if p.keyword(Keyword::CREATE) {
        let or_replace = p.keywords(&[Keyword::OR, Keyword::REPLACE]);
        if !p.word("MODEL") {
            return Ok(Statement::Sql(sql.to_string()));
        }
        ModelStatement::Create(p.create_model(or_replace)?)
    } else if p.keyword(Keyword::DROP) && p.word("MODEL") {
        let if_exists = p.keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = p.model_name()?;
        ModelStatement::Drop { name, if_exists }
    } else if p.restart() && p.keyword(Keyword::SHOW) && p.word("MODELS") {
        ModelStatement::Show
    } else if p.restart()
        && (p.keyword(Keyword::DESCRIBE) || p.keyword(Keyword::DESC))
        && p.word("MODEL")
    {
        let name = p.model_name()?;
        ModelStatement::Describe { name }
    } else {
        return Ok(Statement::Sql(sql.to_string()));
    };
    p.end()?;
    Ok(Statement::Model(statement))
}

/// A cursor over the significant tokens of one statement.
struct Cursor<'a> {
    sql: &'a str,
    tokens: Vec<TokenWithSpan>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(sql: &'a str, tokens: Vec<TokenWithSpan>) -> Self {
        let tokens = tokens
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        Self {
            sql,
            tokens,
            pos: 0,
        }
    }

    /// Goes back to the first token; returns true so it can sit inside a condition chain.
    fn restart(&mut self) -> bool {
        self.pos = 0;
        true
    }

    fn peek(&self) -> Option<&TokenWithSpan> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<TokenWithSpan> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&mut self, kw: Keyword) -> bool {
        let hit = matches!(self.peek(), Some(TokenWithSpan { token: Token::Word(w), .. }) if w.keyword == kw && w.quote_style.is_none());
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Consumes all of `kws` or none of them.
    fn keywords(&mut self, kws: &[Keyword]) -> bool {
        let start = self.pos;
        if kws.iter().all(|&k| self.keyword(k)) {
            true
        } else {
            self.pos = start;
            false
        }
    }

    /// Consumes an unquoted word equal to `word` (case-insensitive), keyword or not.
    fn word(&mut self, word: &str) -> bool {
        let hit = matches!(self.peek(), Some(TokenWithSpan { token: Token::Word(w), .. }) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word));
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn location(&self) -> Location {
        match self.peek() {
            Some(t) => t.span.start,
            None => self
                .tokens
                .last()
                .map(|t| t.span.end)
                .unwrap_or(Location { line: 1, column: 1 }),
        }
    }

    fn expected(&self, what: &str) -> DataFusionError {
        let found = match self.peek() {
            Some(t) => format!("{}", t.token),
            None => "end of statement".to_string(),
        };
        let at = self.location();
        DataFusionError::Plan(format!(
            "syntax error: expected {what}, found {found} at line {}, column {}",
            at.line, at.column
        ))
    }

    fn expect(&mut self, token: Token, what: &str) -> Result<()> {
        if self.peek().map(|t| &t.token) == Some(&token) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    /// A model name: one identifier, lower-cased unless quoted (DataFusion's rule for names).
    fn model_name(&mut self) -> Result<String> {
        let name = match self.peek() {
            Some(TokenWithSpan {
                token:
                    Token::Word(Word {
                        value, quote_style, ..
                    }),
                ..
            }) => match quote_style {
                Some(_) => value.clone(),
                None => value.to_ascii_lowercase(),
            },
            _ => return Err(self.expected("a model name")),
        };
        self.pos += 1;
        if matches!(self.peek().map(|t| &t.token), Some(Token::Period)) {
            return Err(DataFusionError::Plan(format!(
                "model names have no schema or catalog part; write just the name, e.g. {name}"
            )));
        }
        Ok(name)
    }

    fn create_model(&mut self, or_replace: bool) -> Result<CreateModel> {
        let if_not_exists = self.keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        if or_replace && if_not_exists {
            return Err(DataFusionError::Plan(
                "CREATE OR REPLACE MODEL and IF NOT EXISTS cannot be used together; keep one"
                    .to_string(),
            ));
        }
        let name = self.model_name()?;
        let mut options = Vec::new();
        if self.keyword(Keyword::OPTIONS) {
            self.expect(Token::LParen, "( after OPTIONS")?;
            loop {
                let key = match self.next() {
                    Some(TokenWithSpan {
                        token: Token::Word(w),
                        ..
                    }) => w.value.to_ascii_lowercase(),
                    _ => {
                        self.pos -= 1;
                        return Err(self.expected("an option name"));
                    }
                };
                if options.iter().any(|(k, _)| *k == key) {
                    return Err(DataFusionError::Plan(format!(
                        "option {key} is given more than once in CREATE MODEL {name}"
                    )));
                }
                self.expect(Token::Eq, &format!("= after option {key}"))?;
                let value = self.option_value(&key)?;
                options.push((key, value));
                if self.peek().map(|t| &t.token) == Some(&Token::Comma) {
                    self.pos += 1;
                    continue;
                }
                self.expect(Token::RParen, ", or ) in OPTIONS")?;
                break;
            }
        }
        if !self.keyword(Keyword::AS) {
            return Err(self.expected(if options.is_empty() {
                "OPTIONS (...) or AS <query>"
            } else {
                "AS <query>"
            }));
        }
        let Some(start) = self.peek().map(|t| t.span.start) else {
            return Err(self.expected("a query after AS"));
        };
        let query = self.sql[byte_offset(self.sql, start)..]
            .trim_end()
            .trim_end_matches(';')
            .trim_end()
            .to_string();
        self.pos = self.tokens.len();
        Ok(CreateModel {
            name,
            or_replace,
            if_not_exists,
            options,
            query,
        })
    }

    /// An option's value: a literal, or to tune over, a list of literals `[a, b]` or
    /// `RANGE(lo, hi)` / `LOG_RANGE(lo, hi)` of numbers.
    fn option_value(&mut self, key: &str) -> Result<OptionValue> {
        if self.peek().map(|t| &t.token) == Some(&Token::LBracket) {
            self.pos += 1;
            let mut values = Vec::new();
            loop {
                values.push(self.literal(key)?);
                if self.peek().map(|t| &t.token) == Some(&Token::Comma) {
                    self.pos += 1;
                    continue;
                }
                self.expect(
                    Token::RBracket,
                    &format!(", or ] in the list for option {key}"),
                )?;
                return Ok(OptionValue::List(values));
            }
        }
        for (word, log) in [("RANGE", false), ("LOG_RANGE", true)] {
            let at_word = self.pos;
            if self.word(word) {
                if self.peek().map(|t| &t.token) != Some(&Token::LParen) {
                    self.pos = at_word;
                    break;
                }
                self.pos += 1;
                let bound = |p: &mut Self| match p.literal(key)? {
                    OptionValue::Number(n) => Ok(n),
                    _ => Err(DataFusionError::Plan(format!(
                        "{word}(lo, hi) for option {key} takes two numbers"
                    ))),
                };
                let lo = bound(self)?;
                self.expect(Token::Comma, &format!(", between the bounds of {word}"))?;
                let hi = bound(self)?;
                self.expect(Token::RParen, &format!(") after the bounds of {word}"))?;
                return Ok(OptionValue::Range { lo, hi, log });
            }
        }
        self.literal(key)
    }

    /// One literal option value: a string, a number, true or false, or a typed literal.
    fn literal(&mut self, key: &str) -> Result<OptionValue> {
        let negative = self.peek().map(|t| &t.token) == Some(&Token::Minus);
        if negative {
            self.pos += 1;
        }
        let value = match self.peek().map(|t| &t.token) {
            Some(Token::Number(n, _)) => {
                OptionValue::Number(if negative { format!("-{n}") } else { n.clone() })
            }
            _ if negative => return Err(self.expected(&format!("a number for option {key}"))),
            Some(Token::SingleQuotedString(s)) => OptionValue::String(s.clone()),
            // A typed literal, DATE '2026-06-30': its text, which the option's reader parses.
            Some(Token::Word(w)) if matches!(w.keyword, Keyword::DATE | Keyword::TIMESTAMP) => {
                match self.tokens.get(self.pos + 1).map(|t| &t.token) {
                    Some(Token::SingleQuotedString(s)) => {
                        let text = s.clone();
                        self.pos += 1;
                        OptionValue::String(text)
                    }
                    _ => {
                        return Err(
                            self.expected(&format!("a quoted date after DATE for option {key}"))
                        );
                    }
                }
            }
            Some(Token::Word(w)) if w.keyword == Keyword::TRUE => OptionValue::Bool(true),
            Some(Token::Word(w)) if w.keyword == Keyword::FALSE => OptionValue::Bool(false),
            _ => {
                return Err(self.expected(&format!(
                    "a literal (string, number, true or false) for option {key}"
                )));
            }
        };
        self.pos += 1;
        Ok(value)
    }

    fn end(&mut self) -> Result<()> {
        while self.peek().map(|t| &t.token) == Some(&Token::SemiColon) {
            self.pos += 1;
        }
        match self.peek() {
            None
            | Some(TokenWithSpan {
                token: Token::EOF, ..
            }) => Ok(()),
            Some(_) => Err(self.expected("end of statement")),
        }
    }
}

/// Byte offset of a 1-based line/column location in `sql`.
fn byte_offset(sql: &str, at: Location) -> usize {
    let line_start: usize = sql
        .split_inclusive('\n')
        .take(at.line.saturating_sub(1) as usize)
        .map(str::len)
        .sum();
    let col = at.column.saturating_sub(1) as usize;
    line_start
        + sql[line_start..]
            .char_indices()
            .nth(col)
            .map(|(i, _)| i)
            .unwrap_or(sql.len() - line_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(sql: &str) -> ModelStatement {
        match parse_statement(sql).unwrap() {
            Statement::Model(m) => m,
            other => panic!("not a model statement: {other:?}"),
        }
    }

    fn error(sql: &str) -> String {
        parse_statement(sql).unwrap_err().to_string()
    }

    #[test]
    fn create_model_with_every_literal_kind() {
        let sql = "create or replace MODEL Churn OPTIONS (model_type = 'logistic_reg', \
                   LABEL='churned', l2_reg = 0.5, max_iterations=50, fit_intercept = FALSE, \
                   shift = -2, calibration_end = DATE '2026-06-30')\n  AS SELECT * FROM customers \
                   WHERE x = ';' ;";
        let ModelStatement::Create(c) = model(sql) else {
            panic!()
        };
        assert_eq!(c.name, "churn");
        assert!(c.or_replace && !c.if_not_exists);
        assert_eq!(
            c.options,
            vec![
                (
                    "model_type".into(),
                    OptionValue::String("logistic_reg".into())
                ),
                ("label".into(), OptionValue::String("churned".into())),
                ("l2_reg".into(), OptionValue::Number("0.5".into())),
                ("max_iterations".into(), OptionValue::Number("50".into())),
                ("fit_intercept".into(), OptionValue::Bool(false)),
                ("shift".into(), OptionValue::Number("-2".into())),
                (
                    "calibration_end".into(),
                    OptionValue::String("2026-06-30".into())
                ),
            ]
        );
        assert_eq!(c.query, "SELECT * FROM customers WHERE x = ';'");
        assert_eq!(c.option("L2_REG").and_then(OptionValue::as_f64), Some(0.5));
        assert_eq!(
            c.option("max_iterations").and_then(OptionValue::as_i64),
            Some(50)
        );
    }

    #[test]
    fn create_model_with_values_to_tune_over() {
        let sql = "CREATE MODEL m OPTIONS (l2_reg = [0, 0.1, 1], num_clusters = RANGE(3, 10), \
                   learning_rate = LOG_RANGE(0.01, -0.3), kind = ['a']) AS SELECT 1";
        let ModelStatement::Create(c) = model(sql) else {
            panic!()
        };
        let number = |n: &str| OptionValue::Number(n.into());
        assert_eq!(
            c.options,
            vec![
                (
                    "l2_reg".into(),
                    OptionValue::List(vec![number("0"), number("0.1"), number("1")])
                ),
                (
                    "num_clusters".into(),
                    OptionValue::Range {
                        lo: "3".into(),
                        hi: "10".into(),
                        log: false
                    }
                ),
                (
                    "learning_rate".into(),
                    OptionValue::Range {
                        lo: "0.01".into(),
                        hi: "-0.3".into(),
                        log: true
                    }
                ),
                (
                    "kind".into(),
                    OptionValue::List(vec![OptionValue::String("a".into())])
                ),
            ]
        );
        assert_eq!(c.options[1].1.to_string(), "RANGE(3, 10)");
        assert!(
            error("CREATE MODEL m OPTIONS (l2_reg = [0, 1) AS SELECT 1")
                .contains("expected , or ] in the list for option l2_reg")
        );
        assert!(
            error("CREATE MODEL m OPTIONS (k = RANGE('a', 2)) AS SELECT 1")
                .contains("RANGE(lo, hi) for option k takes two numbers")
        );
    }

    #[test]
    fn create_model_if_not_exists_quoted_name_no_options() {
        let ModelStatement::Create(c) =
            model("CREATE MODEL IF NOT EXISTS \"MyModel\" AS\nSELECT 1 AS a")
        else {
            panic!()
        };
        assert_eq!(c.name, "MyModel");
        assert!(c.if_not_exists && !c.or_replace);
        assert!(c.options.is_empty());
        assert_eq!(c.query, "SELECT 1 AS a");
    }

    #[test]
    fn query_text_keeps_multibyte_characters() {
        let ModelStatement::Create(c) =
            model("CREATE MODEL m OPTIONS (label = 'é') AS SELECT 'ü' AS x")
        else {
            panic!()
        };
        assert_eq!(c.query, "SELECT 'ü' AS x");
    }

    #[test]
    fn drop_show_describe() {
        assert_eq!(
            model("DROP MODEL IF EXISTS churn;"),
            ModelStatement::Drop {
                name: "churn".into(),
                if_exists: true
            }
        );
        assert_eq!(
            model("drop model Churn"),
            ModelStatement::Drop {
                name: "churn".into(),
                if_exists: false
            }
        );
        assert_eq!(model("SHOW MODELS"), ModelStatement::Show);
        assert_eq!(
            model("describe model seg"),
            ModelStatement::Describe { name: "seg".into() }
        );
    }

    #[test]
    fn other_statements_pass_through() {
        for sql in [
            "SELECT 1",
            "CREATE TABLE t AS SELECT 1",
            "CREATE OR REPLACE VIEW v AS SELECT 1",
            "DROP TABLE t",
            "SHOW TABLES",
            "DESCRIBE t",
            "SELECT model FROM models",
        ] {
            assert_eq!(parse_statement(sql).unwrap(), Statement::Sql(sql.into()));
        }
    }

    #[test]
    fn malformed_statements_report_positions() {
        assert_eq!(
            error("CREATE MODEL m OPTIONS (label 'x') AS SELECT 1"),
            "Error during planning: syntax error: expected = after option label, found 'x' at line 1, column 31"
        );
        assert_eq!(
            error("CREATE MODEL m\nOPTIONS (label = x) AS SELECT 1"),
            "Error during planning: syntax error: expected a literal (string, number, true or false) for option label, found x at line 2, column 18"
        );
        assert_eq!(
            error("CREATE MODEL m SELECT 1"),
            "Error during planning: syntax error: expected OPTIONS (...) or AS <query>, found SELECT at line 1, column 16"
        );
        assert_eq!(
            error("CREATE MODEL m OPTIONS (a = 1 AS SELECT 1"),
            "Error during planning: syntax error: expected , or ) in OPTIONS, found AS at line 1, column 31"
        );
        assert_eq!(
            error("CREATE MODEL m AS"),
            "Error during planning: syntax error: expected a query after AS, found end of statement at line 1, column 18"
        );
        assert_eq!(
            error("DROP MODEL"),
            "Error during planning: syntax error: expected a model name, found end of statement at line 1, column 11"
        );
        assert_eq!(
            error("SHOW MODELS extra"),
            "Error during planning: syntax error: expected end of statement, found extra at line 1, column 13"
        );
        assert!(error("CREATE MODEL s.m AS SELECT 1").contains("no schema or catalog part"));
        assert!(
            error("CREATE MODEL m OPTIONS (a = 1, A = 2) AS SELECT 1").contains("more than once")
        );
        assert!(error("CREATE OR REPLACE MODEL IF NOT EXISTS m AS SELECT 1").contains("keep one"));
        assert!(error("SELECT 'unterminated").contains("Unterminated string literal"));
    }
}
