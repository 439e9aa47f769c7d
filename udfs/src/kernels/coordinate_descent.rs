//! Coordinate descent for a quadratic with L1 and L2 penalties,
//! `½ βᵀAβ − bᵀβ + Σ l1ⱼ|βⱼ| + ½ Σ l2ⱼ βⱼ²`: the elastic net on the Gram matrix of a linear
//! regression, and on the quadratic that approximates a logistic likelihood at each Newton
//! step (the method of glmnet). `A` is a sum over rows, so the rows are read once per outer
//! step however many sweeps the coordinates take.

use ndarray::ArrayView2;

/// Sweeps over every coordinate at most.
const MAX_SWEEPS: usize = 100_000;
/// Stop when no coordinate moves by more than this fraction of the largest coefficient, both
/// in units of their curvature (√Aⱼⱼ βⱼ, the size of a term of the fit).
const TOLERANCE: f64 = 1e-12;

/// The L1 and L2 penalty of each coefficient.
#[derive(Debug, Clone, PartialEq)]
pub struct Penalty {
    pub l1: Vec<f64>,
    pub l2: Vec<f64>,
}

/// The minimiser from `start`; `A` must be positive semi-definite with a positive diagonal
/// wherever `l2` is 0.
pub fn minimise(a: ArrayView2<f64>, b: &[f64], penalty: &Penalty, start: &[f64]) -> Vec<f64> {
    let k = b.len();
    let mut beta = start.to_vec();
    // q = Aβ, kept up to date as coordinates move.
    let mut q: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| a[[i, j]] * beta[j]).sum())
        .collect();
    for _ in 0..MAX_SWEEPS {
        let mut largest: f64 = 0.0;
        for j in 0..k {
            let curvature = a[[j, j]] + penalty.l2[j];
            if curvature <= 0.0 {
                continue;
            }
            let partial = b[j] - (q[j] - a[[j, j]] * beta[j]);
            let next = soft_threshold(partial, penalty.l1[j]) / curvature;
            let delta = next - beta[j];
            if delta != 0.0 {
                for (i, qi) in q.iter_mut().enumerate() {
                    *qi += a[[i, j]] * delta;
                }
                beta[j] = next;
                largest = largest.max(a[[j, j]].sqrt() * delta.abs());
            }
        }
        let scale = (0..k)
            .map(|j| a[[j, j]].sqrt() * beta[j].abs())
            .fold(f64::MIN_POSITIVE, f64::max);
        if largest <= TOLERANCE * scale {
            break;
        }
    }
    beta
}

/// `sign(x) · max(|x| − t, 0)`.
fn soft_threshold(x: f64, t: f64) -> f64 {
    if x > t {
        x - t
    } else if x < -t {
        x + t
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn without_l1_it_solves_the_ridge_system() {
        let a = array![[4.0, 1.0], [1.0, 3.0]];
        let b = [1.0, 2.0];
        let penalty = Penalty {
            l1: vec![0.0; 2],
            l2: vec![1.0; 2],
        };
        let beta = minimise(a.view(), &b, &penalty, &[0.0, 0.0]);
        // (A + I) β = b: [[5, 1], [1, 4]] β = [1, 2].
        let expected = [(4.0 - 2.0) / 19.0, (10.0 - 1.0) / 19.0];
        for (x, e) in beta.iter().zip(expected) {
            assert!((x - e).abs() < 1e-14, "{beta:?}");
        }
    }

    #[test]
    fn a_large_l1_zeroes_a_weak_coefficient() {
        let a = array![[2.0, 0.0], [0.0, 2.0]];
        let b = [4.0, 0.5];
        let penalty = Penalty {
            l1: vec![1.0; 2],
            l2: vec![0.0; 2],
        };
        let beta = minimise(a.view(), &b, &penalty, &[0.0, 0.0]);
        assert_eq!(beta, vec![1.5, 0.0]);
    }
}
