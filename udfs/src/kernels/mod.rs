//! Numerical kernels. They work on plain slices and know nothing of SQL, so they can be
//! tested against reference libraries directly and reused by any front end.

pub mod als;
mod cholesky;
pub mod cluster_quality;
pub mod dist;
pub mod distance;
pub mod ets;
pub mod gram;
pub mod kmeans;
mod lanes;
pub mod linear;
pub mod logistic;
pub mod moments;
pub mod nelder_mead;
mod prefetch;
mod quantised;
pub mod rng;
pub mod top_k;
