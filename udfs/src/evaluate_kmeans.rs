//! EVALUATE for kmeans models: `rows`, `rows_skipped`, `inertia`, `davies_bouldin` and
//! `silhouette` of a stored model's segments on the given rows.
//!
//! Mergeable: each partial state holds per-segment counts and distance sums, the inertia,
//! and a sample of encoded rows chosen by the smallest content hashes, so merging samples
//! gives the sample of the whole input whatever the partitioning. The silhouette is exact
//! up to [`SILHOUETTE_SAMPLE`] rows and computed on that sample above. Davies–Bouldin uses
//! the model's centroids, which on the training rows are the segments' means, as in
//! scikit-learn's `davies_bouldin_score`.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, ListArray, StructArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Fields, Float64Type, Int64Type, UInt64Type,
};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::kernels::cluster_quality::{davies_bouldin, silhouette};
use crate::kernels::kmeans::row_hash;
use crate::kernels::nearest::nearest_two;
use crate::kernels::points::Points;
use crate::kernels::row_major;
use crate::model::kmeans::{SILHOUETTE_SAMPLE, encode_columns};
use crate::model::{KMeansModel, ResolvedModel};

/// Seed of the content hash that picks the sample.
const SAMPLE_SEED: u64 = 0x5EED;

/// The output columns.
pub fn fields() -> Fields {
    let mut fields = vec![
        Field::new("rows", DataType::Int64, false),
        Field::new("rows_skipped", DataType::Int64, false),
    ];
    fields.extend(
        ["inertia", "davies_bouldin", "silhouette"]
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, true)),
    );
    Fields::from(fields)
}

/// The aggregate, bound to one model; its arguments are the model's features in order.
#[derive(Debug)]
pub struct EvaluateKMeans {
    signature: Signature,
    pub(crate) model: Arc<KMeansModel>,
    /// The model as resolved: its name and version identify the function.
    pub(crate) resolved: ResolvedModel,
}

impl EvaluateKMeans {
    /// The aggregate for `resolved`, which must be a kmeans model.
    pub fn bound(resolved: ResolvedModel) -> Result<Self> {
        let model = Arc::new(resolved.downcast::<KMeansModel>("evaluate")?.clone());
        Ok(Self {
            signature: Signature::any(model.features.len(), Volatility::Immutable),
            model,
            resolved,
        })
    }
}

impl PartialEq for EvaluateKMeans {
    fn eq(&self, other: &Self) -> bool {
        (&self.resolved.name, self.resolved.version)
            == (&other.resolved.name, other.resolved.version)
    }
}

impl Eq for EvaluateKMeans {}

impl std::hash::Hash for EvaluateKMeans {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.resolved.name.hash(state);
        self.resolved.version.hash(state);
    }
}

impl AggregateUDFImpl for EvaluateKMeans {
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
        let k = self.model.k();
        Ok(Box::new(KMeansAccumulator {
            model: self.model.clone(),
            counts: vec![0; k],
            distances: vec![0.0; k],
            inertia: 0.0,
            skipped: 0,
            sample: Vec::new(),
        }))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |t: DataType| DataType::List(Arc::new(Field::new_list_field(t, true)));
        Ok(vec![
            Arc::new(Field::new("counts", list(DataType::Int64), true)),
            Arc::new(Field::new("distances", list(DataType::Float64), true)),
            Arc::new(Field::new("inertia", DataType::Float64, true)),
            Arc::new(Field::new("skipped", DataType::Int64, true)),
            Arc::new(Field::new("sample_hashes", list(DataType::UInt64), true)),
            Arc::new(Field::new("sample_segments", list(DataType::Int64), true)),
            Arc::new(Field::new("sample_rows", list(DataType::Float64), true)),
        ])
    }
}

/// A sampled row: its hash, segment (0-based) and encoded values.
type Sampled = (u64, u32, Vec<f64>);

#[derive(Debug)]
struct KMeansAccumulator {
    model: Arc<KMeansModel>,
    counts: Vec<i64>,
    /// Per segment, the sum of distances to its centre.
    distances: Vec<f64>,
    inertia: f64,
    skipped: i64,
    /// At most [`SILHOUETTE_SAMPLE`] rows, those with the smallest hashes.
    sample: Vec<Sampled>,
}

impl KMeansAccumulator {
    fn keep_smallest(&mut self) {
        if self.sample.len() > 2 * SILHOUETTE_SAMPLE {
            self.trim();
        }
    }

    fn trim(&mut self) {
        self.sample.sort_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                a.2.iter()
                    .map(|v| v.to_bits())
                    .cmp(b.2.iter().map(|v| v.to_bits()))
            })
        });
        self.sample.truncate(SILHOUETTE_SAMPLE);
    }
}

impl Accumulator for KMeansAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (rows, valid) = encode_columns(&self.model.features, values)?;
        let (rows, dim) = (row_major(rows.view()), self.model.dim());
        let centroids = row_major(self.model.centroids.view());
        for (i, ok) in valid.iter().enumerate() {
            if !ok {
                self.skipped += 1;
                continue;
            }
            let row = &rows[i * dim..(i + 1) * dim];
            let (j, d, _) = nearest_two(row, &centroids);
            self.counts[j] += 1;
            self.distances[j] += d.sqrt();
            self.inertia += d;
            self.sample
                .push((row_hash(row, SAMPLE_SEED), j as u32, row.to_vec()));
        }
        self.keep_smallest();
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let dim = self.model.dim();
        for r in 0..states[0].len() {
            if states[0].is_null(r) {
                continue;
            }
            let list = |c: usize| states[c].as_list::<i32>().value(r);
            let counts = list(0);
            for (c, v) in self
                .counts
                .iter_mut()
                .zip(counts.as_primitive::<Int64Type>().values())
            {
                *c += v;
            }
            let distances = list(1);
            for (d, v) in self
                .distances
                .iter_mut()
                .zip(distances.as_primitive::<Float64Type>().values())
            {
                *d += v;
            }
            self.inertia += states[2].as_primitive::<Float64Type>().value(r);
            self.skipped += states[3].as_primitive::<Int64Type>().value(r);
            let hashes = list(4);
            let segments = list(5);
            let rows = list(6);
            let rows = rows.as_primitive::<Float64Type>().values();
            for (s, (h, j)) in hashes
                .as_primitive::<UInt64Type>()
                .values()
                .iter()
                .zip(segments.as_primitive::<Int64Type>().values())
                .enumerate()
            {
                self.sample
                    .push((*h, *j as u32, rows[s * dim..(s + 1) * dim].to_vec()));
            }
        }
        self.keep_smallest();
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.trim();
        let ints = |v: Vec<i64>| {
            ScalarValue::List(Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
                [Some(v.into_iter().map(Some))],
            )))
        };
        let floats = |v: Vec<f64>| {
            ScalarValue::List(Arc::new(
                ListArray::from_iter_primitive::<Float64Type, _, _>([Some(
                    v.into_iter().map(Some),
                )]),
            ))
        };
        let hashes = ScalarValue::List(Arc::new(
            ListArray::from_iter_primitive::<UInt64Type, _, _>([Some(
                self.sample.iter().map(|s| Some(s.0)),
            )]),
        ));
        Ok(vec![
            ints(self.counts.clone()),
            floats(self.distances.clone()),
            ScalarValue::Float64(Some(self.inertia)),
            ScalarValue::Int64(Some(self.skipped)),
            hashes,
            ints(self.sample.iter().map(|s| i64::from(s.1)).collect()),
            floats(
                self.sample
                    .iter()
                    .flat_map(|s| s.2.iter().copied())
                    .collect(),
            ),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.trim();
        let rows: i64 = self.counts.iter().sum();
        let dim = self.model.dim();
        let k = self.model.k();
        let (db, sil) = if rows == 0 {
            (f64::NAN, f64::NAN)
        } else {
            let sizes: Vec<u64> = self.counts.iter().map(|&c| c as u64).collect();
            let scatter: Vec<f64> = self
                .distances
                .iter()
                .zip(&self.counts)
                .map(|(d, &c)| if c > 0 { d / c as f64 } else { 0.0 })
                .collect();
            let sampled: Vec<f64> = self
                .sample
                .iter()
                .flat_map(|s| s.2.iter().copied())
                .collect();
            let labels: Vec<u32> = self.sample.iter().map(|s| s.1).collect();
            (
                davies_bouldin(self.model.centroids.view(), &scatter, &sizes),
                silhouette(&Points::new(&sampled, dim), &labels, k),
            )
        };
        let inertia = if rows == 0 { f64::NAN } else { self.inertia };
        let value =
            |v: f64| Arc::new(Float64Array::from(vec![v.is_finite().then_some(v)])) as ArrayRef;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![rows])),
            Arc::new(Int64Array::from(vec![self.skipped])),
            value(inertia),
            value(db),
            value(sil),
        ];
        Ok(ScalarValue::Struct(Arc::new(StructArray::try_new(
            fields(),
            columns,
            None,
        )?)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.sample.capacity() * (std::mem::size_of::<Sampled>() + 8 * self.model.dim())
    }
}
