//! `TRAINING_PASS(envelope, column_1, ..., column_n)`: one pass of a CREATE MODEL fit as an
//! aggregate, so that on a cluster each pass runs where the rows are and only its merged
//! state comes back (see [`crate::model::pass`]). CREATE MODEL writes these calls itself.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

use crate::model::pass::{Running, running};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "One pass of a model's training over the rows of a query, as CREATE MODEL runs it on \
         a cluster: the encoding of the features, the moments of a linear regression, or a \
         Newton step of a logistic regression, merged across partitions. Returns the pass's \
         state as JSON. CREATE MODEL writes these calls; there is no need to call it.",
        "training_pass(envelope, column_1[, ..., column_n])",
    )
    .with_argument(
        "envelope",
        "A string literal naming the pass, its parameters and the names of the columns.",
    )
    .with_argument("column_i", "The training query's columns, in order.")
    .with_sql_example(
        "```sql\n\
         -- written by CREATE MODEL on a cluster, e.g. for linear_reg:\n\
         SELECT training_pass('{\"pass\":\"moments\",...}', churned, tenure_months, plan) FROM t;\n\
         ```",
    )
    .build()
});

/// The `training_pass` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TrainingPass {
    signature: Signature,
}

impl Default for TrainingPass {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for TrainingPass {
    fn name(&self) -> &str {
        "training_pass"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let envelope = args
            .exprs
            .first()
            .and_then(|e| e.downcast_ref::<Literal>())
            .and_then(|l| match l.value() {
                ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => Some(s.clone()),
                _ => None,
            });
        let Some(envelope) = envelope else {
            return plan_err!("training_pass takes a string literal first (the pass to run)");
        };
        Ok(Box::new(PassAccumulator {
            running: running(&envelope)?,
        }))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new("state", DataType::Utf8, true))])
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[derive(Debug)]
struct PassAccumulator {
    running: Box<dyn Running>,
}

impl Accumulator for PassAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.split_first() {
            Some((_, columns)) if !columns.is_empty() && !columns[0].is_empty() => {
                self.running.update(columns)
            }
            _ => Ok(()),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for state in states[0].as_string::<i32>().iter().flatten() {
            self.running.merge(state)?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Utf8(Some(self.running.state()?)))
    }

    fn size(&self) -> usize {
        // The states are small (moments, a Hessian, per-feature counts).
        std::mem::size_of_val(self) + 4096
    }
}
