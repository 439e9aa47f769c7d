//! CREATE MODEL's evaluation split and cross-validation folds, as plans over the training
//! query: every model type gets them from this one piece of code.
//!
//! Rows are drawn by a hash of their values and the seed, not by their position, so a
//! split is the same whatever order or partitioning the query returns its rows in, and the
//! same seed gives the same split on the same rows. Equal rows land on the same side.
//! Classifiers draw within each class; forecasts hold out the last points of each series.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Column, DataFusionError, Result, plan_err};
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::expr::{ScalarFunction, WindowFunction};
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, ExprSchemable, LogicalPlan, LogicalPlanBuilder, lit,
};
use datafusion::prelude::SessionContext;

use cohort_udfs::Error;
use cohort_udfs::model::Holdout;
use cohort_udfs::model::assessment::{
    AUTO_SPLIT_FRACTION, AUTO_SPLIT_MAX_EVAL_ROWS, AUTO_SPLIT_MIN_ROWS,
};
use cohort_udfs::row_hash::row_hash;

use super::OptionValue;

/// The options this module reads; the model types never see them.
pub const OPTIONS: [&str; 4] = [
    "data_split_method",
    "data_split_eval_fraction",
    "data_split_col",
    "cv_folds",
];

/// The most cross-validation folds.
const MAX_FOLDS: i64 = 100;

/// How the evaluation rows are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Not given: no split, so a model is fitted on every row as before; 'auto' when
    /// tuning, which compares trials on held-out rows.
    Unset,
    /// None below [`AUTO_SPLIT_MIN_ROWS`] rows, else random (by time for a forecast).
    Auto,
    Random,
    /// The last rows by `data_split_col` (by time within each series for a forecast).
    Seq,
    /// The rows where the boolean `data_split_col` is true.
    Custom,
    None,
}

/// The split and cross-validation options, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitSettings {
    pub method: Method,
    pub fraction: Option<f64>,
    pub column: Option<String>,
    pub folds: Option<usize>,
    pub seed: u64,
}

fn invalid(message: String) -> Error {
    Error::InvalidOption(message)
}

impl SplitSettings {
    /// Reads the split and cross-validation options from `options` (and `seed`, 42 when
    /// absent).
    pub fn read(options: &[(String, OptionValue)]) -> Result<Self, Error> {
        let get = |name: &str| options.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let method = match get("data_split_method") {
            None => Method::Unset,
            Some(OptionValue::String(m)) => match m.to_ascii_lowercase().as_str() {
                "auto" => Method::Auto,
                "random" => Method::Random,
                "seq" => Method::Seq,
                "custom" => Method::Custom,
                "none" | "no_split" => Method::None,
                _ => {
                    return Err(invalid(format!(
                        "data_split_method must be 'auto', 'random', 'seq', 'custom' or 'none', \
                         got '{m}'"
                    )));
                }
            },
            Some(v) => {
                return Err(invalid(format!(
                    "data_split_method must be a string such as 'random', got {v}"
                )));
            }
        };
        let fraction = match get("data_split_eval_fraction") {
            None => None,
            Some(v) => match v.as_f64() {
                Some(f) if f > 0.0 && f < 1.0 => Some(f),
                _ => {
                    return Err(invalid(format!(
                        "data_split_eval_fraction must be a number between 0 and 1 (the share \
                         of rows held out), got {v}"
                    )));
                }
            },
        };
        let column = match get("data_split_col") {
            None => None,
            Some(OptionValue::String(c)) => Some(c.clone()),
            Some(v) => {
                return Err(invalid(format!(
                    "data_split_col must be a column name string, got {v}"
                )));
            }
        };
        match (method, &column, fraction) {
            (Method::Custom, None, _) => {
                return Err(invalid(
                    "data_split_method = 'custom' needs data_split_col, a boolean column that \
                     is true for the evaluation rows"
                        .into(),
                ));
            }
            (Method::Custom, _, Some(_)) => {
                return Err(invalid(
                    "data_split_eval_fraction does not apply to data_split_method = 'custom': \
                     data_split_col says which rows are held out"
                        .into(),
                ));
            }
            (Method::Unset | Method::Auto | Method::Random | Method::None, Some(_), _) => {
                return Err(invalid(
                    "data_split_col applies to data_split_method = 'seq' (an ordering column) \
                     or 'custom' (a boolean column)"
                        .into(),
                ));
            }
            (Method::None | Method::Unset, _, Some(_)) => {
                return Err(invalid(
                    "data_split_eval_fraction does not apply to data_split_method = 'none'".into(),
                ));
            }
            _ => {}
        }
        let folds = match get("cv_folds") {
            None => None,
            Some(v) => match v.as_i64() {
                Some(k) if (2..=MAX_FOLDS).contains(&k) => Some(k as usize),
                _ => {
                    return Err(invalid(format!(
                        "cv_folds must be an integer from 2 to {MAX_FOLDS}, got {v}"
                    )));
                }
            },
        };
        let seed = match get("seed") {
            None => 42,
            Some(v) => match v.as_i64() {
                Some(s) if s >= 0 => s as u64,
                _ => return Err(invalid(format!("seed must be an integer >= 0, got {v}"))),
            },
        };
        Ok(Self {
            method,
            fraction,
            column,
            folds,
            seed,
        })
    }

    /// Whether any option of this module was given.
    pub fn given(options: &[(String, OptionValue)]) -> bool {
        options.iter().any(|(k, _)| OPTIONS.contains(&k.as_str()))
    }
}

/// The training query cut in two.
pub struct Split {
    pub train: LogicalPlan,
    /// `None` without a split.
    pub eval: Option<LogicalPlan>,
    /// How the evaluation rows were chosen, in words; empty without a split.
    pub described: String,
}

/// Name of the helper columns, which the plans drop again.
const HASH: &str = "__cohort_hash";
const HELD: &str = "__cohort_held";

fn column(name: &str) -> Expr {
    Expr::Column(Column::from_name(name))
}

/// The column `name` as Int64: row_number() is unsigned, and arithmetic between unsigned
/// and signed integers is not integer arithmetic.
fn int(name: &str) -> Expr {
    datafusion::logical_expr::cast(column(name), DataType::Int64)
}

/// Splits `plan` as `settings` say, for a model held out as `holdout`. With `needed`
/// (tuning), 'auto' splits however few the rows, since trials are judged on held-out rows.
pub async fn split(
    ctx: &SessionContext,
    plan: LogicalPlan,
    settings: &SplitSettings,
    holdout: &Holdout,
    needed: bool,
) -> Result<Split> {
    let none = |plan| Split {
        train: plan,
        eval: None,
        described: String::new(),
    };
    if let Holdout::Own(why) = holdout {
        return match settings.method {
            Method::Unset | Method::Auto | Method::None => Ok(none(plan)),
            _ => Err(invalid(why.to_string()).into()),
        };
    }
    let series = matches!(holdout, Holdout::Series { .. });
    let method = match settings.method {
        Method::Unset if needed => Method::Auto,
        Method::Unset => Method::None,
        m => m,
    };
    let (method, fraction) = match method {
        Method::None => {
            if needed {
                return Err(invalid(
                    "tuning compares trials on held-out rows, so it needs an evaluation \
                     split; leave data_split_method out or set it to 'random', 'seq' or \
                     'custom'"
                        .into(),
                )
                .into());
            }
            return Ok(none(plan));
        }
        Method::Auto => {
            let rows = count_rows(ctx, &plan).await?;
            if rows < AUTO_SPLIT_MIN_ROWS && !needed {
                return Ok(none(plan));
            }
            let fraction = settings.fraction.unwrap_or_else(|| {
                AUTO_SPLIT_FRACTION.min(AUTO_SPLIT_MAX_EVAL_ROWS as f64 / rows.max(1) as f64)
            });
            (if series { Method::Seq } else { Method::Random }, fraction)
        }
        method => (method, settings.fraction.unwrap_or(AUTO_SPLIT_FRACTION)),
    };
    let percent = format!("{:.4}", fraction * 100.0)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
        + "%";
    let (held, drop, described) = match (method, holdout) {
        (Method::Random, Holdout::Series { .. }) => {
            return Err(invalid(
                "a forecast is evaluated on the points after those it was fitted on: use \
                 data_split_method = 'seq' (the last points of each series) or 'auto'"
                    .into(),
            )
            .into());
        }
        (Method::Random, _) => {
            let plan = with_hash(plan, settings.seed)?;
            let held = column(HASH).lt(lit(fraction));
            (
                marked(plan, held)?,
                None,
                format!("random, {percent} of rows, seed {}", settings.seed),
            )
        }
        (
            Method::Seq,
            Holdout::Series {
                time, id, horizon, ..
            },
        ) => {
            let Some(time) = time.as_deref().or(settings.column.as_deref()) else {
                return Err(invalid(
                    "a forecast's split holds out the last points by time: give time_col".into(),
                )
                .into());
            };
            let position = by_time(plan, time, id.as_deref(), false)?;
            // The last max(1, round(fraction * n)) points of each series, at most a horizon.
            let take = Expr::from(WindowFunction::new(count_udaf(), vec![lit(1i64)]))
                .partition_by(id.iter().map(|c| column(c)).collect())
                .build()?;
            let plan = LogicalPlanBuilder::from(position)
                .window(vec![take.alias("__cohort_n")])?
                .build()?;
            let n = datafusion::logical_expr::cast(column("__cohort_n"), DataType::Float64);
            let keep = datafusion::functions::math::expr_fn::round(vec![n * lit(fraction)]);
            let keep = datafusion::functions::core::expr_fn::greatest(vec![
                lit(1.0),
                datafusion::functions::core::expr_fn::least(vec![keep, lit(*horizon as f64)]),
            ]);
            let held =
                datafusion::logical_expr::cast(column("__cohort_position"), DataType::Float64)
                    .lt_eq(keep);
            (
                marked(plan, held)?,
                None,
                format!("the last {percent} of each series' points by {time}, at most {horizon}"),
            )
        }
        (Method::Seq, _) => {
            let Some(order) = settings.column.clone() else {
                return Err(invalid(
                    "data_split_method = 'seq' needs data_split_col, the column that orders \
                     the rows (the latest are held out)"
                        .into(),
                )
                .into());
            };
            check_column(&plan, &order)?;
            let rows = count_rows(ctx, &plan).await?;
            let eval_rows = ((fraction * rows as f64).round() as i64).max(1);
            let plan = with_hash(plan, settings.seed)?;
            // Ties in the ordering column are broken by the hash, so the cut is the same
            // on every run.
            let position = row_number()
                .order_by(vec![
                    column(&order).sort(false, false),
                    column(HASH).sort(true, false),
                ])
                .build()?;
            let plan = LogicalPlanBuilder::from(plan)
                .window(vec![position.alias("__cohort_position")])?
                .build()?;
            let held = column("__cohort_position").lt_eq(lit(eval_rows));
            (
                marked(plan, held)?,
                Some(order.clone()),
                format!("the last {percent} of rows by {order}"),
            )
        }
        (Method::Custom, _) => {
            let Some(flag) = settings.column.clone() else {
                return Err(invalid("data_split_col is required".into()).into());
            };
            check_column(&plan, &flag)?;
            let t = column(&flag).get_type(plan.schema())?;
            if t != DataType::Boolean {
                return Err(invalid(format!(
                    "data_split_col {flag} has type {t}; 'custom' needs a boolean column, true \
                     for the evaluation rows (e.g. signup_date >= DATE '2026-01-01' AS is_eval)"
                ))
                .into());
            }
            let held = coalesce(vec![column(&flag), lit(false)]);
            (
                marked(plan, held)?,
                Some(flag.clone()),
                format!("the rows where {flag} is true"),
            )
        }
        (Method::Unset | Method::Auto | Method::None, _) => {
            return Err(DataFusionError::Internal(
                "a split method left unresolved".into(),
            ));
        }
    };
    let original: Vec<String> = original_columns(&held, drop.as_deref());
    let side = |eval: bool| -> Result<LogicalPlan> {
        let condition = if eval { column(HELD) } else { !column(HELD) };
        project(
            LogicalPlanBuilder::from(held.clone())
                .filter(condition)?
                .build()?,
            &original,
        )
    };
    Ok(Split {
        train: side(false)?,
        eval: Some(side(true)?),
        described,
    })
}

/// The rows of `plan` dealt into `k` folds for cross-validation. Random folds by hash (with
/// another seed than the split's), within each class for a classifier; a forecast's folds
/// are consecutive blocks of each series' points by time, each fold fitted on the blocks
/// before its own.
pub struct Folds {
    /// The rows with their fold (Int64) as the last column.
    pub dealt: LogicalPlan,
    /// The columns of the rows.
    original: Vec<String>,
    /// Whether fold f fits on blocks up to f and is judged on block f + 1 (a forecast's),
    /// rather than fitting on every other fold and being judged on its own.
    by_time: bool,
}

impl Folds {
    /// Whether a fold fits on the rows of every other fold, so that all the folds' fits can
    /// come from one read of [`Folds::dealt`].
    pub fn fit_on_the_others(&self) -> bool {
        !self.by_time
    }

    /// The rows fold `f` fits on and the rows it is evaluated on.
    pub fn sides(&self, f: usize) -> Result<(LogicalPlan, LogicalPlan)> {
        let f = f as i64;
        let fold = column(FOLD);
        let (fit, held) = if self.by_time {
            (fold.clone().lt_eq(lit(f)), fold.eq(lit(f + 1)))
        } else {
            (fold.clone().not_eq(lit(f)), fold.eq(lit(f)))
        };
        let side = |condition: Expr| {
            project(
                LogicalPlanBuilder::from(self.dealt.clone())
                    .filter(condition)?
                    .build()?,
                &self.original,
            )
        };
        Ok((side(fit)?, side(held)?))
    }
}

/// The column holding each row's fold.
const FOLD: &str = "__cohort_fold";

/// `plan`'s rows dealt into `k` folds (see [`Folds`]).
pub fn folds(plan: &LogicalPlan, k: usize, seed: u64, holdout: &Holdout) -> Result<Folds> {
    let k64 = k as i64;
    let original = original_columns(plan, None);
    let fold_seed = seed ^ 0x0F01_D5EE_D000_0000;
    let (with_fold, series) = match holdout {
        Holdout::Own(why) => return Err(invalid(why.to_string()).into()),
        Holdout::Random => {
            let plan = with_hash(plan.clone(), fold_seed)?;
            let fold =
                datafusion::logical_expr::cast(column(HASH) * lit(k as f64), DataType::Int64);
            (
                LogicalPlanBuilder::from(plan)
                    .project(with_columns(&original, [fold.alias(FOLD)]))?
                    .build()?,
                false,
            )
        }
        Holdout::Stratified { label } => {
            check_column(plan, label)?;
            let plan = with_hash(plan.clone(), fold_seed)?;
            // Dealt round-robin in hash order within each class.
            let position = row_number()
                .partition_by(vec![column(label)])
                .order_by(vec![column(HASH).sort(true, false)])
                .build()?;
            let plan = LogicalPlanBuilder::from(plan)
                .window(vec![position.alias("__cohort_position")])?
                .build()?;
            let fold = (int("__cohort_position") - lit(1i64)) % lit(k64);
            (
                LogicalPlanBuilder::from(plan)
                    .project(with_columns(&original, [fold.alias(FOLD)]))?
                    .build()?,
                false,
            )
        }
        Holdout::Series { time, id, .. } => {
            let Some(time) = time else {
                return Err(invalid(
                    "a forecast's folds are blocks of each series by time: give time_col".into(),
                )
                .into());
            };
            let position = by_time(plan.clone(), time, id.as_deref(), true)?;
            let n = Expr::from(WindowFunction::new(count_udaf(), vec![lit(1i64)]))
                .partition_by(id.iter().map(|c| column(c)).collect())
                .build()?;
            let plan = LogicalPlanBuilder::from(position)
                .window(vec![n.alias("__cohort_n")])?
                .build()?;
            // k + 1 blocks of consecutive points: block b = floor((position - 1) (k + 1) / n).
            let block = (int("__cohort_position") - lit(1i64)) * lit(k64 + 1) / int("__cohort_n");
            (
                LogicalPlanBuilder::from(plan)
                    .project(with_columns(&original, [block.alias(FOLD)]))?
                    .build()?,
                true,
            )
        }
    };
    Ok(Folds {
        dealt: with_fold,
        original,
        by_time: series,
    })
}

/// `plan` with each row's position within its series by `time` (1 = the latest, or with
/// `ascending` the earliest) as `__cohort_position`.
fn by_time(
    plan: LogicalPlan,
    time: &str,
    id: Option<&str>,
    ascending: bool,
) -> Result<LogicalPlan> {
    check_column(&plan, time)?;
    if let Some(id) = id {
        check_column(&plan, id)?;
    }
    let position = row_number()
        .partition_by(id.iter().map(|c| column(c)).collect())
        .order_by(vec![column(time).sort(ascending, false)])
        .build()?;
    LogicalPlanBuilder::from(plan)
        .window(vec![position.alias("__cohort_position")])?
        .build()
}

/// The rows of `plan` as a count.
async fn count_rows(ctx: &SessionContext, plan: &LogicalPlan) -> Result<u64> {
    let counted = LogicalPlanBuilder::from(plan.clone())
        .aggregate(Vec::<Expr>::new(), vec![count(lit(1i64)).alias("n")])?
        .build()?;
    let batches = ctx.execute_logical_plan(counted).await?.collect().await?;
    let n = batches
        .first()
        .filter(|b| b.num_rows() == 1)
        .and_then(|b| {
            cast(b.column(0), &DataType::Int64)
                .ok()
                .map(|c| c.as_primitive::<Int64Type>().value(0))
        })
        .unwrap_or(0);
    Ok(n.max(0) as u64)
}

fn check_column(plan: &LogicalPlan, name: &str) -> Result<()> {
    if plan.schema().has_column_with_unqualified_name(name) {
        return Ok(());
    }
    let have: Vec<String> = plan
        .schema()
        .columns()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    plan_err!(
        "the training query has no column {name}; its columns are {}",
        have.join(", ")
    )
}

/// The columns of `plan` but the helper columns and `drop`.
fn original_columns(plan: &LogicalPlan, drop: Option<&str>) -> Vec<String> {
    plan.schema()
        .columns()
        .into_iter()
        .map(|c| c.name)
        .filter(|n| !n.starts_with("__cohort_") && Some(n.as_str()) != drop)
        .collect()
}

fn with_columns(names: &[String], more: impl IntoIterator<Item = Expr>) -> Vec<Expr> {
    names.iter().map(|n| column(n)).chain(more).collect()
}

fn project(plan: LogicalPlan, names: &[String]) -> Result<LogicalPlan> {
    LogicalPlanBuilder::from(plan)
        .project(with_columns(names, []))?
        .build()
}

/// `plan` with `held` (whether a row is held out) as the column [`HELD`].
fn marked(plan: LogicalPlan, held: Expr) -> Result<LogicalPlan> {
    let names: Vec<String> = plan
        .schema()
        .columns()
        .into_iter()
        .map(|c| c.name)
        .collect();
    LogicalPlanBuilder::from(plan)
        .project(with_columns(&names, [held.alias(HELD)]))?
        .build()
}

/// `plan` with each row's hash (uniform in [0, 1)) as the column [`HASH`].
fn with_hash(plan: LogicalPlan, seed: u64) -> Result<LogicalPlan> {
    let names: Vec<String> = original_columns(&plan, None);
    let args: Vec<Expr> = names.iter().map(|n| column(n)).collect();
    let hash = Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(row_hash(seed, args.len())),
        args,
    ));
    LogicalPlanBuilder::from(plan)
        .project(with_columns(&names, [hash.alias(HASH)]))?
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(options: &[(&str, OptionValue)]) -> Result<SplitSettings, Error> {
        let options: Vec<(String, OptionValue)> = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        SplitSettings::read(&options)
    }

    /// The rows of each fold's two sides, as `(fit, held)` sets of `x`.
    async fn fold_rows(holdout: Holdout, k: usize) -> Vec<(Vec<i64>, Vec<i64>)> {
        let ctx = SessionContext::new();
        let plan = ctx
            .sql("SELECT x, x % 2 = 0 AS y, 's' AS id FROM (SELECT unnest(range(1, 13)) AS x)")
            .await
            .unwrap()
            .into_unoptimized_plan();
        let mut out = Vec::new();
        let folds = folds(&plan, k, 42, &holdout).unwrap();
        for f in 0..k {
            let (fit, held) = folds.sides(f).unwrap();
            let mut sides = Vec::new();
            for side in [fit, held] {
                let batches = ctx
                    .execute_logical_plan(side)
                    .await
                    .unwrap()
                    .collect()
                    .await
                    .unwrap();
                let mut x: Vec<i64> = batches
                    .iter()
                    .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
                    .collect();
                x.sort();
                sides.push(x);
            }
            let held = sides.pop().unwrap();
            out.push((sides.pop().unwrap(), held));
        }
        out
    }

    #[tokio::test]
    async fn folds_hold_every_row_out_once() {
        for holdout in [Holdout::Random, Holdout::Stratified { label: "y".into() }] {
            let folds = fold_rows(holdout.clone(), 3).await;
            let mut held: Vec<i64> = folds.iter().flat_map(|(_, h)| h.clone()).collect();
            held.sort();
            assert_eq!(held, (1..=12).collect::<Vec<_>>(), "{holdout:?}");
            for (fit, held) in &folds {
                assert_eq!(fit.len() + held.len(), 12);
                assert!(fit.iter().all(|x| !held.contains(x)));
            }
            if let Holdout::Stratified { .. } = holdout {
                // Two even and two odd values in every fold.
                for (_, held) in &folds {
                    assert_eq!(held.iter().filter(|x| *x % 2 == 0).count(), 2, "{held:?}");
                }
            }
        }
        let series = Holdout::Series {
            time: Some("x".into()),
            id: Some("id".into()),
            horizon: 12,
        };
        let folds = fold_rows(series, 3).await;
        assert_eq!(
            folds,
            vec![
                (vec![1, 2, 3], vec![4, 5, 6]),
                (vec![1, 2, 3, 4, 5, 6], vec![7, 8, 9]),
                (vec![1, 2, 3, 4, 5, 6, 7, 8, 9], vec![10, 11, 12]),
            ]
        );
    }

    #[test]
    fn options_are_checked() {
        let s = settings(&[
            ("data_split_method", OptionValue::String("RANDOM".into())),
            (
                "data_split_eval_fraction",
                OptionValue::Number("0.3".into()),
            ),
            ("cv_folds", OptionValue::Number("5".into())),
            ("seed", OptionValue::Number("7".into())),
        ])
        .unwrap();
        assert_eq!(
            s,
            SplitSettings {
                method: Method::Random,
                fraction: Some(0.3),
                column: None,
                folds: Some(5),
                seed: 7
            }
        );
        let e = |o: &[(&str, OptionValue)]| settings(o).unwrap_err().to_string();
        assert!(
            e(&[("data_split_method", OptionValue::String("custom".into()))])
                .contains("needs data_split_col")
        );
        assert!(
            e(&[(
                "data_split_eval_fraction",
                OptionValue::Number("1.5".into())
            )])
            .contains("between 0 and 1")
        );
        assert!(e(&[("cv_folds", OptionValue::Number("1".into()))]).contains("from 2 to 100"));
        assert!(
            e(&[("data_split_method", OptionValue::String("halves".into()))])
                .contains("'auto', 'random', 'seq', 'custom' or 'none'")
        );
    }
}
