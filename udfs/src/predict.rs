//! `PREDICT('model', f1, ..., fn)`: scores rows with a stored model, features by position.
//!
//! The model name must be a literal. While the query is planned the call is rewritten into
//! one bound to the loaded model, so a model is read once per query, never per batch.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};

use crate::model::{Model, ModelResolver, ResolvedModel};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection {
            include: true,
            label: "cohort models",
            description: None,
        },
        "Scores each row with a stored model. For a linear_reg model it returns the predicted \
         label. Features are matched by position, in the order of the non-label columns of \
         the model's training query; NULL features score as their training mean and unseen \
         categories as the reference level.",
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

/// The unbound `predict`: resolves its model while the query is planned.
#[derive(Debug)]
pub struct Predict {
    signature: Signature,
    resolver: Arc<dyn ModelResolver>,
}

impl Predict {
    pub fn new(resolver: Arc<dyn ModelResolver>) -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
            resolver,
        }
    }
}

// One `predict` per session: all instances are interchangeable.
impl PartialEq for Predict {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Predict {}

impl Hash for Predict {
    fn hash<H: Hasher>(&self, state: &mut H) {
        "predict".hash(state);
    }
}

impl ScalarUDFImpl for Predict {
    fn name(&self) -> &str {
        "predict"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let name = match args.first() {
            Some(Expr::Literal(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)),
                _,
            )) => s.clone(),
            _ => {
                return plan_err!(
                    "predict needs the model name as a string literal first, e.g. \
                     predict('churn', tenure, plan)"
                );
            }
        };
        let resolved = self.resolver.resolve(&name)?;
        let features = resolved.model.feature_names();
        if args.len() - 1 != features.len() {
            return plan_err!(
                "predict('{name}', ...) got {} feature argument(s); model {name} expects {}: {}",
                args.len() - 1,
                features.len(),
                features.join(", ")
            );
        }
        let arity = features.len();
        let bound = ScalarUDF::new_from_impl(BoundPredict::new(resolved, arity));
        Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(bound), args[1..].to_vec()),
        )))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!("predict ran without its model bound; the query optimizer must run first")
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// `predict` bound to one version of one model.
#[derive(Debug)]
struct BoundPredict {
    signature: Signature,
    model: ResolvedModel,
}

impl BoundPredict {
    fn new(model: ResolvedModel, arity: usize) -> Self {
        Self {
            signature: Signature::any(arity, Volatility::Immutable),
            model,
        }
    }
}

// A model version never changes, so name and version identify the function.
impl PartialEq for BoundPredict {
    fn eq(&self, other: &Self) -> bool {
        self.model.name == other.model.name && self.model.version == other.model.version
    }
}

impl Eq for BoundPredict {}

impl Hash for BoundPredict {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.model.name.hash(state);
        self.model.version.hash(state);
    }
}

impl ScalarUDFImpl for BoundPredict {
    fn name(&self) -> &str {
        "predict"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let columns = args
            .args
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<Vec<_>>>()?;
        match self.model.model.as_ref() {
            Model::LinearReg(m) => Ok(ColumnarValue::Array(Arc::new(m.predict(&columns)?))),
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
