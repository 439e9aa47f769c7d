//! `boosted_tree_classifier`: boosted trees on the log loss of a yes/no label.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array};
use datafusion::common::Result;
use datafusion::logical_expr::{Expr, LogicalPlan};
use serde::{Deserialize, Serialize};

use super::super::classes::Classes;
use super::super::encoding::FeatureEncoding;
use super::super::logistic::{accuracy, log_loss};
use super::super::options::Options;
use super::super::training::Source;
use super::super::{Explainer, Importance, Model, ModelKind, Report, Scored, Scoring};
use super::settings::{CLASSIFIER_OPTIONS, TreeSettings};
use super::{TreeModel, training};
use crate::error::Error;
use crate::evaluate::Metrics;
use crate::kernels::auc::auc;
use crate::kernels::trees::Objective;
use crate::kernels::trees::boost::sigmoid;
use crate::sql::labelled_metrics;

/// Boosted trees whose raw score is the log-odds of the positive class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostedTreeClassifier {
    pub classes: Classes,
    pub trees: TreeModel,
}

impl ModelKind for BoostedTreeClassifier {
    const NAME: &'static str = "boosted_tree_classifier";
    const OPTIONS: &'static [&'static str] = CLASSIFIER_OPTIONS;
    const SCORES: &'static [Scoring] = &[Scoring::Predict, Scoring::Churn];
    type Settings = TreeSettings;

    fn settings(options: &Options) -> Result<TreeSettings, Error> {
        TreeSettings::read(options, Objective::Binary)
    }

    fn train(source: &dyn Source, settings: &TreeSettings) -> Result<(Self, Report)> {
        let t = training::train(source, settings, Self::NAME)?;
        let mut metrics = probability_metrics("", &t.train);
        if !t.eval.0.is_empty() {
            metrics.extend(probability_metrics("eval_", &t.eval));
        }
        let report = t.set.report(t.warnings, metrics);
        let classes = t.classes.unwrap_or(Classes::Numeric);
        Ok((
            Self {
                classes,
                trees: t.model,
            },
            report,
        ))
    }
}

/// AUC, log loss and accuracy of (labels, raw scores), their names after `prefix`.
fn probability_metrics(prefix: &str, (y, raw): &(Vec<f64>, Vec<f64>)) -> Vec<(String, f64)> {
    let p: Vec<f64> = raw.iter().copied().map(sigmoid).collect();
    let pairs: Vec<(f64, f64)> = p.iter().copied().zip(y.iter().copied()).collect();
    vec![
        (format!("{prefix}auc"), auc(&pairs)),
        (format!("{prefix}log_loss"), log_loss(&p, y)),
        (format!("{prefix}accuracy"), accuracy(&p, y)),
    ]
}

impl Model for BoostedTreeClassifier {
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
            "predict_churn({model}, ...), predict({model}, ...), explain_model({model}), or \
             SELECT * FROM lift({model}, ...), evaluate({model}, ...) or \
             explain_predict({model}, ...)"
        )
    }

    /// Probabilities of the positive class.
    fn score(&self, _scoring: Scoring, columns: &[ArrayRef]) -> Result<ArrayRef> {
        let raw = self.trees.raw(columns)?;
        Ok(Arc::new(Float64Array::from_iter_values(
            raw.into_iter().map(sigmoid),
        )))
    }

    fn predict_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        self.classes
            .predict_plan(input, &self.trees.label, (scored.call)(Scoring::Predict))
    }

    fn evaluate_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        labelled_metrics(
            input,
            scored,
            &self.trees.label,
            Metrics::Classification,
            |label| self.classes.is_positive(label),
        )
    }

    fn is_positive(&self, label: Expr) -> Option<Result<Expr>> {
        Some(self.classes.is_positive(label))
    }
}
