//! Gradient-boosted decision trees: features binned once ([`binning`]), trees grown
//! leaf-wise on gradient/hessian histograms ([`histogram`], [`split`], [`grow`]) by a
//! boosting loop ([`boost`]), and each prediction explained exactly by TreeSHAP ([`shap`]).
//!
//! Inputs are columns of numbers (NaN for missing) or of category codes ([`MISSING`] for
//! missing); a split sends missing values to the side that trained better.

pub mod binning;
pub mod boost;
pub mod grow;
pub mod histogram;
pub mod shap;
pub mod split;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use binning::{Binned, Bins, MAX_CATEGORIES};

pub use boost::{Fit, Objective, Params, boost};

/// The code of a missing category: NULL, or a level the fit never saw.
pub const MISSING: u32 = u32::MAX;

/// One feature's values for some rows.
#[derive(Debug, Clone, Copy)]
pub enum Column<'a> {
    /// NaN is missing.
    Numeric(&'a [f64]),
    /// Codes of levels; [`MISSING`] is missing.
    Categorical(&'a [u32]),
}

impl Column<'_> {
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(x) => x.len(),
            Column::Categorical(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether row `r` goes left under `rule`.
    fn goes_left(&self, r: usize, rule: &Rule, missing_left: bool) -> bool {
        match (self, rule) {
            (Column::Numeric(x), Rule::AtMost(t)) if !x[r].is_nan() => x[r] <= *t,
            (Column::Categorical(c), Rule::In(set)) if c[r] < MAX_CATEGORIES => set.contains(&c[r]),
            _ => missing_left,
        }
    }
}

/// Which rows of a split go left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Values up to this one.
    AtMost(f64),
    /// These category codes.
    In(Vec<u32>),
}

/// A node of a tree; `count` is the training rows that reached it (TreeSHAP's cover).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    Split {
        feature: u32,
        rule: Rule,
        /// Where missing values go.
        missing_left: bool,
        left: u32,
        right: u32,
        /// The loss reduction of the split, for feature importance.
        gain: f64,
        count: u64,
    },
    Leaf {
        value: f64,
        count: u64,
    },
}

impl Node {
    pub fn count(&self) -> u64 {
        match self {
            Node::Split { count, .. } | Node::Leaf { count, .. } => *count,
        }
    }
}

/// A decision tree, root first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The leaf value of row `r` of `columns`.
    pub fn value(&self, columns: &[Column], r: usize) -> f64 {
        let mut i = 0;
        loop {
            match &self.nodes[i] {
                Node::Leaf { value, .. } => return *value,
                Node::Split {
                    feature,
                    rule,
                    missing_left,
                    left,
                    right,
                    ..
                } => {
                    let go_left = columns[*feature as usize].goes_left(r, rule, *missing_left);
                    i = if go_left { *left } else { *right } as usize;
                }
            }
        }
    }

    /// The leaf value of row `r` of binned data.
    pub fn binned_value(&self, data: &Binned, r: usize) -> f64 {
        let mut i = 0;
        loop {
            match &self.nodes[i] {
                Node::Leaf { value, .. } => return *value,
                Node::Split {
                    feature,
                    rule,
                    missing_left,
                    left,
                    right,
                    ..
                } => {
                    let f = *feature as usize;
                    let b = data.columns[f][r];
                    let bins = &data.bins[f];
                    let go_left = if b == bins.missing() {
                        *missing_left
                    } else {
                        match (bins, rule) {
                            // A threshold is one of the bounds: bin b is at most it when
                            // its own upper bound is.
                            (Bins::Numeric { bounds }, Rule::AtMost(t)) => {
                                bounds.get(b as usize).is_some_and(|u| u <= t)
                            }
                            (_, Rule::In(set)) => set.contains(&u32::from(b)),
                            (Bins::Categorical { .. }, Rule::AtMost(_)) => *missing_left,
                        }
                    };
                    i = if go_left { *left } else { *right } as usize;
                }
            }
        }
    }

    /// The mean leaf value over the training rows: the tree's prediction when nothing is
    /// known of a row, TreeSHAP's base value.
    pub fn expected(&self) -> f64 {
        let root = self.nodes[0].count() as f64;
        self.nodes
            .iter()
            .map(|n| match n {
                Node::Leaf { value, count } => value * *count as f64 / root,
                Node::Split { .. } => 0.0,
            })
            .sum()
    }
}

/// A boosted ensemble: raw score = base + the sum of the trees' values (log-odds for a
/// binary objective).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    pub base: f64,
    pub trees: Vec<Tree>,
}

/// Rows scored by one task.
const SCORE_CHUNK: usize = 4096;

impl Forest {
    /// The raw score of every row of `columns`.
    pub fn raw(&self, columns: &[Column]) -> Vec<f64> {
        let n = columns.first().map_or(0, Column::len);
        let mut out = vec![self.base; n];
        out.par_chunks_mut(SCORE_CHUNK)
            .enumerate()
            .for_each(|(c, chunk)| {
                for tree in &self.trees {
                    for (k, o) in chunk.iter_mut().enumerate() {
                        *o += tree.value(columns, c * SCORE_CHUNK + k);
                    }
                }
            });
        out
    }

    /// The raw score when nothing is known of a row: what per-row contributions add to.
    pub fn base_value(&self) -> f64 {
        self.base + self.trees.iter().map(Tree::expected).sum::<f64>()
    }
}

#[cfg(test)]
mod tests;
