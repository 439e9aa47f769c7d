//! EVALUATE for implicit-feedback matrix factorizations: how well the top 10 recommended
//! items of each user find the user's held-out items.
//!
//! Per user with held-out items `H` and top-10 list `R` (training items left out, as
//! RECOMMEND gives them): precision = |R ∩ H| / min(|H|, 10), so a user with fewer held-out
//! items than 10 (the products of one basket) can score 1; recall = |R ∩ H| / |H|, NDCG (binary
//! gains, log2 discounts, ideal = min(|H|, 10) hits on top), and average precision = the
//! mean over hits of the precision at each hit's rank, divided by min(|H|, 10). Each metric
//! is the mean over users. Rows whose user or item the model never saw, or that are NULL,
//! are skipped and counted.
//!
//! Mergeable: a partial state is the (user, item) pairs it saw, as model indices.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, ListArray, StructArray,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type, UInt32Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::model::matrix_factorization::Ranking;
use crate::model::{MatrixFactorizationModel, ResolvedModel};

/// The length of the ranked lists evaluated.
pub const K: usize = 10;

/// The output columns.
pub fn fields() -> Fields {
    let mut fields = vec![
        Field::new("rows", DataType::Int64, false),
        Field::new("rows_skipped", DataType::Int64, false),
        Field::new("users", DataType::Int64, false),
        Field::new("k", DataType::Int64, false),
    ];
    fields.extend(
        ["precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k"]
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, true)),
    );
    Fields::from(fields)
}

/// The aggregate, bound to one model; its arguments are the user and item columns.
#[derive(Debug)]
pub struct EvaluateRanking {
    signature: Signature,
    pub(crate) model: Arc<MatrixFactorizationModel>,
    /// The model as resolved: its name and version identify the function.
    pub(crate) resolved: ResolvedModel,
}

impl EvaluateRanking {
    /// The aggregate for `resolved`, which must be a matrix_factorization model.
    pub fn bound(resolved: ResolvedModel) -> Result<Self> {
        let model = Arc::new(
            resolved
                .downcast::<MatrixFactorizationModel>("evaluate")?
                .clone(),
        );
        Ok(Self {
            signature: Signature::any(2, Volatility::Immutable),
            model,
            resolved,
        })
    }
}

impl PartialEq for EvaluateRanking {
    fn eq(&self, other: &Self) -> bool {
        (&self.resolved.name, self.resolved.version)
            == (&other.resolved.name, other.resolved.version)
    }
}

impl Eq for EvaluateRanking {}

impl std::hash::Hash for EvaluateRanking {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.resolved.name.hash(state);
        self.resolved.version.hash(state);
    }
}

impl AggregateUDFImpl for EvaluateRanking {
    fn name(&self) -> &str {
        "evaluate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(fields()))
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(RankingAccumulator {
            model: self.model.clone(),
            users: vec![],
            items: vec![],
            skipped: 0,
        }))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::UInt32, true)));
        Ok(vec![
            Arc::new(Field::new("users", list.clone(), true)),
            Arc::new(Field::new("items", list, true)),
            Arc::new(Field::new("skipped", DataType::Int64, true)),
        ])
    }
}

#[derive(Debug)]
struct RankingAccumulator {
    model: Arc<MatrixFactorizationModel>,
    users: Vec<u32>,
    items: Vec<u32>,
    skipped: i64,
}

impl Accumulator for RankingAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let users = self.model.users.positions(&values[0], "user")?;
        let items = self.model.items.positions(&values[1], "item")?;
        for (u, i) in users.into_iter().zip(items) {
            match (u, i) {
                (Some(u), Some(i)) => {
                    self.users.push(u);
                    self.items.push(i);
                }
                _ => self.skipped += 1,
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for r in 0..states[0].len() {
            if states[0].is_null(r) {
                continue;
            }
            let list = |c: usize| states[c].as_list::<i32>().value(r);
            self.users
                .extend(list(0).as_primitive::<UInt32Type>().values());
            self.items
                .extend(list(1).as_primitive::<UInt32Type>().values());
            self.skipped += states[2].as_primitive::<Int64Type>().value(r);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = |v: &[u32]| {
            ScalarValue::List(Arc::new(
                ListArray::from_iter_primitive::<UInt32Type, _, _>([Some(
                    v.iter().map(|x| Some(*x)),
                )]),
            ))
        };
        Ok(vec![
            list(&self.users),
            list(&self.items),
            ScalarValue::Int64(Some(self.skipped)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        // Held-out items per user; a pair given twice counts once.
        let mut held: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (&u, &i) in self.users.iter().zip(&self.items) {
            held.entry(u).or_default().push(i);
        }
        let users: Vec<usize> = held.keys().map(|&u| u as usize).collect();
        let rankings = self.model.recommend_many(&users, K, false);
        let per_user: Vec<[f64; 4]> = held
            .into_values()
            .zip(&rankings)
            .map(|(mut relevant, ranked)| {
                relevant.sort_unstable();
                relevant.dedup();
                user_metrics(ranked, &relevant)
            })
            .collect();
        let users = per_user.len();
        let mean = |m: usize| {
            (users > 0).then(|| per_user.iter().map(|v| v[m]).sum::<f64>() / users as f64)
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![self.users.len() as i64])),
            Arc::new(Int64Array::from(vec![self.skipped])),
            Arc::new(Int64Array::from(vec![users as i64])),
            Arc::new(Int64Array::from(vec![K as i64])),
            Arc::new(Float64Array::from(vec![mean(0)])),
            Arc::new(Float64Array::from(vec![mean(1)])),
            Arc::new(Float64Array::from(vec![mean(2)])),
            Arc::new(Float64Array::from(vec![mean(3)])),
        ];
        Ok(ScalarValue::Struct(Arc::new(StructArray::try_new(
            fields(),
            columns,
            None,
        )?)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + 4 * (self.users.capacity() + self.items.capacity())
    }
}

/// Precision, recall, NDCG and average precision at [`K`] of one user's `ranked`
/// recommendations against the sorted, distinct `relevant` items.
fn user_metrics(ranked: &Ranking, relevant: &[u32]) -> [f64; 4] {
    let (mut hits, mut dcg, mut precision_sum) = (0usize, 0.0, 0.0);
    for (r, (_, item)) in ranked.iter().enumerate() {
        if relevant.binary_search(&(*item as u32)).is_ok() {
            hits += 1;
            dcg += 1.0 / ((r + 2) as f64).log2();
            precision_sum += hits as f64 / (r + 1) as f64;
        }
    }
    let ideal_hits = relevant.len().min(K);
    let idcg: f64 = (0..ideal_hits).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
    [
        hits as f64 / ideal_hits as f64,
        hits as f64 / relevant.len() as f64,
        dcg / idcg,
        precision_sum / ideal_hits as f64,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_is_out_of_the_items_a_user_could_hit() {
        // Ten recommended items 0..10, scores descending.
        let ranked: Ranking = (0..10).map(|i| (10.0 - i as f64, i)).collect();
        // Two held-out items, both found (at ranks 1 and 3): precision 2 / min(2, 10).
        let [precision, recall, ndcg, map] = user_metrics(&ranked, &[0, 2]);
        assert_eq!((precision, recall), (1.0, 1.0));
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!((ndcg - (1.0 + 0.5) / idcg).abs() < 1e-15);
        assert!((map - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-15);
        // Twelve held-out items, three found: precision 3 / 10, recall 3 / 12.
        let relevant: Vec<u32> = vec![1, 4, 9, 20, 21, 22, 23, 24, 25, 26, 27, 28];
        let [precision, recall, _, _] = user_metrics(&ranked, &relevant);
        assert_eq!((precision, recall), (0.3, 0.25));
    }
}
