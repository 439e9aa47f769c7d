//! The integration tests, one module per area, in one test binary so that DataFusion is
//! linked once for all of them. The SQL behaviour tests (`tests/sql/*.slt`) have their own
//! runner, `tests/sqllogictests.rs`.
//!
//! `cargo test --test integration flight::` runs one module's tests.

mod common;

mod arrow_files;
mod cli;
mod cluster;
mod customer_value;
mod flight;
mod fuzz;
mod kmeans_reference;
mod linear_reference;
mod model_workflow;
mod reference_accuracy;
mod shell;
mod trees_reference;
