//! `boosted_tree_regressor`: boosted trees on the squared error of a numeric label.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{LogicalPlan, cast};
use serde::{Deserialize, Serialize};

use super::super::encoding::FeatureEncoding;
use super::super::options::Options;
use super::super::training::Source;
use super::super::{Explainer, Importance, Model, ModelKind, Report, Scored, Scoring};
use super::settings::{REGRESSOR_OPTIONS, TreeSettings};
use super::{TreeModel, training};
use crate::error::Error;
use crate::evaluate::Metrics;
use crate::kernels::trees::Objective;
use crate::sql::{appended, labelled_metrics};

/// Boosted trees whose raw score is the prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostedTreeRegressor {
    pub trees: TreeModel,
}

impl ModelKind for BoostedTreeRegressor {
    const NAME: &'static str = "boosted_tree_regressor";
    const OPTIONS: &'static [&'static str] = REGRESSOR_OPTIONS;
    const SCORES: &'static [Scoring] = &[Scoring::Predict];
    type Settings = TreeSettings;

    fn settings(options: &Options) -> Result<TreeSettings, Error> {
        TreeSettings::read(options, Objective::Squared)
    }

    fn train(source: &dyn Source, settings: &TreeSettings) -> Result<(Self, Report)> {
        let t = training::train(source, settings, Self::NAME)?;
        let mut metrics = error_metrics("", &t.train);
        if !t.eval.0.is_empty() {
            metrics.extend(error_metrics("eval_", &t.eval));
        }
        let report = t.set.report(t.warnings, metrics);
        Ok((Self { trees: t.model }, report))
    }
}

/// RMSE, MAE and R² of (labels, predictions), their names after `prefix`.
fn error_metrics(prefix: &str, (y, f): &(Vec<f64>, Vec<f64>)) -> Vec<(String, f64)> {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let sse: f64 = y.iter().zip(f).map(|(y, f)| (y - f) * (y - f)).sum();
    let sst: f64 = y.iter().map(|y| (y - mean) * (y - mean)).sum();
    let mae = y.iter().zip(f).map(|(y, f)| (y - f).abs()).sum::<f64>() / n;
    vec![
        (format!("{prefix}rmse"), (sse / n).sqrt()),
        (format!("{prefix}mae"), mae),
        (format!("{prefix}r2"), 1.0 - sse / sst),
    ]
}

impl Model for BoostedTreeRegressor {
    fn label(&self) -> Option<&str> {
        Some(&self.trees.label)
    }

    fn features(&self) -> &[FeatureEncoding] {
        &self.trees.features
    }

    fn feature_descriptions(&self) -> Vec<String> {
        self.trees.describe()
    }

    fn importance(&self) -> Option<Vec<Importance>> {
        Some(self.trees.importance())
    }

    fn explainer(&self) -> Option<&dyn Explainer> {
        Some(&self.trees)
    }

    fn uses(&self, model: &str) -> String {
        format!(
            "predict({model}, ...), explain_model({model}), or SELECT * FROM \
             evaluate({model}, ...) or explain_predict({model}, ...)"
        )
    }

    fn score(&self, _scoring: Scoring, columns: &[ArrayRef]) -> Result<ArrayRef> {
        Ok(Arc::new(Float64Array::from(self.trees.raw(columns)?)))
    }

    fn predict_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        let predicted =
            (scored.call)(Scoring::Predict).alias(format!("predicted_{}", self.trees.label));
        appended(input, [predicted])
    }

    fn evaluate_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        labelled_metrics(
            input,
            scored,
            &self.trees.label,
            Metrics::Regression {
                parameters: self.trees.features.len(),
            },
            |label| Ok(cast(label, DataType::Float64)),
        )
    }
}
