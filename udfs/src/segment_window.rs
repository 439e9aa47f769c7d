//! `SEGMENT(k, f1, ..., fn) OVER (PARTITION BY ...)`: k-means trained on each partition on
//! the fly, with the defaults of `CREATE MODEL ... OPTIONS (model_type = 'kmeans')`. Each
//! row gets its segment in its partition, 1 for the partition's largest. The documentation
//! is `segment`'s: the SQL name is the same, and calls with OVER are rewritten to this one.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    Documentation, PartitionEvaluator, Signature, Volatility, WindowUDFImpl,
};

use crate::model::training::InMemory;
use crate::model::{Clusters, KMeansModel, KMeansSettings, ModelKind};

/// The window function's name; `segment(...) OVER (...)` is rewritten to it (see
/// [`crate::sql::rewrite_cohort_forms`]).
pub const SEGMENT_WINDOW: &str = "segment_window";

/// The most segments a partition can be split into.
const MAX_K: i64 = 1000;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SegmentWindow {
    signature: Signature,
}

impl Default for SegmentWindow {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl WindowUDFImpl for SegmentWindow {
    fn name(&self) -> &str {
        SEGMENT_WINDOW
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let fields = args.input_fields();
        if fields.len() < 2 {
            return plan_err!(
                "segment(k, f1, ..., fn) OVER (...) needs the number of segments and at least \
                 one feature"
            );
        }
        if !fields[0].data_type().is_integer() {
            return plan_err!(
                "segment(...) OVER (...) takes the number of segments first, an integer \
                 literal; to score with a stored model leave out OVER: segment('model', ...)"
            );
        }
        let schema = Arc::new(Schema::new(
            fields[1..]
                .iter()
                .map(|f| Field::new(f.name(), f.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        Ok(Box::new(SegmentEvaluator { schema }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Int64,
            true,
        )))
    }

    fn documentation(&self) -> Option<&Documentation> {
        crate::predict::segment_doc()
    }
}

#[derive(Debug)]
struct SegmentEvaluator {
    /// The features' columns.
    schema: Arc<Schema>,
}

impl PartitionEvaluator for SegmentEvaluator {
    fn uses_window_frame(&self) -> bool {
        false
    }

    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        if num_rows == 0 {
            return Ok(Arc::new(Int64Array::from(Vec::<i64>::new())));
        }
        let k = cast(&values[0], &DataType::Int64)?;
        let k = k.as_any().downcast_ref::<Int64Array>();
        let k = match k {
            Some(k) if k.null_count() == 0 && k.values().iter().all(|v| *v == k.value(0)) => {
                k.value(0)
            }
            _ => return plan_err!("segment(k, ...) OVER (...) needs k as one integer literal"),
        };
        if !(1..=MAX_K).contains(&k) {
            return plan_err!("segment(k, ...) OVER (...) needs k from 1 to {MAX_K}, got {k}");
        }
        let features: Vec<ArrayRef> = values[1..].to_vec();
        let batch = RecordBatch::try_new(self.schema.clone(), features.clone())?;
        let batches = [batch];
        let settings = KMeansSettings {
            clusters: Clusters::Fixed(k as usize),
            ..KMeansSettings::default()
        };
        let source = InMemory {
            schema: &self.schema,
            batches: &batches,
            pool: None,
        };
        let (model, _) = KMeansModel::train(&source, &settings).map_err(|e| {
            datafusion::common::DataFusionError::Plan(format!(
                "segment({k}, ...) OVER (PARTITION BY ...): in a partition of {num_rows} rows, {}",
                e.message()
            ))
        })?;
        Ok(Arc::new(model.assign(&features)?.0))
    }
}
