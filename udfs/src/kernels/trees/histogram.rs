//! Gradient and hessian histograms: per bin of every feature, the sums over a node's rows.
//! A histogram of a set of rows is the sum of the histograms of any split of those rows, so
//! each chunk (or partition) of a node's rows builds its own and they are added up; and a
//! node's larger child is its parent's histogram less its smaller child's.

use rayon::prelude::*;

use super::binning::Binned;

/// Rows one chunk of a histogram build covers. Chunks are fixed, so the sums (added in
/// chunk order) do not depend on the number of threads.
const CHUNK: usize = 1 << 14;

/// The sums over the rows that fall in one bin.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    pub g: f64,
    pub h: f64,
    pub n: u64,
}

impl Sums {
    pub fn add(&mut self, o: &Sums) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }

    pub fn minus(&self, o: &Sums) -> Sums {
        Sums {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n - o.n,
        }
    }
}

/// A histogram over all features, laid out at [`Binned::offsets`].
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram(pub Vec<Sums>);

impl Histogram {
    /// The histogram of `rows` over `features` (the other features' bins stay empty), with
    /// gradients `g` and hessians `h` indexed by row.
    pub fn build(data: &Binned, features: &[usize], rows: &[u32], g: &[f64], h: &[f64]) -> Self {
        let chunks: Vec<Histogram> = rows
            .par_chunks(CHUNK)
            .map(|chunk| Self::of_chunk(data, features, chunk, g, h))
            .collect();
        let mut chunks = chunks.into_iter();
        let mut total = chunks
            .next()
            .unwrap_or_else(|| Histogram(vec![Sums::default(); data.width()]));
        for part in chunks {
            total.merge(&part);
        }
        total
    }

    /// One chunk's histogram, feature by feature over its rows' gathered gradients.
    fn of_chunk(data: &Binned, features: &[usize], rows: &[u32], g: &[f64], h: &[f64]) -> Self {
        let mut out = vec![Sums::default(); data.width()];
        let gh: Vec<(f64, f64)> = rows
            .iter()
            .map(|&r| (g[r as usize], h[r as usize]))
            .collect();
        for &f in features {
            let column = &data.columns[f];
            let bins = &mut out[data.offsets[f]..data.offsets[f + 1]];
            for (&r, &(gr, hr)) in rows.iter().zip(&gh) {
                let s = &mut bins[column[r as usize] as usize];
                s.g += gr;
                s.h += hr;
                s.n += 1;
            }
        }
        Histogram(out)
    }

    /// Adds another set of rows' histogram: the merge of partial histograms.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            a.add(b);
        }
    }

    /// Takes a subset's histogram away, leaving the rest's: a parent less one child.
    pub fn subtract(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a = a.minus(b);
        }
    }

    /// Feature `f`'s bins.
    pub fn feature<'a>(&'a self, data: &Binned, f: usize) -> &'a [Sums] {
        &self.0[data.offsets[f]..data.offsets[f + 1]]
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
        let g: Vec<f64> = (0..40_000).map(|i| f64::from(i % 5) - 2.0).collect();
        let h = vec![1.0; 40_000];
        let all: Vec<u32> = (0..40_000).collect();
        let whole = Histogram::build(&data, &[0], &all, &g, &h);
        assert_eq!(whole.0.iter().map(|s| s.n).sum::<u64>(), 40_000);
        let (a, b) = all.split_at(12_345);
        let mut merged = Histogram::build(&data, &[0], a, &g, &h);
        merged.merge(&Histogram::build(&data, &[0], b, &g, &h));
        let mut rest = whole.clone();
        rest.subtract(&Histogram::build(&data, &[0], a, &g, &h));
        for ((w, m), (r, bb)) in whole.0.iter().zip(&merged.0).zip(
            rest.0
                .iter()
                .zip(&Histogram::build(&data, &[0], b, &g, &h).0),
        ) {
            // Integer-valued gradients: every order of summing is exact.
            assert_eq!(w, m);
            assert_eq!(r, bb);
        }
    }
}
