//! Gradient and hessian histograms: per bin of every feature, the sums over a node's rows.
//! A histogram of a set of rows is the sum of the histograms of any split of those rows, so
//! each chunk (or partition) of a node's rows builds its own and they are added up; and a
//! node's larger child is its parent's histogram less its smaller child's.

use rayon::prelude::*;

use super::binning::Binned;
use crate::kernels::prefetch::prefetch;

/// Rows one chunk of a histogram build covers. Chunks are fixed, so the sums (added in
/// chunk order) do not depend on the number of threads.
const CHUNK: usize = 1 << 14;

/// Rows between one whose gradient and bins are asked of the cache and its use.
const AHEAD: usize = 16;

/// The gradient and hessian sums over the rows that fall in one bin. Rows are not counted
/// (one sum less per row and feature): a split's counts are estimated from its hessian, as
/// LightGBM does, and a node's come from its rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    pub g: f64,
    pub h: f64,
}

impl Sums {
    pub fn add(&mut self, o: &Sums) {
        self.g += o.g;
        self.h += o.h;
    }

    pub fn minus(&self, o: &Sums) -> Sums {
        Sums {
            g: self.g - o.g,
            h: self.h - o.h,
        }
    }
}

/// A feature's bins: as many as a bin number has values, so a bin is found without a
/// bounds check or an offset.
pub type Block = [Sums; 256];

/// A histogram over all features, a block of bins each.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram(pub Vec<Block>);

impl Histogram {
    /// The histogram of `rows` over `features` (the other features' bins stay empty), with
    /// each row's gradient and hessian in `gh`.
    pub fn build(data: &Binned, features: &[usize], rows: &[u32], gh: &[(f64, f64)]) -> Self {
        let chunks: Vec<Histogram> = rows
            .par_chunks(CHUNK)
            .map(|chunk| Self::of_chunk(data, features, chunk, gh))
            .collect();
        let mut chunks = chunks.into_iter();
        let mut total = chunks.next().unwrap_or_else(|| Self::empty(data));
        for part in chunks {
            total.merge(&part);
        }
        total
    }

    fn empty(data: &Binned) -> Self {
        Histogram(vec![[Sums::default(); 256]; data.bins.len()])
    }

    /// One chunk's histogram, row by row: a row's bins are read together, and each bin's
    /// sums still add its rows in order. A deep node's rows are scattered, so the gradients
    /// and bins of the rows [`AHEAD`] on are asked of the cache meanwhile.
    fn of_chunk(data: &Binned, features: &[usize], rows: &[u32], gh: &[(f64, f64)]) -> Self {
        let mut out = Self::empty(data);
        let every = features.len() == out.0.len();
        for (k, &r) in rows.iter().enumerate() {
            if let Some(&next) = rows.get(k + AHEAD) {
                prefetch(&gh[next as usize..=next as usize]);
                prefetch(data.row(next as usize));
            }
            let (g, h) = gh[r as usize];
            let row = data.row(r as usize);
            let add = |bins: &mut Block, b: u8| {
                let s = &mut bins[usize::from(b)];
                s.g += g;
                s.h += h;
            };
            if every {
                for (bins, &b) in out.0.iter_mut().zip(row) {
                    add(bins, b);
                }
            } else {
                for &f in features {
                    add(&mut out.0[f], row[f]);
                }
            }
        }
        out
    }

    /// Adds another set of rows' histogram: the merge of partial histograms.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().flatten().zip(other.0.iter().flatten()) {
            a.add(b);
        }
    }

    /// Takes a subset's histogram away, leaving the rest's: a parent less one child.
    pub fn subtract(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().flatten().zip(other.0.iter().flatten()) {
            *a = a.minus(b);
        }
    }

    /// Feature `f`'s bins.
    pub fn feature<'a>(&'a self, data: &Binned, f: usize) -> &'a [Sums] {
        &self.0[f][..data.bins[f].count()]
    }
}

#[cfg(test)]
mod tests {
    use super::super::Column;
    use super::super::binning::Bins;
    use super::*;

    #[test]
    fn chunks_merge_and_siblings_subtract() {
        let x: Vec<f64> = (0..40_000).map(|i| f64::from(i % 7)).collect();
        let mut data = Binned::new(vec![Bins::numeric(&mut x.clone(), 255)]);
        data.push(&[Column::Numeric(&x)]);
        let gh: Vec<(f64, f64)> = (0..40_000).map(|i| (f64::from(i % 5) - 2.0, 1.0)).collect();
        let all: Vec<u32> = (0..40_000).collect();
        let whole = Histogram::build(&data, &[0], &all, &gh);
        assert_eq!(whole.0[0].iter().map(|s| s.h).sum::<f64>(), 40_000.0);
        let (a, b) = all.split_at(12_345);
        let mut merged = Histogram::build(&data, &[0], a, &gh);
        merged.merge(&Histogram::build(&data, &[0], b, &gh));
        let mut rest = whole.clone();
        rest.subtract(&Histogram::build(&data, &[0], a, &gh));
        for ((w, m), (r, bb)) in whole
            .0
            .iter()
            .zip(&merged.0)
            .zip(rest.0.iter().zip(&Histogram::build(&data, &[0], b, &gh).0))
        {
            // Integer-valued gradients: every order of summing is exact.
            assert_eq!(w, m);
            assert_eq!(r, bb);
        }
    }
}
