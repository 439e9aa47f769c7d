//! `CREATE [OR REPLACE] MODEL [IF NOT EXISTS] name OPTIONS (...) AS query`.
//!
//! Checks the options, runs the training query through the engine, trains, and writes a new
//! version to the store. It reports one row: model, version, rows used and skipped (and why),
//! training seconds, the headline metric, any warnings, and what the workflow options
//! measured: the metrics on the evaluation rows (`data_split_method`, see [`holdout`]), their
//! mean and spread over cross-validation folds (`cv_folds`) and the best tuning trial
//! (options given as lists or ranges, see [`tuning`]). Those are stored with the model for
//! `EVALUATE('m')` and `TRIALS('m')`.
//!
//! Tuning fits every trial on the same training rows (read once, fitted side by side when
//! they are in memory), judges each on the evaluation rows, and keeps the best trial's fit:
//! fits are deterministic, so it is the model its options give on those rows.
//! Cross-validation then fits the chosen options K times, each on a fold-filtered plan of the
//! training rows, and evaluates each fit on its own fold.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{
    Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::memory::MemoryStream;
use rayon::prelude::*;

use cohort_udfs::Error;
use cohort_udfs::kernels::interrupt::Interrupt;
use cohort_udfs::model::training::{InMemory, Source};
use cohort_udfs::model::{
    self, Assessment, Holdout, MetricRow, MetricValue, Model, Options, Report, ResolvedModel,
    Spread, Trainer, Trial,
};
use cohort_udfs::sql::{SessionPool, evaluate_rows};

use super::holdout::{self, Split, SplitSettings};
use super::training_rows::TrainingRows;
use super::tuning::{self, Search};
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
    let split_settings = SplitSettings::read(&c.options).map_err(fail)?;
    let search = Search::read(&c.options, split_settings.seed).map_err(fail)?;
    // The options the model type reads: the split's and tuning's taken out, and the seed
    // where only they use it.
    let workflow = SplitSettings::given(&c.options) || search.is_some();
    let takes_seed = model_type.options().contains(&"seed");
    let model_options: Vec<(String, OptionValue)> = c
        .options
        .iter()
        .filter(|(k, _)| {
            !holdout::OPTIONS.contains(&k.as_str())
                && !tuning::OPTIONS.contains(&k.as_str())
                && (k != "seed" || takes_seed || !workflow)
        })
        .cloned()
        .collect();
    let trial_options: Vec<Vec<(String, OptionValue)>> = match &search {
        Some(s) => (0..s.trials.len())
            .map(|t| s.options_of(&model_options, t))
            .collect(),
        None => vec![model_options],
    };
    let options = |values| Options {
        model_type: model_type.name(),
        values,
    };
    // Every trial's options are checked before anything is trained.
    let trainers: Arc<Vec<Box<dyn Trainer>>> = Arc::new(
        trial_options
            .iter()
            .map(|o| model_type.trainer(&options(o)))
            .collect::<Result<_, _>>()
            .map_err(fail)?,
    );
    let holdout = model_type
        .holdout(&options(&trial_options[0]))
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
    // The training query is planned as any other query, table forms and all.
    let plan = engine
        .plan_sql(&c.query)
        .await
        .map_err(|e| query_failed(e, &c.name))?;
    let split = holdout::split(
        engine.context(),
        plan,
        &split_settings,
        &holdout,
        search.is_some(),
    )
    .await
    .map_err(|e| in_create_model(e, &c.name))?;

    let all: Vec<usize> = (0..trainers.len()).collect();
    let distributed = model_type.distributed();
    let (fits, note) = fit_all(
        engine,
        &c.name,
        split.train.clone(),
        &trainers,
        &all,
        distributed,
    )
    .await?;
    let mut assessment = Assessment {
        split: split.described.clone(),
        ..Assessment::default()
    };
    let best = match &search {
        None => 0,
        Some(s) => {
            judge_trials(
                engine,
                &c.name,
                s,
                &fits,
                split.eval.as_ref(),
                &mut assessment,
            )
            .await?
        }
    };
    let Some(fitted) = fits.into_iter().nth(best) else {
        return Err(DataFusionError::Internal(
            "the chosen fit is missing".into(),
        ));
    };
    let Fitted {
        model, mut report, ..
    } = fitted?;
    if let Some(eval) = &split.eval {
        assessment.eval = match assessment.trials.get(best) {
            Some(trial) => trial.metrics.clone(),
            None => evaluate(engine, &c.name, &model, eval.clone()).await?,
        };
    }
    if let Some(k) = split_settings.folds {
        assessment.cv_folds = k;
        assessment.cv = cross_validate(
            engine,
            &c.name,
            &split,
            k,
            &split_settings,
            &holdout,
            &trainers,
            best,
            distributed,
        )
        .await?;
    }
    report.warnings.extend(note);
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
        assessment: assessment.clone(),
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
        Field::new("eval_metrics", DataType::Utf8, false),
        Field::new("cv_metrics", DataType::Utf8, false),
        Field::new("tuning", DataType::Utf8, false),
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
            Arc::new(StringArray::from(vec![shown_eval(&assessment)])),
            Arc::new(StringArray::from(vec![shown_cv(&assessment)])),
            Arc::new(StringArray::from(vec![shown_tuning(&assessment)])),
        ],
    )?;
    Ok(Box::pin(MemoryStream::try_new(vec![batch], schema, None)?))
}

/// A model fitted on the training rows.
struct Fitted {
    model: Arc<dyn Model>,
    report: Report,
    seconds: f64,
}

/// The error of a training query that failed to plan or run.
fn query_failed(e: DataFusionError, name: &str) -> DataFusionError {
    Error::Query {
        context: "the training query failed".to_string(),
        source: Box::new(e),
    }
    .in_create_model(name)
    .into()
}

/// Fits the trainers `which` on the rows of `plan`, read once. When the rows are in memory
/// the fits run side by side, each taking its working memory from the pool, and one refused
/// memory beside the others is fitted again alone; rows read again for every pass are
/// fitted on one trainer at a time. Per trainer, its fit or why it failed, and whether the
/// rows were read again per pass.
async fn fit_all(
    engine: &Engine,
    name: &str,
    plan: LogicalPlan,
    trainers: &Arc<Vec<Box<dyn Trainer>>>,
    which: &[usize],
    distributed: bool,
) -> Result<(Vec<Result<Fitted>>, Option<String>)> {
    let on_cluster = engine.is_on_cluster();
    let trainers = trainers.clone();
    let which = which.to_vec();
    let (fits, note) = with_rows(engine, name, plan, distributed, move |data| {
        let fit = |i: usize, source: &dyn Source| {
            let start = Instant::now();
            let (model, report) = trainers[i].train(source)?;
            Ok(Fitted {
                model,
                report,
                seconds: start.elapsed().as_secs_f64(),
            })
        };
        match data {
            TrainingRows::InMemory {
                schema,
                batches,
                pool,
                ..
            } => {
                let source = InMemory {
                    schema,
                    batches,
                    pool: Some(pool),
                };
                let current = Interrupt::current();
                let mut fits: Vec<Result<Fitted>> = which
                    .par_iter()
                    .map(|&i| current.during(|| fit(i, &source)))
                    .collect();
                if which.len() > 1 {
                    for (slot, &i) in fits.iter_mut().zip(&which) {
                        if matches!(slot, Err(DataFusionError::ResourcesExhausted(_))) {
                            *slot = fit(i, &source);
                        }
                    }
                }
                let note = on_cluster.then(|| {
                    "trained here on the rows gathered from the cluster: this model type fits \
                     in this process"
                        .to_string()
                });
                (fits, note)
            }
            TrainingRows::Replay(replay) => {
                let fits = which.iter().map(|&i| fit(i, replay.as_ref())).collect();
                let note = match replay.passes() {
                    Some(passes) => format!(
                        "trained on the cluster: {passes} passes ran as aggregates on the \
                         executors"
                    ),
                    None => "the training rows did not fit the memory pool, so every pass read \
                             them again; raise --memory-limit (SET \
                             datafusion.runtime.memory_limit) to train in one read"
                        .to_string(),
                };
                (fits, Some(note))
            }
        }
    })
    .await?;
    let fits = fits
        .into_iter()
        .map(|f| f.map_err(|e| in_create_model(e, name)))
        .collect();
    Ok((fits, note))
}

/// Reads the rows of `plan` for training (left on the cluster when the fit's passes are
/// aggregates, `distributed`, and there is one) and runs `job` on them on a blocking
/// thread, with the statement's progress and interruption.
async fn with_rows<T: Send + 'static>(
    engine: &Engine,
    name: &str,
    plan: LogicalPlan,
    distributed: bool,
    job: impl FnOnce(&TrainingRows) -> T + Send + 'static,
) -> Result<T> {
    let progress = engine.progress().training();
    let data = async {
        let frame = engine.context().execute_logical_plan(plan).await?;
        if engine.is_on_cluster() && distributed {
            Ok(TrainingRows::on_cluster(frame))
        } else {
            TrainingRows::read(frame, &progress.rows).await
        }
    }
    .await
    .map_err(|e| query_failed(e, name))?;
    // Training is CPU-bound and parallel: keep it off the async workers. When this future is
    // dropped unfinished (statement timeout, cancel), the fits stop at their next pass.
    let interrupt = Interrupt::default();
    let _stop = interrupt.raise_on_drop();
    let fit_progress = progress.fit.clone();
    tokio::task::spawn_blocking(move || fit_progress.during(|| interrupt.during(|| job(&data))))
        .await
        .map_err(|e| DataFusionError::Execution(format!("training stopped: {e}")))
}

/// EVALUATE's row for `model` over the rows of `plan`.
async fn evaluate(
    engine: &Engine,
    name: &str,
    model: &Arc<dyn Model>,
    plan: LogicalPlan,
) -> Result<MetricRow> {
    let resolved = ResolvedModel {
        name: name.to_string(),
        version: 0,
        model: model.clone(),
    };
    let pool = SessionPool::of(engine.context().state().config_options());
    let plan = evaluate_rows(resolved, plan, pool)?;
    let batches = engine
        .context()
        .execute_logical_plan(plan)
        .await?
        .collect()
        .await
        .map_err(|e| in_create_model(e, name))?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(vec![]);
    };
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            let value = match c.data_type() {
                t if t.is_integer() => {
                    let c = cast(c, &DataType::Int64)?;
                    let c = c.as_primitive::<Int64Type>();
                    if c.is_null(0) {
                        MetricValue::Number(None)
                    } else {
                        MetricValue::Count(c.value(0))
                    }
                }
                _ => {
                    let c = cast(c, &DataType::Float64)?;
                    let c = c.as_primitive::<Float64Type>();
                    MetricValue::Number(Some(c.value(0)).filter(|v| c.is_valid(0) && v.is_finite()))
                }
            };
            Ok((f.name().clone(), value))
        })
        .collect()
}

/// Evaluates every trial's fit on the evaluation rows and records the trials in
/// `assessment`; the index of the best.
async fn judge_trials(
    engine: &Engine,
    name: &str,
    search: &Search,
    fits: &[Result<Fitted>],
    eval: Option<&LogicalPlan>,
    assessment: &mut Assessment,
) -> Result<usize> {
    let Some(eval) = eval else {
        return Err(DataFusionError::Internal(
            "tuning without evaluation rows".into(),
        ));
    };
    let mut objective: Option<(String, bool)> = None;
    for (t, fit) in fits.iter().enumerate() {
        let options = search
            .tuned
            .iter()
            .zip(&search.trials[t])
            .map(|(k, v)| (k.clone(), v.to_string().trim_matches('\'').to_string()))
            .collect();
        let mut trial = Trial {
            trial: t + 1,
            options,
            metrics: vec![],
            objective: None,
            seconds: 0.0,
            error: None,
        };
        match fit {
            Ok(fit) => {
                let start = Instant::now();
                trial.metrics = evaluate(engine, name, &fit.model, eval.clone()).await?;
                trial.seconds = fit.seconds + start.elapsed().as_secs_f64();
                if objective.is_none() {
                    objective = Some(
                        tuning::objective(search.objective.as_deref(), &trial.metrics)
                            .map_err(|e| DataFusionError::from(e.in_create_model(name)))?,
                    );
                }
                if let Some((metric, _)) = &objective {
                    trial.objective = trial
                        .metrics
                        .iter()
                        .find(|(k, _)| k == metric)
                        .and_then(|(_, v)| v.as_f64());
                }
            }
            Err(e) => trial.error = Some(e.to_string()),
        }
        assessment.trials.push(trial);
    }
    let Some((_, higher)) = objective.clone() else {
        // Every trial failed: the first one's error says why.
        return match fits.iter().find_map(|f| f.as_ref().err()) {
            Some(e) => Err(DataFusionError::Execution(format!(
                "every tuning trial failed; the first: {e}"
            ))),
            None => Err(DataFusionError::Internal("no trials".into())),
        };
    };
    // Best by the objective; ties go to the earlier trial.
    let best = assessment
        .trials
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.objective.map(|v| (i, v)))
        .reduce(|a, b| {
            let better = if higher { b.1 > a.1 } else { b.1 < a.1 };
            if better { b } else { a }
        })
        .map_or_else(
            || {
                assessment
                    .trials
                    .iter()
                    .position(|t| t.error.is_none())
                    .unwrap_or(0)
            },
            |(i, _)| i,
        );
    assessment.objective = objective;
    assessment.best_trial = Some(best + 1);
    Ok(best)
}

/// Each metric's mean and standard deviation over `k` folds of the training rows, each fold
/// fitted with trainer `chosen` on the other rows: all K fits from one read of the rows
/// where the model type can (linear regression: each fold's moments), otherwise K fits,
/// each on a fold-filtered plan.
#[allow(clippy::too_many_arguments)]
async fn cross_validate(
    engine: &Engine,
    name: &str,
    split: &Split,
    k: usize,
    settings: &SplitSettings,
    holdout: &Holdout,
    trainers: &Arc<Vec<Box<dyn Trainer>>>,
    chosen: usize,
    distributed: bool,
) -> Result<Vec<Spread>> {
    let folds = holdout::folds(&split.train, k, settings.seed, holdout)
        .map_err(|e| in_create_model(e, name))?;
    let mut models = None;
    // On a cluster the rows stay there, so only fits whose passes are aggregates read them.
    if folds.fit_on_the_others() && trainers[chosen].folds_in_one_read() && !engine.is_on_cluster()
    {
        let trainers = trainers.clone();
        let fits = with_rows(engine, name, folds.dealt.clone(), false, move |data| {
            let TrainingRows::InMemory {
                schema,
                batches,
                pool,
                ..
            } = data
            else {
                return None;
            };
            let source = InMemory {
                schema,
                batches,
                pool: Some(pool),
            };
            trainers[chosen].train_folds(&source, k)
        })
        .await?;
        if let Some(fits) = fits {
            let fits = fits.map_err(|e| {
                DataFusionError::Execution(format!(
                    "cross-validation failed to fit its {k} folds: {e}"
                ))
            })?;
            models = Some(fits.into_iter().map(|(model, _)| model).collect::<Vec<_>>());
        }
    }
    let mut rows: Vec<MetricRow> = Vec::with_capacity(k);
    for f in 0..k {
        let (fit_on, held) = folds.sides(f).map_err(|e| in_create_model(e, name))?;
        let model = match &models {
            Some(models) => models[f].clone(),
            None => {
                let (mut fits, _) =
                    fit_all(engine, name, fit_on, trainers, &[chosen], distributed).await?;
                let fitted = fits.pop().ok_or_else(|| {
                    DataFusionError::Internal("a fold's fit is missing".to_string())
                })?;
                fitted
                    .map_err(|e| {
                        DataFusionError::Execution(format!(
                            "cross-validation fold {} of {k} failed to fit: {e}",
                            f + 1
                        ))
                    })?
                    .model
            }
        };
        rows.push(evaluate(engine, name, &model, held).await?);
    }
    Ok(spreads(&rows))
}

/// Per metric (the fold's rows too), the mean and population standard deviation of its
/// values over `rows`, NULLs left out.
fn spreads(rows: &[MetricRow]) -> Vec<Spread> {
    let Some(first) = rows.first() else {
        return vec![];
    };
    first
        .iter()
        .filter_map(|(metric, _)| {
            let values: Vec<f64> = rows
                .iter()
                .filter_map(|r| r.iter().find(|(k, _)| k == metric))
                .filter_map(|(_, v)| v.as_f64())
                .collect();
            if values.is_empty() {
                return None;
            }
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            Some(Spread {
                metric: metric.clone(),
                mean,
                std: var.sqrt(),
            })
        })
        .collect()
}

/// CREATE MODEL's eval_metrics: `split: metric=value, ...`.
fn shown_eval(a: &Assessment) -> String {
    if a.eval.is_empty() {
        return String::new();
    }
    let metrics: Vec<String> = a
        .eval
        .iter()
        .map(|(k, v)| match v {
            MetricValue::Count(n) => format!("{k}={n}"),
            MetricValue::Number(Some(x)) => format!("{k}={x:.6}"),
            MetricValue::Number(None) => format!("{k}=NULL"),
        })
        .collect();
    format!("{}: {}", a.split, metrics.join(", "))
}

/// CREATE MODEL's cv_metrics: `k folds: metric=mean±std, ...`.
fn shown_cv(a: &Assessment) -> String {
    if a.cv.is_empty() {
        return String::new();
    }
    let metrics: Vec<String> =
        a.cv.iter()
            .map(|s| format!("{}={:.6}±{:.6}", s.metric, s.mean, s.std))
            .collect();
    format!("{} folds: {}", a.cv_folds, metrics.join(", "))
}

/// CREATE MODEL's tuning: the best trial, its options and objective.
fn shown_tuning(a: &Assessment) -> String {
    let (Some(best), Some((metric, _))) = (a.best_trial, &a.objective) else {
        return String::new();
    };
    let Some(trial) = a.trials.get(best - 1) else {
        return String::new();
    };
    let options: Vec<String> = trial
        .options
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "trial {best} of {}: {} ({metric}={})",
        a.trials.len(),
        options.join(", "),
        trial
            .objective
            .map_or_else(|| "NULL".to_string(), |v| format!("{v:.6}"))
    )
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
