//! Customer value as a stored model: a purchase model (BG/NBD or Pareto/NBD) and the
//! Gamma-Gamma spend model fitted on every customer's summary at the end of calibration
//! (see [`crate::kernels::customer_value`]), with those summaries kept for scoring.
//!
//! Conventions, as in BTYD and lifetimes: purchases on the same day are one purchase (their
//! amounts summed); calibration covers the days up to and including `calibration_end`; per
//! customer x = repeat purchase days in calibration, t_x = time from the first purchase to
//! the last of them, T = time from the first purchase to `calibration_end`, in `time_unit`
//! (a month is 365.25/12 days). Customers whose first purchase is after `calibration_end`
//! are left out and counted. A row with a negative amount is a return, not a purchase: it
//! is left out and counted.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int64Type, Schema, SchemaRef, UInt32Type,
};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::LogicalPlan;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::calendar::date;
use super::matrix_factorization::{Ids, RawIds};
use super::options::{OptionValue, Options};
use super::training::{Held, Source};
use super::{Holdout, Model, ModelKind, Parameter, Report, Scored, Scoring, skipped_because};
use crate::error::{Error, bad_input, bad_input_err, store_err};
use crate::kernels::customer_value::{
    BgNbd, BgNbdLikelihood, Customers, Estimate, GammaGamma, GammaGammaLikelihood, ParetoNbd,
    ParetoNbdLikelihood, PurchaseDays, PurchaseModel, Spenders, TimeUnit, maximise, summarise,
};
use crate::sql::customer_value_evaluate_plan;

/// Fewer calibration customers than this cannot pin down four population parameters.
pub const MIN_CUSTOMERS: usize = 10;

/// The `time_unit` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Day,
    Week,
    Month,
}

impl Unit {
    pub fn days(self) -> TimeUnit {
        TimeUnit(match self {
            Unit::Day => 1.0,
            Unit::Week => 7.0,
            Unit::Month => 365.25 / 12.0,
        })
    }
}

/// The `purchase_model` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseKind {
    BgNbd,
    ParetoNbd,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerValueSettings {
    pub customer_col: String,
    pub time_col: String,
    pub amount_col: String,
    pub calibration_end: Option<i32>,
    pub holdout_end: Option<i32>,
    pub time_unit: Unit,
    pub purchase_model: PurchaseKind,
    pub penalizer: f64,
}

/// A fitted customer-value model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerValueModel {
    pub customer_col: String,
    pub time_col: String,
    pub amount_col: String,
    /// Days since 1970-01-01.
    pub calibration_end: i32,
    pub holdout_end: Option<i32>,
    pub time_unit: Unit,
    pub purchase_model: PurchaseKind,
    /// r, alpha, a, b (BG/NBD) or r, alpha, s, beta (Pareto/NBD).
    pub purchase: Vec<Parameter>,
    /// p, q, gamma; empty when too few customers had repeat purchases to fit it.
    pub spend: Vec<Parameter>,
    pub log_likelihood: f64,
    /// The calibration customers, sorted, and their summaries (beside the description).
    #[serde(skip)]
    pub ids: Ids,
    #[serde(skip)]
    pub customers: Customers,
    /// Mean amount of each customer's repeat purchase days (NaN without any).
    #[serde(skip)]
    pub mean_spend: Vec<f64>,
}

/// The stored array of the customers' summaries.
const CUSTOMERS: &str = "customers";

/// Either purchase model, as fitted.
#[derive(Debug, Clone, Copy)]
pub enum Purchases {
    BgNbd(BgNbd),
    ParetoNbd(ParetoNbd),
}

impl PurchaseModel for Purchases {
    fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        match self {
            Purchases::BgNbd(m) => m.p_alive(x, t_x, t),
            Purchases::ParetoNbd(m) => m.p_alive(x, t_x, t),
        }
    }

    fn expected_purchases(&self, horizon: f64, x: f64, t_x: f64, t: f64) -> f64 {
        match self {
            Purchases::BgNbd(m) => m.expected_purchases(horizon, x, t_x, t),
            Purchases::ParetoNbd(m) => m.expected_purchases(horizon, x, t_x, t),
        }
    }
}

/// A day option: `DATE 'YYYY-MM-DD'` or the string alone.
fn day_option(options: &Options, name: &str) -> Result<Option<i32>, Error> {
    match options.get(name) {
        None => Ok(None),
        Some(OptionValue::String(s)) => chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(|d| Some(d.to_epoch_days()))
            .map_err(|_| options.wrong(name, "a date, DATE 'YYYY-MM-DD'")),
        Some(_) => Err(options.wrong(name, "a date, DATE 'YYYY-MM-DD'")),
    }
}

/// A day number as SQL shows a date.
pub fn show_day(day: i32) -> String {
    date(i64::from(day)).map_or_else(|| day.to_string(), |d| d.to_string())
}

fn parameters(names: &[&str], fit: &Estimate) -> Vec<Parameter> {
    names
        .iter()
        .zip(&fit.params)
        .zip(&fit.std_err)
        .map(|((name, value), std_err)| Parameter {
            name: name.to_string(),
            value: *value,
            std_err: *std_err,
        })
        .collect()
}

/// The rows read for training: each purchase row as (customer, day, amount).
struct Rows {
    ids: Ids,
    days: PurchaseDays,
    used: u64,
    nulls: u64,
    not_finite: u64,
    returns: u64,
}

fn read(source: &dyn Source, [customer, time, amount]: [usize; 3]) -> Result<Rows> {
    let schema = source.schema();
    let field = schema.field(customer);
    let mut raw = RawIds::for_type(field.data_type(), field.name(), "customer ids")?;
    let mut held = Held::new(source, "customer_value", "the purchase rows");
    let (mut days, mut amounts) = (Vec::new(), Vec::new());
    let (mut nulls, mut not_finite, mut returns) = (0u64, 0u64, 0u64);
    source.scan(&mut |batches| {
        for batch in batches {
            let t = cast(batch.column(time), &DataType::Date32)?;
            let t = t.as_primitive::<Date32Type>();
            let a = cast(batch.column(amount), &DataType::Float64)?;
            let a = a.as_primitive::<Float64Type>();
            let c = batch.column(customer);
            let mut keep = vec![false; batch.num_rows()];
            held.grow(batch.num_rows() as u64, 32, 0)?;
            for (r, k) in keep.iter_mut().enumerate() {
                if c.is_null(r) || t.is_null(r) || a.is_null(r) {
                    nulls += 1;
                } else if !a.value(r).is_finite() {
                    not_finite += 1;
                } else if a.value(r) < 0.0 {
                    returns += 1;
                } else {
                    *k = true;
                    days.push(t.value(r));
                    amounts.push(a.value(r));
                }
            }
            raw.extend(c, &keep)?;
        }
        Ok(())
    })?;
    let (ids, positions) = raw.index();
    let rows: Vec<(u32, i32, f64)> = positions
        .into_iter()
        .zip(days)
        .zip(amounts)
        .map(|((p, d), a)| (p, d, a))
        .collect();
    let used = rows.len() as u64;
    // Summed per part of the rows, then merged: the same as one pass over all of them.
    let days = rows
        .par_chunks(1 << 16)
        .map(|part| PurchaseDays::from_rows(part.to_vec()))
        .reduce(PurchaseDays::default, PurchaseDays::merge);
    Ok(Rows {
        ids,
        days,
        used,
        nulls,
        not_finite,
        returns,
    })
}

impl ModelKind for CustomerValueModel {
    const NAME: &'static str = "customer_value";
    const OPTIONS: &'static [&'static str] = &[
        "model_type",
        "customer_col",
        "time_col",
        "amount_col",
        "calibration_end",
        "holdout_end",
        "time_unit",
        "purchase_model",
        "penalizer",
    ];
    const SCORES: &'static [Scoring] = &[];
    type Settings = CustomerValueSettings;

    fn settings(options: &Options) -> Result<CustomerValueSettings, Error> {
        let column = |name: &str| {
            options.column(name)?.ok_or_else(|| {
                options.error(format!(
                    "customer_value needs OPTIONS ({name} = '<column>'): customer_col, \
                     time_col (a date or timestamp) and amount_col name the orders' columns"
                ))
            })
        };
        let time_unit = match options.get("time_unit") {
            None => Unit::Day,
            Some(v) if v.is_word("day") => Unit::Day,
            Some(v) if v.is_word("week") => Unit::Week,
            Some(v) if v.is_word("month") => Unit::Month,
            Some(_) => return Err(options.wrong("time_unit", "'day', 'week' or 'month'")),
        };
        let purchase_model = match options.get("purchase_model") {
            None => PurchaseKind::BgNbd,
            Some(v) if v.is_word("bg_nbd") => PurchaseKind::BgNbd,
            Some(v) if v.is_word("pareto_nbd") => PurchaseKind::ParetoNbd,
            Some(_) => return Err(options.wrong("purchase_model", "'bg_nbd' or 'pareto_nbd'")),
        };
        let penalizer = match options.get("penalizer") {
            None => 0.0,
            Some(v) => match v.as_f64() {
                Some(p) if p >= 0.0 && p.is_finite() => p,
                _ => return Err(options.wrong("penalizer", "a number >= 0")),
            },
        };
        let calibration_end = day_option(options, "calibration_end")?;
        let holdout_end = day_option(options, "holdout_end")?;
        if let (Some(end), Some(holdout)) = (calibration_end, holdout_end)
            && holdout <= end
        {
            return Err(options.error(format!(
                "holdout_end {} must be after calibration_end {}",
                show_day(holdout),
                show_day(end)
            )));
        }
        Ok(CustomerValueSettings {
            customer_col: column("customer_col")?,
            time_col: column("time_col")?,
            amount_col: column("amount_col")?,
            calibration_end,
            holdout_end,
            time_unit,
            purchase_model,
            penalizer,
        })
    }

    fn holdout(_options: &Options) -> Result<Holdout, Error> {
        Ok(Holdout::Own(
            "customer_value holds out the orders after calibration_end itself; evaluate it \
             with SELECT * FROM evaluate('<model>', <orders>)",
        ))
    }

    fn train(source: &dyn Source, settings: &CustomerValueSettings) -> Result<(Self, Report)> {
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
        let customer = find(&settings.customer_col, "customer_col")?;
        let time = find(&settings.time_col, "time_col")?;
        let amount = find(&settings.amount_col, "amount_col")?;
        let time_type = schema.field(time).data_type();
        if !matches!(
            time_type,
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
        ) {
            return bad_input_err!(
                "time_col {} is {time_type}; it must be a date or a timestamp (CAST it in the \
                 training query)",
                settings.time_col
            );
        }
        let amount_type = schema.field(amount).data_type();
        if !amount_type.is_numeric() {
            return bad_input_err!(
                "amount_col {} is {amount_type}; order amounts must be numbers",
                settings.amount_col
            );
        }
        let rows = read(source, [customer, time, amount])?;
        let (Some(first_day), Some(last_day)) = (
            rows.days.0.iter().map(|d| d.1).min(),
            rows.days.0.iter().map(|d| d.1).max(),
        ) else {
            return bad_input_err!(
                "nothing to train on: {}",
                if rows.nulls + rows.not_finite + rows.returns == 0 {
                    "the training query returned no rows".to_string()
                } else {
                    format!(
                        "every row was left out ({} with a NULL customer, time or amount, {} \
                         with a NaN or infinite amount, {} with a negative amount)",
                        rows.nulls, rows.not_finite, rows.returns
                    )
                }
            );
        };
        let end = settings.calibration_end.unwrap_or(last_day);
        if end < first_day {
            return bad_input_err!(
                "calibration_end {} is before the first purchase ({}); the purchases run from \
                 {} to {}: choose a calibration_end between them",
                show_day(end),
                show_day(first_day),
                show_day(first_day),
                show_day(last_day)
            );
        }
        let holdout_end = settings.holdout_end.unwrap_or(last_day);
        let unit = settings.time_unit.days();
        let mut ids_kept = Vec::new();
        let mut customers = Customers::default();
        let mut mean_spend = Vec::new();
        let mut late = 0usize;
        for (c, days) in rows.days.by_customer() {
            match summarise(days, end, holdout_end, unit) {
                Some(s) => {
                    ids_kept.push(c as usize);
                    customers.push(s.x, s.t_x, s.t);
                    mean_spend.push(s.spend);
                }
                None => late += 1,
            }
        }
        let mut warnings = Vec::new();
        if late > 0 {
            warnings.push(format!(
                "{late} customers whose first purchase is after calibration_end {} were left \
                 out",
                show_day(end)
            ));
        }
        if rows.returns > 0 {
            warnings.push(format!(
                "{} rows with a negative amount (returns) were left out: the model counts \
                 purchases",
                rows.returns
            ));
        }
        if settings.calibration_end.is_some_and(|e| e >= last_day) {
            warnings.push(format!(
                "calibration_end {} is on or after the last purchase ({}): no purchases are \
                 left for EVALUATE and CALIBRATION to compare with",
                show_day(end),
                show_day(last_day)
            ));
        }
        if customers.len() < MIN_CUSTOMERS {
            return bad_input_err!(
                "customer_value fits parameters shared by a population of customers and needs \
                 at least {MIN_CUSTOMERS} customers with a purchase by calibration_end {}, got \
                 {}",
                show_day(end),
                customers.len()
            );
        }
        let repeaters = customers.x.iter().filter(|x| **x > 0).count();
        if repeaters == 0 {
            return bad_input_err!(
                "none of the {} customers bought again by calibration_end {}: the purchase \
                 model learns the repeat-purchase rate from repeat purchases; choose a later \
                 calibration_end or check that time_col holds the purchase dates",
                customers.len(),
                show_day(end)
            );
        }
        let max_x = customers.max_x();
        let (fit, names) = match settings.purchase_model {
            PurchaseKind::BgNbd => {
                let lik = BgNbdLikelihood {
                    customers: &customers,
                    max_x,
                };
                (
                    maximise(&lik, &[1.0; 4], settings.penalizer),
                    ["r", "alpha", "a", "b"],
                )
            }
            PurchaseKind::ParetoNbd => {
                let lik = ParetoNbdLikelihood {
                    customers: &customers,
                    max_x,
                };
                (
                    maximise(&lik, &[1.0; 4], settings.penalizer),
                    ["r", "alpha", "s", "beta"],
                )
            }
        };
        if !fit.log_likelihood.is_finite() {
            return bad_input_err!(
                "the purchase model's likelihood is not finite at any parameters tried; try \
                 penalizer = 0.01"
            );
        }
        if !fit.converged {
            warnings.push(format!(
                "the purchase model stopped after {} iterations before its gradient reached \
                 the tolerance; the estimates may be imprecise (a penalizer such as 0.001 \
                 helps)",
                fit.iterations
            ));
        }
        let (spend, spend_ll) = fit_spend(&customers, &mean_spend, &mut warnings);
        let mut metrics = vec![
            ("log_likelihood".to_string(), fit.log_likelihood),
            ("customers".to_string(), customers.len() as f64),
            ("repeat_customers".to_string(), repeaters as f64),
        ];
        if let Some(ll) = spend_ll {
            metrics.push(("spend_log_likelihood".to_string(), ll));
        }
        let model = CustomerValueModel {
            customer_col: settings.customer_col.clone(),
            time_col: settings.time_col.clone(),
            amount_col: settings.amount_col.clone(),
            calibration_end: end,
            holdout_end: settings.holdout_end,
            time_unit: settings.time_unit,
            purchase_model: settings.purchase_model,
            purchase: parameters(&names, &fit),
            spend,
            log_likelihood: fit.log_likelihood,
            ids: subset(&rows.ids, &ids_kept),
            customers,
            mean_spend,
        };
        let report = Report {
            rows_used: rows.used,
            rows_skipped: rows.nulls + rows.not_finite + rows.returns,
            skipped_because: {
                let mut why =
                    skipped_because(rows.nulls, "customer, time or amount", rows.not_finite);
                if rows.returns > 0 {
                    if !why.is_empty() {
                        why.push_str("; ");
                    }
                    why.push_str(&format!("{} with a negative amount", rows.returns));
                }
                why
            },
            warnings,
            metrics,
        };
        Ok((model, report))
    }

    fn with_arrays(mut self, read: &dyn Fn(&str) -> Result<Vec<RecordBatch>>) -> Result<Self> {
        let batches = read(CUSTOMERS)?;
        let schema = summary_schema(&Ids::Int(vec![]));
        let batch = match batches.first() {
            Some(b) => concat_batches(&b.schema(), &batches)?,
            None => RecordBatch::new_empty(schema),
        };
        if batch.num_columns() != 5 {
            return store_err!("the stored customer summaries have the wrong shape");
        }
        let id = batch.column(0);
        self.ids = if id.data_type().is_integer() {
            Ids::Int(id.as_primitive::<Int64Type>().values().to_vec())
        } else {
            Ids::Text(
                id.as_string::<i32>()
                    .iter()
                    .map(|v| v.unwrap_or_default().to_string())
                    .collect(),
            )
        };
        let floats = |i: usize| -> Vec<f64> {
            let a = batch.column(i).as_primitive::<Float64Type>();
            (0..a.len())
                .map(|r| if a.is_null(r) { f64::NAN } else { a.value(r) })
                .collect()
        };
        self.customers = Customers {
            x: batch
                .column(1)
                .as_primitive::<UInt32Type>()
                .values()
                .to_vec(),
            t_x: floats(2),
            t: floats(3),
        };
        self.mean_spend = floats(4);
        Ok(self)
    }
}

/// Fits Gamma-Gamma on the customers with repeat purchases of positive mean amount; its
/// parameters (empty when it cannot be fitted) and log-likelihood.
fn fit_spend(
    customers: &Customers,
    mean_spend: &[f64],
    warnings: &mut Vec<String>,
) -> (Vec<Parameter>, Option<f64>) {
    let mut spenders = Spenders::default();
    let mut no_spend = 0usize;
    for (&x, &m) in customers.x.iter().zip(mean_spend) {
        if x == 0 {
            continue;
        }
        if m > 0.0 {
            spenders.x.push(x);
            spenders.m.push(m);
        } else {
            no_spend += 1;
        }
    }
    let one_time = customers.x.iter().filter(|x| **x == 0).count();
    if one_time > 0 {
        warnings.push(format!(
            "{one_time} customers without repeat purchases are not in the spend model; their \
             expected_spend is the population mean"
        ));
    }
    if no_spend > 0 {
        warnings.push(format!(
            "{no_spend} customers whose repeat purchases average zero were left out of the \
             spend model"
        ));
    }
    if spenders.x.len() < MIN_CUSTOMERS {
        warnings.push(format!(
            "only {} customers have repeat purchases with a positive amount, fewer than \
             {MIN_CUSTOMERS}: no spend model, so expected_spend and clv are NULL",
            spenders.x.len()
        ));
        return (vec![], None);
    }
    let fit = maximise(&GammaGammaLikelihood(&spenders), &[1.0; 3], 0.0);
    if !fit.log_likelihood.is_finite() {
        warnings
            .push("the spend model could not be fitted: expected_spend and clv are NULL".into());
        return (vec![], None);
    }
    if fit.params[1] <= 1.0 {
        warnings.push(format!(
            "the spend model's q is {:.3}, at most 1: the population's mean spend is \
             unbounded, so customers without repeat purchases get a NULL expected_spend",
            fit.params[1]
        ));
    }
    (
        parameters(&["p", "q", "gamma"], &fit),
        Some(fit.log_likelihood),
    )
}

/// The ids at `positions`, in that order.
fn subset(ids: &Ids, positions: &[usize]) -> Ids {
    match ids {
        Ids::Int(v) => Ids::Int(positions.iter().map(|&p| v[p]).collect()),
        Ids::Text(v) => Ids::Text(positions.iter().map(|&p| v[p].clone()).collect()),
    }
}

/// The columns of the stored summaries.
fn summary_schema(ids: &Ids) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", ids.data_type(), false),
        Field::new("x", DataType::UInt32, false),
        Field::new("t_x", DataType::Float64, false),
        Field::new("t", DataType::Float64, false),
        Field::new("spend", DataType::Float64, true),
    ]))
}

impl Model for CustomerValueModel {
    /// The orders' columns EVALUATE and CALIBRATION read.
    fn feature_names(&self) -> Vec<&str> {
        vec![&self.customer_col, &self.time_col]
    }

    fn arrays(&self) -> Result<Vec<(&'static str, Vec<RecordBatch>)>> {
        let c = &self.customers;
        let spend: Float64Array = self
            .mean_spend
            .iter()
            .map(|m| m.is_finite().then_some(*m))
            .collect();
        let batch = RecordBatch::try_new(
            summary_schema(&self.ids),
            vec![
                self.ids.take(0..self.ids.len()),
                Arc::new(UInt32Array::from(c.x.clone())),
                Arc::new(Float64Array::from(c.t_x.clone())),
                Arc::new(Float64Array::from(c.t.clone())),
                Arc::new(spend),
            ],
        )?;
        Ok(vec![(CUSTOMERS, vec![batch])])
    }

    fn estimates(&self) -> Option<Vec<Parameter>> {
        Some(self.purchase.iter().chain(&self.spend).cloned().collect())
    }

    fn uses(&self, model: &str) -> String {
        format!(
            "SELECT * FROM customer_value({model}, horizon => 52), p_alive({model}, x, t_x, \
             T), expected_purchases({model}, horizon, x, t_x, T), SELECT * FROM \
             evaluate({model}, orders) or SELECT * FROM calibration({model}, orders)"
        )
    }

    fn score(&self, scoring: Scoring, _columns: &[ArrayRef]) -> Result<ArrayRef> {
        plan_err!(
            "{} does not apply to customer_value models; use {}",
            scoring.name(),
            self.uses("'model'")
        )
    }

    fn predict_plan(&self, _input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        plan_err!(
            "predict does not apply to customer_value models; use {}",
            self.uses(&format!("'{}'", scored.name))
        )
    }

    fn evaluate_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan> {
        customer_value_evaluate_plan(input, scored, false)
    }
}

/// A row of CUSTOMER_VALUE.
pub struct Valued {
    pub p_alive: f64,
    pub expected_purchases: f64,
    pub expected_spend: Option<f64>,
    pub clv: Option<f64>,
}

impl CustomerValueModel {
    /// The purchase model with its fitted parameters.
    pub fn purchases(&self) -> Purchases {
        let values: Vec<f64> = self.purchase.iter().map(|p| p.value).collect();
        match self.purchase_model {
            PurchaseKind::BgNbd => Purchases::BgNbd(BgNbd::from_params(&values)),
            PurchaseKind::ParetoNbd => Purchases::ParetoNbd(ParetoNbd::from_params(&values)),
        }
    }

    /// The spend model, if it was fitted.
    pub fn spend_model(&self) -> Option<GammaGamma> {
        (self.spend.len() == 3).then(|| {
            GammaGamma::from_params(&self.spend.iter().map(|p| p.value).collect::<Vec<_>>())
        })
    }

    /// Customer `i`'s values over `horizon` time units, discounted at `rate` per unit.
    pub fn value(&self, i: usize, horizon: f64, rate: f64) -> Valued {
        let purchases = self.purchases();
        let c = &self.customers;
        let (x, t_x, t) = (f64::from(c.x[i]), c.t_x[i], c.t[i]);
        let expected_spend = self
            .spend_model()
            .map(|s| s.expected_spend(x, self.mean_spend[i]))
            .filter(|s| s.is_finite() && *s >= 0.0);
        Valued {
            p_alive: purchases.p_alive(x, t_x, t),
            expected_purchases: purchases.expected_purchases(horizon, x, t_x, t),
            expected_spend,
            clv: expected_spend
                .map(|s| s * purchases.discounted_purchases(horizon, rate, x, t_x, t)),
        }
    }

    /// CUSTOMER_VALUE's columns: the customer column (its own name), frequency, recency,
    /// tenure, p_alive, expected_purchases, expected_spend and clv.
    pub fn value_schema(&self) -> SchemaRef {
        let mut fields = vec![
            Field::new(&self.customer_col, self.ids.data_type(), false),
            Field::new("frequency", DataType::Int64, false),
        ];
        for name in ["recency", "tenure", "p_alive", "expected_purchases"] {
            fields.push(Field::new(name, DataType::Float64, false));
        }
        for name in ["expected_spend", "clv"] {
            fields.push(Field::new(name, DataType::Float64, true));
        }
        Arc::new(Schema::new(fields))
    }

    /// CUSTOMER_VALUE's rows for the customers in `range`.
    pub fn value_batch(
        &self,
        range: std::ops::Range<usize>,
        horizon: f64,
        rate: f64,
    ) -> Result<RecordBatch> {
        let values: Vec<Valued> = range
            .clone()
            .into_par_iter()
            .map(|i| self.value(i, horizon, rate))
            .collect();
        let c = &self.customers;
        let columns: Vec<ArrayRef> = vec![
            self.ids.take(range.clone()),
            Arc::new(Int64Array::from_iter_values(
                c.x[range.clone()].iter().map(|x| i64::from(*x)),
            )),
            Arc::new(Float64Array::from(c.t_x[range.clone()].to_vec())),
            Arc::new(Float64Array::from(c.t[range].to_vec())),
            Arc::new(Float64Array::from_iter_values(
                values.iter().map(|v| v.p_alive),
            )),
            Arc::new(Float64Array::from_iter_values(
                values.iter().map(|v| v.expected_purchases),
            )),
            Arc::new(Float64Array::from_iter(
                values.iter().map(|v| v.expected_spend),
            )),
            Arc::new(Float64Array::from_iter(values.iter().map(|v| v.clv))),
        ];
        Ok(RecordBatch::try_new(self.value_schema(), columns)?)
    }

    /// Days since 1970-01-01 of the times in `array` (a date or timestamp column).
    pub fn days(&self, array: &ArrayRef) -> Result<Vec<Option<i32>>> {
        if !matches!(
            array.data_type(),
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
        ) {
            return bad_input_err!(
                "{} must be a date or a timestamp, got {}",
                self.time_col,
                array.data_type()
            );
        }
        let days = cast(array, &DataType::Date32)?;
        Ok(days.as_primitive::<Date32Type>().iter().collect())
    }
}
