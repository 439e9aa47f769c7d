//! Engines over a model store of their own, in a temporary directory removed with the guard
//! returned alongside. Shared with the sqllogictest runner (`tests/sqllogictests.rs`).

use cohort::Engine;
use cohort::demo::{DEFAULT_SEED, Dataset};
use cohort::store::ModelStore;
use datafusion::common::Result;
use tempfile::TempDir;

/// An engine with no tables over an empty model store.
pub fn engine() -> Result<(Engine, TempDir)> {
    let store = tempfile::tempdir()?;
    let engine = Engine::new(ModelStore::open(store.path())?)?;
    Ok((engine, store))
}

/// An engine with the demo data at `scale` (10,000 customers each), default seed.
pub fn demo_engine(scale: f64) -> Result<(Engine, TempDir)> {
    let (engine, store) = engine()?;
    Dataset::generate(scale, DEFAULT_SEED)?.register(engine.context())?;
    Ok((engine, store))
}
