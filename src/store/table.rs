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

use super::{Listed, ModelDescription, ModelStore};

/// The table provider behind `cohort.models` and `SHOW MODELS`.
#[derive(Debug)]
pub struct ModelsTable {
    store: ModelStore,
}

impl ModelsTable {
    pub fn new(store: ModelStore) -> Self {
        Self { store }
    }

    pub(crate) fn batch(&self) -> Result<RecordBatch> {
        let listed = self.store.list()?;
        // A damaged model is a row with its name, version and problem, and nothing else.
        let models: Vec<Option<&ModelDescription>> = listed
            .iter()
            .map(|l| match l {
                Listed::Model(m) => Some(&**m),
                Listed::Damaged { .. } => None,
            })
            .collect();
        let text = |f: &dyn Fn(&ModelDescription) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from(
                models.iter().map(|m| m.and_then(f)).collect::<Vec<_>>(),
            ))
        };
        let count = |f: &dyn Fn(&ModelDescription) -> u64| -> ArrayRef {
            Arc::new(Int64Array::from(
                models
                    .iter()
                    .map(|m| m.map(|m| f(m) as i64))
                    .collect::<Vec<_>>(),
            ))
        };
        let created: ArrayRef = text(&|m| Some(m.created_at.clone()));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(
                listed.iter().map(Listed::name).collect::<Vec<_>>(),
            )),
            text(&|m| Some(m.model_type.clone())),
            Arc::new(Int64Array::from(
                listed
                    .iter()
                    .map(|l| l.version() as i64)
                    .collect::<Vec<_>>(),
            )),
            text(&|m| m.label.clone()),
            text(&|m| {
                Some(
                    m.features
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            }),
            count(&|m| m.training_rows),
            count(&|m| m.rows_skipped),
            text(&|m| {
                Some(
                    m.metrics
                        .iter()
                        .map(|(k, v)| format!("{k}={v:.6}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            }),
            cast(&created, &created_type())?,
            Arc::new(StringArray::from(
                listed
                    .iter()
                    .map(|l| match l {
                        Listed::Model(_) => None,
                        Listed::Damaged { problem, .. } => Some(problem.as_str()),
                    })
                    .collect::<Vec<_>>(),
            )),
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
        // NULL, with the columns below, for a model that cannot be read.
        Field::new("model_type", DataType::Utf8, true),
        Field::new("version", DataType::Int64, false),
        Field::new("label", DataType::Utf8, true),
        Field::new("features", DataType::Utf8, true),
        Field::new("training_rows", DataType::Int64, true),
        Field::new("rows_skipped", DataType::Int64, true),
        Field::new("metrics", DataType::Utf8, true),
        Field::new("created_at", created_type(), true),
        // Why the model cannot be read (damaged, written by a newer cohort); NULL if it can.
        Field::new("problem", DataType::Utf8, true),
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
