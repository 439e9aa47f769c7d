//! Trained models as the SQL functions see them, and how functions find them by name.

pub mod assessment;
pub mod boosted_trees;
pub mod calendar;
pub mod classes;
pub mod coefficients;
pub mod customer_value;
pub mod encoding;
pub mod forecast;
pub mod kmeans;
pub mod linear;
pub mod logistic;
pub mod matrix_factorization;
pub mod options;
pub mod pass;
pub mod training;

use std::any::Any;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::MemoryPool;
use datafusion::logical_expr::{Expr, LogicalPlan};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, invalid_argument_err, wrong_model_type};
use training::Source;

pub use crate::kernels::linear::Dropped;
pub use assessment::{Assessment, Holdout, MetricRow, MetricValue, Spread, Trial};
pub use boosted_trees::{BoostedTreeClassifier, BoostedTreeRegressor};
pub use coefficients::{Coefficients, Explained};
pub use customer_value::{CustomerValueModel, CustomerValueSettings};
pub use encoding::FeatureEncoding;
pub use forecast::{ForecastModel, ForecastSettings};
pub use kmeans::{Clusters, KMeansModel, KMeansSettings};
pub use linear::LinearModel;
pub use logistic::{LogisticModel, LogisticSettings};
pub use matrix_factorization::{MatrixFactorizationModel, MatrixFactorizationSettings};
pub use options::{OptionValue, Options};

/// Serde for float vectors that hold NaN (JSON has no NaN): NaN is written as null.
pub(crate) mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| x.is_finite().then_some(*x)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v: Vec<Option<f64>> = Deserialize::deserialize(d)?;
        Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }
}

/// Serde for a vector as a plain JSON array of its values, as the store has always written
/// it (ndarray's own form is an object with a shape).
pub(crate) mod flat_vector {
    use ndarray::Array1;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Array1<f64>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Array1<f64>, D::Error> {
        Vec::<f64>::deserialize(d).map(Array1::from)
    }
}

/// Serde for a square matrix as one plain JSON array of its values, row by row, as the
/// store has always written it; the side is the square root of the length. NaN (an
/// unknown covariance) is written as null.
pub(crate) mod flat_square {
    use ndarray::Array2;
    use serde::de::Error;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &Array2<f64>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter().map(|x| x.is_finite().then_some(*x)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Array2<f64>, D::Error> {
        let values = super::nan_as_null::deserialize(d)?;
        let side = values.len().isqrt();
        Array2::from_shape_vec((side, side), values)
            .map_err(|_| D::Error::custom("a square matrix's values, row by row"))
    }
}

/// Serde for an optional number that may be NaN (unknown): `None` is null, NaN the string
/// "NaN".
pub(crate) mod optional_nan {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(f64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        v.map(|x| {
            if x.is_finite() {
                Value::Number(x)
            } else {
                Value::Text("NaN".to_string())
            }
        })
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Option::<Value>::deserialize(d)?.map(|v| match v {
            Value::Number(x) => x,
            Value::Text(_) => f64::NAN,
        }))
    }
}

/// A trained model of any type: what the SQL functions, the engine and the store need of
/// it. Each type lives in one module of its own that implements this and [`ModelKind`],
/// and is listed once in [`MODEL_TYPES`].
pub trait Model: Stored + Debug + Send + Sync {
    /// The label column of a supervised model.
    fn label(&self) -> Option<&str> {
        None
    }

    /// The input encodings, in training order; empty for a model whose inputs are not
    /// encoded features.
    fn features(&self) -> &[FeatureEncoding] {
        &[]
    }

    /// The input columns, in training order.
    fn feature_names(&self) -> Vec<&str> {
        self.features().iter().map(|f| f.name()).collect()
    }

    /// The large arrays the store keeps beside the description, by name.
    fn arrays(&self) -> Result<Vec<(&'static str, Vec<RecordBatch>)>> {
        Ok(vec![])
    }

    /// The weights in the original units of each feature, intercept first; `None` for a
    /// model without weights.
    fn explain(&self) -> Option<Vec<Explained>> {
        None
    }

    /// What DESCRIBE MODEL says of how each feature is read, in training order.
    fn feature_descriptions(&self) -> Vec<String> {
        self.features().iter().map(|f| f.describe()).collect()
    }

    /// Per feature, how much its splits gained and how many there are; `None` for a model
    /// without splits.
    fn importance(&self) -> Option<Vec<Importance>> {
        None
    }

    /// What explains this model's rows feature by feature, for EXPLAIN_PREDICT; `None` for
    /// a model without it.
    fn explainer(&self) -> Option<&dyn Explainer> {
        None
    }

    /// The fitted parameters with their standard errors, for a model whose parameters are
    /// not weights of features; `None` for other models.
    fn estimates(&self) -> Option<Vec<Parameter>> {
        None
    }

    /// The functions that take this model, called on the model argument `model` (`'m'`):
    /// what a function that does not take it suggests instead.
    fn uses(&self, model: &str) -> String;

    /// The scores of `scoring` for the feature columns, in training order; only called
    /// when the model [`Stored::takes`] it.
    fn score(&self, scoring: Scoring, columns: &[ArrayRef]) -> Result<ArrayRef>;

    /// PREDICT in FROM: `input` with this model's predictions appended.
    fn predict_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan>;

    /// EVALUATE in FROM: one row of this model's metrics over `input`.
    fn evaluate_plan(&self, input: LogicalPlan, scored: &Scored) -> Result<LogicalPlan>;

    /// For a binary classifier: 1.0 where `label` holds the positive class, 0.0 where it
    /// holds the other and NULL where it is NULL; `None` for other models.
    fn is_positive(&self, label: Expr) -> Option<Result<Expr>> {
        let _ = label;
        None
    }
}

/// One row of EXPLAIN_MODEL for a tree model: a feature's splits.
#[derive(Debug, Clone, PartialEq)]
pub struct Importance {
    pub feature: String,
    /// The loss reduction of all its splits.
    pub gain: f64,
    pub splits: u64,
}

/// Explains each row of a model's features feature by feature.
pub trait Explainer {
    /// What the contributions are named, in their order: the features, or for a model over
    /// one-hot design columns those columns (`column=level`).
    fn names(&self) -> Vec<String>;

    /// The scoring EXPLAIN_PREDICT shows as a row's prediction.
    fn prediction(&self) -> Scoring {
        Scoring::Predict
    }

    /// The contributions for feature columns given in training order.
    fn contributions(&self, columns: &[ArrayRef]) -> Result<Contributions>;
}

/// Rows explained feature by feature on the model's raw (link) scale: for every row,
/// `base + Σ rows[r][j] = raw[r]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Contributions {
    /// The raw score when nothing is known of a row.
    pub base: f64,
    pub raw: Vec<f64>,
    /// Per row, one contribution per [`Explainer::names`].
    pub rows: Vec<Vec<f64>>,
}

/// A fitted parameter of a model that has no feature weights, as EXPLAIN_MODEL shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Parameter {
    pub name: String,
    pub value: f64,
    /// `None` where the observed information is not positive definite there.
    pub std_err: Option<f64>,
}

/// A model applied to the rows of a table form's input, for the plans of
/// [`Model::predict_plan`] and [`Model::evaluate_plan`].
pub struct Scored<'a> {
    /// The model's name, for messages.
    pub name: &'a str,
    /// The model as resolved: its name and version identify it in a bound function.
    pub resolved: &'a ResolvedModel,
    /// The input's feature columns, in training order.
    pub features: Vec<Expr>,
    /// A scoring function called on the features.
    pub call: &'a dyn Fn(Scoring) -> Expr,
    /// The session's memory pool, for what the plan holds (EVALUATE's rows).
    pub pool: Arc<dyn MemoryPool>,
}

/// What every model type has without writing it: its name, its parameters as stored, and
/// its concrete type for the functions that take one type only.
pub trait Stored {
    /// The model type as CREATE MODEL names it.
    fn type_name(&self) -> &'static str;
    /// The parameters the store writes in the model's description (the large arrays apart).
    fn parameters(&self) -> Result<serde_json::Value>;
    fn as_any(&self) -> &dyn Any;
    /// Whether `scoring` applies to this model.
    fn takes(&self, scoring: Scoring) -> bool;
}

impl<M: ModelKind> Stored for M {
    fn type_name(&self) -> &'static str {
        M::NAME
    }

    fn parameters(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self).map_err(|e| DataFusionError::External(Box::new(e)))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn takes(&self, scoring: Scoring) -> bool {
        M::SCORES.contains(&scoring)
    }
}

/// A model type's side that needs no model: its name and options in CREATE MODEL, and
/// how it trains and is read back.
pub trait ModelKind: Serialize + DeserializeOwned + Send + Sync + Sized + 'static {
    /// `model_type` in CREATE MODEL.
    const NAME: &'static str;
    /// The options it takes, `model_type` first.
    const OPTIONS: &'static [&'static str];
    /// The scorings that apply to it.
    const SCORES: &'static [Scoring];
    /// The options, checked.
    type Settings: Send + Sync;
    /// Whether every pass of its fit is a [`pass::Pass`], so that on a cluster it trains
    /// where the rows are; otherwise the rows come to the client.
    const DISTRIBUTED: bool = false;

    /// Checks the options into settings; the options' names were checked against
    /// [`ModelKind::OPTIONS`] already.
    fn settings(options: &Options) -> std::result::Result<Self::Settings, Error>;

    /// Trains on the rows of `source`.
    fn train(source: &dyn Source, settings: &Self::Settings) -> Result<(Self, Report)>;

    /// Whether [`ModelKind::train_folds`] can fit cross-validation's folds in one read.
    const FOLDS_IN_ONE_READ: bool = false;

    /// Cross-validation's `folds` fits in one read of `source`, whose last column is each
    /// row's fold (0 to `folds` - 1): fit f on the rows of the other folds, as
    /// [`ModelKind::train`] fits them. `None` where the math or these rows do not allow it
    /// (the caller then fits each fold on its own rows).
    fn train_folds(
        source: &dyn Source,
        settings: &Self::Settings,
        folds: usize,
    ) -> Option<Result<Vec<(Self, Report)>>> {
        let _ = (source, settings, folds);
        None
    }

    /// How rows are held out to evaluate it: within each class for a binary classifier,
    /// at random for the others.
    fn holdout(options: &Options) -> std::result::Result<Holdout, Error> {
        if Self::SCORES.contains(&Scoring::Churn) {
            Ok(Holdout::Stratified {
                label: options.label()?,
            })
        } else {
            Ok(Holdout::Random)
        }
    }

    /// The model with its large arrays read back through `read` (by name).
    fn with_arrays(self, read: &dyn Fn(&str) -> Result<Vec<RecordBatch>>) -> Result<Self> {
        let _ = read;
        Ok(self)
    }
}

/// A model type as the engine and the store see it, whatever its Rust type.
pub trait ModelType: Send + Sync {
    fn name(&self) -> &'static str;

    /// The scorings that apply to its models.
    fn scores(&self) -> &'static [Scoring];

    /// [`ModelKind::DISTRIBUTED`].
    fn distributed(&self) -> bool;

    /// The options it takes, `model_type` first.
    fn options(&self) -> &'static [&'static str];

    /// Checks CREATE MODEL's options into what trains the model.
    fn trainer(&self, options: &Options) -> std::result::Result<Box<dyn Trainer>, Error>;

    /// How its rows are held out for evaluation, given CREATE MODEL's options.
    fn holdout(&self, options: &Options) -> std::result::Result<Holdout, Error>;

    /// A model of this type from its stored parameters, its arrays read through `read`.
    fn load(
        &self,
        parameters: serde_json::Value,
        read: &dyn Fn(&str) -> Result<Vec<RecordBatch>>,
    ) -> Result<Arc<dyn Model>>;
}

/// Checked settings of one model type, ready to train.
pub trait Trainer: Send + Sync {
    fn train(&self, source: &dyn Source) -> Result<Trained>;

    /// See [`ModelKind::FOLDS_IN_ONE_READ`].
    fn folds_in_one_read(&self) -> bool;

    /// See [`ModelKind::train_folds`].
    fn train_folds(&self, source: &dyn Source, folds: usize) -> Option<Result<Vec<Trained>>>;
}

/// A model trained, with the report of its training.
pub type Trained = (Arc<dyn Model>, Report);

/// [`ModelType`] for a [`ModelKind`].
struct Kind<M>(PhantomData<fn() -> M>);

impl<M: ModelKind + Model> ModelType for Kind<M> {
    fn name(&self) -> &'static str {
        M::NAME
    }

    fn scores(&self) -> &'static [Scoring] {
        M::SCORES
    }

    fn distributed(&self) -> bool {
        M::DISTRIBUTED
    }

    fn options(&self) -> &'static [&'static str] {
        M::OPTIONS
    }

    fn trainer(&self, options: &Options) -> std::result::Result<Box<dyn Trainer>, Error> {
        options.check_known(M::OPTIONS)?;
        Ok(Box::new(Settings::<M>(M::settings(options)?)))
    }

    fn holdout(&self, options: &Options) -> std::result::Result<Holdout, Error> {
        M::holdout(options)
    }

    fn load(
        &self,
        parameters: serde_json::Value,
        read: &dyn Fn(&str) -> Result<Vec<RecordBatch>>,
    ) -> Result<Arc<dyn Model>> {
        let model: M = serde_json::from_value(parameters).map_err(|e| {
            Error::Store(format!("the stored {} model does not read: {e}", M::NAME))
        })?;
        Ok(Arc::new(model.with_arrays(read)?))
    }
}

struct Settings<M: ModelKind>(M::Settings);

impl<M: ModelKind + Model> Trainer for Settings<M> {
    fn train(&self, source: &dyn Source) -> Result<Trained> {
        let (model, report) = M::train(source, &self.0)?;
        Ok((Arc::new(model), report))
    }

    fn folds_in_one_read(&self) -> bool {
        M::FOLDS_IN_ONE_READ
    }

    fn train_folds(&self, source: &dyn Source, folds: usize) -> Option<Result<Vec<Trained>>> {
        let fits = M::train_folds(source, &self.0, folds)?;
        Some(fits.map(|fits| {
            fits.into_iter()
                .map(|(model, report)| (Arc::new(model) as Arc<dyn Model>, report))
                .collect()
        }))
    }
}

/// Every model type CREATE MODEL knows; a new type is one module and one line here.
pub static MODEL_TYPES: [&dyn ModelType; 8] = [
    &Kind::<LinearModel>(PhantomData),
    &Kind::<LogisticModel>(PhantomData),
    &Kind::<KMeansModel>(PhantomData),
    &Kind::<MatrixFactorizationModel>(PhantomData),
    &Kind::<ForecastModel>(PhantomData),
    &Kind::<BoostedTreeClassifier>(PhantomData),
    &Kind::<BoostedTreeRegressor>(PhantomData),
    &Kind::<CustomerValueModel>(PhantomData),
];

/// The model type named `name` (any case).
pub fn model_type(name: &str) -> Option<&'static dyn ModelType> {
    MODEL_TYPES
        .iter()
        .copied()
        .find(|t| t.name().eq_ignore_ascii_case(name))
}

/// The model types' names, quoted, for messages.
pub fn type_names() -> String {
    MODEL_TYPES
        .iter()
        .map(|t| format!("'{}'", t.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tag that names a model's type in its JSON form.
const TYPE_TAG: &str = "model_type";

/// A model as one JSON object: its parameters and its type (as [`TYPE_TAG`]). Large arrays
/// are not included: TRAIN_REGRESSION's models have none, and the store writes them apart.
pub fn to_json(model: &dyn Model) -> Result<serde_json::Value> {
    let mut value = model.parameters()?;
    if let serde_json::Value::Object(fields) = &mut value {
        fields.insert(TYPE_TAG.to_string(), model.type_name().into());
    }
    Ok(value)
}

/// The model [`to_json`] wrote, its arrays read through `read`.
pub fn from_json(
    mut value: serde_json::Value,
    read: &dyn Fn(&str) -> Result<Vec<RecordBatch>>,
) -> Result<Arc<dyn Model>> {
    let tag = value
        .as_object_mut()
        .and_then(|fields| fields.remove(TYPE_TAG));
    let Some(kind) = tag.as_ref().and_then(|t| t.as_str()).and_then(model_type) else {
        return Err(Error::Store(format!(
            "the model's type {} is not one this build knows ({})",
            tag.map_or_else(|| "(none)".to_string(), |t| t.to_string()),
            type_names()
        ))
        .into());
    };
    kind.load(value, read)
}

/// Which scoring function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scoring {
    /// `predict`: regression and classification models.
    Predict,
    /// `predict_churn`: binary classifiers only.
    Churn,
    /// `segment`: kmeans models.
    Segment,
    /// The distance to the segment's centre, for the table form of `segment`.
    Distance,
    /// The MASE scale of a forecast row's series, for `evaluate`.
    ForecastScale,
}

impl Scoring {
    pub fn name(self) -> &'static str {
        match self {
            Scoring::Predict => "predict",
            Scoring::Churn => "predict_churn",
            Scoring::Segment => "segment",
            Scoring::Distance => "segment_distance",
            Scoring::ForecastScale => "forecast_scale",
        }
    }

    pub fn return_type(self) -> DataType {
        match self {
            Scoring::Segment => DataType::Int64,
            Scoring::Predict | Scoring::Churn | Scoring::Distance | Scoring::ForecastScale => {
                DataType::Float64
            }
        }
    }

    /// The model types this scoring applies to, for messages: `linear_reg or forecast
    /// models`.
    pub fn applies_to(self) -> String {
        let names: Vec<&str> = MODEL_TYPES
            .iter()
            .filter(|t| t.scores().contains(&self))
            .map(|t| t.name())
            .collect();
        match names.split_last() {
            Some((last, [])) => format!("{last} models"),
            Some((last, rest)) => format!("{} or {last} models", rest.join(", ")),
            None => "no models".to_string(),
        }
    }
}

/// What training saw and concluded, for CREATE MODEL's report and the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub rows_used: u64,
    pub rows_skipped: u64,
    pub skipped_because: String,
    pub warnings: Vec<String>,
    /// Headline metric first.
    pub metrics: Vec<(String, f64)>,
}

/// The report's reason for skipped rows: `nulls` with a NULL in one of `columns`,
/// `not_finite` with a NaN or infinite value.
pub fn skipped_because(nulls: u64, columns: &str, not_finite: u64) -> String {
    match (nulls, not_finite) {
        (0, 0) => String::new(),
        (n, 0) => format!("{n} with a NULL {columns}"),
        (0, f) => format!("{f} with a NaN or infinite value"),
        (n, f) => format!("{n} with a NULL {columns}; {f} with a NaN or infinite value"),
    }
}

/// The warnings for design columns a fit left out.
pub fn dropped_warnings(design: &[String], dropped: &[(usize, Dropped)]) -> Vec<String> {
    dropped
        .iter()
        .map(|(j, why)| match why {
            Dropped::Constant => {
                format!(
                    "{} is constant in the training rows and was left out",
                    design[*j]
                )
            }
            Dropped::Collinear => format!(
                "{} is a linear combination of the features before it and was left out",
                design[*j]
            ),
        })
        .collect()
}

/// The warning naming the design columns an L1 penalty set to zero (those left out apart),
/// with the note that such a fit has no standard errors; none without an L1 penalty.
pub fn zeroed_warning(
    design: &[String],
    coef: &ndarray::Array1<f64>,
    dropped: &[(usize, Dropped)],
    l1: f64,
) -> Option<String> {
    if l1 <= 0.0 {
        return None;
    }
    let zeroed: Vec<&str> = coef
        .iter()
        .enumerate()
        .filter(|&(j, &c)| c == 0.0 && !dropped.iter().any(|(d, _)| *d == j))
        .map(|(j, _)| design[j].as_str())
        .collect();
    let note = "an L1 penalty leaves no standard errors";
    Some(if zeroed.is_empty() {
        format!("l1_reg = {l1} set no feature to zero; {note}")
    } else {
        format!("l1_reg = {l1} set to zero: {}; {note}", zeroed.join(", "))
    })
}

/// A model found by name, with the version that identifies it.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub name: String,
    pub version: u64,
    pub model: Arc<dyn Model>,
}

impl ResolvedModel {
    /// The model as type `M`, for a function (`f`) that takes that type only.
    pub fn downcast<M: ModelKind>(&self, f: &str) -> Result<&M> {
        self.model.as_any().downcast_ref::<M>().ok_or_else(|| {
            wrong_type(
                f,
                &format!("{} models", M::NAME),
                Some(&self.name),
                self.model.as_ref(),
            )
        })
    }

    /// Checks that the model [`Stored::takes`] `scoring`, for the function `f`.
    pub fn check_scoring(&self, scoring: Scoring, f: &str) -> Result<()> {
        check_scoring(scoring, f, Some(&self.name), self.model.as_ref())
    }
}

/// Checks that `model` [`Stored::takes`] `scoring`, for the function `f`; `name` is the
/// model's (`None` for a model given as a value).
pub fn check_scoring(
    scoring: Scoring,
    f: &str,
    name: Option<&str>,
    model: &dyn Model,
) -> Result<()> {
    if model.takes(scoring) {
        Ok(())
    } else {
        Err(wrong_type(f, &scoring.applies_to(), name, model))
    }
}

/// Refuses feature arguments of `f` that `model` (named `name`; a value when `None`) cannot
/// read (see [`FeatureEncoding::accepts`]). `args` are the arguments' types in training
/// order, each with how to show it (a literal's value, a column's name) where known.
pub fn check_feature_types(
    f: &str,
    name: Option<&str>,
    model: &dyn Model,
    args: &[(DataType, Option<String>)],
) -> Result<()> {
    for (feature, (t, shown)) in model.features().iter().zip(args) {
        if feature.accepts(t) {
            continue;
        }
        let shown = shown.as_ref().map(|s| format!(" {s}")).unwrap_or_default();
        return invalid_argument_err!(
            "{}: feature '{}' of model '{}' expects {}, got {t}{shown}; cast it or pass the \
             right column",
            f.to_uppercase(),
            feature.name(),
            name.unwrap_or("(value)"),
            feature.expects()
        );
    }
    Ok(())
}

/// The error of the function `f`, which takes `applies_to`, given `model` (named `name`; a
/// value when `None`): it names the functions that take that model.
pub fn wrong_type(
    f: &str,
    applies_to: &str,
    name: Option<&str>,
    model: &dyn Model,
) -> DataFusionError {
    let (shown, argument) = match name {
        Some(name) => (name.to_string(), format!("'{name}'")),
        None => ("(value)".to_string(), "model".to_string()),
    };
    wrong_model_type(format!(
        "{f} takes {applies_to}, but model {shown} is {}; use {}",
        model.type_name(),
        model.uses(&argument)
    ))
}

/// Where functions such as PREDICT look models up by name: cohort's model store, or
/// whatever an application embedding these functions keeps its models in.
pub trait ModelResolver: Debug + Send + Sync {
    /// The current version of `name`; an error that names the model (and near names) if
    /// there is none.
    fn resolve(&self, name: &str) -> Result<ResolvedModel>;

    /// What CREATE MODEL measured of the current version of `name` besides fitting it
    /// (evaluation split, cross-validation, tuning trials); `None` where it measured
    /// nothing or this resolver keeps no such record.
    fn assessment(&self, name: &str) -> Result<Option<Assessment>> {
        let _ = name;
        Ok(None)
    }

    /// One version of `name`, current or not: how a process that was sent a model by
    /// reference loads exactly that model.
    fn resolve_version(&self, name: &str, version: u64) -> Result<ResolvedModel> {
        Err(Error::Store(format!(
            "model {name} version {version} cannot be loaded by version from here"
        ))
        .into())
    }
}
