//! cohort: customer models inside SQL.
//!
//! The library half of the `cohort` tool: the [`engine`] every front end runs SQL through,
//! [`chart`]s of results, the interactive [`shell`], the [`script`] runner for scheduled jobs, the [`session`] both
//! run statements and meta-commands in, result [`output`]
//! formats, the model [`store`] and the built-in [`demo`] data. The SQL functions themselves live in the
//! `cohort-udfs` crate.

pub mod chart;
pub mod cluster;
pub mod demo;
pub mod engine;
pub mod output;
pub mod script;
pub mod server;
pub mod session;
pub mod shell;
pub mod store;

pub use engine::{Engine, QueryResult};

/// Stack for every thread that parses, plans or runs statements. Generated SQL nests deep
/// (`a + b + ...` of thousands of terms, long `OR` chains) and parsing, planning, evaluating
/// and dropping such an expression recurse once per level; the stack is reserved address
/// space, used only as deep as a statement goes.
pub const STACK: usize = 512 << 20;
