//! Features as small bin numbers: numeric values cut at quantiles, categories by their code.
//! Every feature's last bin holds its missing values (NULL, and for a category a level the
//! fit never saw), so a histogram learns which side they go.

use serde::{Deserialize, Serialize};

use super::{Column, MISSING};

/// Categories beyond this many (by code) share the missing bin: a bin number is one byte.
pub const MAX_CATEGORIES: u32 = 255;

/// Fewest rows a numeric bin holds, as LightGBM's `min_data_in_bin`.
const MIN_ROWS_PER_BIN: usize = 3;

/// Values this close to zero are zero, in a bin of their own (LightGBM's `kZeroThreshold`).
const ZERO: f64 = 1e-35;

/// How one feature's values become bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Bins {
    /// Bin `b` holds the values in `(bounds[b - 1], bounds[b]]`; the values above the last
    /// bound are bin `bounds.len()`.
    Numeric { bounds: Vec<f64> },
    /// Bin `c` holds level code `c`; `levels` codes are known.
    Categorical { levels: u32 },
}

impl Bins {
    /// The bins of a numeric feature from (a sample of) its values, NaN for missing, cut as
    /// LightGBM cuts them: negative and positive values apart, sharing the bins by their
    /// rows, with zero in a bin of its own between them; on each side a bin per distinct
    /// value while there are few enough, each with a few rows, else [`greedy`] quantiles;
    /// bounds halfway between neighbouring values.
    pub fn numeric(values: &mut Vec<f64>, max_bins: usize) -> Self {
        let sampled = values.len();
        values.retain(|v| !v.is_nan());
        // Missing values take one of the bins, as in LightGBM.
        let max_bins = if values.len() < sampled {
            max_bins.saturating_sub(1).max(1)
        } else {
            max_bins
        };
        values.sort_unstable_by(f64::total_cmp);
        let mut distinct: Vec<(f64, usize)> = Vec::new();
        for &v in values.iter() {
            match distinct.last_mut() {
                Some((last, n)) if *last == v => *n += 1,
                _ => distinct.push((v, 1)),
            }
        }
        let negative = distinct.partition_point(|&(v, _)| v <= -ZERO);
        let positive = distinct.partition_point(|&(v, _)| v <= ZERO);
        let rows = |d: &[(f64, usize)]| d.iter().map(|&(_, n)| n).sum::<usize>();
        let (below, above) = (rows(&distinct[..negative]), rows(&distinct[positive..]));
        let mut bounds = Vec::new();
        if negative > 0 && max_bins > 1 {
            let share = below as f64 / (below + above) as f64 * (max_bins - 1) as f64;
            bounds = greedy(&distinct[..negative], (share as usize).max(1));
            bounds.push(-ZERO);
        }
        let rest = max_bins.saturating_sub(1 + bounds.len());
        if positive < distinct.len() && rest > 0 {
            bounds.push(ZERO);
            bounds.extend(greedy(&distinct[positive..], rest));
        }
        Bins::Numeric { bounds }
    }

    pub fn categorical(levels: usize) -> Self {
        Bins::Categorical {
            levels: (levels as u32).min(MAX_CATEGORIES),
        }
    }

    /// Bins of values, the missing bin last.
    pub fn count(&self) -> usize {
        match self {
            Bins::Numeric { bounds } => bounds.len() + 2,
            Bins::Categorical { levels } => *levels as usize + 1,
        }
    }

    /// The missing values' bin.
    pub fn missing(&self) -> u8 {
        (self.count() - 1) as u8
    }

    /// The bin of every value of `column`.
    pub fn bin(&self, column: &Column) -> Vec<u8> {
        let missing = self.missing();
        match (self, column) {
            (Bins::Numeric { bounds }, Column::Numeric(x)) => x
                .iter()
                .map(|&v| {
                    if v.is_nan() {
                        missing
                    } else {
                        bounds.partition_point(|&b| b < v) as u8
                    }
                })
                .collect(),
            (Bins::Categorical { levels }, Column::Categorical(codes)) => codes
                .iter()
                .map(|&c| {
                    if c == MISSING || c >= *levels {
                        missing
                    } else {
                        c as u8
                    }
                })
                .collect(),
            _ => vec![missing; column.len()],
        }
    }
}

/// The bounds of at most `max_bins` bins of sorted distinct values with their counts,
/// without the last (above every value), as LightGBM's greedy binning draws them: a bin per
/// value when there are at most `max_bins` (each with a few rows); else a value with at
/// least a bin's share of the rows is a bin of its own, and the other bins take the rows
/// left in equal shares, the share drawn again after each bin.
fn greedy(distinct: &[(f64, usize)], max_bins: usize) -> Vec<f64> {
    let middle = |i: usize| distinct[i].0 + (distinct[i + 1].0 - distinct[i].0) / 2.0;
    let mut bounds = Vec::new();
    let mut in_bin = 0;
    if distinct.len() <= max_bins {
        for (i, &(_, n)) in distinct
            .iter()
            .enumerate()
            .take(distinct.len().saturating_sub(1))
        {
            in_bin += n;
            if in_bin >= MIN_ROWS_PER_BIN {
                bounds.push(middle(i));
                in_bin = 0;
            }
        }
        return bounds;
    }
    let total: usize = distinct.iter().map(|&(_, n)| n).sum();
    let max_bins = max_bins.min(total / MIN_ROWS_PER_BIN).max(1);
    let share = total as f64 / max_bins as f64;
    let big: Vec<bool> = distinct.iter().map(|&(_, n)| n as f64 >= share).collect();
    let big_rows: usize = distinct
        .iter()
        .zip(&big)
        .filter(|(_, b)| **b)
        .map(|(d, _)| d.1)
        .sum();
    let mut rest_bins = (max_bins - big.iter().filter(|b| **b).count()) as f64;
    let mut rest_rows = (total - big_rows) as f64;
    let mut share = rest_rows / rest_bins;
    for i in 0..distinct.len() - 1 {
        let n = distinct[i].1;
        if !big[i] {
            rest_rows -= n as f64;
        }
        in_bin += n;
        let full = in_bin as f64 >= share;
        let before_big = big[i + 1] && in_bin as f64 >= (share * 0.5).max(1.0);
        if big[i] || full || before_big {
            bounds.push(middle(i));
            if bounds.len() + 1 >= max_bins {
                break;
            }
            in_bin = 0;
            if !big[i] {
                rest_bins -= 1.0;
                share = rest_rows / rest_bins;
            }
        }
    }
    bounds
}

/// Rows of binned features, held twice: column by column, for a split's partition (one
/// feature of many rows), and row by row, for a histogram (every feature of a node's rows,
/// which deeper in a tree are scattered: one cache line a row instead of one a feature).
#[derive(Debug, Clone)]
pub struct Binned {
    pub bins: Vec<Bins>,
    pub columns: Vec<Vec<u8>>,
    /// Row `r`'s bins are `matrix[r * d..(r + 1) * d]` for `d` features.
    matrix: Vec<u8>,
}

impl Binned {
    /// Features binned by `bins`, their columns appended as the rows are read.
    pub fn new(bins: Vec<Bins>) -> Self {
        Self {
            columns: vec![Vec::new(); bins.len()],
            bins,
            matrix: Vec::new(),
        }
    }

    /// Appends rows, one column per feature.
    pub fn push(&mut self, columns: &[Column]) {
        let binned = self.bin(columns);
        self.push_bins(binned);
    }

    /// The bins of rows, one column per feature, for [`Binned::push_bins`]: batches can be
    /// binned in parallel and appended in order.
    pub fn bin(&self, columns: &[Column]) -> Vec<Vec<u8>> {
        self.bins
            .iter()
            .zip(columns)
            .map(|(b, c)| b.bin(c))
            .collect()
    }

    /// Appends rows already binned, one column per feature.
    pub fn push_bins(&mut self, binned: Vec<Vec<u8>>) {
        let d = self.bins.len();
        let start = self.rows();
        for (out, column) in self.columns.iter_mut().zip(binned) {
            out.extend(column);
        }
        let rows = self.rows() - start;
        self.matrix.resize(self.matrix.len() + rows * d, 0);
        let added = &mut self.matrix[start * d..];
        for (f, column) in self.columns.iter().enumerate() {
            for (row, &b) in added.chunks_exact_mut(d).zip(&column[start..]) {
                row[f] = b;
            }
        }
    }

    /// Row `r`'s bins, feature by feature.
    pub fn row(&self, r: usize) -> &[u8] {
        let d = self.bins.len();
        &self.matrix[r * d..(r + 1) * d]
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bin_per_value_then_quantiles() {
        let mut few: Vec<f64> = (0..30).map(|i| f64::from(i % 3)).collect();
        let bins = Bins::numeric(&mut few, 255);
        assert_eq!(
            bins,
            Bins::Numeric {
                bounds: vec![ZERO, 1.5]
            }
        );
        assert_eq!(
            bins.bin(&Column::Numeric(&[0.0, 0.5, 0.7, 2.0, 9.0, f64::NAN])),
            vec![0, 1, 1, 2, 2, 3]
        );
        let mut many: Vec<f64> = (0..10_000).map(f64::from).collect();
        let Bins::Numeric { bounds } = Bins::numeric(&mut many, 16) else {
            unreachable!()
        };
        // Zero's bin, then 15 for the rest, 667 rows each to begin with.
        assert_eq!(bounds.len(), 15);
        assert_eq!(&bounds[..2], &[ZERO, 667.5]);
        // A missing value in the sample takes one of the 16 bins.
        let mut with_missing: Vec<f64> = (0..10_000).map(f64::from).collect();
        with_missing.push(f64::NAN);
        let Bins::Numeric { bounds } = Bins::numeric(&mut with_missing, 16) else {
            unreachable!()
        };
        assert_eq!(bounds.len(), 14);
    }

    #[test]
    fn negatives_and_positives_share_the_bins_by_their_rows() {
        let mut values: Vec<f64> = (1..=1000).map(|i| -f64::from(i)).collect();
        values.extend((1..=3000).map(f64::from));
        values.extend([0.0; 100]);
        let Bins::Numeric { bounds } = Bins::numeric(&mut values, 17) else {
            unreachable!()
        };
        // A quarter of the 16 bins for the negatives, zero's bin, the rest above it.
        assert_eq!(bounds.len(), 16);
        assert_eq!(bounds.iter().filter(|&&b| b < 0.0).count(), 4);
        assert_eq!(&bounds[3..5], &[-ZERO, ZERO]);
        assert!(bounds.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn rare_values_share_a_bin() {
        let mut values = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let Bins::Numeric { bounds } = Bins::numeric(&mut values, 255) else {
            unreachable!()
        };
        assert_eq!(bounds, vec![ZERO, 3.5, 6.5]);
    }

    #[test]
    fn unseen_and_missing_categories_share_the_last_bin() {
        let bins = Bins::categorical(3);
        assert_eq!(
            bins.bin(&Column::Categorical(&[0, 2, 3, MISSING])),
            vec![0, 2, 3, 3]
        );
    }
}
