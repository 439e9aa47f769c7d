//! Trained models as the SQL functions see them, and how functions find them by name.

pub mod encoding;
pub mod linear;

use std::fmt::Debug;
use std::sync::Arc;

use datafusion::common::Result;
use serde::{Deserialize, Serialize};

pub use linear::{Explained, LinearModel, TrainingReport};

/// Serde for float vectors that hold NaN (JSON has no NaN): NaN is written as null.
pub(crate) mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| x.is_finite().then_some(*x)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v: Vec<Option<f64>> = Deserialize::deserialize(d)?;
        Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }
}

/// A trained model of any type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model_type", rename_all = "snake_case")]
pub enum Model {
    LinearReg(LinearModel),
}

impl Model {
    /// The input columns, in training order.
    pub fn feature_names(&self) -> Vec<&str> {
        match self {
            Model::LinearReg(m) => m.features.iter().map(|f| f.name()).collect(),
        }
    }
}

/// A model found by name, with the version that identifies it.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub name: String,
    pub version: u64,
    pub model: Arc<Model>,
}

/// Where functions such as PREDICT look models up by name: cohort's model store, or
/// whatever an application embedding these functions keeps its models in.
pub trait ModelResolver: Debug + Send + Sync {
    /// The current version of `name`; an error that names the model (and near names) if
    /// there is none.
    fn resolve(&self, name: &str) -> Result<ResolvedModel>;
}
