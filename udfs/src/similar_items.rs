//! `SIMILAR_ITEMS('model', item, k)`: the items whose factors point the same way.

use std::sync::{Arc, LazyLock};

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{Documentation, Expr};

use crate::kernels::als::scores;
use crate::kernels::top_k::top_k;
use crate::kernels::vector::dot;
use crate::model::ModelResolver;
use crate::sql::{count_argument, ranking_batch, table, with_factorization};

pub static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The k items most similar to an item under a stored matrix_factorization model, by \
         the cosine similarity of their factors: item, similar_item, score (the cosine, at \
         most 1) and rank (1 = most similar). The item itself is left out.",
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
    .with_argument("k", "How many items, an integer of at least 1.")
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
        with_factorization(self.resolver.as_ref(), "similar_items", name, |m, name| {
            let Expr::Literal(value, _) = item else {
                return plan_err!("similar_items' item must be a literal, got {item}");
            };
            let position = m.items.positions(&value.to_array()?, "item")?[0];
            let Some(i) = position.map(|p| p as usize) else {
                return plan_err!(
                    "item {value} is not among the items model {name} was trained on"
                );
            };
            let dots = scores(m.fit.item(i), m.fit.items.view());
            let norms: Vec<f64> = (0..m.items.len())
                .map(|j| dot(m.fit.item(j), m.fit.item(j)).sqrt())
                .collect();
            // Items with all-zero factors (no signal) give NaN and are left out.
            let cosine = dots.iter().zip(&norms).map(|(d, n)| d / (norms[i] * n));
            let ranking = top_k(cosine, k, |j| j != i);
            table(ranking_batch(
                m,
                ("item", &m.items, &[i]),
                "similar_item",
                &[ranking],
            )?)
        })
    }
}
