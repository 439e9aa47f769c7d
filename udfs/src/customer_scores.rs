//! `P_ALIVE('model', x, t_x, T)` and `EXPECTED_PURCHASES('model', horizon, x, t_x, T)`:
//! a customer_value model applied to customer summaries computed elsewhere.
//!
//! As PREDICT, the model name must be a literal, and the call is bound to the loaded model
//! while the query is planned.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::error::invalid_argument_err;
use crate::kernels::customer_value::PurchaseModel;
use crate::model::{CustomerValueModel, ModelResolver, ResolvedModel};
use crate::sql::string_literal;

static P_ALIVE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The probability that a customer with this purchase summary is still active, under \
         a customer_value model's purchase model (BG/NBD or Pareto/NBD). The summary is in \
         the model's time_unit, as CUSTOMER_VALUE reports it. NULL where an argument is \
         NULL, negative, or t_x > T.",
        "p_alive(model_name, x, t_x, T)",
    )
    .with_argument(
        "model_name",
        "Name of a customer_value model, as a string literal.",
    )
    .with_argument("x", "Repeat purchase days (purchase days after the first).")
    .with_argument("t_x", "Time from the first purchase to the last.")
    .with_argument(
        "T",
        "Time from the first purchase to the time of the estimate.",
    )
    .with_sql_example("```sql\nSELECT p_alive('value', 2, 30.43, 38.86);\n```")
    .build()
});

static EXPECTED_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The purchases a customer with this purchase summary is expected to make in the next \
         horizon time units, under a customer_value model's purchase model. Times are in the \
         model's time_unit. NULL where an argument is NULL, negative, or t_x > T.",
        "expected_purchases(model_name, horizon, x, t_x, T)",
    )
    .with_argument(
        "model_name",
        "Name of a customer_value model, as a string literal.",
    )
    .with_argument("horizon", "How far ahead, in the model's time units.")
    .with_argument("x", "Repeat purchase days (purchase days after the first).")
    .with_argument("t_x", "Time from the first purchase to the last.")
    .with_argument(
        "T",
        "Time from the first purchase to the time of the estimate.",
    )
    .with_sql_example("```sql\nSELECT expected_purchases('value', 39, 2, 30.43, 38.86);\n```")
    .build()
});

/// Which of the two functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomerScore {
    Alive,
    ExpectedPurchases,
}

impl CustomerScore {
    fn name(self) -> &'static str {
        match self {
            CustomerScore::Alive => "p_alive",
            CustomerScore::ExpectedPurchases => "expected_purchases",
        }
    }

    /// The arguments after the model name.
    fn arguments(self) -> &'static str {
        match self {
            CustomerScore::Alive => "x, t_x, T",
            CustomerScore::ExpectedPurchases => "horizon, x, t_x, T",
        }
    }

    fn arity(self) -> usize {
        match self {
            CustomerScore::Alive => 3,
            CustomerScore::ExpectedPurchases => 4,
        }
    }

    fn doc(self) -> &'static Documentation {
        match self {
            CustomerScore::Alive => &P_ALIVE_DOC,
            CustomerScore::ExpectedPurchases => &EXPECTED_DOC,
        }
    }
}

/// The unbound function: resolves its model while the query is planned.
#[derive(Debug)]
pub struct CustomerScoreUdf {
    signature: Signature,
    resolver: Arc<dyn ModelResolver>,
    score: CustomerScore,
}

impl CustomerScoreUdf {
    pub fn new(resolver: Arc<dyn ModelResolver>, score: CustomerScore) -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
            resolver,
            score,
        }
    }
}

// One instance per session and function: the resolver does not distinguish them.
impl PartialEq for CustomerScoreUdf {
    fn eq(&self, other: &Self) -> bool {
        self.score == other.score
    }
}

impl Eq for CustomerScoreUdf {}

impl Hash for CustomerScoreUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.score.hash(state);
    }
}

impl ScalarUDFImpl for CustomerScoreUdf {
    fn name(&self) -> &str {
        self.score.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let f = self.score.name();
        let usage = || {
            invalid_argument_err!(
                "{f} takes a customer_value model's name as a string literal and {}, e.g. \
                 {f}('value', {})",
                self.score.arguments(),
                self.score.arguments()
            )
        };
        let Some(name) = args.first().and_then(string_literal) else {
            return usage();
        };
        if args.len() != self.score.arity() + 1 {
            return usage();
        }
        let resolved = self.resolver.resolve(name)?;
        resolved.downcast::<CustomerValueModel>(f)?;
        let bound = ScalarUDF::new_from_impl(Bound {
            signature: Signature::any(self.score.arity(), Volatility::Immutable),
            model: resolved,
            score: self.score,
        });
        Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(bound), args[1..].to_vec()),
        )))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        invalid_argument_err!(
            "{} needs the model name as a string literal first",
            self.score.name()
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(self.score.doc())
    }
}

/// The function bound to one version of one model.
#[derive(Debug)]
struct Bound {
    signature: Signature,
    model: ResolvedModel,
    score: CustomerScore,
}

// A model version never changes, so name and version identify the function.
impl PartialEq for Bound {
    fn eq(&self, other: &Self) -> bool {
        (self.score, &self.model.name, self.model.version)
            == (other.score, &other.model.name, other.model.version)
    }
}

impl Eq for Bound {}

impl Hash for Bound {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.score, &self.model.name, self.model.version).hash(state);
    }
}

impl ScalarUDFImpl for Bound {
    fn name(&self) -> &str {
        self.score.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let f = self.score.name();
        let m = self.model.downcast::<CustomerValueModel>(f)?;
        let purchases = m.purchases();
        let rows = args.number_rows;
        let mut columns = Vec::with_capacity(args.args.len());
        for (a, field) in args.args.iter().zip(&args.arg_fields) {
            if !field.data_type().is_numeric() && !field.data_type().is_null() {
                return invalid_argument_err!(
                    "{f}'s {} must be numbers, got {}",
                    self.score.arguments(),
                    field.data_type()
                );
            }
            columns.push(cast(&a.to_array(rows)?, &DataType::Float64)?);
        }
        let values: Vec<&Float64Array> = columns
            .iter()
            .map(|c| c.as_primitive::<Float64Type>())
            .collect();
        let out: Float64Array = (0..rows)
            .map(|r| {
                let v: Option<Vec<f64>> = values
                    .iter()
                    .map(|c| (c.is_valid(r) && c.value(r) >= 0.0).then(|| c.value(r)))
                    .collect();
                let v = v?;
                let (horizon, summary) = match self.score {
                    CustomerScore::Alive => (0.0, &v[..]),
                    CustomerScore::ExpectedPurchases => (v[0], &v[1..]),
                };
                let (x, t_x, t) = (summary[0], summary[1], summary[2]);
                if t_x > t {
                    return None;
                }
                Some(match self.score {
                    CustomerScore::Alive => purchases.p_alive(x, t_x, t),
                    CustomerScore::ExpectedPurchases => {
                        purchases.expected_purchases(horizon, x, t_x, t)
                    }
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(self.score.doc())
    }
}
