//! CREATE MODEL's options of the boosted tree models, with LightGBM's defaults.

use super::super::options::{OptionValue, Options};
use crate::error::Error;
use crate::kernels::trees::grow::Growth;
use crate::kernels::trees::split::Limits;
use crate::kernels::trees::{Objective, Params};

/// The options of a tree model, `model_type` first, then `extra` (the classifier's own).
macro_rules! tree_options {
    ($($extra:literal),*) => {
        &[
            "model_type",
            "label",
            "num_trees",
            "learning_rate",
            "max_depth",
            "num_leaves",
            "min_rows_per_leaf",
            "l2_reg",
            "max_bins",
            "subsample",
            "colsample",
            "early_stopping",
            "early_stopping_rounds",
            "eval_fraction",
            "eval_col",
            "seed",
            $($extra),*
        ]
    };
}

pub const REGRESSOR_OPTIONS: &[&str] = tree_options!();
pub const CLASSIFIER_OPTIONS: &[&str] = tree_options!("positive_class", "class_weight");

/// Which training rows only measure the loss.
#[derive(Debug, Clone, PartialEq)]
pub enum Eval {
    None,
    /// A random share of the rows, drawn with the seed.
    Fraction(f64),
    /// The rows where this boolean column is true.
    Column(String),
}

/// A tree model's options, checked.
#[derive(Debug, Clone)]
pub struct TreeSettings {
    pub label: String,
    pub params: Params,
    pub max_bins: usize,
    pub eval: Eval,
    /// Classifier only: the positive value of a string label.
    pub positive_class: Option<String>,
    /// Classifier only: weight the classes inversely to their frequency.
    pub balanced: bool,
}

/// Share of the rows held out for early stopping when neither eval_fraction nor eval_col
/// says otherwise.
const EVAL_FRACTION: f64 = 0.2;

impl TreeSettings {
    /// The options of a model of `objective`; the classifier's own are read when it is
    /// [`Objective::Binary`].
    pub fn read(options: &Options, objective: Objective) -> Result<Self, Error> {
        let early_stopping = options.boolean("early_stopping", false)?;
        let eval = match (options.get("eval_fraction"), options.column("eval_col")?) {
            (Some(_), Some(_)) => {
                return Err(options.error(
                    "give eval_fraction or eval_col, not both: eval_col names the rows to \
                     evaluate on, eval_fraction draws them at random",
                ));
            }
            (Some(_), None) => Eval::Fraction(share(options, "eval_fraction", 0.0, false)?),
            (None, Some(column)) => Eval::Column(column),
            (None, None) if early_stopping => Eval::Fraction(EVAL_FRACTION),
            (None, None) => Eval::None,
        };
        let (positive_class, balanced) = match objective {
            Objective::Binary => (
                options.string("positive_class")?,
                match options.get("class_weight") {
                    None => false,
                    Some(w) if w.is_word("none") => false,
                    Some(w) if w.is_word("balanced") => true,
                    Some(_) => return Err(options.wrong("class_weight", "'none' or 'balanced'")),
                },
            ),
            Objective::Squared => (None, false),
        };
        let max_depth = match options.integer("max_depth", -1..=1000, -1)? {
            d if d <= 0 => None,
            d => Some(d as usize),
        };
        Ok(TreeSettings {
            label: options.label()?,
            params: Params {
                objective,
                num_trees: options.count("num_trees", 1..=100_000, 100)?,
                growth: Growth {
                    num_leaves: options.count("num_leaves", 2..=131_072, 31)?,
                    max_depth,
                    limits: Limits {
                        l2: options.penalty("l2_reg", 0.0)?,
                        min_rows: options.count("min_rows_per_leaf", 1..=i64::MAX, 20)? as u64,
                    },
                    learning_rate: share(options, "learning_rate", 0.1, true)?,
                },
                subsample: share(options, "subsample", 1.0, true)?,
                colsample: share(options, "colsample", 1.0, true)?,
                seed: options.seed()?,
                early_stopping_rounds: early_stopping
                    .then(|| options.count("early_stopping_rounds", 1..=100_000, 10))
                    .transpose()?,
            },
            max_bins: options.count("max_bins", 2..=255, 255)?,
            eval,
            positive_class,
            balanced,
        })
    }
}

/// A number in (0, 1) (or (0, 1] when `one` may be), `default` when absent.
fn share(options: &Options, name: &str, default: f64, one: bool) -> Result<f64, Error> {
    match options.get(name) {
        None => Ok(default),
        Some(v @ OptionValue::Number(_)) => match v.as_f64() {
            Some(x) if x > 0.0 && (x < 1.0 || (one && x == 1.0)) => Ok(x),
            _ => Err(wrong_share(options, name, one)),
        },
        Some(_) => Err(wrong_share(options, name, one)),
    }
}

fn wrong_share(options: &Options, name: &str, one: bool) -> Error {
    let range = if one { "in (0, 1]" } else { "in (0, 1)" };
    options.wrong(name, &format!("a number {range}"))
}
