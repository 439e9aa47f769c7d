//! `SIMILAR_ITEMS('model', item, k)`: the items whose factors point the same way.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{Documentation, Expr};
use futures::{StreamExt, stream};

use crate::kernels::als::scores;
use crate::kernels::top_k::top_k;
use crate::kernels::vector::dot;
use crate::model::{MatrixFactorizationModel, ModelResolver, ResolvedModel};
use crate::sql::{
    Budget, batch_bytes, count_argument, generated, model_name, ranking_batch, ranking_schema,
};

pub static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The k items most similar to an item under a stored matrix_factorization model, by \
         the cosine similarity of their factors: item, similar_item, score (the cosine, at \
         most 1) and rank (1 = most similar). The item itself is left out, so a k past the \
         number of other items gives them all (as LIMIT does).",
        "SELECT * FROM similar_items(model_name, item, k)",
    )
    .with_argument(
        "model_name",
        "Name of a matrix_factorization model, as a string literal.",
    )
    .with_argument(
        "item",
        "The item id, a literal of the model's item id type.",
    )
    .with_argument(
        "k",
        "How many items, an integer of at least 1; more than the model has gives them all.",
    )
    .with_sql_example("```sql\nSELECT * FROM similar_items('recs', 1234, 10);\n```")
    .build()
});

/// The table function behind `similar_items`.
#[derive(Debug)]
pub struct SimilarItems {
    resolver: Arc<dyn ModelResolver>,
}

impl SimilarItems {
    pub fn new(resolver: Arc<dyn ModelResolver>) -> Self {
        Self { resolver }
    }
}

impl TableFunctionImpl for SimilarItems {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let [name, item, k] = args.exprs() else {
            return plan_err!(
                "similar_items takes the model name, an item and k, e.g. \
                 SELECT * FROM similar_items('recs', 1234, 10)"
            );
        };
        let k = count_argument("similar_items", "k", k)?;
        let name = model_name("similar_items", name)?;
        let resolved = self.resolver.resolve(&name)?;
        let m = resolved.downcast::<MatrixFactorizationModel>("similar_items")?;
        let Expr::Literal(value, _) = item else {
            return plan_err!("similar_items' item must be a literal, got {item}");
        };
        let position = m.items.positions(&value.to_array()?, "item")?[0];
        let Some(i) = position.map(|p| p as usize) else {
            return plan_err!("item {value} is not among the items model {name} was trained on");
        };
        let schema = ranking_schema(m, ("item", &m.items), "similar_item");
        generated(schema, move |ctx| {
            let budget = Budget::new(&ctx, "similar_items", "k", k);
            let batch = ctx.session_config().batch_size();
            let batches = match similar(&resolved, i, k, &budget) {
                Ok(ranking) => split(ranking, batch).into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            stream::iter(batches).boxed()
        })
    }
}

/// Bytes an item takes in the ranking and in its row.
const ENTRY_BYTES: usize = 48;

/// The `k` items most like item `i` (at most all the others) as one batch.
fn similar(model: &ResolvedModel, i: usize, k: usize, budget: &Budget) -> Result<RecordBatch> {
    let m = model.downcast::<MatrixFactorizationModel>("similar_items")?;
    let n = m.items.len();
    let rows = k.min(n.saturating_sub(1));
    // The scores and norms of every item, and the rows kept.
    budget.hold(
        batch_bytes(n, 16, batch_bytes(rows, ENTRY_BYTES, 0)),
        || format!("{rows} similar items"),
    )?;
    let dots = scores(m.fit.item(i), m.fit.items.view());
    let norms: Vec<f64> = (0..n)
        .map(|j| dot(m.fit.item(j), m.fit.item(j)).sqrt())
        .collect();
    // Items with all-zero factors (no signal) give NaN and are left out.
    let cosine = dots.iter().zip(&norms).map(|(d, n)| d / (norms[i] * n));
    let ranking = top_k(cosine, k, |j| j != i);
    ranking_batch(m, ("item", &m.items, &[i]), "similar_item", &[ranking])
}

/// `batch` as slices of at most `rows` rows.
fn split(batch: RecordBatch, rows: usize) -> Vec<RecordBatch> {
    let rows = rows.max(1);
    (0..batch.num_rows())
        .step_by(rows)
        .map(|at| batch.slice(at, rows.min(batch.num_rows() - at)))
        .collect()
}
