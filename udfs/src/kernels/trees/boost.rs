//! The boosting loop: each tree fits the gradients of the loss at the current scores, on a
//! sample of the training rows and columns, until the trees are done or the loss on the
//! evaluation rows has not improved for a while.

use rayon::prelude::*;

use super::binning::Binned;
use super::grow::{Growth, grow};
use super::{Forest, Tree};
use crate::kernels::interrupt::interrupted;
use crate::kernels::rng::Rng;

/// The loss the trees minimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Log loss of a 0/1 label; scores are log-odds.
    Binary,
    /// Squared error.
    Squared,
}

impl Objective {
    /// Gradient and hessian of the loss of label `y` at raw score `f`.
    fn gradient(self, f: f64, y: f64) -> (f64, f64) {
        match self {
            Objective::Binary => {
                let p = sigmoid(f);
                (p - y, (p * (1.0 - p)).max(1e-16))
            }
            Objective::Squared => (f - y, 1.0),
        }
    }

    /// The loss of label `y` at raw score `f`.
    pub fn loss(self, f: f64, y: f64) -> f64 {
        match self {
            Objective::Binary => {
                let p = sigmoid(f).clamp(f64::EPSILON, 1.0 - f64::EPSILON);
                -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
            }
            Objective::Squared => (f - y) * (f - y),
        }
    }

    /// The constant score that minimises the loss of labels with mean `mean`.
    fn start(self, mean: f64) -> f64 {
        match self {
            Objective::Binary => (mean / (1.0 - mean)).ln(),
            Objective::Squared => mean,
        }
    }
}

pub fn sigmoid(f: f64) -> f64 {
    1.0 / (1.0 + (-f).exp())
}

/// How the ensemble is fitted.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub objective: Objective,
    pub num_trees: usize,
    pub growth: Growth,
    /// Share of the training rows each tree sees.
    pub subsample: f64,
    /// Share of the features each tree may split on.
    pub colsample: f64,
    pub seed: u64,
    /// Stop when the evaluation loss has not improved for this many trees.
    pub early_stopping_rounds: Option<usize>,
}

/// A fitted ensemble, with the raw score of every row.
#[derive(Debug, Clone)]
pub struct Fit {
    pub forest: Forest,
    pub scores: Vec<f64>,
    /// Mean evaluation loss after each tree (empty without evaluation rows).
    pub eval_loss: Vec<f64>,
    /// Whether the trees after the best evaluation loss were dropped.
    pub stopped_early: bool,
}

/// Fits `params.num_trees` trees to labels `y` of the rows `train` of `data` (rows
/// weighted by `weight` when given); the rows `eval` only measure the loss for early
/// stopping.
pub fn boost(
    data: &Binned,
    y: &[f64],
    weight: Option<&[f64]>,
    train: &[u32],
    eval: &[u32],
    params: &Params,
) -> Fit {
    let objective = params.objective;
    let w = |r: usize| weight.map_or(1.0, |w| w[r]);
    let (sum_wy, sum_w) = train.iter().fold((0.0, 0.0), |(a, b), &r| {
        let r = r as usize;
        (a + w(r) * y[r], b + w(r))
    });
    let base = objective.start(sum_wy / sum_w);
    let n = data.rows();
    let mut scores = vec![base; n];
    let mut gh = vec![(0.0, 0.0); n];
    let mut rows: Vec<u32> = Vec::with_capacity(train.len());
    let mut in_sample = vec![false; n];
    let mut trees: Vec<Tree> = Vec::with_capacity(params.num_trees);
    let mut eval_loss = Vec::new();
    let mut best = (f64::INFINITY, 0);
    let all_features: Vec<usize> = (0..data.bins.len()).collect();
    for t in 0..params.num_trees {
        if interrupted() {
            break;
        }
        crate::kernels::progress::pass(crate::kernels::progress::Stage::Boosting);
        let mut rng = Rng::keyed(params.seed, 0x7265_6573, t as u64);
        gh.par_iter_mut().enumerate().for_each(|(r, gh)| {
            let (g, h) = objective.gradient(scores[r], y[r]);
            *gh = (g * w(r), h * w(r));
        });
        rows.clear();
        if params.subsample < 1.0 {
            rows.extend(train.iter().filter(|_| rng.uniform() < params.subsample));
        } else {
            rows.extend_from_slice(train);
        }
        let features = if params.colsample < 1.0 {
            let k = ((params.colsample * all_features.len() as f64).round() as usize).max(1);
            let mut pool = all_features.clone();
            for i in 0..k {
                let j = i + rng.below((pool.len() - i) as u64) as usize;
                pool.swap(i, j);
            }
            pool.truncate(k);
            pool.sort_unstable();
            pool
        } else {
            all_features.clone()
        };
        let grown = grow(data, &features, &mut rows, &gh, &params.growth);
        for (node, range) in &grown.leaf_rows {
            let value = match &grown.tree.nodes[*node] {
                super::Node::Leaf { value, .. } => *value,
                super::Node::Split { .. } => 0.0,
            };
            for &r in &rows[range.clone()] {
                scores[r as usize] += value;
                in_sample[r as usize] = true;
            }
        }
        // Rows the tree did not see: the training rows out of the sample, the eval rows.
        let unseen: Vec<u32> = train
            .iter()
            .chain(eval)
            .copied()
            .filter(|&r| !in_sample[r as usize])
            .collect();
        let tree = &grown.tree;
        let updates: Vec<f64> = unseen
            .par_iter()
            .map(|&r| tree.binned_value(data, r as usize))
            .collect();
        for (&r, u) in unseen.iter().zip(updates) {
            scores[r as usize] += u;
        }
        for &r in &rows {
            in_sample[r as usize] = false;
        }
        trees.push(grown.tree);
        if let (Some(rounds), false) = (params.early_stopping_rounds, eval.is_empty()) {
            let loss = mean_loss(objective, &scores, y, eval);
            eval_loss.push(loss);
            if loss < best.0 {
                best = (loss, t + 1);
            } else if t + 1 - best.1 >= rounds {
                break;
            }
        }
    }
    let stopped_early = !eval_loss.is_empty() && best.1 < trees.len();
    if stopped_early {
        trees.truncate(best.1);
    }
    let forest = Forest { base, trees };
    if stopped_early {
        scores = (0..n)
            .into_par_iter()
            .map(|r| {
                let sum: f64 = forest.trees.iter().map(|t| t.binned_value(data, r)).sum();
                forest.base + sum
            })
            .collect();
    }
    Fit {
        forest,
        scores,
        eval_loss,
        stopped_early,
    }
}

/// The mean loss over `rows`.
pub fn mean_loss(objective: Objective, scores: &[f64], y: &[f64], rows: &[u32]) -> f64 {
    rows.iter()
        .map(|&r| objective.loss(scores[r as usize], y[r as usize]))
        .sum::<f64>()
        / rows.len() as f64
}
