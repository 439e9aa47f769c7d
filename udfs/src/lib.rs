//! cohort's SQL functions for DataFusion.
//!
//! Every function lives in a file of its own with its documentation; the numerical kernels
//! they call (`kernels`) know nothing of SQL. Any DataFusion application gets all of them
//! with one call to [`register_all`].

pub mod kernels;

use datafusion::common::Result;
use datafusion::prelude::SessionContext;

/// Registers every cohort function in `ctx`.
///
/// The model functions (TRAIN_REGRESSION, PREDICT, SEGMENT, RECOMMEND, FORECAST, ...) are
/// added here as each model family lands; until then this registers none, so an
/// application can already wire it in.
pub fn register_all(ctx: &SessionContext) -> Result<()> {
    let _ = ctx;
    Ok(())
}
