//! `FORECAST('model', horizon)` in FROM: every series of a forecast model, `horizon` steps
//! past its end, with prediction intervals.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{Documentation, Expr};
use futures::StreamExt;

use crate::model::forecast::{ForecastRows, MAX_HORIZON};
use crate::model::{ForecastModel, ModelResolver};
use crate::sql::{Budget, count_argument, generated, model_name};

pub static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Forecasts of a stored forecast model: for each series (one per id_col value), the \
         next horizon times after its last one, with id (when the model has id_col), time, \
         forecast (the point forecast) and lower and upper bounds of the prediction interval \
         at the model's confidence_level. Intervals are exact for the linear ETS models \
         (additive error, no multiplicative seasonality) and simulated from 2000 seeded \
         sample paths otherwise, so they are the same on every run.",
        "SELECT * FROM forecast(model_name[, horizon[, confidence_level]])",
    )
    .with_argument(
        "model_name",
        "Name of a forecast model, as a string literal.",
    )
    .with_argument(
        "horizon",
        "How many steps ahead, an integer from 1 to 100000; the model's horizon option (12 by \
         default) when left out. The rows are made a batch at a time as the query reads \
         them, so a long horizon needs no more memory than a short one.",
    )
    .with_argument(
        "confidence_level",
        "Coverage of the intervals, between 0 and 1; the model's confidence_level (0.95 by \
         default) when left out.",
    )
    .with_sql_example(
        "```sql\n\
         CREATE MODEL revenue_fc OPTIONS (model_type = 'forecast', time_col = 'month',\n  \
         value_col = 'revenue', id_col = 'region') AS\n  \
         SELECT date_trunc('month', day) AS month, region, sum(revenue) AS revenue\n  \
         FROM daily_revenue GROUP BY 1, 2;\n\
         SELECT * FROM forecast('revenue_fc', 6) ORDER BY id, time;\n\
         ```",
    )
    .build()
});

/// The table function behind `forecast` in FROM.
#[derive(Debug)]
pub struct Forecast {
    resolver: Arc<dyn ModelResolver>,
}

impl Forecast {
    pub fn new(resolver: Arc<dyn ModelResolver>) -> Self {
        Self { resolver }
    }
}

impl TableFunctionImpl for Forecast {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let (name, horizon, level) = match args.exprs() {
            [name] => (name, None, None),
            [name, horizon] => (name, Some(horizon), None),
            [name, horizon, level] => (name, Some(horizon), Some(level)),
            _ => {
                return plan_err!(
                    "forecast takes the model name and optionally the horizon and the \
                     confidence level, e.g. SELECT * FROM forecast('revenue_fc', 12)"
                );
            }
        };
        let name = model_name("forecast", name)?;
        let resolved = self.resolver.resolve(&name)?;
        let m = resolved.downcast::<ForecastModel>("forecast")?;
        let horizon = match horizon {
            Some(h) => count_argument("forecast", "horizon", h)?,
            None => m.horizon,
        };
        if horizon > MAX_HORIZON {
            return plan_err!(
                "forecast's horizon must be at most {MAX_HORIZON}, the longest forecast a \
                 model makes, got {horizon}; forecast fewer steps"
            );
        }
        let level = match level {
            None => m.confidence_level,
            Some(Expr::Literal(v, _)) if v.data_type().is_numeric() => {
                match v.cast_to(&DataType::Float64)? {
                    ScalarValue::Float64(Some(c)) if c > 0.0 && c < 1.0 => c,
                    other => {
                        return plan_err!(
                            "forecast's confidence_level must be between 0 and 1, got {other}"
                        );
                    }
                }
            }
            Some(other) => {
                return plan_err!("forecast's confidence_level must be a number, got {other}");
            }
        };
        let schema = m.forecast_schema();
        generated(schema, move |ctx| {
            let budget = Budget::new(&ctx, "forecast", "horizon", horizon);
            let batch = ctx.session_config().batch_size();
            futures::stream::iter(ForecastRows::new(
                resolved.clone(),
                horizon,
                level,
                batch,
                budget,
            ))
            .boxed()
        })
    }
}
