//! `TRIALS('model')`: the hyper-parameter tuning trials a model was chosen from.

use std::sync::{Arc, LazyLock};

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, plan_err};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::Documentation;

use crate::model::ModelResolver;
use crate::sql::model_name_argument;

pub static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Lists the tuning trials of a model made by CREATE MODEL with options given as lists \
         ([a, b]) or ranges (RANGE(lo, hi), LOG_RANGE(lo, hi)): one row per trial with trial, \
         each tuned option's value, the trial model's metrics on the evaluation rows (as \
         EVALUATE names them), objective (the tuning_objective metric), seconds (fitting and \
         evaluating), is_best (the trial whose options the stored model has) and error (why a \
         trial's options could not be fitted, else NULL).",
        "SELECT * FROM trials(model_name)",
    )
    .with_argument(
        "model_name",
        "Name of a model created with options to tune, as a string literal.",
    )
    .with_sql_example(
        "```sql\nSELECT trial, l2_reg, auc, is_best FROM trials('churn') ORDER BY auc DESC;\n```",
    )
    .build()
});

/// The table function behind `trials`.
#[derive(Debug)]
pub struct Trials {
    resolver: Arc<dyn ModelResolver>,
}

impl Trials {
    pub fn new(resolver: Arc<dyn ModelResolver>) -> Self {
        Self { resolver }
    }
}

impl TableFunctionImpl for Trials {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let name = model_name_argument("trials", args.exprs())?;
        // An unknown model is reported as such, with the near names.
        self.resolver.resolve(&name)?;
        match self.resolver.assessment(&name)? {
            Some(a) if !a.trials.is_empty() => {
                let batch = a.trials_batch()?;
                Ok(Arc::new(MemTable::try_new(
                    batch.schema(),
                    vec![vec![batch]],
                )?))
            }
            _ => plan_err!(
                "model {name} was not tuned, so it has no trials; give an option a list or a \
                 range in CREATE MODEL, e.g. l2_reg = [0, 0.1, 1] or num_clusters = RANGE(3, 8)"
            ),
        }
    }
}
