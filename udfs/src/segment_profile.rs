//! `SEGMENT_PROFILE('model')`: what sets each segment of a kmeans model apart.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::Documentation;

use crate::model::{FeatureEncoding, KMeansModel, ModelResolver};
use crate::sql::model_name_argument;

pub static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Profiles the segments of a stored kmeans model, one row per segment (1 = largest): \
         segment, size and share of the training rows, then for each feature its mean in the \
         segment in original units (for a category, column=level: the share of the segment \
         at that level) and <feature>_z, how many population standard deviations that mean \
         sits from the mean of all training rows.",
        "SELECT * FROM segment_profile(model_name)",
    )
    .with_argument("model_name", "Name of a kmeans model, as a string literal.")
    .with_sql_example(
        "```sql\nSELECT segment, size, share, monetary, monetary_z FROM segment_profile('seg') ORDER BY segment;\n```",
    )
    .build()
});

/// The table function behind `segment_profile`.
#[derive(Debug)]
pub struct SegmentProfile {
    resolver: Arc<dyn ModelResolver>,
}

impl SegmentProfile {
    pub fn new(resolver: Arc<dyn ModelResolver>) -> Self {
        Self { resolver }
    }
}

impl TableFunctionImpl for SegmentProfile {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let name = model_name_argument("segment_profile", args.exprs())?;
        let resolved = self.resolver.resolve(&name)?;
        let m = resolved.downcast::<KMeansModel>("segment_profile")?;
        let k = m.k();
        let total: u64 = m.sizes.iter().sum();
        let mut fields = vec![
            Field::new("segment", DataType::Int64, false),
            Field::new("size", DataType::Int64, false),
            Field::new("share", DataType::Float64, false),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(1..=k as i64)),
            Arc::new(Int64Array::from_iter_values(
                m.sizes.iter().map(|&s| s as i64),
            )),
            Arc::new(Float64Array::from_iter_values(
                m.sizes.iter().map(|&s| s as f64 / total.max(1) as f64),
            )),
        ];
        let mut d = 0;
        for f in &m.features {
            // Original units: a numeric column is undone from (x - mean) / std; a one-hot
            // column is already the share at that level.
            let (scale, shift) = match f {
                FeatureEncoding::Numeric { mean, std, .. } => (*std, *mean),
                FeatureEncoding::OneHot { .. } => (1.0, 0.0),
            };
            for design_name in f.design_names() {
                let centre = |j: usize| m.centroids[(j, d)];
                fields.push(Field::new(&design_name, DataType::Float64, false));
                columns.push(Arc::new(Float64Array::from_iter_values(
                    (0..k).map(|j| centre(j) * scale + shift),
                )));
                let (mean, std) = (m.column_mean[d], m.column_std[d]);
                fields.push(Field::new(
                    format!("{design_name}_z"),
                    DataType::Float64,
                    true,
                ));
                columns.push(Arc::new(Float64Array::from_iter(
                    (0..k).map(|j| (std > 0.0).then(|| (centre(j) - mean) / std)),
                )));
                d += 1;
            }
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
