//! `RECOMMEND('model', user, k)`: the `k` best items for each user under a stored
//! matrix_factorization model, as a list of struct(item, score), best first.
//!
//! As with PREDICT, the model name must be a literal and the call is bound to the loaded
//! model while the query is planned, so the factors are read once per query.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray, StructArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue, plan_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use rayon::prelude::*;

use crate::model::matrix_factorization::Ranking;
use crate::model::{MatrixFactorizationModel, Model, ModelResolver, ResolvedModel};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The k best items for a user under a stored matrix_factorization model, best first, as \
         a list of struct(item, score). Items the user had in training are left out. A user \
         the model has not seen gets the k most popular items, scored by the share of users \
         who had them. NULL for a NULL user.",
        "recommend(model_name, user, k)",
    )
    .with_argument(
        "model_name",
        "Name of a matrix_factorization model, as a string literal.",
    )
    .with_argument(
        "user",
        "The user id, of the type the model was trained on (integer or text).",
    )
    .with_argument("k", "How many items, an integer of at least 1.")
    .with_sql_example(
        "```sql\n\
         CREATE MODEL recs OPTIONS (model_type = 'matrix_factorization', feedback_type = 'implicit') AS\n  \
         SELECT customer_id, product_id, COUNT(*) AS n FROM orders GROUP BY 1, 2;\n\
         SELECT RECOMMEND('recs', 42, 10);\n\
         ```",
    )
    .build()
});

/// The unbound function: finds the model when the query is planned.
#[derive(Debug)]
pub struct Recommend {
    resolver: Arc<dyn ModelResolver>,
    signature: Signature,
}

impl Recommend {
    pub fn new(resolver: Arc<dyn ModelResolver>) -> Self {
        Self {
            resolver,
            signature: Signature::variadic_any(Volatility::Stable),
        }
    }

    /// The model named by the first argument, checked to be a matrix factorization.
    fn model(&self, first: Option<&ScalarValue>) -> Result<ResolvedModel> {
        let name = match first {
            Some(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)),
            ) => s,
            _ => {
                return plan_err!(
                    "recommend needs the name of a matrix_factorization model as a string \
                     literal first, e.g. recommend('recs', customer_id, 10)"
                );
            }
        };
        let resolved = self.resolver.resolve(name)?;
        if !matches!(resolved.model.as_ref(), Model::MatrixFactorization(_)) {
            return plan_err!(
                "recommend needs a matrix_factorization model, but model {name} is {}",
                resolved.model.type_name()
            );
        }
        Ok(resolved)
    }
}

impl PartialEq for Recommend {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.resolver, &other.resolver)
    }
}
impl Eq for Recommend {}
impl Hash for Recommend {
    fn hash<H: Hasher>(&self, state: &mut H) {
        "recommend".hash(state);
    }
}

fn check_arity(given: usize) -> Result<()> {
    if given != 3 {
        return plan_err!(
            "recommend takes 3 arguments (model_name, user, k), got {given}; e.g. \
             recommend('recs', customer_id, 10)"
        );
    }
    Ok(())
}

/// `List(Struct(item, score))` for a model's item ids.
fn list_type(model: &Model) -> DataType {
    let item = match model {
        Model::MatrixFactorization(m) => m.items.data_type(),
        _ => DataType::Int64,
    };
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(struct_fields(item)),
        false,
    )))
}

fn struct_fields(item: DataType) -> Fields {
    Fields::from(vec![
        Field::new("item", item, false),
        Field::new("score", DataType::Float64, false),
    ])
}

impl ScalarUDFImpl for Recommend {
    fn name(&self) -> &str {
        "recommend"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("recommend's type depends on its model: return_field_from_args gives it")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        check_arity(args.arg_fields.len())?;
        let resolved = self.model(args.scalar_arguments[0])?;
        Ok(Arc::new(Field::new(
            "recommend",
            list_type(&resolved.model),
            true,
        )))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        check_arity(args.len())?;
        let first = match &args[0] {
            Expr::Literal(v, _) => Some(v),
            _ => None,
        };
        let bound = BoundRecommend {
            model: self.model(first)?,
            signature: Signature::any(2, Volatility::Immutable),
        };
        Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(
            ScalarFunction::new_udf(
                Arc::new(ScalarUDF::new_from_impl(bound)),
                args[1..].to_vec(),
            ),
        )))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        plan_err!("recommend needs the model name as a string literal")
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// RECOMMEND bound to a loaded model: arguments (user, k).
#[derive(Debug)]
struct BoundRecommend {
    model: ResolvedModel,
    signature: Signature,
}

impl PartialEq for BoundRecommend {
    fn eq(&self, other: &Self) -> bool {
        self.model.name == other.model.name && self.model.version == other.model.version
    }
}
impl Eq for BoundRecommend {}
impl Hash for BoundRecommend {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.model.name.hash(state);
        self.model.version.hash(state);
    }
}

impl ScalarUDFImpl for BoundRecommend {
    fn name(&self) -> &str {
        "recommend"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(list_type(&self.model.model))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Model::MatrixFactorization(m) = self.model.model.as_ref() else {
            return plan_err!("recommend is bound to a model that is not a matrix factorization");
        };
        let rows = args.number_rows;
        let users = args.args[0].to_array(rows)?;
        let k = args.args[1].to_array(rows)?;
        let lists = recommend_rows(m, &self.model.name, &users, &k)?;
        Ok(ColumnarValue::Array(list_array(m, lists)))
    }
}

/// Per row, the recommendations (`None` for a NULL user), best first.
fn recommend_rows(
    m: &MatrixFactorizationModel,
    name: &str,
    users: &ArrayRef,
    k: &ArrayRef,
) -> Result<Vec<Option<Ranking>>> {
    if !k.data_type().is_integer() {
        return plan_err!("recommend's k must be an integer, got {}", k.data_type());
    }
    let positions = m
        .users
        .positions(users, "user")
        .map_err(|e| DataFusionError::Plan(format!("recommend('{name}', ...): {e}")))?;
    let k = cast(k, &DataType::Int64)?;
    let k = k.as_primitive::<Int64Type>();
    if let Some(bad) = k.iter().flatten().find(|&k| k < 1) {
        return plan_err!("recommend's k must be at least 1, got {bad}");
    }
    Ok((0..users.len())
        .into_par_iter()
        .map(|r| {
            if users.is_null(r) || k.is_null(r) {
                return None;
            }
            let k = k.value(r) as usize;
            Some(match positions[r] {
                Some(u) => m.recommend(u as usize, k, false),
                None => m.popular(k),
            })
        })
        .collect())
}

/// The lists as `List(Struct(item, score))`.
fn list_array(m: &MatrixFactorizationModel, lists: Vec<Option<Ranking>>) -> ArrayRef {
    let lengths = lists.iter().map(|l| l.as_ref().map_or(0, Vec::len));
    let offsets = OffsetBuffer::from_lengths(lengths);
    let nulls = NullBuffer::from_iter(lists.iter().map(Option::is_some));
    let flat: Vec<(f64, usize)> = lists.into_iter().flatten().flatten().collect();
    let items = m.items.take(flat.iter().map(|(_, i)| *i));
    let scores: ArrayRef = Arc::new(Float64Array::from_iter_values(flat.iter().map(|(s, _)| *s)));
    let fields = struct_fields(m.items.data_type());
    let values = StructArray::new(fields.clone(), vec![items, scores], None);
    Arc::new(ListArray::new(
        Arc::new(Field::new("item", DataType::Struct(fields), false)),
        offsets,
        Arc::new(values),
        Some(nulls),
    ))
}
