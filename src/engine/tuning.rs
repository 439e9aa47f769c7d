//! Hyper-parameter search in CREATE MODEL: options given as lists (`l2_reg = [0, 0.1, 1]`)
//! or ranges (`num_clusters = RANGE(3, 10)`, `learning_rate = LOG_RANGE(0.01, 0.3)`) become
//! trials, each a set of plain options. A grid tries every combination; a random search
//! draws `num_trials` of them, deterministically from the seed. The trials are compared on
//! the evaluation rows by `tuning_objective`.

use cohort_udfs::Error;
use cohort_udfs::model::MetricRow;

use super::OptionValue;

/// The options this module reads; the model types never see them.
pub const OPTIONS: [&str; 3] = ["num_trials", "tuning_objective", "tuning_algorithm"];

/// The most trials one CREATE MODEL runs.
pub const MAX_TRIALS: usize = 200;
/// Trials of a random search when `num_trials` is not given.
const DEFAULT_RANDOM_TRIALS: usize = 10;

/// Metrics where higher is better, and where lower is: what EVALUATE returns.
const HIGHER_IS_BETTER: [&str; 12] = [
    "r2",
    "adj_r2",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "auc",
    "silhouette",
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "map_at_k",
];
const LOWER_IS_BETTER: [&str; 9] = [
    "mse",
    "rmse",
    "mae",
    "log_loss",
    "inertia",
    "davies_bouldin",
    "mape",
    "smape",
    "mase",
];
/// The default objective: the first of these a model's evaluation returns (auc for
/// classifiers, r2 for regressions, map_at_k for implicit recommendations, Davies-Bouldin
/// for segments, MASE for forecasts).
const DEFAULT_OBJECTIVES: [&str; 5] = ["auc", "r2", "map_at_k", "davies_bouldin", "mase"];

/// The values one tuned option takes.
#[derive(Debug, Clone, PartialEq)]
enum Space {
    Values(Vec<OptionValue>),
    Range {
        lo: f64,
        hi: f64,
        log: bool,
        /// Both bounds written as integers: draws are integers too.
        integer: bool,
    },
}

impl Space {
    /// Every value, for a grid; `None` for a range of real numbers.
    fn values(&self) -> Option<Vec<OptionValue>> {
        match self {
            Space::Values(v) => Some(v.clone()),
            Space::Range {
                lo,
                hi,
                log: false,
                integer: true,
            } => Some(
                (*lo as i64..=*hi as i64)
                    .map(|v| OptionValue::Number(v.to_string()))
                    .collect(),
            ),
            Space::Range { .. } => None,
        }
    }

    /// A value drawn with `u` uniform in [0, 1).
    fn draw(&self, u: f64) -> OptionValue {
        match self {
            Space::Values(v) => v[((u * v.len() as f64) as usize).min(v.len() - 1)].clone(),
            Space::Range {
                lo,
                hi,
                log,
                integer,
            } => {
                let x = if *log {
                    (lo.ln() + u * (hi.ln() - lo.ln())).exp()
                } else if *integer {
                    // Every integer in [lo, hi] equally likely.
                    (lo + u * (hi - lo + 1.0)).floor().min(*hi)
                } else {
                    lo + u * (hi - lo)
                };
                let x = if *integer { x.round() } else { x };
                OptionValue::Number(if *integer {
                    format!("{}", x as i64)
                } else {
                    format!("{x}")
                })
            }
        }
    }
}

/// A search over the tuned options.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// The tuned options' names, in the order written.
    pub tuned: Vec<String>,
    /// Per trial, the tuned options' values, in the order of `tuned`.
    pub trials: Vec<Vec<OptionValue>>,
    /// The metric that ranks the trials (`None`: the model type's default).
    pub objective: Option<String>,
    /// `grid` or `random`, for the report.
    pub algorithm: &'static str,
}

fn invalid(message: String) -> Error {
    Error::InvalidOption(message)
}

impl Search {
    /// The search the options ask for; `None` when no option is a list or a range.
    pub fn read(options: &[(String, OptionValue)], seed: u64) -> Result<Option<Self>, Error> {
        let get = |name: &str| options.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let mut tuned = Vec::new();
        let mut spaces = Vec::new();
        for (name, value) in options {
            let space = match value {
                OptionValue::List(values) => {
                    if values.is_empty() {
                        return Err(invalid(format!("the list for option {name} is empty")));
                    }
                    if let Some(nested) = values
                        .iter()
                        .find(|v| matches!(v, OptionValue::List(_) | OptionValue::Range { .. }))
                    {
                        return Err(invalid(format!(
                            "the list for option {name} holds {nested}; a list holds literals"
                        )));
                    }
                    Space::Values(values.clone())
                }
                OptionValue::Range { lo, hi, log } => range(name, lo, hi, *log)?,
                _ => continue,
            };
            tuned.push(name.clone());
            spaces.push(space);
        }
        let given: Vec<&str> = OPTIONS
            .iter()
            .copied()
            .filter(|o| get(o).is_some())
            .collect();
        if tuned.is_empty() {
            return match given.first() {
                Some(o) => Err(invalid(format!(
                    "{o} applies when an option is tuned: give one a list or a range, e.g. \
                     l2_reg = [0, 0.1, 1] or num_clusters = RANGE(3, 8)"
                ))),
                None => Ok(None),
            };
        }
        let num_trials = match get("num_trials") {
            None => None,
            Some(v) => match v.as_i64() {
                Some(n) if n >= 1 && n as usize <= MAX_TRIALS => Some(n as usize),
                _ => {
                    return Err(invalid(format!(
                        "num_trials must be an integer from 1 to {MAX_TRIALS}, got {v}"
                    )));
                }
            },
        };
        let objective = match get("tuning_objective") {
            None => None,
            Some(OptionValue::String(m)) => {
                let m = m.to_ascii_lowercase();
                if direction(&m).is_none() {
                    return Err(invalid(format!(
                        "tuning_objective must be a metric EVALUATE returns: one of {}, {}; got \
                         '{m}'",
                        HIGHER_IS_BETTER.join(", "),
                        LOWER_IS_BETTER.join(", ")
                    )));
                }
                Some(m)
            }
            Some(v) => {
                return Err(invalid(format!(
                    "tuning_objective must be a metric name such as 'auc', got {v}"
                )));
            }
        };
        let grid: Option<Vec<Vec<OptionValue>>> =
            spaces.iter().map(Space::values).collect::<Option<_>>();
        let algorithm = match get("tuning_algorithm") {
            None if grid.is_some() => "grid",
            None => "random",
            Some(v) if v.is_word("grid") => "grid",
            Some(v) if v.is_word("random") => "random",
            Some(v) => {
                return Err(invalid(format!(
                    "tuning_algorithm must be 'grid' or 'random', got {v}"
                )));
            }
        };
        let trials = if algorithm == "grid" {
            let Some(grid) = grid else {
                return Err(invalid(
                    "a grid needs every tuned option's values: RANGE of integers or lists; for \
                     a LOG_RANGE or a RANGE of real numbers use tuning_algorithm = 'random'"
                        .into(),
                ));
            };
            let size = grid
                .iter()
                .try_fold(1usize, |n, v| n.checked_mul(v.len()))
                .filter(|n| *n <= MAX_TRIALS)
                .ok_or_else(|| {
                    invalid(format!(
                        "the grid has more than {MAX_TRIALS} combinations; narrow it or use \
                         tuning_algorithm = 'random' with num_trials"
                    ))
                })?;
            if let Some(n) = num_trials
                && n < size
            {
                return Err(invalid(format!(
                    "the grid has {size} combinations but num_trials = {n}; raise num_trials, \
                     narrow the grid, or draw {n} at random with tuning_algorithm = 'random'"
                )));
            }
            product(&grid)
        } else {
            let n = num_trials.unwrap_or(DEFAULT_RANDOM_TRIALS);
            let mut state = seed ^ 0x7E57_7E57_7E57_7E57;
            (0..n)
                .map(|_| {
                    spaces
                        .iter()
                        .map(|s| s.draw(next_uniform(&mut state)))
                        .collect()
                })
                .collect()
        };
        Ok(Some(Self {
            tuned,
            trials,
            objective,
            algorithm,
        }))
    }

    /// `options` with trial `t`'s values in place of the lists and ranges.
    pub fn options_of(
        &self,
        options: &[(String, OptionValue)],
        t: usize,
    ) -> Vec<(String, OptionValue)> {
        options
            .iter()
            .map(|(k, v)| match self.tuned.iter().position(|n| n == k) {
                Some(i) => (k.clone(), self.trials[t][i].clone()),
                None => (k.clone(), v.clone()),
            })
            .collect()
    }
}

/// Whether higher is better for `metric`; `None` for a name that is no metric.
pub fn direction(metric: &str) -> Option<bool> {
    if HIGHER_IS_BETTER.contains(&metric) {
        Some(true)
    } else if LOWER_IS_BETTER.contains(&metric) {
        Some(false)
    } else {
        None
    }
}

/// The objective for trials whose evaluations look like `metrics`: `objective` or the
/// default, with whether higher is better.
pub fn objective(objective: Option<&str>, metrics: &MetricRow) -> Result<(String, bool), Error> {
    let has = |m: &str| metrics.iter().any(|(k, _)| k == m);
    let chosen = match objective {
        Some(m) if has(m) => m.to_string(),
        Some(m) => {
            let names: Vec<&str> = metrics.iter().map(|(k, _)| k.as_str()).collect();
            return Err(invalid(format!(
                "tuning_objective = '{m}' is not a metric of this model's evaluation; it \
                 returns {}",
                names.join(", ")
            )));
        }
        None => match DEFAULT_OBJECTIVES.iter().find(|m| has(m)) {
            Some(m) => m.to_string(),
            None => {
                return Err(invalid(
                    "this model's evaluation has no metric to tune by; give tuning_objective"
                        .into(),
                ));
            }
        },
    };
    let higher = direction(&chosen).unwrap_or(true);
    Ok((chosen, higher))
}

fn range(name: &str, lo: &str, hi: &str, log: bool) -> Result<Space, Error> {
    let what = if log { "LOG_RANGE" } else { "RANGE" };
    let (Ok(l), Ok(h)) = (lo.parse::<f64>(), hi.parse::<f64>()) else {
        return Err(invalid(format!(
            "{what}({lo}, {hi}) for option {name} needs two numbers"
        )));
    };
    if !(l.is_finite() && h.is_finite() && l < h) {
        return Err(invalid(format!(
            "{what}({lo}, {hi}) for option {name} needs lo < hi"
        )));
    }
    if log && l <= 0.0 {
        return Err(invalid(format!(
            "LOG_RANGE({lo}, {hi}) for option {name} needs lo > 0; use RANGE to include 0"
        )));
    }
    let integer = lo.parse::<i64>().is_ok() && hi.parse::<i64>().is_ok();
    Ok(Space::Range {
        lo: l,
        hi: h,
        log,
        integer,
    })
}

/// Every combination of one value per option, the first option varying slowest.
fn product(values: &[Vec<OptionValue>]) -> Vec<Vec<OptionValue>> {
    values.iter().fold(vec![vec![]], |acc, v| {
        acc.iter()
            .flat_map(|prefix| {
                v.iter().map(move |x| {
                    let mut next = prefix.clone();
                    next.push(x.clone());
                    next
                })
            })
            .collect()
    })
}

/// The next number of a SplitMix64 stream, uniform in [0, 1).
fn next_uniform(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: &str) -> OptionValue {
        OptionValue::Number(v.into())
    }

    fn options(o: &[(&str, OptionValue)]) -> Vec<(String, OptionValue)> {
        o.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn a_grid_tries_every_combination() {
        let o = options(&[
            ("l2_reg", OptionValue::List(vec![n("0"), n("1")])),
            (
                "num_clusters",
                OptionValue::Range {
                    lo: "3".into(),
                    hi: "5".into(),
                    log: false,
                },
            ),
            ("label", OptionValue::String("y".into())),
        ]);
        let s = Search::read(&o, 42).unwrap().unwrap();
        assert_eq!(s.algorithm, "grid");
        assert_eq!(s.tuned, ["l2_reg", "num_clusters"]);
        assert_eq!(s.trials.len(), 6);
        assert_eq!(s.trials[0], [n("0"), n("3")]);
        assert_eq!(s.trials[5], [n("1"), n("5")]);
        let third = s.options_of(&o, 2);
        assert_eq!(third[0], ("l2_reg".into(), n("0")));
        assert_eq!(third[1], ("num_clusters".into(), n("5")));
        assert_eq!(third[2], ("label".into(), OptionValue::String("y".into())));
    }

    #[test]
    fn a_random_search_draws_within_the_ranges_from_the_seed() {
        let o = options(&[
            (
                "learning_rate",
                OptionValue::Range {
                    lo: "0.01".into(),
                    hi: "0.3".into(),
                    log: true,
                },
            ),
            ("num_trials", n("20")),
        ]);
        let s = Search::read(&o, 42).unwrap().unwrap();
        assert_eq!(s.algorithm, "random");
        assert_eq!(s.trials.len(), 20);
        for t in &s.trials {
            let x = t[0].as_f64().unwrap();
            assert!((0.01..=0.3).contains(&x), "{x}");
        }
        assert_eq!(Search::read(&o, 42).unwrap().unwrap(), s);
        assert_ne!(Search::read(&o, 7).unwrap().unwrap(), s);
    }

    #[test]
    fn bad_searches_are_refused() {
        let e = |o: &[(&str, OptionValue)]| Search::read(&options(o), 42).unwrap_err().to_string();
        assert!(e(&[("num_trials", n("3"))]).contains("applies when an option is tuned"));
        assert!(
            e(&[
                ("l2_reg", OptionValue::List(vec![n("0"), n("1"), n("2")])),
                ("num_trials", n("2"))
            ])
            .contains("the grid has 3 combinations but num_trials = 2")
        );
        assert!(
            e(&[(
                "x",
                OptionValue::Range {
                    lo: "0".into(),
                    hi: "1".into(),
                    log: true
                }
            )])
            .contains("needs lo > 0")
        );
        assert!(
            e(&[
                ("l2_reg", OptionValue::List(vec![n("0")])),
                ("tuning_objective", OptionValue::String("speed".into()))
            ])
            .contains("tuning_objective must be a metric")
        );
    }

    #[test]
    fn the_default_objective_follows_the_metrics() {
        let row = |names: &[&str]| -> MetricRow {
            names
                .iter()
                .map(|n| {
                    (
                        n.to_string(),
                        cohort_udfs::model::MetricValue::Number(Some(1.0)),
                    )
                })
                .collect()
        };
        assert_eq!(
            objective(None, &row(&["rows", "accuracy", "auc", "log_loss"])).unwrap(),
            ("auc".to_string(), true)
        );
        assert_eq!(
            objective(Some("rmse"), &row(&["rows", "r2", "rmse"])).unwrap(),
            ("rmse".to_string(), false)
        );
        assert!(objective(Some("auc"), &row(&["r2"])).is_err());
    }
}
