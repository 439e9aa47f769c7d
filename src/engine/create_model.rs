//! `CREATE [OR REPLACE] MODEL [IF NOT EXISTS] name OPTIONS (...) AS query`.
//!
//! Checks the options, runs the training query through the engine, trains, and writes a new
//! version to the store. It reports one row: model, version, rows used and skipped (and why),
//! training seconds, the headline metric and any warnings.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{DataFusionError, Result, plan_err};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::memory::MemoryStream;

use cohort_udfs::Model;
use cohort_udfs::kernels::als::Feedback;
use cohort_udfs::kernels::linear::LinearOptions;
use cohort_udfs::model::forecast::SeasonalityOption;
use cohort_udfs::model::training::{InMemory, Source};
use cohort_udfs::model::{
    Clusters, ForecastModel, ForecastSettings, KMeansModel, KMeansSettings, LinearModel,
    LogisticModel, LogisticSettings, MatrixFactorizationModel, MatrixFactorizationSettings, Report,
};

use super::training_rows::TrainingRows;
use super::{CreateModel, Engine, OptionValue, rows};
use crate::store::{Feature, ModelDescription, now_rfc3339};

/// The model types of the SQL surface.
const MODEL_TYPES: [&str; 5] = [
    "linear_reg",
    "logistic_reg",
    "kmeans",
    "matrix_factorization",
    "forecast",
];

/// How to train, from the checked options.
enum Training {
    Linear(String, LinearOptions),
    Logistic(String, LogisticSettings),
    KMeans(KMeansSettings),
    MatrixFactorization(MatrixFactorizationSettings),
    Forecast(ForecastSettings),
}

impl Training {
    fn label(&self) -> Option<&str> {
        match self {
            Training::Linear(label, _) | Training::Logistic(label, _) => Some(label),
            Training::KMeans(_) | Training::MatrixFactorization(_) | Training::Forecast(_) => None,
        }
    }
}

pub async fn create_model(engine: &Engine, c: CreateModel) -> Result<SendableRecordBatchStream> {
    let fail = |msg: String| DataFusionError::Plan(format!("CREATE MODEL {}: {msg}", c.name));
    let model_type = match c.option("model_type") {
        Some(OptionValue::String(t)) => t.to_lowercase(),
        Some(other) => return Err(fail(format!("model_type must be a string, got {other}"))),
        None => {
            return Err(fail(format!(
                "OPTIONS (model_type = ...) is required; one of {}",
                type_names()
            )));
        }
    };
    if !MODEL_TYPES.contains(&model_type.as_str()) {
        return Err(fail(format!(
            "unknown model_type '{model_type}'; use one of {}",
            type_names()
        )));
    }
    let training = match model_type.as_str() {
        "linear_reg" => Training::Linear(
            label(&c, &model_type).map_err(fail)?,
            linear_options(&c).map_err(fail)?,
        ),
        "logistic_reg" => Training::Logistic(
            label(&c, &model_type).map_err(fail)?,
            logistic_settings(&c).map_err(fail)?,
        ),
        "kmeans" => Training::KMeans(kmeans_settings(&c).map_err(fail)?),
        "forecast" => Training::Forecast(forecast_settings(&c).map_err(fail)?),
        _ => Training::MatrixFactorization(factorization_settings(&c).map_err(fail)?),
    };

    let store = engine.store();
    if store.exists(&c.name)? {
        if c.if_not_exists {
            return rows(&[], vec![]);
        }
        if !c.or_replace {
            return plan_err!(
                "model {} already exists; use CREATE OR REPLACE MODEL to train a new version, \
                 or DROP MODEL first",
                c.name
            );
        }
    }

    let start = Instant::now();
    // The training query is plain SQL: DataFusion runs it directly.
    let data = match engine.context().sql(&c.query).await {
        Ok(frame) => TrainingRows::read(frame).await,
        Err(e) => Err(e),
    }
    .map_err(|e| {
        fail(format!(
            "the training query failed: {}",
            e.strip_backtrace()
        ))
    })?;
    let label = training.label().map(str::to_string);
    // Training is CPU-bound and parallel: keep it off the async workers.
    let (model, mut report, reread) = tokio::task::spawn_blocking(move || match &data {
        TrainingRows::InMemory {
            schema, batches, ..
        } => train(&InMemory { schema, batches }, &training).map(|(m, r)| (m, r, false)),
        TrainingRows::Replay(replay) => train(replay, &training).map(|(m, r)| (m, r, true)),
    })
    .await
    .map_err(|e| DataFusionError::Execution(format!("training stopped: {e}")))?
    .map_err(|e| fail(e.message().into_owned()))?;
    if reread {
        report.warnings.push(
            "the training rows did not fit the memory pool, so every pass read them again; \
             raise datafusion.runtime.memory_limit to train in one read"
                .to_string(),
        );
    }
    let seconds = start.elapsed().as_secs_f64();

    let description = ModelDescription {
        format_version: crate::store::FORMAT_VERSION,
        name: c.name.clone(),
        version: 0,
        model_type: model_type.clone(),
        label,
        features: model
            .features()
            .iter()
            .map(|f| Feature {
                name: f.name().to_string(),
                data_type: f.data_type().to_string(),
                encoding: f.describe(),
            })
            .collect(),
        options: c
            .options
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        training_rows: report.rows_used,
        rows_skipped: report.rows_skipped,
        // JSON has no NaN or infinity: a metric without a value is left out, so the
        // description always reads back.
        metrics: report
            .metrics
            .iter()
            .filter(|(_, v)| v.is_finite())
            .cloned()
            .collect(),
        created_at: now_rfc3339(),
        parameters: serde_json::to_value(&model)
            .map_err(|e| DataFusionError::External(Box::new(e)))?,
        arrays: vec![],
    };
    let version = store.save(description, &model.arrays()?)?;

    let (metric, value) = report.metrics.first().cloned().unwrap_or_default();
    let schema = Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("version", DataType::Int64, false),
        Field::new("rows_used", DataType::Int64, false),
        Field::new("rows_skipped", DataType::Int64, false),
        Field::new("skipped_because", DataType::Utf8, false),
        Field::new("training_seconds", DataType::Float64, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
        Field::new("warnings", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![c.name.clone()])),
            Arc::new(Int64Array::from(vec![version as i64])),
            Arc::new(Int64Array::from(vec![report.rows_used as i64])),
            Arc::new(Int64Array::from(vec![report.rows_skipped as i64])),
            Arc::new(StringArray::from(vec![report.skipped_because])),
            Arc::new(Float64Array::from(vec![seconds])),
            Arc::new(StringArray::from(vec![metric])),
            Arc::new(Float64Array::from(vec![value])),
            Arc::new(StringArray::from(vec![report.warnings.join("; ")])),
        ],
    )?;
    Ok(Box::pin(MemoryStream::try_new(vec![batch], schema, None)?))
}

/// Trains the model `training` describes on `source`.
fn train(source: &impl Source, training: &Training) -> Result<(Model, Report)> {
    match training {
        Training::Linear(label, o) => {
            LinearModel::train(source, label, *o).map(|(m, r)| (Model::LinearReg(m), r))
        }
        Training::Logistic(label, s) => {
            LogisticModel::train(source, label, s).map(|(m, r)| (Model::LogisticReg(m), r))
        }
        Training::KMeans(s) => KMeansModel::train(source, s).map(|(m, r)| (Model::KMeans(m), r)),
        Training::MatrixFactorization(s) => MatrixFactorizationModel::train(source, s)
            .map(|(m, r)| (Model::MatrixFactorization(m), r)),
        Training::Forecast(s) => {
            ForecastModel::train(source, s).map(|(m, r)| (Model::Forecast(m), r))
        }
    }
}

/// The `label` option, required by supervised models.
fn label(c: &CreateModel, model_type: &str) -> std::result::Result<String, String> {
    match c.option("label") {
        Some(OptionValue::String(l)) => Ok(l.clone()),
        Some(other) => Err(format!("label must be a column name string, got {other}")),
        None => Err(format!(
            "OPTIONS (label = '<column>') is required for {model_type}"
        )),
    }
}

/// An integer option in `range`, `default` when absent.
fn integer(
    c: &CreateModel,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> std::result::Result<i64, String> {
    match c.option(name) {
        None => Ok(default),
        Some(v) => match v.as_i64() {
            Some(n) if range.contains(&n) => Ok(n),
            _ => Err(format!(
                "{name} must be an integer from {} to {}, got {v}",
                range.start(),
                range.end()
            )),
        },
    }
}

/// The kmeans options, checked.
fn kmeans_settings(c: &CreateModel) -> std::result::Result<KMeansSettings, String> {
    check_known(
        c,
        "kmeans",
        &[
            "model_type",
            "num_clusters",
            "standardize",
            "n_init",
            "max_iterations",
            "seed",
        ],
    )?;
    let clusters = match c.option("num_clusters") {
        Some(OptionValue::String(s)) if s.eq_ignore_ascii_case("auto") => Clusters::Auto,
        None => {
            return Err(
                "OPTIONS (num_clusters = <k>) is required for kmeans: a number of segments \
                 from 1 to 1000, or 'auto' to pick k in 2..10 by silhouette"
                    .to_string(),
            );
        }
        Some(_) => Clusters::Fixed(integer(c, "num_clusters", 1..=1000, 0)? as usize),
    };
    let standardize = match c.option("standardize") {
        None => true,
        Some(OptionValue::Bool(b)) => *b,
        Some(v) => return Err(format!("standardize must be true or false, got {v}")),
    };
    Ok(KMeansSettings {
        clusters,
        standardize,
        n_init: integer(c, "n_init", 1..=100, 4)? as usize,
        max_iterations: integer(c, "max_iterations", 1..=10_000, 100)? as usize,
        seed: integer(c, "seed", 0..=i64::MAX, 42)? as u64,
    })
}

/// The matrix_factorization options, checked.
fn factorization_settings(
    c: &CreateModel,
) -> std::result::Result<MatrixFactorizationSettings, String> {
    check_known(
        c,
        "matrix_factorization",
        &[
            "model_type",
            "feedback_type",
            "num_factors",
            "l2_reg",
            "max_iterations",
            "alpha",
            "seed",
            "user_col",
            "item_col",
            "rating_col",
        ],
    )?;
    let implicit = match c.option("feedback_type") {
        None => false,
        Some(OptionValue::String(s)) if s.eq_ignore_ascii_case("explicit") => false,
        Some(OptionValue::String(s)) if s.eq_ignore_ascii_case("implicit") => true,
        Some(v) => {
            return Err(format!(
                "feedback_type must be 'explicit' (ratings) or 'implicit' (counts of \
                 interactions), got {v}"
            ));
        }
    };
    let feedback = match (implicit, c.option("alpha")) {
        (false, Some(_)) => {
            return Err(
                "alpha weighs implicit feedback; it needs feedback_type = 'implicit'".to_string(),
            );
        }
        (false, None) => Feedback::Explicit,
        (true, None) => Feedback::Implicit { alpha: 40.0 },
        (true, Some(v)) => match v.as_f64() {
            Some(alpha) if alpha > 0.0 && alpha.is_finite() => Feedback::Implicit { alpha },
            _ => return Err(format!("alpha must be a number > 0, got {v}")),
        },
    };
    let column = |name: &str| column_option(c, name);
    Ok(MatrixFactorizationSettings {
        feedback,
        factors: integer(c, "num_factors", 1..=1024, 32)? as usize,
        l2_reg: l2_reg(c, 0.1)?,
        iterations: integer(c, "max_iterations", 1..=1000, 15)? as usize,
        seed: integer(c, "seed", 0..=i64::MAX, 42)? as u64,
        columns: [
            column("user_col")?,
            column("item_col")?,
            column("rating_col")?,
        ],
    })
}

/// A column name option, `None` when absent.
fn column_option(c: &CreateModel, name: &str) -> std::result::Result<Option<String>, String> {
    match c.option(name) {
        None => Ok(None),
        Some(OptionValue::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("{name} must be a column name string, got {v}")),
    }
}

/// The forecast options, checked.
fn forecast_settings(c: &CreateModel) -> std::result::Result<ForecastSettings, String> {
    check_known(
        c,
        "forecast",
        &[
            "model_type",
            "time_col",
            "value_col",
            "id_col",
            "seasonality",
            "horizon",
            "confidence_level",
        ],
    )?;
    let seasonality = match c.option("seasonality") {
        None => SeasonalityOption::Auto,
        Some(OptionValue::String(s)) if s.eq_ignore_ascii_case("auto") => SeasonalityOption::Auto,
        Some(OptionValue::String(s)) if s.eq_ignore_ascii_case("none") => SeasonalityOption::None,
        Some(v) => match v.as_i64() {
            Some(1) => SeasonalityOption::None,
            Some(m) if (2..=1000).contains(&m) => SeasonalityOption::Period(m as usize),
            _ => {
                return Err(format!(
                    "seasonality must be 'auto', 'none' or a period from 2 to 1000 (12 for \
                     months in a year), got {v}"
                ));
            }
        },
    };
    let confidence_level = match c.option("confidence_level") {
        None => 0.95,
        Some(v) => match v.as_f64() {
            Some(level) if level > 0.0 && level < 1.0 => level,
            _ => return Err(format!("confidence_level must be between 0 and 1, got {v}")),
        },
    };
    Ok(ForecastSettings {
        time_col: column_option(c, "time_col")?,
        value_col: column_option(c, "value_col")?,
        id_col: column_option(c, "id_col")?,
        seasonality,
        horizon: integer(c, "horizon", 1..=100_000, 12)? as usize,
        confidence_level,
    })
}

fn type_names() -> String {
    MODEL_TYPES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rejects options that `model_type` does not take.
fn check_known(
    c: &CreateModel,
    model_type: &str,
    known: &[&str],
) -> std::result::Result<(), String> {
    match c.options.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, _)) => Err(format!(
            "unknown option {k} for {model_type}; its options are {}",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

/// `l2_reg`: a number >= 0, 0 when absent.
fn l2_reg(c: &CreateModel, default: f64) -> std::result::Result<f64, String> {
    match c.option("l2_reg") {
        None => Ok(default),
        Some(v) => match v.as_f64() {
            Some(l2) if l2 >= 0.0 && l2.is_finite() => Ok(l2),
            _ => Err(format!("l2_reg must be a number >= 0, got {v}")),
        },
    }
}

/// The linear_reg options, checked: unknown names and wrong types are errors.
fn linear_options(c: &CreateModel) -> std::result::Result<LinearOptions, String> {
    check_known(
        c,
        "linear_reg",
        &["model_type", "label", "l2_reg", "fit_intercept"],
    )?;
    let mut options = LinearOptions {
        l2: l2_reg(c, 0.0)?,
        ..LinearOptions::default()
    };
    match c.option("fit_intercept") {
        None => {}
        Some(OptionValue::Bool(b)) => options.fit_intercept = *b,
        Some(v) => return Err(format!("fit_intercept must be true or false, got {v}")),
    }
    Ok(options)
}

/// The logistic_reg options, checked.
fn logistic_settings(c: &CreateModel) -> std::result::Result<LogisticSettings, String> {
    check_known(
        c,
        "logistic_reg",
        &[
            "model_type",
            "label",
            "l2_reg",
            "class_weight",
            "max_iterations",
            "positive_class",
        ],
    )?;
    let mut settings = LogisticSettings {
        l2: l2_reg(c, 0.0)?,
        ..LogisticSettings::default()
    };
    match c.option("class_weight") {
        None => {}
        Some(OptionValue::String(w)) if w.eq_ignore_ascii_case("none") => {}
        Some(OptionValue::String(w)) if w.eq_ignore_ascii_case("balanced") => {
            settings.balanced = true
        }
        Some(v) => {
            return Err(format!(
                "class_weight must be 'none' or 'balanced', got {v}"
            ));
        }
    }
    settings.max_iterations = integer(c, "max_iterations", 1..=10_000, 50)? as usize;
    match c.option("positive_class") {
        None => {}
        Some(OptionValue::String(p)) => settings.positive_class = Some(p.clone()),
        Some(v) => return Err(format!("positive_class must be a string, got {v}")),
    }
    Ok(settings)
}
