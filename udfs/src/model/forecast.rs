//! Forecasting as a stored model: one ETS model per series (see [`crate::kernels::ets`]),
//! chosen by AICc and fitted in parallel, with the time axis that places its forecasts.
//!
//! Times are dates, timestamps or integers. Their step is the median spacing within the
//! series: about a month, a quarter or a year steps by calendar months; anything else by
//! that fixed amount. With `seasonality = 'auto'` the period follows from the step
//! (monthly 12, quarterly 4, weekly 52, daily 7, hourly 24) and is kept for a series only
//! when it has two periods and two more values and AICc prefers a seasonal model.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, RecordBatch,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType,
};
use datafusion::common::Result;
use datafusion::logical_expr::LogicalPlan;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::calendar::{add_months, date};
use super::matrix_factorization::{Ids, RawIds};
use super::options::Options;
use super::training::Source;
use super::{Holdout, Model, ModelKind, Report, ResolvedModel, Scored, Scoring, skipped_because};
use crate::error::{Error, bad_input, bad_input_err, invalid_argument_err};
use crate::kernels::ets::{self, Fit, Seasonality};
use crate::sql::{Budget, appended, batch_bytes, forecast_evaluate_plan};
use chrono::Datelike;

/// The most steps a forecast runs ahead, as the `horizon` option or FORECAST's argument.
pub const MAX_HORIZON: usize = 100_000;

/// The `seasonality` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeasonalityOption {
    /// The period the time step implies, kept where the data show it.
    Auto,
    None,
    Period(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForecastSettings {
    pub time_col: Option<String>,
    pub value_col: Option<String>,
    pub id_col: Option<String>,
    pub seasonality: SeasonalityOption,
    pub horizon: usize,
    pub confidence_level: f64,
}

/// What the time column holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeKind {
    /// Days since 1970-01-01.
    Date,
    /// Microseconds since 1970-01-01, in the column's time zone if it has one.
    Timestamp {
        timezone: Option<String>,
    },
    Integer,
}

/// The spacing of consecutive times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Months(i64),
    /// A fixed amount in the time column's units (days, microseconds or integers).
    Units(i64),
}

const DAY_MICROS: i64 = 86_400_000_000;

/// One series: when it ends, its model and the MASE scale (mean absolute error of the
/// seasonal naive forecast in training; `None` where it is zero or undefined).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub last: i64,
    pub fit: Fit,
    pub scale: Option<f64>,
}

/// A fitted forecast model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastModel {
    pub time_col: String,
    pub value_col: String,
    pub id_col: Option<String>,
    pub time_kind: TimeKind,
    pub step: Step,
    /// The seasonal period looked for (1 for none).
    pub period: usize,
    pub horizon: usize,
    pub confidence_level: f64,
    /// The series ids, sorted, one per series; `None` without `id_col`.
    pub ids: Option<Ids>,
    pub series: Vec<Series>,
}

/// A series' fit and the AICc of each model tried.
struct Fitted {
    series: Series,
    tried: Vec<(ets::Form, f64)>,
}

/// The rows read for training, one per observation, grouped by series and in time order.
struct Observations {
    ids: Option<Ids>,
    /// Per series, its (time, value) pairs by time.
    series: Vec<Vec<(i64, f64)>>,
    rows_used: u64,
    null_rows: u64,
    not_finite: u64,
}

impl ModelKind for ForecastModel {
    const NAME: &'static str = "forecast";
    const OPTIONS: &'static [&'static str] = &[
        "model_type",
        "time_col",
        "value_col",
        "id_col",
        "seasonality",
        "horizon",
        "confidence_level",
    ];
    const SCORES: &'static [Scoring] = &[Scoring::Predict, Scoring::ForecastScale];
    type Settings = ForecastSettings;

    fn settings(options: &Options) -> Result<ForecastSettings, Error> {
        let seasonality = match options.get("seasonality") {
            None => SeasonalityOption::Auto,
            Some(v) if v.is_word("auto") => SeasonalityOption::Auto,
            Some(v) if v.is_word("none") => SeasonalityOption::None,
            Some(v) => match v.as_i64() {
                Some(1) => SeasonalityOption::None,
                Some(m) if (2..=1000).contains(&m) => SeasonalityOption::Period(m as usize),
                _ => {
                    return Err(options.wrong(
                        "seasonality",
                        "'auto', 'none' or a period from 2 to 1000 (12 for months in a year)",
                    ));
                }
            },
        };
        let confidence_level = match options.get("confidence_level") {
            None => 0.95,
            Some(v) => match v.as_f64() {
                Some(level) if level > 0.0 && level < 1.0 => level,
                _ => return Err(options.wrong("confidence_level", "between 0 and 1")),
            },
        };
        Ok(ForecastSettings {
            time_col: options.column("time_col")?,
            value_col: options.column("value_col")?,
            id_col: options.column("id_col")?,
            seasonality,
            horizon: options.count("horizon", 1..=MAX_HORIZON as i64, 12)?,
            confidence_level,
        })
    }

    /// The last points of each series, at most a horizon of them.
    fn holdout(options: &Options) -> Result<Holdout, Error> {
        Ok(Holdout::Series {
            time: options.column("time_col")?,
            id: options.column("id_col")?,
            horizon: options.count("horizon", 1..=MAX_HORIZON as i64, 12)?,
        })
    }

    fn train(source: &dyn Source, settings: &ForecastSettings) -> Result<(Self, Report)> {
        let schema = source.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let find = |name: &str, option: &str| {
            schema.index_of(name).map_err(|_| {
                bad_input(format!(
                    "{option} {name} is not a column of the training query; its columns are {}",
                    names.join(", ")
                ))
            })
        };
        let id_idx = match &settings.id_col {
            Some(c) => Some(find(c, "id_col")?),
            None => None,
        };
        let time_idx = match &settings.time_col {
            Some(c) => find(c, "time_col")?,
            None => match schema
                .fields()
                .iter()
                .position(|f| f.data_type().is_temporal())
            {
                Some(i) => i,
                None => {
                    return bad_input_err!(
                        "forecast needs OPTIONS (time_col = '<column>'), a column of dates, \
                         timestamps or period numbers; the query has {}",
                        names.join(", ")
                    );
                }
            },
        };
        let value_idx = match &settings.value_col {
            Some(c) => find(c, "value_col")?,
            None => match (0..names.len()).find(|&i| {
                i != time_idx && Some(i) != id_idx && schema.field(i).data_type().is_numeric()
            }) {
                Some(i) => i,
                None => {
                    return bad_input_err!(
                        "forecast needs OPTIONS (value_col = '<column>'), the numeric column \
                         to forecast; the query has {}",
                        names.join(", ")
                    );
                }
            },
        };
        let time_col = names[time_idx].to_string();
        let value_col = names[value_idx].to_string();
        let time_kind = time_kind(schema.field(time_idx).data_type(), &time_col)?;
        let value_type = schema.field(value_idx).data_type();
        if !value_type.is_numeric() {
            return bad_input_err!(
                "value_col {value_col} is {value_type}; the values to forecast must be numbers"
            );
        }
        let observations = read(source, &time_kind, [time_idx, value_idx], id_idx)?;
        let step = detect_step(&time_kind, &observations.series)?;
        let period = match settings.seasonality {
            SeasonalityOption::Auto => implied_period(&time_kind, step),
            SeasonalityOption::None => 1,
            SeasonalityOption::Period(m) => m,
        };
        let seasonality = match settings.seasonality {
            SeasonalityOption::Auto if period > 1 => Seasonality::Auto(period),
            SeasonalityOption::Period(m) if m > 1 => Seasonality::Fixed(m),
            _ => Seasonality::None,
        };
        let axis = Axis::new(&time_kind, step);
        let describe = |s: usize| match &observations.ids {
            Some(ids) => format!("series {}", id_text(ids, s)),
            None => "the series".to_string(),
        };
        // The recursions take values as consecutive steps: a gap would be read as one step
        // and bend every fit after it.
        for (s, points) in observations.series.iter().enumerate() {
            let gap = points
                .windows(2)
                .find(|w| axis.steps_between(w[0].0, w[1].0) != Some(1));
            if let Some(w) = gap {
                return bad_input_err!(
                    "{} has a gap in {time_col}: {} is followed by {}, where the step of the \
                     data gives {}; fill the missing times (e.g. join a calendar and \
                     COALESCE the value; a NULL value leaves a gap too) or aggregate to a \
                     coarser step",
                    describe(s),
                    display_time(&time_kind, w[0].0),
                    display_time(&time_kind, w[1].0),
                    axis.advance(w[0].0, 1)
                        .map_or_else(String::new, |t| display_time(&time_kind, t))
                );
            }
        }
        let values: Vec<Vec<f64>> = observations
            .series
            .par_iter()
            .map(|points| points.iter().map(|(_, v)| *v).collect())
            .collect();
        let slices: Vec<&[f64]> = values.iter().map(Vec::as_slice).collect();
        let fitted: Vec<_> = ets::fit_best_many(&slices, seasonality)
            .into_par_iter()
            .zip(&observations.series)
            .zip(&values)
            .map(|((result, points), values)| {
                result.map(|(fit, tried)| {
                    let lag = if period > 1 && values.len() > period {
                        period
                    } else {
                        1
                    };
                    let scale = (values.len() > lag).then(|| {
                        values
                            .windows(lag + 1)
                            .map(|w| (w[lag] - w[0]).abs())
                            .sum::<f64>()
                            / (values.len() - lag) as f64
                    });
                    let last = points.last().map_or(0, |(t, _)| *t);
                    Fitted {
                        series: Series {
                            last,
                            fit,
                            scale: scale.filter(|s| *s > 0.0),
                        },
                        tried,
                    }
                })
            })
            .collect();
        let mut kept = Vec::new();
        let mut failures = Vec::new();
        for (s, result) in fitted.into_iter().enumerate() {
            match result {
                Ok(fit) => kept.push((s, fit)),
                Err(why) => failures.push(format!("{} ({why})", describe(s))),
            }
        }
        if kept.is_empty() {
            return bad_input_err!(
                "no series could be fitted: {}",
                failures.first().map_or("there are no rows", String::as_str)
            );
        }
        let mut warnings = Vec::new();
        if !failures.is_empty() {
            warnings.push(format!(
                "{} series could not be fitted and have no forecast: {}",
                failures.len(),
                listed(&failures)
            ));
        }
        if let Seasonality::Auto(m) = seasonality {
            let short: Vec<String> = kept
                .iter()
                .filter(|(s, _)| values[*s].len() < 2 * m + 2)
                .map(|(s, _)| describe(*s))
                .collect();
            if !short.is_empty() {
                warnings.push(format!(
                    "{} series have fewer than {} values (two full periods of {m} and two \
                     more) and were fitted without seasonality: {}",
                    short.len(),
                    2 * m + 2,
                    listed(&short)
                ));
            }
        }
        let metrics = metrics(&kept);
        let ids = observations
            .ids
            .as_ref()
            .map(|ids| subset(ids, kept.iter().map(|(s, _)| *s)));
        let report = Report {
            rows_used: observations.rows_used,
            rows_skipped: observations.null_rows + observations.not_finite,
            skipped_because: skipped_because(
                observations.null_rows,
                "time, value or id",
                observations.not_finite,
            ),
            warnings,
            metrics,
        };
        let model = ForecastModel {
            time_col,
            value_col,
            id_col: settings.id_col.clone(),
            time_kind,
            step,
            period,
            horizon: settings.horizon,
            confidence_level: settings.confidence_level,
            ids,
            series: kept.into_iter().map(|(_, f)| f.series).collect(),
        };
        Ok((model, report))
    }
}

impl Model for ForecastModel {
    /// The input columns scoring needs, in order: the id column (if any) and the time.
    fn feature_names(&self) -> Vec<&str> {
        self.id_col
            .iter()
            .map(String::as_str)
            .chain([self.time_col.as_str()])
            .collect()
    }

    fn uses(&self, model: &str) -> String {
        format!(
            "SELECT * FROM forecast({model}, horizon), predict({model}, {}) or SELECT * FROM \
             evaluate({model}, ...)",
            self.feature_names().join(", ")
        )
    }

    /// Point forecasts, or with [`Scoring::ForecastScale`] each row's series' MASE scale.
    fn score(&self, scoring: Scoring, columns: &[ArrayRef]) -> Result<ArrayRef> {
        let (forecast, scale) = self.point_forecasts(columns)?;
        Ok(Arc::new(if scoring == Scoring::ForecastScale {
            scale
        } else {
            forecast
        }))
    }

    fn predict_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        let predicted =
            (scored.call)(Scoring::Predict).alias(format!("predicted_{}", self.value_col));
        appended(input, [predicted])
    }

    fn evaluate_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        forecast_evaluate_plan(
            input,
            scored.name,
            &self.value_col,
            (scored.call)(Scoring::Predict),
            (scored.call)(Scoring::ForecastScale),
        )
    }
}

impl ForecastModel {
    /// FORECAST's columns: id (with `id_col`), time, forecast, lower and upper.
    pub fn forecast_schema(&self) -> SchemaRef {
        let mut fields = Vec::new();
        if let Some(ids) = &self.ids {
            fields.push(Field::new("id", ids.data_type(), false));
        }
        let time = time_array(&self.time_kind, Vec::new());
        fields.push(Field::new("time", time.data_type().clone(), false));
        for name in ["forecast", "lower", "upper"] {
            fields.push(Field::new(name, DataType::Float64, false));
        }
        Arc::new(Schema::new(fields))
    }

    /// For each row of `columns` (the id, if the model has one, and the time): the point
    /// forecast and the series' MASE scale; NULL where the series is unknown or the time
    /// is not a step after the series' end.
    pub fn point_forecasts(&self, columns: &[ArrayRef]) -> Result<(Float64Array, Float64Array)> {
        let (positions, times) = match (&self.ids, columns) {
            (Some(ids), [id, time]) => (Some(ids.positions(id, "series")?), time),
            (None, [time]) => (None, time),
            _ => {
                return bad_input_err!(
                    "a forecast model is scored with {}",
                    self.feature_names().join(", ")
                );
            }
        };
        let times = time_values(times, &self.time_kind, &self.time_col)?;
        let axis = Axis::new(&self.time_kind, self.step);
        let scored: Vec<(Option<f64>, Option<f64>)> = (0..times.len())
            .into_par_iter()
            .map(|r| {
                let series = match &positions {
                    Some(p) => p[r]? as usize,
                    None => 0,
                };
                let series = &self.series[series];
                if times.is_null(r) {
                    return None;
                }
                let h = axis.steps_between(series.last, times.value(r))?;
                (h >= 1).then(|| {
                    let mean = ets::mean_ahead(&series.fit, h as usize);
                    (Some(mean), series.scale)
                })
            })
            .map(|x| x.unwrap_or((None, None)))
            .collect();
        Ok((
            scored.iter().map(|(f, _)| *f).collect(),
            scored.iter().map(|(_, s)| *s).collect(),
        ))
    }
}

/// The metrics CREATE MODEL reports: for one series, its AICc and that of every model
/// tried; for several, how many series chose each model.
fn metrics(kept: &[(usize, Fitted)]) -> Vec<(String, f64)> {
    if let [(_, Fitted { series, tried, .. })] = kept {
        // A constant series is fitted exactly and has no AICc.
        let mut metrics: Vec<(String, f64)> = series
            .fit
            .aicc
            .map(|a| ("aicc".to_string(), a))
            .into_iter()
            .collect();
        metrics.push(("sigma".to_string(), series.fit.sigma2.sqrt()));
        metrics.extend(
            tried
                .iter()
                .map(|(form, aicc)| (format!("aicc {}", form.name()), *aicc)),
        );
        return metrics;
    }
    let mut counts: Vec<(String, f64)> = Vec::new();
    for (_, f) in kept {
        let name = format!("series {}", f.series.fit.form.name());
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1.0,
            None => counts.push((name, 1.0)),
        }
    }
    counts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut metrics = vec![("series".to_string(), kept.len() as f64)];
    metrics.extend(counts);
    metrics
}

/// The ids at `positions`, in that order.
fn subset(ids: &Ids, positions: impl Iterator<Item = usize>) -> Ids {
    match ids {
        Ids::Int(v) => Ids::Int(positions.map(|p| v[p]).collect()),
        Ids::Text(v) => Ids::Text(positions.map(|p| v[p].clone()).collect()),
    }
}

fn id_text(ids: &Ids, s: usize) -> String {
    match ids {
        Ids::Int(v) => v[s].to_string(),
        Ids::Text(v) => format!("'{}'", v[s]),
    }
}

fn time_kind(t: &DataType, column: &str) -> Result<TimeKind> {
    match t {
        DataType::Date32 | DataType::Date64 => Ok(TimeKind::Date),
        DataType::Timestamp(_, tz) => Ok(TimeKind::Timestamp {
            timezone: tz.as_ref().map(|z| z.to_string()),
        }),
        t if t.is_integer() => Ok(TimeKind::Integer),
        _ => bad_input_err!(
            "time_col {column} is {t}; it must be a date, a timestamp or an integer period \
             number (CAST it in the training query)"
        ),
    }
}

/// The times of `array` as numbers of the model's units.
fn time_values(array: &ArrayRef, kind: &TimeKind, column: &str) -> Result<Int64Array> {
    let mismatch = || {
        bad_input_err!(
            "{column} must be {} as in training, got {}",
            match kind {
                TimeKind::Date => "a date",
                TimeKind::Timestamp { .. } => "a timestamp",
                TimeKind::Integer => "an integer",
            },
            array.data_type()
        )
    };
    Ok(match kind {
        TimeKind::Date if array.data_type().is_temporal() => {
            let a = cast(array, &DataType::Date32)?;
            a.as_primitive::<Date32Type>().unary(i64::from)
        }
        TimeKind::Timestamp { timezone } if array.data_type().is_temporal() => {
            let target = DataType::Timestamp(
                TimeUnit::Microsecond,
                timezone.as_ref().map(|z| z.as_str().into()),
            );
            let a = cast(array, &target)?;
            a.as_primitive::<TimestampMicrosecondType>().unary(|v| v)
        }
        TimeKind::Integer if array.data_type().is_integer() => cast(array, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .clone(),
        _ => return mismatch(),
    })
}

/// Times in the model's units as an array of the time column's kind.
fn time_array(kind: &TimeKind, values: Vec<i64>) -> ArrayRef {
    match kind {
        TimeKind::Date => Arc::new(Date32Array::from_iter_values(
            values.into_iter().map(|d| d as i32),
        )),
        TimeKind::Timestamp { timezone } => Arc::new(
            TimestampMicrosecondArray::from(values)
                .with_timezone_opt(timezone.as_ref().map(|z| z.as_str())),
        ),
        TimeKind::Integer => Arc::new(Int64Array::from(values)),
    }
}

/// Reads (time, value) and the id of every usable row, grouped by series.
fn read(
    source: &dyn Source,
    kind: &TimeKind,
    [time_idx, value_idx]: [usize; 2],
    id_idx: Option<usize>,
) -> Result<Observations> {
    let schema = source.schema();
    let mut raw_ids = match id_idx {
        Some(i) => Some(RawIds::for_type(
            schema.field(i).data_type(),
            schema.field(i).name(),
            "series ids",
        )?),
        None => None,
    };
    let time_col = schema.field(time_idx).name().clone();
    let (mut times, mut values) = (Vec::new(), Vec::new());
    let (mut null_rows, mut not_finite) = (0u64, 0u64);
    source.scan(&mut |batches| {
        for batch in batches {
            let t = time_values(batch.column(time_idx), kind, &time_col)?;
            let v = cast(batch.column(value_idx), &DataType::Float64)?;
            let v = v.as_primitive::<Float64Type>();
            let id = id_idx.map(|i| batch.column(i));
            let mut keep = vec![true; batch.num_rows()];
            for (r, k) in keep.iter_mut().enumerate() {
                if t.is_null(r) || v.is_null(r) || id.is_some_and(|a| a.is_null(r)) {
                    null_rows += 1;
                    *k = false;
                } else if !v.value(r).is_finite() {
                    not_finite += 1;
                    *k = false;
                } else {
                    times.push(t.value(r));
                    values.push(v.value(r));
                }
            }
            if let (Some(raw), Some(id)) = (raw_ids.as_mut(), id) {
                raw.extend(id, &keep)?;
            }
        }
        Ok(())
    })?;
    let (ids, positions) = match raw_ids {
        Some(raw) => {
            let (ids, positions) = raw.index();
            (Some(ids), positions)
        }
        None => (None, vec![0; times.len()]),
    };
    let count = ids
        .as_ref()
        .map_or(usize::from(!times.is_empty()), Ids::len);
    let mut series: Vec<Vec<(i64, f64)>> = vec![Vec::new(); count];
    for ((p, t), v) in positions.iter().zip(&times).zip(&values) {
        series[*p as usize].push((*t, *v));
    }
    for (s, points) in series.iter_mut().enumerate() {
        points.sort_by_key(|(t, _)| *t);
        if let Some(w) = points.windows(2).find(|w| w[0].0 == w[1].0) {
            let which = ids.as_ref().map_or(String::new(), |ids| {
                format!(" of series {}", id_text(ids, s))
            });
            return bad_input_err!(
                "{time_col} {} appears more than once{which}; aggregate to one value per time \
                 (e.g. GROUP BY), or name the series column with id_col",
                display_time(kind, w[0].0)
            );
        }
    }
    Ok(Observations {
        ids,
        series,
        rows_used: times.len() as u64,
        null_rows,
        not_finite,
    })
}

/// The first few of `items`, comma-separated, with "..." when there are more.
fn listed(items: &[String]) -> String {
    let more = if items.len() > 5 { ", ..." } else { "" };
    format!("{}{more}", items[..items.len().min(5)].join(", "))
}

/// A time as SQL would show it.
fn display_time(kind: &TimeKind, t: i64) -> String {
    let array = time_array(kind, vec![t]);
    datafusion::arrow::util::display::array_value_to_string(&array, 0)
        .unwrap_or_else(|_| t.to_string())
}

/// The step: calendar months when the median spacing is about a month, a quarter or a
/// year; else the median spacing itself.
fn detect_step(kind: &TimeKind, series: &[Vec<(i64, f64)>]) -> Result<Step> {
    let mut gaps: Vec<i64> = series
        .iter()
        .flat_map(|s| s.windows(2).map(|w| w[1].0 - w[0].0))
        .collect();
    if gaps.is_empty() {
        return bad_input_err!("forecast needs at least two times in a series");
    }
    let mid = gaps.len() / 2;
    let median = *gaps.select_nth_unstable(mid).1;
    let days = match kind {
        TimeKind::Date => Some(median),
        TimeKind::Timestamp { .. } if median % DAY_MICROS == 0 => Some(median / DAY_MICROS),
        _ => None,
    };
    Ok(match days {
        Some(28..=31) => Step::Months(1),
        Some(89..=92) => Step::Months(3),
        Some(365..=366) => Step::Months(12),
        _ => Step::Units(median),
    })
}

/// The seasonal period a step implies: a year of months or quarters, a week of days, a
/// year of weeks, a day of hours.
fn implied_period(kind: &TimeKind, step: Step) -> usize {
    let day = match kind {
        TimeKind::Date => 1,
        TimeKind::Timestamp { .. } => DAY_MICROS,
        TimeKind::Integer => return 1,
    };
    match step {
        Step::Months(1) => 12,
        Step::Months(3) => 4,
        Step::Units(u) if u == day => 7,
        Step::Units(u) if u == 7 * day => 52,
        Step::Units(u) if matches!(kind, TimeKind::Timestamp { .. }) && u == day / 24 => 24,
        _ => 1,
    }
}

/// Steps along the time axis.
#[derive(Debug, Clone, Copy)]
struct Axis {
    step: Step,
    /// Time units in a day (1 for dates; microseconds for timestamps; 1 for integers,
    /// which never step by months).
    day: i64,
}

impl Axis {
    fn new(kind: &TimeKind, step: Step) -> Self {
        let day = match kind {
            TimeKind::Timestamp { .. } => DAY_MICROS,
            TimeKind::Date | TimeKind::Integer => 1,
        };
        Self { step, day }
    }

    /// How many steps from `from` to `to`, if `to` is on the grid from `from`.
    fn steps_between(&self, from: i64, to: i64) -> Option<i64> {
        match self.step {
            Step::Months(k) => {
                let (fd, td) = (from.div_euclid(self.day), to.div_euclid(self.day));
                if from.rem_euclid(self.day) != to.rem_euclid(self.day) {
                    return None;
                }
                let (a, b) = (date(fd)?, date(td)?);
                let months = i64::from(b.year() - a.year()) * 12
                    + (i64::from(b.month()) - i64::from(a.month()));
                (months % k == 0 && add_months(fd, months) == Some(td)).then_some(months / k)
            }
            Step::Units(u) => ((to - from) % u == 0).then_some((to - from) / u),
        }
    }

    /// The time `h` steps after `from`; `None` past the calendar's range.
    fn advance(&self, from: i64, h: i64) -> Option<i64> {
        match self.step {
            Step::Months(k) => {
                let days = add_months(from.div_euclid(self.day), h * k)?;
                Some(days * self.day + from.rem_euclid(self.day))
            }
            Step::Units(u) => Some(from + h * u),
        }
    }
}

/// FORECAST's rows, made a batch at a time: `horizon` steps of every series in turn, in
/// batches of about `batch` rows. Short series share a batch and are forecast in parallel;
/// a long one is split over batches, its state carried from one to the next, so that
/// memory holds one batch and the simulation states of a few series whatever the horizon.
pub struct ForecastRows {
    model: ResolvedModel,
    horizon: usize,
    level: f64,
    batch: usize,
    budget: Budget,
    /// The next series to start.
    next: usize,
    /// A series part-way through: its index, the steps made and its state.
    open: Option<(usize, usize, ets::Forecasting)>,
}

/// Bytes a row of FORECAST's output takes, an id of text included.
const ROW_BYTES: usize = 64;

impl ForecastRows {
    /// `model` must be a forecast model.
    pub(crate) fn new(
        model: ResolvedModel,
        horizon: usize,
        level: f64,
        batch: usize,
        budget: Budget,
    ) -> Self {
        Self {
            model,
            horizon,
            level,
            batch: batch.max(1),
            budget,
            next: 0,
            open: None,
        }
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let m = self.model.downcast::<ForecastModel>("forecast")?;
        // (series, first step, steps, state if carried over)
        let mut pieces = Vec::new();
        let mut rows = 0;
        while rows < self.batch {
            let (s, first, state) = match self.open.take() {
                Some((s, first, state)) => (s, first, Some(state)),
                None if self.next < m.series.len() => {
                    self.next += 1;
                    (self.next - 1, 0, None)
                }
                None => break,
            };
            let steps = (self.horizon - first).min(self.batch - rows);
            rows += steps;
            pieces.push((s, first, steps, state));
        }
        if pieces.is_empty() {
            return Ok(None);
        }
        let states = pieces.len().min(rayon::current_num_threads());
        self.budget.hold(
            batch_bytes(rows, ROW_BYTES, states * ets::state_bytes(m.period)),
            || format!("a batch of {rows} rows"),
        )?;
        let (horizon, level) = (self.horizon, self.level);
        let placed: Vec<(usize, usize, usize)> = pieces
            .iter()
            .map(|(s, first, n, _)| (*s, *first, *n))
            .collect();
        let made: Vec<(ets::Forecast, Option<ets::Forecasting>)> = pieces
            .into_par_iter()
            .map(|(s, first, steps, state)| {
                let mut state = state
                    .unwrap_or_else(|| ets::Forecasting::new(&m.series[s].fit, level, 0, s as u64));
                let forecast = state.next(steps);
                (forecast, (first + steps < horizon).then_some(state))
            })
            .collect();
        let mut forecasts = Vec::with_capacity(made.len());
        for ((forecast, state), &(s, first, steps)) in made.into_iter().zip(&placed) {
            if let Some(state) = state {
                self.open = Some((s, first + steps, state));
            }
            forecasts.push(forecast);
        }
        m.forecast_batch(horizon, &placed, &forecasts).map(Some)
    }
}

impl Iterator for ForecastRows {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

impl ForecastModel {
    /// The rows of `forecasts`, each `steps` of series `s` from step `first` (0-based), of
    /// a forecast `horizon` steps long.
    fn forecast_batch(
        &self,
        horizon: usize,
        placed: &[(usize, usize, usize)],
        forecasts: &[ets::Forecast],
    ) -> Result<RecordBatch> {
        let axis = Axis::new(&self.time_kind, self.step);
        let mut columns: Vec<ArrayRef> = Vec::new();
        if let Some(ids) = &self.ids {
            columns.push(
                ids.take(
                    placed
                        .iter()
                        .flat_map(|&(s, _, steps)| std::iter::repeat_n(s, steps)),
                ),
            );
        }
        let times: Option<Vec<i64>> = placed
            .iter()
            .flat_map(|&(s, first, steps)| {
                let last = self.series[s].last;
                (first + 1..=first + steps).map(move |h| axis.advance(last, h as i64))
            })
            .collect();
        let Some(times) = times else {
            return invalid_argument_err!(
                "a horizon of {horizon} steps runs past the last date the calendar holds; \
                 forecast fewer steps"
            );
        };
        columns.push(time_array(&self.time_kind, times));
        let column = |part: fn(&ets::Forecast) -> &Vec<f64>| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(
                forecasts.iter().flat_map(|f| part(f).iter().copied()),
            ))
        };
        columns.push(column(|f| &f.mean));
        columns.push(column(|f| &f.lower));
        columns.push(column(|f| &f.upper));
        Ok(RecordBatch::try_new(self.forecast_schema(), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        let civil = |days: i64| date(days).map(|d| (d.year(), d.month(), d.day()));
        let days_from_civil = |y, m, d| {
            chrono::NaiveDate::from_ymd_opt(y, m, d).map(|d| i64::from(d.to_epoch_days()))
        };
        for days in [-800_000, -1, 0, 59, 10_956, 19_723, 20_634, 2_000_000] {
            let (y, m, d) = civil(days).unwrap();
            assert_eq!(days_from_civil(y, m, d), Some(days));
        }
        assert_eq!(civil(19_723), Some((2024, 1, 1)));
        let jan31 = days_from_civil(2024, 1, 31).unwrap();
        assert_eq!(civil(add_months(jan31, 1).unwrap()), Some((2024, 2, 29)));
        assert_eq!(civil(add_months(jan31, 13).unwrap()), Some((2025, 2, 28)));
        let feb29 = days_from_civil(2024, 2, 29).unwrap();
        assert_eq!(civil(add_months(feb29, 1).unwrap()), Some((2024, 3, 31)));
        let axis = Axis::new(&TimeKind::Date, Step::Months(1));
        let jan1 = days_from_civil(2024, 1, 1).unwrap();
        assert_eq!(
            axis.steps_between(jan1, days_from_civil(2025, 1, 1).unwrap()),
            Some(12)
        );
        assert_eq!(
            axis.steps_between(jan1, days_from_civil(2025, 1, 2).unwrap()),
            None
        );
        assert_eq!(axis.steps_between(jan31, feb29), Some(1));
    }
}
