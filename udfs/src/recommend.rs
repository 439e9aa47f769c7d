//! `RECOMMEND('model', user, k)`: the `k` best items for each user under a stored
//! matrix_factorization model, as a list of struct(item, score), best first.
//!
//! As with PREDICT, the model name must be a literal and the call is bound to the loaded
//! model while the query is planned, so the factors are read once per query. The lists of
//! each call are reserved in the session's memory pool while they are made.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray, StructArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, max};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue, plan_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};

use crate::model::matrix_factorization::Ranking;
use crate::model::{MatrixFactorizationModel, Model, ModelResolver, ResolvedModel};
use crate::sql::{Budget, batch_bytes};

/// Bytes one ranked item takes while it is made and in its batch: its place in the
/// ranking, and the user, item, score, rank and source of its row in the table form.
const ENTRY_BYTES: usize = 64;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The k best items for a user under a stored matrix_factorization model, best first, as \
         a list of struct(item, score). Items the user had in training are left out. A user \
         the model has not seen gets the k most popular items, scored by the share of users \
         who had them. NULL for a NULL user. A k past the number of items gives every item \
         (as LIMIT does), so each list holds at most that many. For many users at once, with \
         each item's rank and source, use recommend in FROM, which makes its rows a batch at \
         a time.",
        "recommend(model_name, user, k[, exclude_seen])",
    )
    .with_argument(
        "model_name",
        "Name of a matrix_factorization model, as a string literal.",
    )
    .with_argument(
        "user",
        "The user id, of the type the model was trained on (integer or text).",
    )
    .with_argument(
        "k",
        "How many items, an integer of at least 1; more than the model has gives them all.",
    )
    .with_argument(
        "exclude_seen",
        "true (the default) leaves out the items the user had in training; false keeps them.",
    )
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
        let name = match first.and_then(|v| v.try_as_str().flatten()) {
            Some(s) => s,
            None => {
                return plan_err!(
                    "recommend needs the name of a matrix_factorization model as a string \
                     literal first, e.g. recommend('recs', customer_id, 10)"
                );
            }
        };
        let resolved = self.resolver.resolve(name)?;
        resolved.downcast::<MatrixFactorizationModel>("recommend")?;
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
    if !(3..=4).contains(&given) {
        return plan_err!(
            "recommend takes 3 or 4 arguments (model_name, user, k[, exclude_seen]), got \
             {given}; e.g. recommend('recs', customer_id, 10)"
        );
    }
    Ok(())
}

/// `List(Struct(item, score))` for a model's item ids.
fn list_type(model: &dyn Model) -> DataType {
    let item = model
        .as_any()
        .downcast_ref::<MatrixFactorizationModel>()
        .map_or(DataType::Int64, |m| m.items.data_type());
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
            list_type(resolved.model.as_ref()),
            true,
        )))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        check_arity(args.len())?;
        let first = match &args[0] {
            Expr::Literal(v, _) => Some(v),
            _ => None,
        };
        let keep_seen = match args.get(3) {
            None => false,
            Some(Expr::Literal(ScalarValue::Boolean(Some(exclude)), _)) => !exclude,
            Some(other) => {
                return plan_err!("recommend's exclude_seen must be true or false, got {other}");
            }
        };
        let bound = bound_recommend(self.model(first)?, keep_seen);
        Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(bound), args[1..3].to_vec()),
        )))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        plan_err!("recommend needs the model name as a string literal")
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// RECOMMEND bound to a loaded model, with arguments (user, k): items the user had are kept
/// when `keep_seen`.
pub(crate) fn bound_recommend(model: ResolvedModel, keep_seen: bool) -> ScalarUDF {
    ScalarUDF::new_from_impl(BoundRecommend {
        model,
        keep_seen,
        signature: Signature::any(2, Volatility::Immutable),
    })
}

#[derive(Debug)]
pub(crate) struct BoundRecommend {
    pub(crate) model: ResolvedModel,
    pub(crate) keep_seen: bool,
    signature: Signature,
}

impl PartialEq for BoundRecommend {
    fn eq(&self, other: &Self) -> bool {
        self.model.name == other.model.name
            && self.model.version == other.model.version
            && self.keep_seen == other.keep_seen
    }
}
impl Eq for BoundRecommend {}
impl Hash for BoundRecommend {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.model.name.hash(state);
        self.model.version.hash(state);
        self.keep_seen.hash(state);
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
        Ok(list_type(self.model.model.as_ref()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let m = self
            .model
            .downcast::<MatrixFactorizationModel>("recommend")?;
        let rows = args.number_rows;
        let users = args.args[0].to_array(rows)?;
        let k = args.args[1].to_array(rows)?;
        let most = match cast(&k, &DataType::Int64) {
            Ok(k) => max(k.as_primitive::<Int64Type>()).unwrap_or(0).max(0) as usize,
            Err(_) => 0,
        };
        let budget = Budget::in_settings(&args.config_options, "recommend", "k", most);
        let lists = recommend_rows(m, &self.model.name, &users, &k, self.keep_seen, &budget)?;
        Ok(ColumnarValue::Array(list_array(m, lists)))
    }
}

/// Per row, the recommendations (`None` for a NULL user), best first, and their source:
/// 'model', or 'popular' for a user the model does not know. A `k` past the number of
/// items gives every item. The rankings are first reserved in `budget`.
pub(crate) fn recommend_rows(
    m: &MatrixFactorizationModel,
    name: &str,
    users: &ArrayRef,
    k: &ArrayRef,
    keep_seen: bool,
    budget: &Budget,
) -> Result<Vec<Option<(Ranking, &'static str)>>> {
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
    // The known users' rows are ranked together, to the largest k asked, then cut to
    // each row's own k.
    let wanted = |r: usize| (users.is_valid(r) && k.is_valid(r)).then(|| k.value(r) as usize);
    let known: Vec<usize> = (0..users.len())
        .filter(|&r| wanted(r).is_some() && positions[r].is_some())
        .collect();
    let most = known.iter().filter_map(|&r| wanted(r)).max().unwrap_or(0);
    // Each user has at most every item.
    let listed = (0..users.len()).filter(|&r| wanted(r).is_some()).count();
    let per_user = (0..users.len())
        .filter_map(wanted)
        .max()
        .unwrap_or(0)
        .min(m.items.len())
        .max(1);
    budget.hold(batch_bytes(listed, per_user * ENTRY_BYTES, 0), || {
        format!("a batch of {listed} users of {per_user} items each")
    })?;
    let indices: Vec<usize> = known
        .iter()
        .filter_map(|&r| positions[r].map(|u| u as usize))
        .collect();
    let mut ranked = m.recommend_many(&indices, most, keep_seen).into_iter();
    Ok((0..users.len())
        .map(|r| {
            let k = wanted(r)?;
            Some(match positions[r] {
                Some(_) => {
                    let mut ranking = ranked.next().unwrap_or_default();
                    ranking.truncate(k);
                    (ranking, "model")
                }
                None => (m.popular(k), "popular"),
            })
        })
        .collect())
}

/// The lists as `List(Struct(item, score))`.
fn list_array(
    m: &MatrixFactorizationModel,
    lists: Vec<Option<(Ranking, &'static str)>>,
) -> ArrayRef {
    let lengths = lists.iter().map(|l| l.as_ref().map_or(0, |(l, _)| l.len()));
    let offsets = OffsetBuffer::from_lengths(lengths);
    let nulls = NullBuffer::from_iter(lists.iter().map(Option::is_some));
    let flat = || lists.iter().flatten().flat_map(|(l, _)| l.iter());
    let items = m.items.take(flat().map(|(_, i)| *i));
    let scores: ArrayRef = Arc::new(Float64Array::from_iter_values(flat().map(|(s, _)| *s)));
    let fields = struct_fields(m.items.data_type());
    let values = StructArray::new(fields.clone(), vec![items, scores], None);
    Arc::new(ListArray::new(
        Arc::new(Field::new("item", DataType::Struct(fields), false)),
        offsets,
        Arc::new(values),
        Some(nulls),
    ))
}
