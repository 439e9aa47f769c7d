//! The best split of a node on one feature, from the feature's histogram: a threshold for a
//! numeric feature, a set of categories for a categorical one (LightGBM's rules), and for
//! each which side the missing bin goes.

use super::binning::Bins;
use super::histogram::Sums;

/// Categories a node may send one way or the other one by one; with more, categories are
/// ordered by their mean gradient and cut once (LightGBM's `max_cat_to_onehot`).
const ONE_VS_REST: usize = 4;
/// Added to the hessian when categories are ordered by gradient over hessian
/// (`cat_smooth`); categories with fewer rows are left out of the ordering.
const CATEGORY_SMOOTHING: f64 = 10.0;
/// Extra L2 penalty of a many-vs-many category split (`cat_l2`).
const CATEGORY_L2: f64 = 10.0;
/// Most categories on the left of a split (`max_cat_threshold`).
const MAX_LEFT_CATEGORIES: usize = 32;
/// Fewest rows between two candidate cuts of ordered categories (`min_data_per_group`).
const MIN_ROWS_PER_GROUP: u64 = 100;
/// Least hessian a child holds (`min_sum_hessian_in_leaf`).
const MIN_HESSIAN: f64 = 1e-3;

/// What a split must respect.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub l2: f64,
    /// Rows each child holds at least; with hessians other than 1 (the log loss) a side's
    /// rows are estimated from its hessian, as LightGBM's `min_data_in_leaf` is.
    pub min_rows: u64,
}

/// Where the rows of a split go.
#[derive(Debug, Clone, PartialEq)]
pub enum Cut {
    /// Bins up to and including `bin` go left: the values up to `value`.
    Threshold { bin: u8, value: f64 },
    /// These category bins go left.
    Categories(Vec<u8>),
}

/// A candidate split of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub feature: usize,
    pub gain: f64,
    pub cut: Cut,
    pub missing_left: bool,
    pub left: Sums,
    pub right: Sums,
}

/// The loss reduction of a leaf with these sums: G² / (H + λ).
pub fn leaf_gain(s: &Sums, l2: f64) -> f64 {
    s.g * s.g / (s.h + l2)
}

/// The leaf value that minimises the second-order loss: -G / (H + λ).
pub fn leaf_value(s: &Sums, l2: f64) -> f64 {
    -s.g / (s.h + l2)
}

/// The best split of a node of `rows` rows with `total` sums on feature `feature` (binned
/// by `bins`, histogram `hist`); `None` when no split gains. A side's rows are the sum of
/// its bins' estimates from their hessians (exact when every hessian is 1), as LightGBM
/// counts them.
pub fn best_split(
    feature: usize,
    bins: &Bins,
    hist: &[Sums],
    total: &Sums,
    rows: u64,
    limits: Limits,
) -> Option<Split> {
    let parent = leaf_gain(total, limits.l2);
    let per_hessian = rows as f64 / total.h;
    // Rounded as LightGBM rounds (half up, by truncation), without a library call.
    let count = |s: &Sums| (s.h * per_hessian + 0.5) as u64;
    let mut best: Option<Split> = None;
    let mut consider = |left: Sums, left_rows: u64, cut: Cut, missing_left: bool, l2: f64| {
        let right = total.minus(&left);
        if left_rows < limits.min_rows
            || rows.saturating_sub(left_rows) < limits.min_rows
            || left.h < MIN_HESSIAN
            || right.h < MIN_HESSIAN
        {
            return;
        }
        let gain = leaf_gain(&left, l2) + leaf_gain(&right, l2) - parent;
        if gain > 0.0 && best.as_ref().is_none_or(|b| gain > b.gain) {
            best = Some(Split {
                feature,
                gain,
                cut,
                missing_left,
                left,
                right,
            });
        }
    };
    let (values, missing) = hist.split_at(hist.len() - 1);
    let missing = missing[0];
    match bins {
        Bins::Numeric { bounds } => {
            // As LightGBM scans: from the top bin down with the missing rows left (the
            // higher cut wins a tie), then, when there are missing rows, from the bottom up
            // with them right.
            let cut = |b: usize| Cut::Threshold {
                bin: b as u8,
                value: bounds[b],
            };
            let (mut right, mut right_rows) = (Sums::default(), 0);
            for b in (1..values.len()).rev() {
                right.add(&values[b]);
                right_rows += count(&values[b]);
                let left_rows = rows.saturating_sub(right_rows);
                consider(total.minus(&right), left_rows, cut(b - 1), true, limits.l2);
            }
            if missing.h > 0.0 {
                let (mut left, mut left_rows) = (Sums::default(), 0);
                for (b, s) in values.iter().enumerate().take(values.len() - 1) {
                    left.add(s);
                    left_rows += count(s);
                    consider(left, left_rows, cut(b), false, limits.l2);
                }
            }
        }
        Bins::Categorical { .. } => {
            // The missing bin is one more category: its side is learned like any other's.
            let used: Vec<usize> = (0..hist.len()).filter(|&c| hist[c].h > 0.0).collect();
            let missing_bin = hist.len() - 1;
            if used.len() <= ONE_VS_REST {
                for &c in &used {
                    consider(
                        hist[c],
                        count(&hist[c]),
                        Cut::Categories(vec![c as u8]),
                        c == missing_bin,
                        limits.l2,
                    );
                }
            } else {
                let l2 = limits.l2 + CATEGORY_L2;
                let mut order: Vec<usize> = used
                    .into_iter()
                    .filter(|&c| count(&hist[c]) as f64 >= CATEGORY_SMOOTHING)
                    .collect();
                let ratio = |c: usize| hist[c].g / (hist[c].h + CATEGORY_SMOOTHING);
                order.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)));
                let most = MAX_LEFT_CATEGORIES.min(order.len().div_ceil(2));
                for reversed in [false, true] {
                    let (mut left, mut left_rows) = (Sums::default(), 0);
                    let mut since_cut = 0;
                    let mut set = Vec::new();
                    for k in 0..order.len().min(most) {
                        let c = if reversed {
                            order[order.len() - 1 - k]
                        } else {
                            order[k]
                        };
                        let n = count(&hist[c]);
                        left.add(&hist[c]);
                        left_rows += n;
                        since_cut += n;
                        set.push(c as u8);
                        let right_rows = rows.saturating_sub(left_rows);
                        if right_rows < limits.min_rows.max(MIN_ROWS_PER_GROUP) {
                            break;
                        }
                        if since_cut < MIN_ROWS_PER_GROUP {
                            continue;
                        }
                        since_cut = 0;
                        let mut sorted = set.clone();
                        sorted.sort_unstable();
                        let missing_left = sorted.last() == Some(&(missing_bin as u8));
                        consider(left, left_rows, Cut::Categories(sorted), missing_left, l2);
                    }
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(g: f64, n: u64) -> Sums {
        Sums { g, h: n as f64 }
    }

    #[test]
    fn threshold_and_the_side_of_missing_values() {
        // Bins 0-1 pull down, 2-3 up; the missing rows pull down, so they go left.
        let hist = [
            sums(-30.0, 30),
            sums(-30.0, 30),
            sums(30.0, 30),
            sums(30.0, 30),
            sums(-20.0, 20),
        ];
        let mut total = Sums::default();
        hist.iter().for_each(|s| total.add(s));
        let bins = Bins::Numeric {
            bounds: vec![1.0, 2.0, 3.0],
        };
        let limits = Limits {
            l2: 0.0,
            min_rows: 20,
        };
        let split = best_split(0, &bins, &hist, &total, 140, limits).unwrap();
        assert_eq!(split.cut, Cut::Threshold { bin: 1, value: 2.0 });
        assert!(split.missing_left);
        assert_eq!(split.left.h, 80.0);
        let expected = 80.0f64.powi(2) / 80.0 + 60.0f64.powi(2) / 60.0 - 20.0f64.powi(2) / 140.0;
        assert!((split.gain - expected).abs() < 1e-9);
        // Leaves of at least 100 rows: no split.
        let limits = Limits {
            l2: 0.0,
            min_rows: 100,
        };
        assert_eq!(best_split(0, &bins, &hist, &total, 140, limits), None);
    }

    #[test]
    fn categories_ordered_by_their_gradient() {
        // Categories 0, 2 and 4 pull up, 1, 3 and 5 down: one cut separates them.
        let hist: Vec<Sums> = (0..7)
            .map(|c| match c {
                6 => Sums::default(),
                c if c % 2 == 0 => sums(100.0, 200),
                _ => sums(-100.0, 200),
            })
            .collect();
        let mut total = Sums::default();
        hist.iter().for_each(|s| total.add(s));
        let bins = Bins::Categorical { levels: 6 };
        let limits = Limits {
            l2: 0.0,
            min_rows: 20,
        };
        let split = best_split(3, &bins, &hist, &total, 1200, limits).unwrap();
        assert_eq!(split.cut, Cut::Categories(vec![1, 3, 5]));
        assert!(!split.missing_left);
        assert_eq!(split.feature, 3);
    }
}
