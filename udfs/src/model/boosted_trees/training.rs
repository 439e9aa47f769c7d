//! Training a [`TreeModel`] from the rows of a source: one pass fits the features' kinds and
//! levels, one samples the numeric values for the bins, one bins every row (a byte per
//! feature, kept in memory from the pool), then the boosting loop runs on the bins.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use rayon::prelude::*;

use super::super::classes::Classes;
use super::super::encoding::FeatureEncoding;
use super::super::training::{Held, Source, TrainingSet};
use super::settings::{Eval, TreeSettings};
use super::{Input, TreeModel};
use crate::error::bad_input_err;
use crate::kernels::rng::Rng;
use crate::kernels::trees::binning::{Binned, Bins, MAX_CATEGORIES};
use crate::kernels::trees::{Fit, Forest, Objective, boost};

/// Rows of numeric values the bins are cut from at most (LightGBM's
/// `bin_construct_sample_cnt`).
const BIN_SAMPLE: u64 = 200_000;
/// The random stream that draws evaluation rows.
const EVAL_STREAM: u64 = 0x6576_616c;

/// A fitted tree model with what its report needs.
pub(super) struct Trained {
    pub model: TreeModel,
    pub classes: Option<Classes>,
    /// Labels (0/1 for the classifier) and raw scores of the training and evaluation rows.
    pub train: (Vec<f64>, Vec<f64>),
    pub eval: (Vec<f64>, Vec<f64>),
    pub set: TrainingSet,
    pub warnings: Vec<String>,
}

/// Trains on the rows of `source`; `model_type` names the model in messages.
pub(super) fn train(
    source: &dyn Source,
    settings: &TreeSettings,
    model_type: &'static str,
) -> Result<Trained> {
    let schema = source.schema();
    let label = settings.label.as_str();
    let mut set = TrainingSet::new(schema, label)?;
    let eval_column = match &settings.eval {
        Eval::Column(name) => {
            let Some((i, field)) = schema.column_with_name(name) else {
                return bad_input_err!(
                    "eval_col {name} is not in the training query; add it (true for the rows \
                     to evaluate on)"
                );
            };
            if field.data_type() != &DataType::Boolean {
                return bad_input_err!(
                    "eval_col {name} has type {}; it must be a boolean, true for the rows to \
                     evaluate on",
                    field.data_type()
                );
            }
            set.feature_idx.retain(|&f| f != i);
            if set.feature_idx.is_empty() {
                return bad_input_err!(
                    "the training query has only the label {label} and eval_col {name}; add \
                     feature columns to it"
                );
            }
            Some(i)
        }
        _ => None,
    };
    let set = set.fit(source)?;
    let label_type = schema.field(set.label_column()?).data_type();
    let classes = match settings.params.objective {
        Objective::Binary => Some(Classes::of_label(
            label_type,
            label,
            &set,
            settings.positive_class.as_deref(),
            model_type,
        )?),
        Objective::Squared if label_type.is_numeric() => None,
        Objective::Squared => {
            return bad_input_err!(
                "label {label} has type {label_type}; {model_type} needs a numeric label (use \
                 model_type = 'boosted_tree_classifier' for a yes/no label)"
            );
        }
    };
    let mut warnings = Vec::new();
    let levels: Vec<Vec<String>> = set
        .features
        .iter()
        .map(|f| match f {
            FeatureEncoding::Numeric { .. } => vec![],
            FeatureEncoding::OneHot {
                name,
                reference,
                levels,
                ..
            } => {
                let mut all: Vec<String> = levels.clone();
                all.push(reference.clone());
                all.sort();
                if all.len() > MAX_CATEGORIES as usize {
                    warnings.push(format!(
                        "feature {name} has {} levels; trees split on the first \
                         {MAX_CATEGORIES} by name and treat the others as NULL (group rare \
                         levels in the query)",
                        all.len()
                    ));
                }
                all
            }
        })
        .collect();
    let mut model = TreeModel {
        label: label.to_string(),
        features: set.features.clone(),
        levels,
        forest: Forest {
            base: 0.0,
            trees: vec![],
        },
    };

    let bins = bins(source, &set, &model, settings.max_bins)?;
    let d = bins.len();
    let mut held = Held::new(source, model_type, "the binned training rows");
    // A byte per feature twice (by column and by row); label, weight, gradient, hessian and
    // score; a row index.
    held.grow(set.rows_used, 2 * d + 5 * 8 + 4, 0)?;
    let mut data = Binned::new(bins);
    let mut y = Vec::with_capacity(set.rows_used as usize);
    let mut is_eval: Vec<bool> = Vec::with_capacity(set.rows_used as usize);
    source.scan(&mut |group| {
        let parts = group
            .par_iter()
            .map(|batch| {
                let (inputs, labels, eval) =
                    batch_rows(batch, &set, &model, classes.as_ref(), eval_column)?;
                let columns: Vec<_> = inputs.iter().map(Input::column).collect();
                Ok((data.bin(&columns), labels, eval))
            })
            .collect::<Result<Vec<_>>>()?;
        for (binned, labels, eval) in parts {
            data.push_bins(binned);
            y.extend(labels);
            is_eval.extend(eval);
        }
        Ok(())
    })?;
    if let Eval::Fraction(f) = settings.eval {
        let seed = settings.params.seed;
        is_eval = (0..y.len() as u64)
            .map(|r| Rng::keyed(seed, EVAL_STREAM, r).uniform() < f)
            .collect();
    }
    let (eval, train): (Vec<u32>, Vec<u32>) =
        (0..y.len() as u32).partition(|&r| is_eval[r as usize]);
    check_rows(&train, &eval, settings, label)?;
    let weights = match &classes {
        Some(_) => {
            let positives = train.iter().filter(|&&r| y[r as usize] == 1.0).count();
            one_class(positives, train.len(), label)?;
            settings.balanced.then(|| {
                let n = train.len() as f64;
                let (wp, wn) = (
                    n / (2.0 * positives as f64),
                    n / (2.0 * (n - positives as f64)),
                );
                y.iter()
                    .map(|&v| if v == 1.0 { wp } else { wn })
                    .collect::<Vec<f64>>()
            })
        }
        None => None,
    };
    let fit = boost(
        &data,
        &y,
        weights.as_deref(),
        &train,
        &eval,
        &settings.params,
    );
    warnings.extend(fit_warnings(&fit, &data, &model, train.len(), settings));
    let pick = |rows: &[u32]| -> (Vec<f64>, Vec<f64>) {
        rows.iter()
            .map(|&r| (y[r as usize], fit.scores[r as usize]))
            .unzip()
    };
    let (train, eval) = (pick(&train), pick(&eval));
    model.forest = fit.forest;
    Ok(Trained {
        model,
        classes,
        train,
        eval,
        set,
        warnings,
    })
}

/// Every feature's bins: numeric ones cut from a sample of the used rows (every k-th row of
/// each batch), categorical ones a bin per level.
fn bins(
    source: &dyn Source,
    set: &TrainingSet,
    model: &TreeModel,
    max_bins: usize,
) -> Result<Vec<Bins>> {
    let every = set.rows_used.div_ceil(BIN_SAMPLE).max(1) as usize;
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); model.features.len()];
    source.scan(&mut |group| {
        let parts = group
            .par_iter()
            .map(|batch| {
                let (inputs, _, _) = batch_rows(batch, set, model, None, None)?;
                Ok(inputs
                    .into_iter()
                    .map(|i| match i {
                        Input::Numeric(x) => x.into_iter().step_by(every).collect(),
                        Input::Categorical(_) => vec![],
                    })
                    .collect::<Vec<Vec<f64>>>())
            })
            .collect::<Result<Vec<_>>>()?;
        for part in parts {
            for (s, p) in samples.iter_mut().zip(part) {
                s.extend(p);
            }
        }
        Ok(())
    })?;
    Ok(samples
        .into_par_iter()
        .zip(&model.levels)
        .map(|(mut sample, levels)| {
            if levels.is_empty() {
                Bins::numeric(&mut sample, max_bins)
            } else {
                Bins::categorical(levels.len())
            }
        })
        .collect())
}

/// The used rows of a batch: the features as the trees read them, the label (0/1 by
/// `classes` for a classifier, else the numbers of a numeric label, else none) and whether
/// each row is for evaluation (from `eval_column`, else none is).
fn batch_rows(
    batch: &RecordBatch,
    set: &TrainingSet,
    model: &TreeModel,
    classes: Option<&Classes>,
    eval_column: Option<usize>,
) -> Result<(Vec<Input>, Vec<f64>, Vec<bool>)> {
    let rows = set.rows(batch)?;
    let columns = set.feature_columns(batch);
    let inputs = model
        .inputs(&columns)?
        .into_iter()
        .map(|i| match i {
            Input::Numeric(x) => Input::Numeric(rows.kept(x)),
            Input::Categorical(c) => Input::Categorical(rows.kept(c)),
        })
        .collect();
    let label = batch.column(set.label_column()?);
    let y = match classes {
        Some(c) => rows.kept(c.label_01(label, &set.label)?),
        None if label.data_type().is_numeric() => set.label_numbers(&rows)?,
        None => vec![],
    };
    if let (Some(Classes::Numeric), Some(bad)) =
        (classes, y.iter().find(|v| **v != 0.0 && **v != 1.0))
    {
        return bad_input_err!(
            "label {} has the value {bad}; a classifier needs 0/1, true/false or two strings \
             (for a numeric target use model_type = 'boosted_tree_regressor')",
            set.label
        );
    }
    let eval = match eval_column {
        Some(e) => {
            let flags = batch.column(e).as_boolean();
            rows.kept((0..flags.len()).map(|r| flags.is_valid(r) && flags.value(r)))
        }
        None => vec![false; y.len()],
    };
    Ok((inputs, y, eval))
}

/// An error when the split leaves no rows to train on, or none to stop early on.
fn check_rows(train: &[u32], eval: &[u32], settings: &TreeSettings, label: &str) -> Result<()> {
    let what = match &settings.eval {
        Eval::Column(c) => format!("eval_col {c}"),
        _ => "eval_fraction".to_string(),
    };
    if train.is_empty() {
        return bad_input_err!("{what} leaves no rows to train on; mark fewer rows for evaluation");
    }
    if eval.is_empty() && settings.params.early_stopping_rounds.is_some() {
        return bad_input_err!(
            "early_stopping needs evaluation rows, but {what} leaves none of the {} rows with \
             a {label}; mark some rows for evaluation or raise eval_fraction",
            train.len()
        );
    }
    Ok(())
}

/// An error when the training rows hold one class only.
fn one_class(positives: usize, rows: usize, label: &str) -> Result<()> {
    if positives == 0 || positives == rows {
        let which = if positives == 0 {
            "negative"
        } else {
            "positive"
        };
        return bad_input_err!(
            "label {label} has only one class in the {rows} training rows (all {which}); a \
             classifier needs rows of both classes"
        );
    }
    Ok(())
}

/// Warnings about what the fit could not use or did not do.
fn fit_warnings(
    fit: &Fit,
    data: &Binned,
    model: &TreeModel,
    rows: usize,
    settings: &TreeSettings,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let growth = &settings.params.growth;
    let min_rows = growth.limits.min_rows as usize;
    for (j, bins) in data.bins.iter().enumerate() {
        let column = &data.columns[j];
        let Some(&first) = column.first() else {
            continue;
        };
        if column.iter().all(|&b| b == first) {
            let value = if first == bins.missing() {
                "NULL"
            } else {
                "constant"
            };
            warnings.push(format!(
                "feature {} is {value} in every training row, so no tree can split on it; \
                 leave it out of the query",
                model.features[j].name()
            ));
        }
    }
    if fit.forest.trees.iter().all(|t| t.nodes.len() == 1) {
        warnings.push(format!(
            "no tree could split: a split needs min_rows_per_leaf = {min_rows} rows on each \
             side and a feature that separates them, and there are {rows} training rows; \
             lower min_rows_per_leaf or train on more rows"
        ));
    } else if growth.num_leaves > rows {
        warnings.push(format!(
            "num_leaves = {} is more than the {rows} training rows; with min_rows_per_leaf = \
             {min_rows} a tree has at most {} leaves, so lower num_leaves",
            growth.num_leaves,
            rows / min_rows
        ));
    }
    if fit.stopped_early {
        warnings.push(format!(
            "early stopping kept the first {} of {} trees: the evaluation loss did not \
             improve for {} trees after them",
            fit.forest.trees.len(),
            settings.params.num_trees,
            settings.params.early_stopping_rounds.unwrap_or_default()
        ));
    }
    warnings
}
