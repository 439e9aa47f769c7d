//! Turning feature columns into the numeric design matrix models train and score on.
//!
//! Numeric columns are standardised (`(x - mean) / std`) with NULLs imputed by the training
//! mean; string and boolean columns are one-hot encoded against their most frequent level,
//! so an unseen level scores as all-zero (the reference level). All of it is fitted once on
//! the training rows, stored in the model, and replayed at prediction time.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::Result;

use crate::error::{bad_input, bad_input_err};
use serde::{Deserialize, Serialize};

use crate::kernels::moments::{sum, sum_squared_deviations};

/// Values per block of a numeric feature's statistics.
const STATS_BLOCK: usize = 1024;

/// How one input column becomes design columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureEncoding {
    /// One standardised column; NULL becomes the mean (0 after standardising).
    Numeric {
        name: String,
        data_type: String,
        mean: f64,
        /// 1 for a constant column, so it encodes as 0.
        std: f64,
    },
    /// One 0/1 column per level but the reference level.
    OneHot {
        name: String,
        data_type: String,
        reference: String,
        levels: Vec<String>,
        /// Per level, the share of training rows that hold it: the mean of its design
        /// column, which EXPLAIN_PREDICT measures contributions from. Empty in models
        /// stored before it was kept, which measure from the reference level instead.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        shares: Vec<f64>,
    },
}

impl FeatureEncoding {
    pub fn name(&self) -> &str {
        match self {
            FeatureEncoding::Numeric { name, .. } | FeatureEncoding::OneHot { name, .. } => name,
        }
    }

    pub fn data_type(&self) -> &str {
        match self {
            FeatureEncoding::Numeric { data_type, .. }
            | FeatureEncoding::OneHot { data_type, .. } => data_type,
        }
    }

    /// Whether an argument of type `t` can be this feature: a number where the model was
    /// trained on numbers, text or a boolean where it was trained on categories, NULL for
    /// either. Text is not read as a number: as in DuckDB, function arguments are not cast
    /// from strings implicitly, so a wrong column is an error rather than NULLs.
    pub fn accepts(&self, t: &DataType) -> bool {
        let t = match t {
            DataType::Dictionary(_, values) => values.as_ref(),
            t => t,
        };
        t == &DataType::Null
            || match self {
                FeatureEncoding::Numeric { .. } => is_numeric(t),
                FeatureEncoding::OneHot { .. } => is_categorical(t),
            }
    }

    /// What [`FeatureEncoding::accepts`], in words.
    pub fn expects(&self) -> &'static str {
        match self {
            FeatureEncoding::Numeric { .. } => "a number",
            FeatureEncoding::OneHot { .. } => "a category (text or a boolean)",
        }
    }

    /// A short description for DESCRIBE MODEL.
    pub fn describe(&self) -> String {
        match self {
            FeatureEncoding::Numeric { .. } => "standardized, NULL as mean".to_string(),
            FeatureEncoding::OneHot {
                reference, levels, ..
            } => format!(
                "one-hot, {} levels, reference '{reference}'",
                levels.len() + 1
            ),
        }
    }

    /// How many design columns: one for a number, one per level for a category.
    pub fn width(&self) -> usize {
        match self {
            FeatureEncoding::Numeric { .. } => 1,
            FeatureEncoding::OneHot { levels, .. } => levels.len(),
        }
    }

    /// Names of the design columns: the column name, or `column=level`.
    pub fn design_names(&self) -> Vec<String> {
        match self {
            FeatureEncoding::Numeric { name, .. } => vec![name.clone()],
            FeatureEncoding::OneHot { name, levels, .. } => {
                levels.iter().map(|l| format!("{name}={l}")).collect()
            }
        }
    }

    /// The training mean of each design column: 0 for a standardised number, the share of
    /// its level for a one-hot column (0 where the model did not keep the shares).
    pub fn design_means(&self) -> Vec<f64> {
        match self {
            FeatureEncoding::Numeric { .. } => vec![0.0],
            FeatureEncoding::OneHot { levels, shares, .. } => {
                if shares.len() == levels.len() {
                    shares.clone()
                } else {
                    vec![0.0; levels.len()]
                }
            }
        }
    }

    /// Appends this feature's design columns for `array` to `out`.
    pub fn encode(&self, array: &ArrayRef, out: &mut Vec<Vec<f64>>) -> Result<()> {
        match self {
            FeatureEncoding::Numeric { mean, std, .. } => {
                let values = as_f64(array, self.name())?;
                let values = values.as_primitive::<Float64Type>();
                // Times the reciprocal, as every reader of raw values standardises them
                // (a division per value costs the passes that do it several times more).
                let scale = 1.0 / std;
                out.push(
                    (0..values.len())
                        .map(|i| {
                            if values.is_null(i) {
                                0.0
                            } else {
                                (values.value(i) - mean) * scale
                            }
                        })
                        .collect(),
                );
            }
            FeatureEncoding::OneHot { levels, .. } => {
                let text = as_text(array, self.name())?;
                let text = text.as_string::<i32>();
                let index: BTreeMap<&str, usize> = levels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.as_str(), i))
                    .collect();
                let start = out.len();
                out.extend((0..levels.len()).map(|_| vec![0.0; text.len()]));
                for (row, value) in text.iter().enumerate() {
                    if let Some(&l) = value.and_then(|v| index.get(v)) {
                        out[start + l][row] = 1.0;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether a column of this type can be a feature, and how.
pub fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

pub fn is_categorical(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean => true,
        DataType::Dictionary(_, v) => is_categorical(v),
        _ => false,
    }
}

/// The column as Float64 (NULLs kept).
pub fn as_f64(array: &ArrayRef, name: &str) -> Result<ArrayRef> {
    cast(array, &DataType::Float64)
        .map_err(|e| bad_input(format!("column {name} cannot be read as a number: {e}")))
}

/// The column as Utf8 text (NULLs kept); booleans become `true`/`false`.
pub fn as_text(array: &ArrayRef, name: &str) -> Result<ArrayRef> {
    cast(array, &DataType::Utf8)
        .map_err(|e| bad_input(format!("column {name} cannot be read as text: {e}")))
}

/// Running statistics of one feature over the training rows, to fit its encoding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FeatureStats {
    Numeric {
        n: f64,
        mean: f64,
        m2: f64,
    },
    /// The rows of each level, and the rows where the column is NULL.
    Categorical {
        counts: BTreeMap<String, u64>,
        nulls: u64,
    },
}

impl FeatureStats {
    pub fn for_type(t: &DataType, name: &str) -> Result<Self> {
        if is_numeric(t) {
            Ok(FeatureStats::Numeric {
                n: 0.0,
                mean: 0.0,
                m2: 0.0,
            })
        } else if is_categorical(t) {
            Ok(FeatureStats::Categorical {
                counts: BTreeMap::new(),
                nulls: 0,
            })
        } else {
            bad_input_err!(
                "feature {name} has type {t}, which a model cannot use; cast it to a number \
                 (e.g. a date to days since an epoch) or to a string in the query"
            )
        }
    }

    /// Adds the rows of `array` selected by `keep` (every row without).
    pub fn update(&mut self, array: &ArrayRef, keep: Option<&[bool]>, name: &str) -> Result<()> {
        let kept = |i: usize| keep.is_none_or(|keep| keep[i]);
        match self {
            FeatureStats::Numeric { .. } => {
                let values = as_f64(array, name)?;
                let values = values.as_primitive::<Float64Type>();
                let selected: Vec<f64>;
                let x: &[f64] = if values.null_count() == 0 && keep.is_none() {
                    values.values()
                } else {
                    selected = (0..values.len())
                        .filter(|&i| kept(i) && values.is_valid(i))
                        .map(|i| values.value(i))
                        .collect();
                    &selected
                };
                if x.is_empty() {
                    return Ok(());
                }
                // Per block of values that stays in the L1 cache, its mean and centred sum
                // of squares (two vectorised passes over the block, stable for large
                // means), merged by Chan's update: one read of the batch from memory.
                for block in x.chunks(STATS_BLOCK) {
                    let nb = block.len() as f64;
                    let mb = sum(block) / nb;
                    self.merge(FeatureStats::Numeric {
                        n: nb,
                        mean: mb,
                        m2: sum_squared_deviations(block, mb),
                    });
                }
            }
            FeatureStats::Categorical { counts, nulls } => {
                let text = as_text(array, name)?;
                let text = text.as_string::<i32>();
                for i in (0..text.len()).filter(|&i| kept(i)) {
                    if text.is_valid(i) {
                        *counts.entry(text.value(i).to_string()).or_default() += 1;
                    } else {
                        *nulls += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether every value taken in was finite (as far as the sums can tell: a sum that
    /// overflows reads as not finite).
    pub fn is_finite(&self) -> bool {
        match self {
            FeatureStats::Numeric { mean, m2, .. } => mean.is_finite() && m2.is_finite(),
            FeatureStats::Categorical { .. } => true,
        }
    }

    /// Combines the statistics of another set of rows of the same column into these.
    pub fn merge(&mut self, other: FeatureStats) {
        match (self, other) {
            (
                FeatureStats::Numeric { n, mean, m2 },
                FeatureStats::Numeric {
                    n: nb,
                    mean: mb,
                    m2: m2b,
                },
            ) => {
                if nb == 0.0 {
                    return;
                }
                let total = *n + nb;
                let delta = mb - *mean;
                *m2 += m2b + delta * delta * *n * nb / total;
                *mean += delta * nb / total;
                *n = total;
            }
            (
                FeatureStats::Categorical { counts, nulls },
                FeatureStats::Categorical {
                    counts: more,
                    nulls: more_nulls,
                },
            ) => {
                for (level, c) in more {
                    *counts.entry(level).or_default() += c;
                }
                *nulls += more_nulls;
            }
            _ => unreachable!("statistics of one column have one kind"),
        }
    }

    /// The fitted encoding; an error if the column held nothing but NULLs.
    pub fn finish(self, name: &str, data_type: &DataType) -> Result<FeatureEncoding> {
        let data_type = data_type.to_string();
        match self {
            FeatureStats::Numeric { n, mean, m2 } => {
                if n == 0.0 {
                    return bad_input_err!(
                        "feature {name} is NULL in every training row; leave it out of the query"
                    );
                }
                let std = (m2 / n).sqrt();
                Ok(FeatureEncoding::Numeric {
                    name: name.to_string(),
                    data_type,
                    mean,
                    std: if std > 0.0 { std } else { 1.0 },
                })
            }
            FeatureStats::Categorical { counts, nulls } => {
                // The most frequent level is the reference; ties go to the first by name.
                let Some(reference) = counts
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                    .map(|(l, _)| l.clone())
                else {
                    return bad_input_err!(
                        "feature {name} is NULL in every training row; leave it out of the query"
                    );
                };
                let rows = (counts.values().sum::<u64>() + nulls) as f64;
                let (levels, shares) = counts
                    .into_iter()
                    .filter(|(l, _)| *l != reference)
                    .map(|(l, c)| (l, c as f64 / rows))
                    .unzip();
                Ok(FeatureEncoding::OneHot {
                    name: name.to_string(),
                    data_type,
                    reference,
                    levels,
                    shares,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{BooleanArray, Int64Array, StringArray};

    use super::*;

    #[test]
    fn numeric_standardises_and_imputes() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(100)]));
        let mut stats = FeatureStats::for_type(a.data_type(), "x").unwrap();
        stats
            .update(&a, Some(&[true, true, true, false]), "x")
            .unwrap();
        let enc = stats.finish("x", a.data_type()).unwrap();
        assert_eq!(
            enc,
            FeatureEncoding::Numeric {
                name: "x".into(),
                data_type: "Int64".into(),
                mean: 2.0,
                std: 1.0
            }
        );
        let mut out = Vec::new();
        enc.encode(&a, &mut out).unwrap();
        assert_eq!(out, vec![vec![-1.0, 0.0, 1.0, 98.0]]);
    }

    #[test]
    fn one_hot_uses_the_most_frequent_level_as_reference() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            Some("b"),
            Some("a"),
            Some("b"),
            None,
            Some("c"),
        ]));
        let mut stats = FeatureStats::for_type(a.data_type(), "s").unwrap();
        stats.update(&a, None, "s").unwrap();
        let enc = stats.finish("s", a.data_type()).unwrap();
        assert_eq!(enc.design_names(), vec!["s=a", "s=c"]);
        // The NULL row counts among the rows the shares are of.
        assert_eq!(enc.design_means(), vec![0.2, 0.2]);
        let unseen: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "zzz"]));
        let mut out = Vec::new();
        enc.encode(&unseen, &mut out).unwrap();
        assert_eq!(out, vec![vec![1.0, 0.0, 0.0], vec![0.0, 0.0, 0.0]]);
    }

    #[test]
    fn booleans_are_categories_and_dates_are_refused() {
        let b: ArrayRef = Arc::new(BooleanArray::from(vec![true, false, true]));
        let mut stats = FeatureStats::for_type(b.data_type(), "flag").unwrap();
        stats.update(&b, None, "flag").unwrap();
        let enc = stats.finish("flag", b.data_type()).unwrap();
        assert_eq!(enc.design_names(), vec!["flag=false"]);
        let e = FeatureStats::for_type(&DataType::Date32, "day").unwrap_err();
        assert!(e.to_string().contains("feature day has type Date32"), "{e}");
    }

    #[test]
    fn all_null_features_are_errors() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![None, None]));
        let mut stats = FeatureStats::for_type(a.data_type(), "x").unwrap();
        stats.update(&a, Some(&[true, true]), "x").unwrap();
        let e = stats.finish("x", a.data_type()).unwrap_err();
        assert!(
            e.to_string()
                .contains("feature x is NULL in every training row"),
            "{e}"
        );
    }
}
