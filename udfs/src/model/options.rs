//! CREATE MODEL's options as written, and the readers each model type checks its own
//! options with. Every reader's error names the option, what it takes and what it got.

use std::fmt;
use std::ops::RangeInclusive;

use crate::error::Error;

/// An option's value as written in `OPTIONS (...)`.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    String(String),
    /// A numeric literal kept as written, so integers stay exact.
    Number(String),
    Bool(bool),
    /// Values to tune over, `[a, b, c]`; the engine tries each, so no model reads one.
    List(Vec<OptionValue>),
    /// Numbers to tune over, `RANGE(lo, hi)` or with `log` `LOG_RANGE(lo, hi)`, the bounds
    /// kept as written; the engine picks from it, so no model reads one.
    Range {
        lo: String,
        hi: String,
        log: bool,
    },
}

impl OptionValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            OptionValue::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            OptionValue::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// Whether this is the string `word`, in any case.
    pub fn is_word(&self, word: &str) -> bool {
        matches!(self, OptionValue::String(s) if s.eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            OptionValue::Number(n) => f.write_str(n),
            OptionValue::Bool(b) => write!(f, "{b}"),
            OptionValue::List(values) => {
                let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                write!(f, "[{}]", values.join(", "))
            }
            OptionValue::Range { lo, hi, log } => {
                let name = if *log { "LOG_RANGE" } else { "RANGE" };
                write!(f, "{name}({lo}, {hi})")
            }
        }
    }
}

/// The options of one CREATE MODEL, with the readers that check them.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The model type, for messages.
    pub model_type: &'a str,
    pub values: &'a [(String, OptionValue)],
}

/// The error for an option.
fn invalid(message: String) -> Error {
    Error::InvalidOption(message)
}

impl<'a> Options<'a> {
    pub fn get(&self, name: &str) -> Option<&'a OptionValue> {
        self.values.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Rejects options the model type does not take; `known` lists them, model_type first.
    pub fn check_known(&self, known: &[&str]) -> Result<(), Error> {
        match self
            .values
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            Some((k, _)) => Err(invalid(format!(
                "unknown option {k} for {}; its options are {}",
                self.model_type,
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// The `label` option, required by supervised models.
    pub fn label(&self) -> Result<String, Error> {
        match self.get("label") {
            Some(OptionValue::String(l)) => Ok(l.clone()),
            Some(other) => Err(invalid(format!(
                "label must be a column name string, got {other}"
            ))),
            None => Err(invalid(format!(
                "OPTIONS (label = '<column>') is required for {}",
                self.model_type
            ))),
        }
    }

    /// An integer option in `range`, `default` when absent.
    pub fn integer(
        &self,
        name: &str,
        range: RangeInclusive<i64>,
        default: i64,
    ) -> Result<i64, Error> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.as_i64() {
                Some(n) if range.contains(&n) => Ok(n),
                _ => Err(invalid(format!(
                    "{name} must be an integer from {} to {}, got {v}",
                    range.start(),
                    range.end()
                ))),
            },
        }
    }

    /// A count option (an integer in `range`), `default` when absent.
    pub fn count(
        &self,
        name: &str,
        range: RangeInclusive<i64>,
        default: usize,
    ) -> Result<usize, Error> {
        Ok(self.integer(name, range, default as i64)? as usize)
    }

    /// The `seed` option: an integer >= 0, 42 when absent.
    pub fn seed(&self) -> Result<u64, Error> {
        Ok(self.integer("seed", 0..=i64::MAX, 42)? as u64)
    }

    /// A true/false option, `default` when absent.
    pub fn boolean(&self, name: &str, default: bool) -> Result<bool, Error> {
        match self.get(name) {
            None => Ok(default),
            Some(OptionValue::Bool(b)) => Ok(*b),
            Some(v) => Err(invalid(format!("{name} must be true or false, got {v}"))),
        }
    }

    /// A penalty such as `l1_reg` or `l2_reg`: a number >= 0, `default` when absent.
    pub fn penalty(&self, name: &str, default: f64) -> Result<f64, Error> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.as_f64() {
                Some(l) if l >= 0.0 && l.is_finite() => Ok(l),
                _ => Err(invalid(format!("{name} must be a number >= 0, got {v}"))),
            },
        }
    }

    /// A column name option, `None` when absent.
    pub fn column(&self, name: &str) -> Result<Option<String>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(OptionValue::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(invalid(format!(
                "{name} must be a column name string, got {v}"
            ))),
        }
    }

    /// A string option, `None` when absent.
    pub fn string(&self, name: &str) -> Result<Option<String>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(OptionValue::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(invalid(format!("{name} must be a string, got {v}"))),
        }
    }

    /// The error for option `name`'s value, with `expected` saying what it takes.
    pub fn wrong(&self, name: &str, expected: &str) -> Error {
        let got = self
            .get(name)
            .map_or_else(|| "nothing".to_string(), |v| v.to_string());
        invalid(format!("{name} must be {expected}, got {got}"))
    }

    /// An error with its own message, for an option's rule no reader covers.
    pub fn error(&self, message: impl Into<String>) -> Error {
        invalid(message.into())
    }
}
