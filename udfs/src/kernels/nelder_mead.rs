//! Nelder–Mead downhill simplex with the standard coefficients (reflection 1, expansion 2,
//! contraction ½, shrink ½), written as a state machine: [`NelderMead::point`] is the point
//! to evaluate next and [`NelderMead::tell`] takes its value. A caller can so advance
//! several searches together and evaluate their points in one pass.

use ndarray::{Array2, ArrayView1};

use super::row;

/// Where the search stands: which point `pending` is.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Vertex `i` of the first simplex.
    Start(usize),
    Reflect,
    /// The expansion, the reflected point (and its value) kept beside it.
    Expand(f64),
    /// The contraction, to beat the value given.
    Contract(f64),
    /// The shrunk vertex `order[j]`.
    Shrink(usize),
    Done,
}

/// A minimisation under way.
#[derive(Debug, Clone)]
pub struct NelderMead {
    /// The `d + 1` vertices, one per row.
    simplex: Array2<f64>,
    values: Vec<f64>,
    /// Vertices from best to worst as of the last sort.
    order: Vec<usize>,
    centroid: Vec<f64>,
    /// The point waiting for its value.
    pending: Vec<f64>,
    /// The reflected point while its expansion is evaluated.
    reflected: Vec<f64>,
    stage: Stage,
    evals: usize,
    max_evals: usize,
    /// The relative spread of the simplex's values at which the search stops.
    tolerance: f64,
}

impl NelderMead {
    /// Starts from `x0` with steps `step` along each axis; stops when the simplex's values
    /// agree to 1e-8 relative (as R's optim) or after `max_evals` evaluations.
    pub fn new(x0: &[f64], step: f64, max_evals: usize) -> Self {
        let d = x0.len();
        let mut simplex = Array2::from_shape_fn((d + 1, d), |(_, j)| x0[j]);
        for i in 1..=d {
            simplex[(i, i - 1)] += step;
        }
        Self {
            pending: x0.to_vec(),
            simplex,
            values: vec![f64::INFINITY; d + 1],
            order: (0..=d).collect(),
            centroid: vec![0.0; d],
            reflected: vec![0.0; d],
            stage: Stage::Start(0),
            evals: 0,
            max_evals,
            tolerance: 1e-8,
        }
    }

    /// Stops when the simplex's values agree to `tolerance` relative instead: for a search
    /// that another method finishes.
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The point to evaluate next; `None` once the search is over.
    pub fn point(&self) -> Option<&[f64]> {
        match self.stage {
            Stage::Done => None,
            _ => Some(&self.pending),
        }
    }

    /// The best point found and its value.
    pub fn best(&self) -> (&[f64], f64) {
        let best = (0..self.values.len())
            .min_by(|&a, &b| self.values[a].total_cmp(&self.values[b]))
            .unwrap_or(0);
        (row(self.simplex.view(), best), self.values[best])
    }

    /// Takes the value of [`Self::point`] and moves on to the next point.
    pub fn tell(&mut self, value: f64) {
        self.evals += 1;
        let d = self.centroid.len();
        let (best, second, worst) = (
            self.order[0],
            self.order[d.saturating_sub(1)],
            self.order[d],
        );
        match self.stage {
            Stage::Start(i) => {
                self.values[i] = value;
                if i < d {
                    self.pending
                        .copy_from_slice(row(self.simplex.view(), i + 1));
                    self.stage = Stage::Start(i + 1);
                } else {
                    self.iterate();
                }
            }
            Stage::Reflect => {
                if value < self.values[best] {
                    std::mem::swap(&mut self.reflected, &mut self.pending);
                    self.toward(worst, -2.0);
                    self.stage = Stage::Expand(value);
                } else if value < self.values[second] {
                    self.replace(worst, value);
                } else {
                    // Contract toward the better of the reflected and the worst point.
                    let ft = if value < self.values[worst] {
                        for (p, c) in self.pending.iter_mut().zip(&self.centroid) {
                            *p = c + 0.5 * (*p - c);
                        }
                        value
                    } else {
                        self.toward(worst, 0.5);
                        self.values[worst]
                    };
                    self.stage = Stage::Contract(ft);
                }
            }
            Stage::Expand(fr) => {
                if value < fr {
                    self.replace(worst, value);
                } else {
                    std::mem::swap(&mut self.reflected, &mut self.pending);
                    self.replace(worst, fr);
                }
            }
            Stage::Contract(ft) => {
                if value < ft {
                    self.replace(worst, value);
                } else {
                    let anchor = self.simplex.row(best).to_owned();
                    for &i in &self.order[1..] {
                        for (x, a) in self.simplex.row_mut(i).iter_mut().zip(&anchor) {
                            *x = a + 0.5 * (*x - a);
                        }
                    }
                    self.pending
                        .copy_from_slice(row(self.simplex.view(), self.order[1]));
                    self.stage = Stage::Shrink(1);
                }
            }
            Stage::Shrink(j) => {
                self.values[self.order[j]] = value;
                if j < d {
                    self.pending
                        .copy_from_slice(row(self.simplex.view(), self.order[j + 1]));
                    self.stage = Stage::Shrink(j + 1);
                } else {
                    self.iterate();
                }
            }
            Stage::Done => {}
        }
    }

    /// `pending` becomes the point `t` of the way from the centroid to vertex `v`.
    fn toward(&mut self, v: usize, t: f64) {
        for ((p, c), w) in self
            .pending
            .iter_mut()
            .zip(&self.centroid)
            .zip(self.simplex.row(v))
        {
            *p = c + t * (w - c);
        }
    }

    /// Vertex `v` becomes `pending`, of value `value`; the next iteration starts (and
    /// writes the next `pending`).
    fn replace(&mut self, v: usize, value: f64) {
        self.simplex
            .row_mut(v)
            .assign(&ArrayView1::from(&self.pending));
        self.values[v] = value;
        self.iterate();
    }

    /// Sorts the simplex, stops if it has converged or the evaluations are spent, else
    /// reflects the worst vertex.
    fn iterate(&mut self) {
        let d = self.centroid.len();
        if self.evals >= self.max_evals {
            self.stage = Stage::Done;
            return;
        }
        let values = &self.values;
        self.order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        let (best, worst) = (self.order[0], self.order[d]);
        let spread = values[worst] - values[best];
        if spread.is_finite() && spread <= self.tolerance * (1.0 + values[best].abs()) {
            self.stage = Stage::Done;
            return;
        }
        self.centroid.fill(0.0);
        for &i in &self.order[..d] {
            for (c, x) in self.centroid.iter_mut().zip(self.simplex.row(i)) {
                *c += x;
            }
        }
        for c in &mut self.centroid {
            *c /= d as f64;
        }
        self.toward(worst, -1.0);
        self.stage = Stage::Reflect;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search to its end on `f`.
    fn minimise(f: impl Fn(&[f64]) -> f64, x0: &[f64]) -> (Vec<f64>, f64, usize) {
        let mut search = NelderMead::new(x0, 1.0, 5000);
        let mut evals = 0;
        while let Some(x) = search.point() {
            let value = f(x);
            search.tell(value);
            evals += 1;
        }
        let (x, value) = search.best();
        (x.to_vec(), value, evals)
    }

    #[test]
    fn finds_the_minimum_of_rosenbrock() {
        let rosenbrock = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let (x, value, evals) = minimise(rosenbrock, &[-1.2, 1.0]);
        assert!(value < 1e-6, "{x:?} {value}");
        assert!(
            (x[0] - 1.0).abs() < 1e-2 && (x[1] - 1.0).abs() < 2e-2,
            "{x:?}"
        );
        assert!(evals < 5000);
    }

    #[test]
    fn one_dimension_and_a_flat_function() {
        let (x, _, _) = minimise(|x| (x[0] - 3.0).powi(2), &[0.0]);
        assert!((x[0] - 3.0).abs() < 1e-3, "{x:?}");
        // A constant function converges at once: the first simplex already agrees.
        let (_, value, evals) = minimise(|_| 7.0, &[1.0, 2.0]);
        assert_eq!((value, evals), (7.0, 3));
    }

    #[test]
    fn stops_after_its_evaluations() {
        let mut search = NelderMead::new(&[5.0, 5.0], 1.0, 10);
        let mut evals = 0;
        while let Some(x) = search.point() {
            let value = x[0].powi(2) + x[1].powi(2);
            search.tell(value);
            evals += 1;
        }
        // The last iteration may finish a shrink past the limit, as the loop form did.
        assert!((10..=12).contains(&evals), "{evals}");
    }
}
