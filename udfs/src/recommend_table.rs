//! `RECOMMEND('model', k)` in FROM: the `k` best items for every user the model knows.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Documentation, Expr};
use rayon::prelude::*;

use crate::model::matrix_factorization::{Ids, Ranking};
use crate::model::{MatrixFactorizationModel, Model, ModelResolver};

pub static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The k best items for every user of a stored matrix_factorization model: one row per \
         user and item with user, item, score, rank (1 = best) and source ('model'). Items a \
         user had in training are left out. For one user, or users the model may not know, \
         use the scalar recommend(model_name, user, k).",
        "SELECT * FROM recommend(model_name, k)",
    )
    .with_argument(
        "model_name",
        "Name of a matrix_factorization model, as a string literal.",
    )
    .with_argument("k", "How many items per user, an integer of at least 1.")
    .with_sql_example(
        "```sql\nSELECT * FROM recommend('recs', 10) WHERE user = 42 ORDER BY rank;\n```",
    )
    .build()
});

/// The table function behind `recommend` in FROM.
#[derive(Debug)]
pub struct RecommendTable {
    resolver: Arc<dyn ModelResolver>,
}

impl RecommendTable {
    pub fn new(resolver: Arc<dyn ModelResolver>) -> Self {
        Self { resolver }
    }
}

impl TableFunctionImpl for RecommendTable {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let usage = "recommend in FROM takes the model name and k, e.g. \
                     SELECT * FROM recommend('recs', 10)";
        let [name, k] = args.exprs() else {
            return plan_err!("{usage}");
        };
        let k = count_argument("recommend", k)?;
        with_factorization(self.resolver.as_ref(), "recommend", name, |m, _| {
            let rankings: Vec<Ranking> = (0..m.users.len())
                .into_par_iter()
                .map(|u| m.recommend(u, k, false))
                .collect();
            let users: Vec<usize> = (0..m.users.len()).collect();
            table(ranking_batch(
                m,
                ("user", &m.users, &users),
                "item",
                &rankings,
                true,
            )?)
        })
    }
}

/// Calls `f` with the matrix factorization named by a string literal argument, and its
/// name.
pub(crate) fn with_factorization<T>(
    resolver: &dyn ModelResolver,
    function: &str,
    name: &Expr,
    f: impl FnOnce(&MatrixFactorizationModel, &str) -> Result<T>,
) -> Result<T> {
    let name = match name {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => s.clone(),
        _ => return plan_err!("{function} needs the model name as a string literal first"),
    };
    let resolved = resolver.resolve(&name)?;
    match resolved.model.as_ref() {
        Model::MatrixFactorization(m) => f(m, &name),
        other => plan_err!(
            "{function} needs a matrix_factorization model, but model {name} is {}",
            other.type_name()
        ),
    }
}

/// A positive integer literal argument (`k`).
pub(crate) fn count_argument(function: &str, k: &Expr) -> Result<usize> {
    match k {
        Expr::Literal(v, _) if v.data_type().is_integer() => match v.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(k)) if k >= 1 => Ok(k as usize),
            other => plan_err!("{function}'s k must be at least 1, got {other}"),
        },
        _ => plan_err!("{function}'s k must be an integer literal, got {k}"),
    }
}

/// One row per ranked item: the key (ranking `r` is for id `keys[positions[r]]`), the
/// item, score, rank and, when `with_source`, source = 'model'.
pub(crate) fn ranking_batch(
    m: &MatrixFactorizationModel,
    (key_name, keys, positions): (&str, &Ids, &[usize]),
    item_name: &str,
    rankings: &[Ranking],
    with_source: bool,
) -> Result<RecordBatch> {
    let owner = rankings
        .iter()
        .enumerate()
        .flat_map(|(r, list)| std::iter::repeat_n(positions[r], list.len()));
    let flat: Vec<(f64, usize)> = rankings.iter().flatten().copied().collect();
    let rows = flat.len();
    let mut fields = vec![
        Field::new(key_name, keys.data_type(), false),
        Field::new(item_name, m.items.data_type(), false),
        Field::new("score", DataType::Float64, false),
        Field::new("rank", DataType::Int64, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        keys.take(owner),
        m.items.take(flat.iter().map(|(_, i)| *i)),
        Arc::new(Float64Array::from_iter_values(flat.iter().map(|(s, _)| *s))),
        Arc::new(Int64Array::from_iter_values(
            rankings.iter().flat_map(|list| 1..=list.len() as i64),
        )),
    ];
    if with_source {
        fields.push(Field::new("source", DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n("model", rows),
        )));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// The batch as a table.
pub(crate) fn table(batch: RecordBatch) -> Result<Arc<dyn TableProvider>> {
    Ok(Arc::new(MemTable::try_new(
        batch.schema(),
        vec![vec![batch]],
    )?))
}
