//! Features as small bin numbers: numeric values cut at quantiles, categories by their code.
//! Every feature's last bin holds its missing values (NULL, and for a category a level the
//! fit never saw), so a histogram learns which side they go.

use serde::{Deserialize, Serialize};

use super::{Column, MISSING};

/// Categories beyond this many (by code) share the missing bin: a bin number is one byte.
pub const MAX_CATEGORIES: u32 = 255;

/// Fewest rows a numeric bin holds, as LightGBM's `min_data_in_bin`.
const MIN_ROWS_PER_BIN: usize = 3;

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
    /// The bins of a numeric feature from (a sample of) its values, NaN for missing: a bin
    /// per distinct value while there are at most `max_bins`, quantiles otherwise, each
    /// bin with at least a few rows; bounds halfway between neighbouring values, as
    /// LightGBM places them.
    pub fn numeric(values: &mut Vec<f64>, max_bins: usize) -> Self {
        values.retain(|v| !v.is_nan());
        values.sort_unstable_by(f64::total_cmp);
        let mut distinct: Vec<(f64, usize)> = Vec::new();
        for &v in values.iter() {
            match distinct.last_mut() {
                Some((last, n)) if *last == v => *n += 1,
                _ => distinct.push((v, 1)),
            }
        }
        let total = values.len();
        // Rows a bin should hold: all of a value's rows stay in one bin.
        let target = if distinct.len() <= max_bins {
            MIN_ROWS_PER_BIN
        } else {
            (total / max_bins).max(MIN_ROWS_PER_BIN)
        };
        let mut bounds = Vec::new();
        let mut in_bin = 0;
        for (i, &(v, n)) in distinct.iter().enumerate() {
            in_bin += n;
            let Some(&(next, _)) = distinct.get(i + 1) else {
                break;
            };
            if in_bin >= target && bounds.len() + 2 <= max_bins {
                bounds.push(v + (next - v) / 2.0);
                in_bin = 0;
            }
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
                bounds: vec![0.5, 1.5]
            }
        );
        assert_eq!(
            bins.bin(&Column::Numeric(&[0.0, 0.5, 0.7, 2.0, 9.0, f64::NAN])),
            vec![0, 0, 1, 2, 2, 3]
        );
        let mut many: Vec<f64> = (0..10_000).map(f64::from).collect();
        let Bins::Numeric { bounds } = Bins::numeric(&mut many, 16) else {
            unreachable!()
        };
        assert_eq!(bounds.len(), 15);
        assert_eq!(bounds[0], 624.5);
    }

    #[test]
    fn rare_values_share_a_bin() {
        let mut values = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let Bins::Numeric { bounds } = Bins::numeric(&mut values, 255) else {
            unreachable!()
        };
        assert_eq!(bounds, vec![3.5, 6.5]);
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
