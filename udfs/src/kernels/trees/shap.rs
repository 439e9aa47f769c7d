//! Exact per-row feature contributions of tree ensembles: TreeSHAP (Lundberg, Erion and Lee,
//! "Consistent individualized feature attribution for tree ensembles", algorithm 2), as the
//! `shap` package and LightGBM's `pred_contrib` compute it. A row's contributions add up,
//! with the ensemble's base value, to its raw score.

use super::{Column, Forest, Node, Tree};

/// One feature on the path from the root to a node: the share of the training rows that
/// follow it when the feature is unknown (`zero`), whether the row follows it (`one`), and
/// the path's weight in the Shapley sums.
#[derive(Debug, Clone, Copy)]
struct Step {
    feature: Option<u32>,
    zero: f64,
    one: f64,
    weight: f64,
}

impl Forest {
    /// Row `r`'s contribution of every feature, added to `phi` (one per feature).
    pub fn contributions(&self, columns: &[Column], r: usize, phi: &mut [f64]) {
        for tree in &self.trees {
            tree.contributions(columns, r, phi);
        }
    }
}

impl Tree {
    /// Row `r`'s contribution of every feature to this tree's value, added to `phi`.
    pub fn contributions(&self, columns: &[Column], r: usize, phi: &mut [f64]) {
        if let Node::Split { .. } = self.nodes[0] {
            self.recurse(columns, r, phi, 0, Vec::new(), 1.0, 1.0, None);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &self,
        columns: &[Column],
        r: usize,
        phi: &mut [f64],
        node: usize,
        mut path: Vec<Step>,
        zero: f64,
        one: f64,
        feature: Option<u32>,
    ) {
        extend(&mut path, zero, one, feature);
        match &self.nodes[node] {
            Node::Leaf { value, .. } => {
                for i in 1..path.len() {
                    let w = unwound_sum(&path, i);
                    let s = path[i];
                    if let Some(f) = s.feature {
                        phi[f as usize] += w * (s.one - s.zero) * value;
                    }
                }
            }
            Node::Split {
                feature: f,
                rule,
                missing_left,
                left,
                right,
                count,
                ..
            } => {
                let go_left = columns[*f as usize].goes_left(r, rule, *missing_left);
                let (hot, cold) = if go_left {
                    (*left as usize, *right as usize)
                } else {
                    (*right as usize, *left as usize)
                };
                let cover = *count as f64;
                let hot_zero = self.nodes[hot].count() as f64 / cover;
                let cold_zero = self.nodes[cold].count() as f64 / cover;
                // A feature met again on the path: its earlier step is undone and its
                // fractions carried into this one.
                let (mut in_zero, mut in_one) = (1.0, 1.0);
                if let Some(k) = path.iter().position(|s| s.feature == Some(*f)) {
                    in_zero = path[k].zero;
                    in_one = path[k].one;
                    unwind(&mut path, k);
                }
                self.recurse(
                    columns,
                    r,
                    phi,
                    hot,
                    path.clone(),
                    hot_zero * in_zero,
                    in_one,
                    Some(*f),
                );
                self.recurse(
                    columns,
                    r,
                    phi,
                    cold,
                    path,
                    cold_zero * in_zero,
                    0.0,
                    Some(*f),
                );
            }
        }
    }
}

/// Adds a step to the path, updating the weights of the subsets it may join.
fn extend(path: &mut Vec<Step>, zero: f64, one: f64, feature: Option<u32>) {
    let d = path.len();
    path.push(Step {
        feature,
        zero,
        one,
        weight: if d == 0 { 1.0 } else { 0.0 },
    });
    let depth = (d + 1) as f64;
    for i in (0..d).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / depth;
        path[i].weight = zero * path[i].weight * (d - i) as f64 / depth;
    }
}

/// Removes step `k` from the path, undoing its [`extend`].
fn unwind(path: &mut Vec<Step>, k: usize) {
    let d = path.len() - 1;
    let (one, zero) = (path[k].one, path[k].zero);
    let depth = (d + 1) as f64;
    let mut next = path[d].weight;
    for i in (0..d).rev() {
        if one != 0.0 {
            let w = path[i].weight;
            path[i].weight = next * depth / ((i + 1) as f64 * one);
            next = w - path[i].weight * zero * (d - i) as f64 / depth;
        } else {
            path[i].weight = path[i].weight * depth / (zero * (d - i) as f64);
        }
    }
    for i in k..d {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
    path.pop();
}

/// The total weight the path would have without step `k`.
fn unwound_sum(path: &[Step], k: usize) -> f64 {
    let d = path.len() - 1;
    let (one, zero) = (path[k].one, path[k].zero);
    let depth = (d + 1) as f64;
    let mut next = path[d].weight;
    let mut total = 0.0;
    for i in (0..d).rev() {
        if one != 0.0 {
            let w = next * depth / ((i + 1) as f64 * one);
            total += w;
            next = path[i].weight - w * zero * (d - i) as f64 / depth;
        } else if zero != 0.0 {
            total += path[i].weight / zero / ((d - i) as f64 / depth);
        }
    }
    total
}
