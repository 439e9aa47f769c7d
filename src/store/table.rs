//! `cohort.models`: the store's models as a table that BI tools can query. It reads the
//! store at every scan, so models created by another client appear at once.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::ModelStore;

/// The table provider behind `cohort.models` and `SHOW MODELS`.
#[derive(Debug)]
pub struct ModelsTable {
    store: ModelStore,
}

impl ModelsTable {
    pub fn new(store: ModelStore) -> Self {
        Self { store }
    }

    fn batch(&self) -> Result<RecordBatch> {
        let models = self.store.list()?;
        let text = |f: &dyn Fn(&super::ModelDescription) -> String| -> ArrayRef {
            Arc::new(StringArray::from(models.iter().map(f).collect::<Vec<_>>()))
        };
        let created: ArrayRef = text(&|m| m.created_at.clone());
        let columns: Vec<ArrayRef> = vec![
            text(&|m| m.name.clone()),
            text(&|m| m.model_type.clone()),
            Arc::new(Int64Array::from(
                models.iter().map(|m| m.version as i64).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                models.iter().map(|m| m.label.clone()).collect::<Vec<_>>(),
            )),
            text(&|m| {
                m.features
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            Arc::new(Int64Array::from(
                models
                    .iter()
                    .map(|m| m.training_rows as i64)
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                models
                    .iter()
                    .map(|m| m.rows_skipped as i64)
                    .collect::<Vec<_>>(),
            )),
            text(&|m| {
                m.metrics
                    .iter()
                    .map(|(k, v)| format!("{k}={v:.6}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            cast(&created, &created_type())?,
        ];
        Ok(RecordBatch::try_new(models_schema(), columns)?)
    }
}

fn created_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The columns of `cohort.models`.
pub fn models_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("model_type", DataType::Utf8, false),
        Field::new("version", DataType::Int64, false),
        Field::new("label", DataType::Utf8, true),
        Field::new("features", DataType::Utf8, false),
        Field::new("training_rows", DataType::Int64, false),
        Field::new("rows_skipped", DataType::Int64, false),
        Field::new("metrics", DataType::Utf8, false),
        Field::new("created_at", created_type(), true),
    ]))
}

#[async_trait]
impl TableProvider for ModelsTable {
    fn schema(&self) -> SchemaRef {
        models_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.batch()?;
        let exec =
            MemorySourceConfig::try_new_exec(&[vec![batch]], models_schema(), projection.cloned())?;
        Ok(exec)
    }
}
