//! `PREDICT('model', f1, ..., fn)` and `PREDICT_CHURN('model', f1, ..., fn)`: score rows
//! with a stored model, features by position.
//!
//! The model name must be a literal. While the query is planned the call is rewritten into
//! one bound to the loaded model, so a model is read once per query, never per batch.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::error::{invalid_argument, invalid_argument_err};
use crate::model::{
    self, Model, ModelResolver, ResolvedModel, Scoring, check_feature_types, check_scoring,
};
use crate::sql::{argument_arrays, string_literal};

static PREDICT_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Scores each row with a stored model: the predicted label of a linear_reg or \
         boosted_tree_regressor model, the probability of the positive class of a \
         logistic_reg or boosted_tree_classifier model, the rating of a \
         matrix_factorization model for (user, item), the point forecast of a forecast model \
         for ([series id,] time) (NULL unless the time is a step after the series' end). \
         Features are matched by position, in the order of the non-label columns of the \
         model's training query; NULL features score as their training mean and unseen \
         categories as the reference level (for tree models, both go to the side each split \
         learned for missing values). A feature must have the kind of type it was \
         trained on: text is not read as a number (as in DuckDB, cast it: \
         CAST(x AS DOUBLE)), nor a number as a category; another type is an error naming the \
         feature.",
        "predict(model_name, feature_1[, ..., feature_n])",
    )
    .with_argument(
        "model_name",
        "Name of a model made with CREATE MODEL, as a string literal.",
    )
    .with_argument(
        "feature_i",
        "The model's features, in training order (DESCRIBE MODEL lists them).",
    )
    .with_sql_example(
        "```sql\n\
         CREATE MODEL spend OPTIONS (model_type = 'linear_reg', label = 'monthly_charges') AS\n  \
         SELECT monthly_charges, tenure_months, plan FROM customers;\n\
         SELECT customer_id, PREDICT('spend', tenure_months, plan) AS expected FROM customers;\n\
         ```",
    )
    .build()
});

static CHURN_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The churn probability, in [0, 1], of each row under a stored logistic_reg or \
         boosted_tree_classifier model \
         trained on a yes/no churn label. Features are matched by position and must have the \
         types they were trained on, as in predict. It \
         is an error to call it on a model that is not a binary classifier.",
        "predict_churn(model_name, feature_1[, ..., feature_n])",
    )
    .with_argument(
        "model_name",
        "Name of a logistic_reg or boosted_tree_classifier model, as a string literal.",
    )
    .with_argument(
        "feature_i",
        "The model's features, in training order (DESCRIBE MODEL lists them).",
    )
    .with_sql_example(
        "```sql\n\
         CREATE MODEL churn OPTIONS (model_type = 'logistic_reg', label = 'churned') AS\n  \
         SELECT churned, tenure_months, monthly_charges, plan FROM customers;\n\
         SELECT customer_id, PREDICT_CHURN('churn', tenure_months, monthly_charges, plan) AS p\n\
         FROM customers ORDER BY p DESC LIMIT 10;\n\
         ```",
    )
    .build()
});

static SEGMENT_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The segment of each row under a stored kmeans model: 1 for the largest segment, up \
         to k for the smallest. Features are matched by position, in the order of the \
         training query's columns; NULL features count as their training mean and unseen \
         categories as the reference level; a row with a NaN or infinite feature gets NULL; \
         a feature of another type than it was trained on is an error, as in predict. \
         In FROM, segment(model_name, table_or_subquery) matches features by name, keeps \
         every input column and appends segment and distance (to the segment's centre, in \
         the model's standardized units). \
         With OVER (PARTITION BY ...) and a number of segments first, segment(k, f1, ..., fn) \
         trains k-means on each partition instead (standardized features, n_init 4, seed 42) \
         and numbers each partition's segments from its largest.",
        "segment(model_name, feature_1[, ..., feature_n])",
    )
    .with_argument(
        "model_name",
        "Name of a kmeans model made with CREATE MODEL, as a string literal; or, with OVER, \
         the number of segments k (1 to 1000) to train per partition.",
    )
    .with_argument(
        "feature_i",
        "The model's features, in training order (DESCRIBE MODEL lists them).",
    )
    .with_sql_example(
        "```sql\n\
         CREATE MODEL seg OPTIONS (model_type = 'kmeans', num_clusters = 4) AS\n  \
         SELECT tenure_months, monthly_charges FROM customers;\n\
         SELECT customer_id, SEGMENT('seg', tenure_months, monthly_charges) AS segment FROM customers;\n\
         SELECT customer_id, region,\n  \
         SEGMENT(3, tenure_months, monthly_charges) OVER (PARTITION BY region) AS regional_segment\n\
         FROM customers;\n\
         ```",
    )
    .build()
});

/// `segment`'s documentation, shared by its window form.
pub fn segment_doc() -> Option<&'static Documentation> {
    Some(&SEGMENT_DOC)
}

/// The unbound `predict` or `predict_churn`: resolves its model while the query is planned.
#[derive(Debug)]
pub struct Predict {
    signature: Signature,
    resolver: Arc<dyn ModelResolver>,
    scoring: Scoring,
}

impl Predict {
    pub fn new(resolver: Arc<dyn ModelResolver>, scoring: Scoring) -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
            resolver,
            scoring,
        }
    }
}

// One instance per session and function: the resolver does not distinguish them.
impl PartialEq for Predict {
    fn eq(&self, other: &Self) -> bool {
        self.scoring == other.scoring
    }
}

impl Eq for Predict {}

impl Hash for Predict {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.scoring.hash(state);
    }
}

impl ScalarUDFImpl for Predict {
    fn name(&self) -> &str {
        self.scoring.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.scoring.return_type())
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let f = self.scoring.name();
        let first = args.first();
        let name = match (first, first.and_then(string_literal)) {
            (_, Some(name)) => name.to_string(),
            (Some(Expr::Literal(k, _)), None)
                if self.scoring == Scoring::Segment && k.data_type().is_integer() =>
            {
                return invalid_argument_err!(
                    "segment({k}, ...) trains {k} segments per partition and needs a window: \
                     segment({k}, f1, ..., fn) OVER (PARTITION BY ...); to score with a stored \
                     model give its name, segment('model', f1, ..., fn)"
                );
            }
            // A model value (from TRAIN_REGRESSION) is scored row by row at execution.
            (Some(_), None) if self.scoring != Scoring::Segment => {
                return Ok(ExprSimplifyResult::Original(args));
            }
            (Some(_), None) => {
                return invalid_argument_err!(
                    "segment needs the name of a kmeans model as a string literal first, e.g. \
                     segment('seg', recency_days, frequency)"
                );
            }
            (None, _) => {
                return invalid_argument_err!(
                    "{f} needs a model name (or a TRAIN_REGRESSION value) first, e.g. \
                     {f}('churn', tenure, plan)"
                );
            }
        };
        let resolved = self.resolver.resolve(&name)?;
        check_call(
            self.scoring,
            Some(&name),
            resolved.model.as_ref(),
            args.len() - 1,
        )?;
        // Types a planning step cannot tell are left to the model's own reading.
        let given: Vec<(DataType, Option<String>)> = args[1..]
            .iter()
            .map_while(|a| Some((info.get_data_type(a).ok()?, shown(a))))
            .collect();
        check_feature_types(
            self.scoring.name(),
            Some(&name),
            resolved.model.as_ref(),
            &given,
        )?;
        let arity = resolved.model.feature_names().len();
        let bound = bound_predict(resolved, arity, self.scoring);
        Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(bound), args[1..].to_vec()),
        )))
    }

    /// Scores with model values (TRAIN_REGRESSION results) given per row: each distinct
    /// value is parsed once and scores the rows that carry it.
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let first = args.arg_fields[0].data_type();
        if !matches!(
            first,
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        ) {
            return invalid_argument_err!(
                "{} takes a model name (a string literal) or a TRAIN_REGRESSION value first, \
                 got a {first} column",
                self.scoring.name()
            );
        }
        let columns = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let values = cast(&columns[0], &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        let mut out: Vec<Option<f64>> = vec![None; rows];
        let mut done: HashSet<&str> = HashSet::new();
        for r in 0..rows {
            if values.is_null(r) || !done.insert(values.value(r)) {
                continue;
            }
            let text = values.value(r);
            let not_a_model = || {
                invalid_argument(format!(
                    "{}: the first argument is neither a model name literal nor a \
                     TRAIN_REGRESSION value",
                    self.scoring.name()
                ))
            };
            let value = serde_json::from_str(text).map_err(|_| not_a_model())?;
            let model = model::from_json(value, &|_| Err(not_a_model()))?;
            check_call(self.scoring, None, model.as_ref(), columns.len() - 1)?;
            let given: Vec<(DataType, Option<String>)> = args.arg_fields[1..]
                .iter()
                .map(|f| (f.data_type().clone(), None))
                .collect();
            check_feature_types(self.scoring.name(), None, model.as_ref(), &given)?;
            let scores = model.score(self.scoring, &columns[1..])?;
            let scores = scores.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            for (i, o) in out.iter_mut().enumerate() {
                if values.is_valid(i) && values.value(i) == text {
                    *o = scores.is_valid(i).then(|| scores.value(i));
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(out))))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(doc(self.scoring))
    }
}

/// A feature argument as an error shows it: a literal's value, a column's name.
fn shown(argument: &Expr) -> Option<String> {
    match argument {
        Expr::Literal(v, _) => Some(match v.try_as_str() {
            Some(Some(text)) => format!("'{text}'"),
            _ => v.to_string(),
        }),
        Expr::Column(c) => Some(format!("(column {})", c.name)),
        _ => None,
    }
}

/// The errors a call can have whatever its model's source: a model the function does not
/// score, or the wrong number of features.
fn check_call(scoring: Scoring, name: Option<&str>, model: &dyn Model, given: usize) -> Result<()> {
    let f = scoring.name();
    check_scoring(scoring, f, name, model)?;
    let name = name.unwrap_or("(value)");
    let features = model.feature_names();
    if given != features.len() {
        return invalid_argument_err!(
            "{f}('{name}', ...) got {given} feature argument(s); model {name} expects {}: {}",
            features.len(),
            features.join(", ")
        );
    }
    Ok(())
}

fn doc(scoring: Scoring) -> &'static Documentation {
    match scoring {
        Scoring::Predict | Scoring::ForecastScale => &PREDICT_DOC,
        Scoring::Churn => &CHURN_DOC,
        Scoring::Segment | Scoring::Distance => &SEGMENT_DOC,
    }
}

/// The scoring function bound to one version of one model, for `arity` feature arguments.
pub fn bound_predict(model: ResolvedModel, arity: usize, scoring: Scoring) -> ScalarUDF {
    ScalarUDF::new_from_impl(BoundPredict::new(model, arity, scoring))
}

/// `predict` or `predict_churn` bound to one version of one model.
#[derive(Debug)]
pub(crate) struct BoundPredict {
    signature: Signature,
    pub(crate) model: ResolvedModel,
    pub(crate) scoring: Scoring,
    arity: usize,
}

impl BoundPredict {
    fn new(model: ResolvedModel, arity: usize, scoring: Scoring) -> Self {
        Self {
            signature: Signature::any(arity, Volatility::Immutable),
            model,
            scoring,
            arity,
        }
    }

    /// How many feature arguments it takes.
    pub(crate) fn arity(&self) -> usize {
        self.arity
    }
}

// A model version never changes, so name and version identify the function.
impl PartialEq for BoundPredict {
    fn eq(&self, other: &Self) -> bool {
        self.scoring == other.scoring
            && self.model.name == other.model.name
            && self.model.version == other.model.version
    }
}

impl Eq for BoundPredict {}

impl Hash for BoundPredict {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.scoring.hash(state);
        self.model.name.hash(state);
        self.model.version.hash(state);
    }
}

impl ScalarUDFImpl for BoundPredict {
    fn name(&self) -> &str {
        self.scoring.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.scoring.return_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let columns = argument_arrays(&args)?;
        Ok(ColumnarValue::Array(
            self.model.model.score(self.scoring, &columns)?,
        ))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(doc(self.scoring))
    }
}
