//! `EXPLAIN_PREDICT('model', table_or_subquery[, top_k])` in FROM: every input row with its
//! prediction and the features that made it, each with its signed contribution on the
//! model's raw scale (log-odds for a classifier); all of a row's contributions and the base
//! value add up to its raw score. Any model with an [`Explainer`](crate::model::Explainer)
//! takes it: trees (TreeSHAP), linear and logistic regression (weight times distance from
//! the training mean) and k-means (what keeps a row nearer its centre than the next).

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, Float64Array, ListArray, StringArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Column, Result, plan_err};
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::RelationPlannerContext;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, FunctionArg, FunctionArgExpr, Value};

use super::TableForm;
use super::args::{argument_arrays, model_and_input_usage, model_and_relation, named_argument};
use super::plan::{ScoredInput, appended};
use crate::model::{ModelResolver, ResolvedModel, Scoring, wrong_type};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Explains each row's prediction, matching features by column name: every input \
         column is kept and prediction (as predict gives it), raw_score (log-odds for a \
         classifier, the prediction for a regressor), base_value (the raw score when nothing \
         is known of a row) and contributions are appended. contributions lists the features \
         by the size of their signed contribution to raw_score, largest first, as \
         {feature, contribution}; all of them (top_k left out) add up with base_value to \
         raw_score. Tree models are explained exactly by TreeSHAP. Linear and logistic \
         models list design columns (col=value for a category), each contributing weight x \
         (value - training mean) on the link scale; base_value is the score of the training \
         mean. For kmeans, prediction is the segment and each column contributes (x - b)^2 - \
         (x - a)^2 in the clustering space, a the row's centre and b the next nearest: \
         positive pulls the row into its segment; raw_score is the margin |x-b|^2 - |x-a|^2 \
         and base_value 0.",
        "SELECT * FROM explain_predict(model_name, table_or_subquery[, top_k])",
    )
    .with_argument(
        "model_name",
        "Name of a linear_reg, logistic_reg, kmeans, boosted_tree_classifier or \
         boosted_tree_regressor model, as a string literal.",
    )
    .with_argument(
        "table_or_subquery",
        "A table name or a (SELECT ...) holding the model's features, in any order.",
    )
    .with_argument(
        "top_k",
        "How many features to list per row, largest contribution first (an integer, also \
         top_k => 3); every feature when left out.",
    )
    .with_sql_example(
        "```sql\nSELECT customer_id, prediction, contributions FROM explain_predict('churn', \
         (SELECT * FROM customers LIMIT 5), top_k => 3);\n```",
    )
    .build()
});

pub(super) static FORM: TableForm = TableForm {
    name: "explain_predict",
    doc: Some(&DOC),
    plan,
};

/// The columns the form appends, after the input's.
const OUTPUTS: [&str; 4] = ["prediction", "raw_score", "base_value", "contributions"];

fn plan(
    args: &[FunctionArg],
    context: &mut dyn RelationPlannerContext,
    models: &dyn ModelResolver,
) -> Result<LogicalPlan> {
    let (model, input, top_k) = match args {
        [m, i] => (m, i, None),
        [m, i, k] => (m, i, Some(top_k(k)?)),
        _ => return model_and_input_usage(FORM.name),
    };
    let (name, query) = model_and_relation(FORM.name, model, input)?;
    let scored = ScoredInput::new(FORM.name, name, query, context, models, None)?;
    let model = scored.resolved.model.as_ref();
    if model.explainer().is_none() {
        return Err(wrong_type(
            FORM.name,
            "linear_reg, logistic_reg, kmeans, boosted_tree_classifier or \
             boosted_tree_regressor models",
            Some(&scored.name),
            model,
        ));
    }
    let udf = ExplainRow::new(scored.resolved.clone(), scored.features.len(), top_k)?;
    let call = Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(udf)),
        scored.features.clone(),
    ));
    let input_columns = scored.input.schema().columns();
    let plan = appended(scored.input, [call.alias("__explained")])?;
    let mut columns: Vec<Expr> = input_columns.into_iter().map(Expr::Column).collect();
    columns.extend(
        OUTPUTS
            .iter()
            .map(|f| get_field(Expr::Column(Column::from_name("__explained")), *f).alias(*f)),
    );
    LogicalPlanBuilder::from(plan).project(columns)?.build()
}

/// The `top_k` argument: a positive integer, by position or as `top_k => k`.
fn top_k(arg: &FunctionArg) -> Result<usize> {
    let value = match (named_argument(arg), arg) {
        (Some((name, value)), _) if name == "top_k" => value,
        (Some((name, _)), _) => {
            return plan_err!("explain_predict has no argument {name}; its third is top_k");
        }
        (None, FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) => e.clone(),
        _ => return plan_err!("explain_predict's third argument is top_k, e.g. top_k => 3"),
    };
    match value {
        SqlExpr::Value(v) => match &v.value {
            Value::Number(n, _) => match n.parse::<usize>() {
                Ok(k) if k >= 1 => Ok(k),
                _ => plan_err!("explain_predict's top_k must be an integer of at least 1, got {n}"),
            },
            other => plan_err!("explain_predict's top_k must be an integer, got {other}"),
        },
        other => plan_err!("explain_predict's top_k must be an integer literal, got {other}"),
    }
}

/// A row's explanation, bound to one version of one model.
#[derive(Debug)]
pub(crate) struct ExplainRow {
    signature: Signature,
    pub(crate) model: ResolvedModel,
    pub(crate) top_k: Option<usize>,
    pub(crate) arity: usize,
    /// The model's [`Explainer::prediction`](crate::model::Explainer::prediction).
    prediction: Scoring,
}

impl ExplainRow {
    /// The explanation of `model`'s rows of `arity` features, `top_k` per row (all when
    /// `None`); an error for a model without an explainer.
    pub(crate) fn new(model: ResolvedModel, arity: usize, top_k: Option<usize>) -> Result<Self> {
        let Some(prediction) = model.model.explainer().map(|e| e.prediction()) else {
            return plan_err!("model {} explains no rows", model.name);
        };
        Ok(Self {
            signature: Signature::any(arity, Volatility::Immutable),
            model,
            top_k,
            arity,
            prediction,
        })
    }
}

// A model version never changes, so name, version and k identify the function.
impl PartialEq for ExplainRow {
    fn eq(&self, other: &Self) -> bool {
        self.model.name == other.model.name
            && self.model.version == other.model.version
            && self.top_k == other.top_k
    }
}

impl Eq for ExplainRow {}

impl Hash for ExplainRow {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.model.name.hash(state);
        self.model.version.hash(state);
        self.top_k.hash(state);
    }
}

/// `{feature, contribution}`.
fn contribution_fields() -> Fields {
    Fields::from(vec![
        Field::new("feature", DataType::Utf8, false),
        Field::new("contribution", DataType::Float64, false),
    ])
}

fn output_fields(prediction: Scoring) -> Fields {
    let item = Field::new("item", DataType::Struct(contribution_fields()), false);
    Fields::from(vec![
        Field::new(OUTPUTS[0], prediction.return_type(), true),
        Field::new(OUTPUTS[1], DataType::Float64, false),
        Field::new(OUTPUTS[2], DataType::Float64, false),
        Field::new(OUTPUTS[3], DataType::List(Arc::new(item)), false),
    ])
}

impl ScalarUDFImpl for ExplainRow {
    fn name(&self) -> &str {
        FORM.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(output_fields(self.prediction)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let columns = argument_arrays(&args)?;
        let model = self.model.model.as_ref();
        let Some(explainer) = model.explainer() else {
            return plan_err!("model {} explains no rows", self.model.name);
        };
        let explained = explainer.contributions(&columns)?;
        let prediction = model.score(self.prediction, &columns)?;
        let names = explainer.names();
        // Per row, the features by |contribution|, largest first (ties in training order).
        let mut offsets = vec![0usize];
        let (mut features, mut values) = (Vec::new(), Vec::new());
        for row in &explained.rows {
            let mut order: Vec<usize> = (0..row.len()).collect();
            order.sort_by(|&a, &b| row[b].abs().total_cmp(&row[a].abs()).then(a.cmp(&b)));
            order.truncate(self.top_k.unwrap_or(row.len()));
            for j in order {
                features.push(names.get(j).map_or("", String::as_str));
                values.push(row[j]);
            }
            offsets.push(features.len());
        }
        let items = StructArray::try_new(
            contribution_fields(),
            vec![
                Arc::new(StringArray::from(features)) as ArrayRef,
                Arc::new(Float64Array::from(values)),
            ],
            None,
        )?;
        let list = ListArray::try_new(
            Arc::new(Field::new(
                "item",
                DataType::Struct(contribution_fields()),
                false,
            )),
            OffsetBuffer::from_lengths(offsets.windows(2).map(|w| w[1] - w[0])),
            Arc::new(items),
            None,
        )?;
        let n = explained.raw.len();
        let out = StructArray::try_new(
            output_fields(self.prediction),
            vec![
                prediction,
                Arc::new(Float64Array::from(explained.raw)),
                Arc::new(Float64Array::from(vec![explained.base; n])),
                Arc::new(list),
            ],
            None,
        )?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
