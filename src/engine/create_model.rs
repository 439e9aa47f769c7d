//! `CREATE [OR REPLACE] MODEL [IF NOT EXISTS] name OPTIONS (...) AS query`.
//!
//! Checks the options, runs the training query through the engine, trains, and writes a new
//! version to the store. It reports one row: model, version, rows used and skipped (and why),
//! training seconds, the headline metric and any warnings.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::memory::MemoryStream;

use cohort_udfs::Error;
use cohort_udfs::kernels::interrupt::Interrupt;
use cohort_udfs::model::training::InMemory;
use cohort_udfs::model::{self, Options};

use super::training_rows::TrainingRows;
use super::{CreateModel, Engine, OptionValue, rows};
use crate::store::{
    Feature, ModelDescription, SaveMode, already_exists, now_rfc3339, validate_name,
};

pub async fn create_model(engine: &Engine, c: CreateModel) -> Result<SendableRecordBatchStream> {
    let fail = |e: Error| DataFusionError::from(e.in_create_model(&c.name));
    let model_type = match c.option("model_type") {
        Some(OptionValue::String(t)) => model::model_type(t).ok_or_else(|| {
            Error::InvalidOption(format!(
                "unknown model_type '{}'; use one of {}",
                t.to_lowercase(),
                model::type_names()
            ))
        }),
        Some(other) => Err(Error::InvalidOption(format!(
            "model_type must be a string, got {other}"
        ))),
        None => Err(Error::InvalidOption(format!(
            "OPTIONS (model_type = ...) is required; one of {}",
            model::type_names()
        ))),
    }
    .map_err(fail)?;
    let trainer = model_type
        .trainer(&Options {
            model_type: model_type.name(),
            values: &c.options,
        })
        .map_err(fail)?;

    // Before training, which may take long, not at saving.
    validate_name(&c.name)?;
    let store = engine.store();
    if store.exists(&c.name)? {
        if c.if_not_exists {
            return rows(&[], vec![]);
        }
        if !c.or_replace {
            return Err(already_exists(&c.name));
        }
    }

    let start = Instant::now();
    let progress = engine.progress().training();
    // The training query is planned as any other query, table forms and all.
    let data = async {
        let plan = engine.plan_sql(&c.query).await?;
        let frame = engine.context().execute_logical_plan(plan).await?;
        TrainingRows::read(frame, &progress.rows).await
    }
    .await
    .map_err(|e| {
        fail(Error::Query {
            context: "the training query failed".to_string(),
            source: Box::new(e),
        })
    })?;
    // Training is CPU-bound and parallel: keep it off the async workers. When this future is
    // dropped unfinished (statement timeout, cancel), the fit stops at its next pass.
    let interrupt = Interrupt::default();
    let _stop = interrupt.raise_on_drop();
    let fit = progress.fit.clone();
    let (model, mut report, reread) = tokio::task::spawn_blocking(move || {
        fit.during(|| {
            interrupt.during(|| match &data {
                TrainingRows::InMemory {
                    schema,
                    batches,
                    pool,
                    ..
                } => trainer
                    .train(&InMemory {
                        schema,
                        batches,
                        pool: Some(pool),
                    })
                    .map(|(m, r)| (m, r, false)),
                TrainingRows::Replay(replay) => trainer.train(replay).map(|(m, r)| (m, r, true)),
            })
        })
    })
    .await
    .map_err(|e| DataFusionError::Execution(format!("training stopped: {e}")))?
    .map_err(|e| in_create_model(e, &c.name))?;
    if reread {
        report.warnings.push(
            "the training rows did not fit the memory pool, so every pass read them again; \
             raise --memory-limit (SET datafusion.runtime.memory_limit) to train in one read"
                .to_string(),
        );
    }
    let seconds = start.elapsed().as_secs_f64();

    let description = ModelDescription {
        format_version: crate::store::FORMAT_VERSION,
        name: c.name.clone(),
        version: 0,
        model_type: model_type.name().to_string(),
        label: model.label().map(str::to_string),
        features: model
            .features()
            .iter()
            .zip(model.feature_descriptions())
            .map(|(f, encoding)| Feature {
                name: f.name().to_string(),
                data_type: f.data_type().to_string(),
                encoding,
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
        parameters: model::to_json(model.as_ref())?,
        arrays: vec![],
    };
    let mode = if c.or_replace {
        SaveMode::Replace
    } else {
        SaveMode::New
    };
    let version = match store.save(description, &model.arrays()?, mode) {
        Ok(version) => version,
        // Another client created the model while this one trained.
        Err(e) if c.if_not_exists && matches!(Error::find(&e), Some(Error::AlreadyExists(_))) => {
            return rows(&[], vec![]);
        }
        Err(e) => return Err(e),
    };

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

/// A training error as CREATE MODEL's: cohort's errors keep their kind, anything else
/// becomes bad input (training reads nothing but the rows).
fn in_create_model(e: DataFusionError, name: &str) -> DataFusionError {
    match e {
        DataFusionError::External(boxed) => match boxed.downcast::<Error>() {
            Ok(e) => e.in_create_model(name).into(),
            Err(other) => Error::BadInput(other.to_string())
                .in_create_model(name)
                .into(),
        },
        e @ DataFusionError::Internal(_) => e,
        // Kept as what it is, so that a server reports it as exhausted resources.
        DataFusionError::ResourcesExhausted(m) => {
            DataFusionError::ResourcesExhausted(format!("CREATE MODEL {name}: {m}"))
        }
        other => Error::BadInput(other.message().into_owned())
            .in_create_model(name)
            .into(),
    }
}
