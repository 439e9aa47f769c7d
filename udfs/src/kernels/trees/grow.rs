//! One tree grown leaf-wise: the leaf whose best split gains most is split next, until the
//! tree has its leaves or no split gains. A node's rows are a range of one index buffer,
//! partitioned in place at each split; the smaller child's histogram is built and the
//! larger's is its parent's less it.

use rayon::prelude::*;

use super::binning::{Binned, Bins};
use super::histogram::{Histogram, Sums};
use super::split::{Cut, Limits, Split, best_split, leaf_value};
use super::{Node, Rule, Tree};

/// How a tree grows.
#[derive(Debug, Clone, Copy)]
pub struct Growth {
    pub num_leaves: usize,
    /// Splits from the root to a leaf at most; `None` for no limit.
    pub max_depth: Option<usize>,
    pub limits: Limits,
    pub learning_rate: f64,
}

/// A leaf while the tree grows.
struct Leaf {
    /// Its rows: `rows[start..end]` of the index buffer.
    start: usize,
    end: usize,
    sums: Sums,
    hist: Histogram,
    depth: usize,
    /// Its node in the tree.
    node: usize,
    best: Option<Split>,
}

/// A grown tree and, per leaf node, the range of `rows` (as partitioned) that ends there.
pub struct Grown {
    pub tree: Tree,
    pub leaf_rows: Vec<(usize, std::ops::Range<usize>)>,
}

/// Grows a tree on `rows` (partitioned in place) of `data`, splitting on `features` only,
/// with each row's gradient and hessian in `gh`; leaf values are scaled by the learning
/// rate.
pub fn grow(
    data: &Binned,
    features: &[usize],
    rows: &mut [u32],
    gh: &[(f64, f64)],
    growth: &Growth,
) -> Grown {
    let hist = Histogram::build(data, features, rows, gh);
    let mut sums = Sums::default();
    if let Some(&f) = features.first() {
        hist.feature(data, f).iter().for_each(|s| sums.add(s));
    }
    let mut nodes = vec![Node::Leaf {
        value: 0.0,
        count: rows.len() as u64,
    }];
    let mut leaves = vec![Leaf {
        start: 0,
        end: rows.len(),
        sums,
        hist,
        depth: 0,
        node: 0,
        best: None,
    }];
    leaves[0].best = find(data, features, &leaves[0], growth);
    let mut scratch: Vec<u32> = Vec::new();
    while leaves.len() < growth.num_leaves {
        let Some(i) = leaves
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.best.as_ref().map(|b| (i, b.gain)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(i, _)| i)
        else {
            break;
        };
        let parent = leaves.swap_remove(i);
        let Some(split) = parent.best.clone() else {
            break;
        };
        let bins = &data.bins[split.feature];
        let column = &data.columns[split.feature];
        // Which side each bin goes, looked up instead of decided per row.
        let mut goes_left = [false; 256];
        for (bin, left) in goes_left.iter_mut().enumerate().take(bins.count()) {
            let bin = bin as u8;
            *left = match &split.cut {
                Cut::Threshold { .. } if bin == bins.missing() => split.missing_left,
                Cut::Threshold { bin: t, .. } => bin <= *t,
                Cut::Categories(set) => set.contains(&bin),
            };
        }
        let l = partition(&mut rows[parent.start..parent.end], &mut scratch, |r| {
            goes_left[usize::from(column[r as usize])]
        });
        let mid = parent.start + l;
        let (left_node, right_node) = (nodes.len(), nodes.len() + 1);
        nodes.push(Node::Leaf {
            value: 0.0,
            count: l as u64,
        });
        nodes.push(Node::Leaf {
            value: 0.0,
            count: (parent.end - mid) as u64,
        });
        nodes[parent.node] = Node::Split {
            feature: split.feature as u32,
            rule: rule(bins, &split.cut),
            missing_left: split.missing_left,
            left: left_node as u32,
            right: right_node as u32,
            gain: split.gain,
            count: (parent.end - parent.start) as u64,
        };
        let (small_rows, small_left) = if l <= parent.end - mid {
            (parent.start..mid, true)
        } else {
            (mid..parent.end, false)
        };
        let small = Histogram::build(data, features, &rows[small_rows], gh);
        let mut large = parent.hist;
        large.subtract(&small);
        let (left_hist, right_hist) = if small_left {
            (small, large)
        } else {
            (large, small)
        };
        let depth = parent.depth + 1;
        let mut children = [
            Leaf {
                start: parent.start,
                end: mid,
                sums: split.left,
                hist: left_hist,
                depth,
                node: left_node,
                best: None,
            },
            Leaf {
                start: mid,
                end: parent.end,
                sums: split.right,
                hist: right_hist,
                depth,
                node: right_node,
                best: None,
            },
        ];
        let [left, right] = &children;
        let (left_best, right_best) = rayon::join(
            || find(data, features, left, growth),
            || find(data, features, right, growth),
        );
        children[0].best = left_best;
        children[1].best = right_best;
        leaves.extend(children);
    }
    let mut leaf_rows = Vec::with_capacity(leaves.len());
    for leaf in &leaves {
        nodes[leaf.node] = Node::Leaf {
            value: growth.learning_rate * leaf_value(&leaf.sums, growth.limits.l2),
            count: (leaf.end - leaf.start) as u64,
        };
        leaf_rows.push((leaf.node, leaf.start..leaf.end));
    }
    Grown {
        tree: Tree { nodes },
        leaf_rows,
    }
}

/// Rows one task of a partition moves.
const PARTITION_CHUNK: usize = 1 << 14;

/// Puts the rows that go `left` first, the others after them, each in their order; returns
/// how many go left. Chunks are partitioned in parallel, then their two parts gathered into
/// `scratch` and copied back.
fn partition(rows: &mut [u32], scratch: &mut Vec<u32>, left: impl Fn(u32) -> bool + Sync) -> usize {
    let lefts: Vec<usize> = rows
        .par_chunks_mut(PARTITION_CHUNK)
        .map(|chunk| {
            // Every row is written to both sides and the side's end moves on for one only:
            // no branch to mispredict on a split that sends rows either way.
            let mut right = vec![0; chunk.len()];
            let (mut l, mut n) = (0, 0);
            for k in 0..chunk.len() {
                let r = chunk[k];
                let goes = left(r);
                chunk[l] = r;
                right[n] = r;
                l += usize::from(goes);
                n += usize::from(!goes);
            }
            chunk[l..].copy_from_slice(&right[..n]);
            l
        })
        .collect();
    if lefts.len() == 1 {
        return lefts[0];
    }
    let total: usize = lefts.iter().sum();
    scratch.clear();
    scratch.resize(rows.len(), 0);
    let (mut to_left, mut to_right) = scratch.split_at_mut(total);
    let mut moves = Vec::with_capacity(lefts.len());
    for (chunk, &l) in rows.chunks(PARTITION_CHUNK).zip(&lefts) {
        let (a, rest) = std::mem::take(&mut to_left).split_at_mut(l);
        to_left = rest;
        let (b, rest) = std::mem::take(&mut to_right).split_at_mut(chunk.len() - l);
        to_right = rest;
        moves.push((chunk, l, a, b));
    }
    moves.into_par_iter().for_each(|(chunk, l, a, b)| {
        a.copy_from_slice(&chunk[..l]);
        b.copy_from_slice(&chunk[l..]);
    });
    rows.par_chunks_mut(PARTITION_CHUNK)
        .zip(scratch.par_chunks(PARTITION_CHUNK))
        .for_each(|(to, from)| to.copy_from_slice(from));
    total
}

/// The best split of a leaf over the features (the two children of a split are searched in
/// parallel: a task per feature would cost more in waking threads than it saves); `None` at
/// the depth limit.
fn find(data: &Binned, features: &[usize], leaf: &Leaf, growth: &Growth) -> Option<Split> {
    let rows = (leaf.end - leaf.start) as u64;
    if growth.max_depth.is_some_and(|d| leaf.depth >= d) || rows < 2 * growth.limits.min_rows {
        return None;
    }
    features
        .iter()
        .filter_map(|&f| {
            best_split(
                f,
                &data.bins[f],
                leaf.hist.feature(data, f),
                &leaf.sums,
                rows,
                growth.limits,
            )
        })
        // The first feature wins a tie.
        .reduce(|a, b| if b.gain > a.gain { b } else { a })
}

/// A split's rule on the values the bins came from.
fn rule(bins: &Bins, cut: &Cut) -> Rule {
    match cut {
        Cut::Threshold { value, .. } => Rule::AtMost(*value),
        Cut::Categories(set) => Rule::In(
            set.iter()
                .filter(|&&b| b != bins.missing())
                .map(|&b| u32::from(b))
                .collect(),
        ),
    }
}
