//! Fitting: the search for each model's parameters by maximum likelihood, several series
//! per thread, and the choice among models by AICc.

use rayon::prelude::*;

use super::EtsError;
use super::filter::Filter;
use super::form::{ErrorKind, Fit, Form, Params, SeasonKind, State, TrendKind};
use super::initial::heuristic_state;
use super::likelihood::ErrorSums;
use super::refine::refine;
use crate::kernels::interrupt::Interrupt;
use crate::kernels::logistic::sigmoid;
use crate::kernels::nelder_mead::NelderMead;
use crate::kernels::simd;

/// Parameter bounds: Hyndman et al.'s usual region, as statsmodels and R's forecast use
/// (statsmodels' on `beta / alpha` and `gamma / (1 − alpha)`, see [`Layout`]).
pub(super) const LOW: f64 = 1e-4;
pub(super) const HIGH: f64 = 0.9999;
pub(super) const PHI_LOW: f64 = 0.8;
pub(super) const PHI_HIGH: f64 = 0.98;

/// The most series fitted side by side on one thread. Their recursions are independent, so
/// one loop steps them all as one vector where a single recursion would wait out the
/// latency of every step.
const LANES: usize = 8;

fn logit(u: f64) -> f64 {
    let u = u.clamp(1e-9, 1.0 - 1e-9);
    (u / (1.0 - u)).ln()
}

/// The optimiser's starting coordinate for the damping: 90% of the way up its range.
fn phi_start() -> f64 {
    logit(0.9)
}

/// Maps the optimiser's unbounded vector to parameters and starting states: `[alpha,
/// beta?, gamma?, phi?, level, slope?]`, the weights through logistic transforms onto their
/// bounds (`alpha`, `beta / alpha` and `gamma / (1 − alpha)` in `[LOW, HIGH]`, as
/// statsmodels bounds them), level and slope as shifts from the
/// heuristic start in units of `scale`.
struct Layout {
    form: Form,
    start: State,
    scale: f64,
}

impl Layout {
    /// The parameters, initial level and initial slope at `x`.
    fn decode(&self, x: &[f64]) -> (Params, f64, f64) {
        let mut x = x.iter().copied();
        let mut next = || x.next().unwrap_or(0.0);
        let alpha = LOW + (HIGH - LOW) * sigmoid(next());
        let beta = if self.form.has_trend() {
            alpha * (LOW + (HIGH - LOW) * sigmoid(next()))
        } else {
            0.0
        };
        let gamma = if self.form.has_season() {
            (1.0 - alpha) * (LOW + (HIGH - LOW) * sigmoid(next()))
        } else {
            0.0
        };
        let phi = match self.form.trend {
            TrendKind::Damped => PHI_LOW + (PHI_HIGH - PHI_LOW) * sigmoid(next()),
            _ => 1.0,
        };
        let level = self.start.level + self.scale * next();
        let slope = if self.form.has_trend() {
            self.start.slope + self.scale * next() / 10.0
        } else {
            0.0
        };
        let params = Params {
            alpha,
            beta,
            gamma,
            phi,
        };
        (params, level, slope)
    }

    /// The starting point: Hyndman et al.'s starting weights and the heuristic states.
    fn start(&self, m: usize) -> Vec<f64> {
        let alpha = LOW + 0.2 * (HIGH - LOW) / m as f64;
        let mut x = vec![logit((alpha - LOW) / (HIGH - LOW))];
        if self.form.has_trend() {
            x.push(logit(0.1));
        }
        if self.form.has_season() {
            x.push(logit(0.05));
        }
        if self.form.trend == TrendKind::Damped {
            x.push(phi_start());
        }
        x.push(0.0);
        if self.form.has_trend() {
            x.push(0.0);
        }
        x
    }
}

/// Evaluations allowed to one search.
const MAX_EVALS: usize = 2000;

/// The relative tolerance of a search that the refinement finishes.
const ROUGH: f64 = 1e-3;

/// A fit under way: one model for one series, and the search for its parameters.
struct Job {
    /// The series' position among those being fitted.
    series: usize,
    /// Σ ln y for a multiplicative error, else 0 (see [`ErrorSums::deviance`]).
    log_y: f64,
    layout: Layout,
    search: NelderMead,
}

impl Job {
    /// Sets up fitting `form` with period `m` (1 without seasonality) to `y`, the search
    /// started from `warm` when given: the optimum of a model with the same parameters (its
    /// twin with the other error type, say), which saves most of the search. `None` when
    /// the series is too short for the model or a multiplicative model does not suit it.
    fn new(series: usize, form: Form, y: &[f64], m: usize, warm: Option<&[f64]>) -> Option<Self> {
        let n = y.len();
        if n < form.parameters(m) + 2 || (form.has_season() && n < 2 * m) {
            return None;
        }
        if form.multiplicative() && y.iter().any(|v| v.is_nan() || *v <= 0.0) {
            return None;
        }
        let start = heuristic_state(form, y, m);
        if form.multiplicative() && (start.level.is_nan() || start.level <= 0.0) {
            return None;
        }
        let mean = y.iter().sum::<f64>() / n as f64;
        let spread = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        let layout = Layout {
            form,
            scale: 0.1 * spread.max(mean.abs() * 1e-3).max(f64::MIN_POSITIVE),
            start,
        };
        let x0 = layout.start(m);
        let search = match warm {
            Some(w) if w.len() == x0.len() => NelderMead::new(w, 0.5, MAX_EVALS),
            _ => NelderMead::new(&x0, 1.0, MAX_EVALS),
        };
        // A seasonal model's search only finds where its refinement starts (see
        // [`refine`]), which then polishes every coordinate.
        let search = if form.has_season() {
            search.tolerance(ROUGH)
        } else {
            search
        };
        let log_y = match form.error {
            ErrorKind::Additive => 0.0,
            ErrorKind::Multiplicative => y.iter().map(|v| v.ln()).sum(),
        };
        Some(Self {
            series,
            log_y,
            layout,
            search,
        })
    }

    /// The parameters and initial level and slope at the search's next point (its best
    /// once it is over).
    fn decode(&self) -> (Params, f64, f64) {
        let x = self.search.point().unwrap_or_else(|| self.search.best().0);
        self.layout.decode(x)
    }

    /// The fit at the search's best point, and that point.
    fn finish(&self, y: &[f64], m: usize) -> Option<(Fit, Vec<f64>)> {
        let form = self.layout.form;
        let (best, _) = self.search.best();
        let (params, level, slope) = self.layout.decode(best);
        let initial = State {
            level,
            slope,
            season: self.layout.start.season.clone(),
        };
        let (params, initial) = refine(form, m, y, self.log_y, params, initial);
        let n = y.len();
        let filter = Filter::single(form, &params, &initial);
        let ([sums], filter) = ErrorSums::of(filter, y.as_chunks::<1>().0, [n]);
        let sums = sums?;
        let deviance = sums.deviance(n, self.log_y);
        let k = form.parameters(m) as f64;
        let aicc = deviance + 2.0 * k + 2.0 * k * (k + 1.0) / (n as f64 - k - 1.0);
        let fit = Fit {
            form,
            period: m,
            params,
            initial,
            last: filter.state(0),
            sigma2: sums.squares / n as f64,
            aicc: aicc.is_finite().then_some(aicc),
            observations: n,
        };
        Some((fit, best.to_vec()))
    }
}

/// Fits `form` with period `m` to each series of `ys` by maximum likelihood, the search for
/// series `s` started from `warm[s]`, several series at a time: as many as one vector
/// register holds (8 with 512-bit vectors, else 4; more would spill registers). Returns each
/// fit with its optimiser's point; `None` for a series the model does not suit. The result
/// does not depend on the number of lanes.
pub(super) fn fit_form(
    form: Form,
    m: usize,
    ys: &[&[f64]],
    warm: &[Option<&[f64]>],
) -> Vec<Option<(Fit, Vec<f64>)>> {
    if simd::level().avx512() {
        return fit_lanes::<LANES>(form, m, ys, warm);
    }
    fit_lanes::<{ LANES / 2 }>(form, m, ys, warm)
}

/// [`fit_form`] with `L` lanes: each lane takes the next series when its search ends, and
/// every round evaluates one point of each lane's search in one pass over the data.
pub(super) fn fit_lanes<const L: usize>(
    form: Form,
    m: usize,
    ys: &[&[f64]],
    warm: &[Option<&[f64]>],
) -> Vec<Option<(Fit, Vec<f64>)>> {
    let m = if form.has_season() { m } else { 1 };
    let mut fits = vec![None; ys.len()];
    let longest = ys.iter().map(|y| y.len()).max().unwrap_or(0);
    // values[t][lane]: the series each lane is fitting, side by side.
    let mut values = vec![[0.0; L]; longest];
    let mut lengths = [0; L];
    let mut lanes: [Option<Job>; L] = std::array::from_fn(|_| None);
    let mut queue = 0..ys.len();
    let mut buffer = Vec::new();
    loop {
        for (i, lane) in lanes.iter_mut().enumerate() {
            while lane.is_none() {
                let Some(s) = queue.next() else {
                    lengths[i] = 0;
                    break;
                };
                *lane = Job::new(s, form, ys[s], m, warm[s]);
                if lane.is_some() {
                    // Past its end the lane sees its last value, so that its states (on
                    // which nothing depends) stay ordinary numbers, far from subnormals.
                    let last = ys[s].last().copied().unwrap_or(0.0);
                    for (t, row) in values.iter_mut().enumerate() {
                        row[i] = ys[s].get(t).copied().unwrap_or(last);
                    }
                    lengths[i] = ys[s].len();
                }
            }
        }
        let Some(busy) = lanes.iter().flatten().next() else {
            break;
        };
        // An idle lane runs a copy of a busy one, with no data; its result goes unused.
        let job = |i: usize| lanes[i].as_ref().unwrap_or(busy);
        let points: [(Params, f64, f64); L] = std::array::from_fn(|i| job(i).decode());
        let filter = Filter::new(
            form,
            &points.map(|p| p.0),
            points.map(|p| p.1),
            points.map(|p| p.2),
            std::array::from_fn(|i| job(i).layout.start.season.as_slice()),
            std::mem::take(&mut buffer),
        );
        let steps = lengths.iter().copied().max().unwrap_or(0);
        let (sums, filter) = ErrorSums::of(filter, &values[..steps], lengths);
        buffer = filter.season;
        for (i, lane) in lanes.iter_mut().enumerate() {
            let Some(job) = lane else { continue };
            job.search
                .tell(sums[i].map_or(f64::INFINITY, |s| s.deviance(lengths[i], job.log_y)));
            if job.search.point().is_none() {
                fits[job.series] = job.finish(ys[job.series], m);
                *lane = None;
            }
        }
    }
    fits
}

/// Which seasonal models to try for a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seasonality {
    /// Period `m` is likely: seasonal models are tried beside the others when the series
    /// is long enough (two periods and two more values), and AICc decides.
    Auto(usize),
    /// Only seasonal models with period `m`.
    Fixed(usize),
    /// Only models without seasonality.
    None,
}

/// A series' best model by AICc, with the AICc of each model that could be fitted.
pub type Best = (Fit, Vec<(Form, f64)>);

/// What fitting a series takes.
enum Plan {
    /// Nothing: it is constant.
    Constant(Fit),
    /// A search for each of these models, with this period.
    Search(usize, Vec<Form>),
}

impl Plan {
    /// The plan for `y`, or why it cannot be fitted.
    fn of(y: &[f64], seasonality: Seasonality) -> Result<Self, EtsError> {
        let n = y.len();
        if n == 0 {
            return Err(EtsError::NoValues);
        }
        if y.iter().any(|v| !v.is_finite()) {
            return Err(EtsError::NotFinite);
        }
        let (lo, hi) = y
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let (m, seasons): (usize, &[SeasonKind]) = match seasonality {
            Seasonality::Fixed(m) => {
                if n < 2 * m + 2 {
                    return Err(EtsError::TooShortForSeason {
                        period: m,
                        needs: 2 * m + 2,
                        values: n,
                    });
                }
                (m, &[SeasonKind::Additive, SeasonKind::Multiplicative])
            }
            Seasonality::Auto(m) if m > 1 && n >= 2 * m + 2 => (
                m,
                &[
                    SeasonKind::None,
                    SeasonKind::Additive,
                    SeasonKind::Multiplicative,
                ],
            ),
            _ => (1, &[SeasonKind::None]),
        };
        if hi == lo {
            return Ok(Plan::Constant(constant(y[0], n)));
        }
        Ok(Plan::Search(m, Form::candidates(lo > 0.0, seasons)))
    }
}

/// The best model of each series by AICc among its candidates, or why none could be
/// fitted. Series are fitted in parallel, several at a time on each thread, each model in
/// turn: models with the same parameters start from the optimum of the last one fitted.
pub fn fit_best_many(ys: &[&[f64]], seasonality: Seasonality) -> Vec<Result<Best, EtsError>> {
    // The series to search, grouped by period and candidate models.
    let mut groups: Vec<(usize, Vec<Form>, Vec<usize>)> = Vec::new();
    let mut results: Vec<Result<Best, EtsError>> = ys
        .iter()
        .enumerate()
        .map(|(s, y)| match Plan::of(y, seasonality)? {
            Plan::Constant(fit) => Ok((fit, vec![])),
            Plan::Search(m, forms) => {
                match groups.iter_mut().find(|g| g.0 == m && g.1 == forms) {
                    Some(group) => group.2.push(s),
                    None => groups.push((m, forms, vec![s])),
                }
                // Until one of the models fits.
                Err(EtsError::TooShort {
                    values: y.len(),
                    needs: Form::candidates(true, &[SeasonKind::None])[0].parameters(1) + 2,
                })
            }
        })
        .collect();
    // Series of like lengths share lanes, so few steps run on idle lanes.
    let threads = rayon::current_num_threads();
    let mut chunks = Vec::new();
    for (m, forms, members) in &mut groups {
        members.sort_by_key(|&s| ys[s].len());
        let size = (members.len() / (4 * threads)).clamp(LANES, 64);
        chunks.extend(members.chunks(size).map(|c| (*m, forms.as_slice(), c)));
    }
    let interrupt = Interrupt::current();
    let fitted: Vec<Vec<(usize, Option<Best>)>> = chunks
        .par_iter()
        .map(|&(m, forms, members)| {
            if interrupt.is_raised() {
                return vec![];
            }
            let series: Vec<&[f64]> = members.iter().map(|&s| ys[s]).collect();
            members
                .iter()
                .copied()
                .zip(fit_all(&series, m, forms))
                .collect()
        })
        .collect();
    for (s, best) in fitted.into_iter().flatten() {
        if let Some(best) = best {
            results[s] = Ok(best);
        }
    }
    results
}

/// Each of `forms` fitted to each series of `ys`, and the best of each by AICc (`None`
/// where no model could be fitted).
fn fit_all(ys: &[&[f64]], m: usize, forms: &[Form]) -> Vec<Option<Best>> {
    let mut tried: Vec<Vec<Fit>> = vec![Vec::new(); ys.len()];
    // For each series, the optimum of the last model fitted with each set of parameters
    // (trend, seasonality).
    type Optima = Vec<((TrendKind, bool), Vec<f64>)>;
    let mut warm: Vec<Optima> = vec![Vec::new(); ys.len()];
    for &form in forms {
        let key = (form.trend, form.has_season());
        let starts: Vec<Option<Vec<f64>>> = warm
            .iter()
            .map(|w| {
                let optimum = |key| w.iter().find(|(k, _)| *k == key).map(|(_, x)| x);
                match optimum(key) {
                    Some(x) => Some(x.clone()),
                    // A damped trend starts from the undamped trend's optimum: the same
                    // coordinates, with the damping's start inserted before the level.
                    None if form.trend == TrendKind::Damped => {
                        optimum((TrendKind::Additive, key.1)).map(|x| {
                            let mut x = x.clone();
                            x.insert(2 + usize::from(key.1), phi_start());
                            x
                        })
                    }
                    None => None,
                }
            })
            .collect();
        let starts: Vec<Option<&[f64]>> = starts.iter().map(Option::as_deref).collect();
        let fits = fit_form(form, m, ys, &starts);
        for (s, fit) in fits.into_iter().enumerate() {
            if let Some((fit, x)) = fit {
                warm[s].retain(|(k, _)| *k != key);
                warm[s].push((key, x));
                tried[s].push(fit);
            }
        }
    }
    tried
        .into_iter()
        .map(|tried| {
            let scores = tried
                .iter()
                .filter_map(|f| f.aicc.map(|a| (f.form, a)))
                .collect();
            tried
                .into_iter()
                .min_by(|a, b| {
                    let key = |f: &Fit| f.aicc.unwrap_or(f64::NEG_INFINITY);
                    key(a).total_cmp(&key(b))
                })
                .map(|best| (best, scores))
        })
        .collect()
}

/// A constant series: its value, forever, with no spread.
fn constant(value: f64, n: usize) -> Fit {
    let state = State {
        level: value,
        slope: 0.0,
        season: vec![],
    };
    Fit {
        form: Form {
            error: ErrorKind::Additive,
            trend: TrendKind::None,
            season: SeasonKind::None,
        },
        period: 1,
        params: Params {
            alpha: LOW,
            beta: 0.0,
            gamma: 0.0,
            phi: 1.0,
        },
        initial: state.clone(),
        last: state,
        sigma2: 0.0,
        aicc: None,
        observations: n,
    }
}
