//! Points as the rows of a matrix, the input of clustering and its quality measures.

use std::ops::Range;

/// Points as the rows of a row-major `len × dim` matrix.
#[derive(Debug, Clone, Copy)]
pub struct Points<'a> {
    pub data: &'a [f64],
    pub dim: usize,
}

impl<'a> Points<'a> {
    pub fn new(data: &'a [f64], dim: usize) -> Self {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "a row-major matrix"
        );
        Self { data, dim }
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn row(&self, i: usize) -> &'a [f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows of a range.
    pub fn rows(&self, range: Range<usize>) -> &'a [f64] {
        &self.data[range.start * self.dim..range.end * self.dim]
    }
}
