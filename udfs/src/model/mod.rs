//! Trained models as the SQL functions see them, and how functions find them by name.

pub mod calendar;
pub mod coefficients;
pub mod encoding;
pub mod forecast;
pub mod kmeans;
pub mod linear;
pub mod logistic;
pub mod matrix_factorization;
pub mod training;

use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::Result;
use serde::{Deserialize, Serialize};

pub use crate::kernels::linear::Dropped;
pub use coefficients::{Coefficients, Explained};
pub use encoding::FeatureEncoding;
pub use forecast::{ForecastModel, ForecastSettings};
pub use kmeans::{Clusters, KMeansModel, KMeansSettings};
pub use linear::LinearModel;
pub use logistic::{LogisticModel, LogisticSettings};
pub use matrix_factorization::{MatrixFactorizationModel, MatrixFactorizationSettings};

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

/// The name of a k-means model's centroid array in the store.
const CENTROIDS: &str = "centroids";

/// A trained model of any type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model_type", rename_all = "snake_case")]
pub enum Model {
    LinearReg(LinearModel),
    LogisticReg(LogisticModel),
    #[serde(rename = "kmeans")]
    KMeans(KMeansModel),
    MatrixFactorization(MatrixFactorizationModel),
    Forecast(ForecastModel),
}

impl Model {
    /// The input encodings, in training order.
    pub fn features(&self) -> &[FeatureEncoding] {
        match self {
            Model::LinearReg(m) => &m.features,
            Model::LogisticReg(m) => &m.features,
            Model::KMeans(m) => &m.features,
            Model::MatrixFactorization(_) | Model::Forecast(_) => &[],
        }
    }

    /// The model type as CREATE MODEL names it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Model::LinearReg(_) => "linear_reg",
            Model::LogisticReg(_) => "logistic_reg",
            Model::KMeans(_) => "kmeans",
            Model::MatrixFactorization(_) => "matrix_factorization",
            Model::Forecast(_) => "forecast",
        }
    }

    /// The large arrays the store keeps beside the description, by name.
    pub fn arrays(&self) -> Result<Vec<(&'static str, Vec<RecordBatch>)>> {
        Ok(match self {
            Model::KMeans(m) => vec![(CENTROIDS, vec![m.centroid_batch()?])],
            Model::MatrixFactorization(m) => m.batches()?.into(),
            Model::LinearReg(_) | Model::LogisticReg(_) | Model::Forecast(_) => vec![],
        })
    }

    /// The model with its large arrays read back through `read` (by name).
    pub fn with_arrays(self, read: impl Fn(&str) -> Result<Vec<RecordBatch>>) -> Result<Self> {
        Ok(match self {
            Model::KMeans(m) => Model::KMeans(m.with_centroids(&read(CENTROIDS)?)?),
            Model::MatrixFactorization(m) => Model::MatrixFactorization(m.with_batches(read)?),
            other => other,
        })
    }

    /// The input columns, in training order.
    pub fn feature_names(&self) -> Vec<&str> {
        match self {
            Model::MatrixFactorization(m) => vec![&m.columns[0], &m.columns[1]],
            Model::Forecast(m) => m.feature_names(),
            _ => self.features().iter().map(|f| f.name()).collect(),
        }
    }

    /// The weights in the original units of each feature, intercept first; `None` for a
    /// model without weights.
    pub fn explain(&self) -> Option<Vec<Explained>> {
        match self {
            Model::LinearReg(m) => Some(m.explain()),
            Model::LogisticReg(m) => Some(m.explain()),
            Model::KMeans(_) | Model::MatrixFactorization(_) | Model::Forecast(_) => None,
        }
    }
}

/// What training saw and concluded, for CREATE MODEL's report and the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub rows_used: u64,
    pub rows_skipped: u64,
    pub skipped_because: String,
    pub warnings: Vec<String>,
    /// Headline metric first.
    pub metrics: Vec<(String, f64)>,
}

/// The report's reason for skipped rows: `nulls` with a NULL in one of `columns`,
/// `not_finite` with a NaN or infinite value.
pub fn skipped_because(nulls: u64, columns: &str, not_finite: u64) -> String {
    match (nulls, not_finite) {
        (0, 0) => String::new(),
        (n, 0) => format!("{n} with a NULL {columns}"),
        (0, f) => format!("{f} with a NaN or infinite value"),
        (n, f) => format!("{n} with a NULL {columns}; {f} with a NaN or infinite value"),
    }
}

/// The warnings for design columns a fit left out.
pub fn dropped_warnings(design: &[String], dropped: &[(usize, Dropped)]) -> Vec<String> {
    dropped
        .iter()
        .map(|(j, why)| match why {
            Dropped::Constant => {
                format!(
                    "{} is constant in the training rows and was left out",
                    design[*j]
                )
            }
            Dropped::Collinear => format!(
                "{} is a linear combination of the features before it and was left out",
                design[*j]
            ),
        })
        .collect()
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
