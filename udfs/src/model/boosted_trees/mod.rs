//! Gradient-boosted trees as stored models: `boosted_tree_classifier` (binary log loss) and
//! `boosted_tree_regressor` (squared error). Both keep the same [`TreeModel`]: numeric
//! features are binned at quantiles, string and boolean features are categories split
//! natively (no one-hot columns), and NULLs and unseen levels go to the side each split
//! learned for them.

mod classifier;
mod regressor;
mod settings;
mod training;

use std::collections::HashMap;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::Float64Type;
use datafusion::common::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::encoding::{FeatureEncoding, as_f64, as_text};
use super::{Contributions, Explainer, Importance};
use crate::kernels::trees::{Column, Forest, MISSING, Node};

pub use classifier::BoostedTreeClassifier;
pub use regressor::BoostedTreeRegressor;
pub use settings::{Eval, TreeSettings};

/// The trees and how their inputs are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeModel {
    pub label: String,
    /// The input columns, in training order (their encoding only says their kind).
    pub features: Vec<FeatureEncoding>,
    /// Per feature, its category levels by code (empty for a number).
    pub levels: Vec<Vec<String>>,
    pub forest: Forest,
}

/// A feature's values as the trees read them.
pub(crate) enum Input {
    Numeric(Vec<f64>),
    Categorical(Vec<u32>),
}

impl Input {
    pub(crate) fn column(&self) -> Column<'_> {
        match self {
            Input::Numeric(x) => Column::Numeric(x),
            Input::Categorical(c) => Column::Categorical(c),
        }
    }
}

impl TreeModel {
    /// The feature columns (in training order) as the trees read them: numbers with NULL
    /// as NaN, categories as codes with NULL and unseen levels as [`MISSING`].
    pub(crate) fn inputs(&self, columns: &[ArrayRef]) -> Result<Vec<Input>> {
        self.features
            .iter()
            .zip(&self.levels)
            .zip(columns)
            .map(|((f, levels), column)| {
                Ok(match f {
                    FeatureEncoding::Numeric { .. } => {
                        let x = as_f64(column, f.name())?;
                        let x = x.as_primitive::<Float64Type>();
                        Input::Numeric(x.iter().map(|v| v.unwrap_or(f64::NAN)).collect::<Vec<_>>())
                    }
                    FeatureEncoding::OneHot { .. } => {
                        let codes: HashMap<&str, u32> = levels
                            .iter()
                            .enumerate()
                            .map(|(i, l)| (l.as_str(), i as u32))
                            .collect();
                        let text = as_text(column, f.name())?;
                        Input::Categorical(
                            text.as_string::<i32>()
                                .iter()
                                .map(|v| v.and_then(|v| codes.get(v).copied()).unwrap_or(MISSING))
                                .collect(),
                        )
                    }
                })
            })
            .collect()
    }

    /// The raw scores (log-odds for the classifier) of feature columns in training order.
    pub fn raw(&self, columns: &[ArrayRef]) -> Result<Vec<f64>> {
        let inputs = self.inputs(columns)?;
        let columns: Vec<Column> = inputs.iter().map(Input::column).collect();
        Ok(self.forest.raw(&columns))
    }

    /// Per feature, the gain of its splits and their number, in training order.
    pub fn importance(&self) -> Vec<Importance> {
        let mut out: Vec<Importance> = self
            .features
            .iter()
            .map(|f| Importance {
                feature: f.name().to_string(),
                gain: 0.0,
                splits: 0,
            })
            .collect();
        for node in self.forest.trees.iter().flat_map(|t| &t.nodes) {
            if let Node::Split { feature, gain, .. } = node {
                out[*feature as usize].gain += gain;
                out[*feature as usize].splits += 1;
            }
        }
        out
    }

    /// What DESCRIBE MODEL says of each feature.
    pub fn describe(&self) -> Vec<String> {
        self.levels
            .iter()
            .map(|levels| match levels.len() {
                0 => "binned at quantiles, NULL to a learned side".to_string(),
                n => format!("{n} categories split natively, NULL and unseen to a learned side"),
            })
            .collect()
    }
}

impl Explainer for TreeModel {
    fn names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name().to_string()).collect()
    }

    /// Each row's exact TreeSHAP contributions of the features, on the raw score's scale.
    fn contributions(&self, columns: &[ArrayRef]) -> Result<Contributions> {
        let inputs = self.inputs(columns)?;
        let columns: Vec<Column> = inputs.iter().map(Input::column).collect();
        let n = columns.first().map_or(0, Column::len);
        let d = columns.len();
        let rows: Vec<Vec<f64>> = (0..n)
            .into_par_iter()
            .map(|r| {
                let mut phi = vec![0.0; d];
                self.forest.contributions(&columns, r, &mut phi);
                phi
            })
            .collect();
        Ok(Contributions {
            base: self.forest.base_value(),
            raw: self.forest.raw(&columns),
            rows,
        })
    }
}
