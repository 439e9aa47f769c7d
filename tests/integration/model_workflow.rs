//! CREATE MODEL's evaluation split and cross-validation against independent computations:
//! the stored evaluation of a custom split is scikit-learn's on the same rows
//! (tests/reference/evaluate_holdout.py), and cross-validation's mean and spread are those
//! of the folds' models fitted and evaluated one by one.

use cohort::Engine;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{Float64Type, Int64Type};

use crate::common::engines::{demo_engine, engine};
use crate::common::{assert_rel, engine_with, query, reference, register_split};

/// The union of a split's two files, `is_eval` true for the second.
fn flagged(stem: &str) -> String {
    format!(
        "SELECT *, false AS is_eval FROM {stem}_train UNION ALL SELECT *, true AS is_eval FROM \
         {stem}_test"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_split_is_evaluated_as_scikit_learn() {
    let (engine, _store) = engine().unwrap();
    let dir = tempfile::tempdir().unwrap();
    register_split(&engine, dir.path(), "diabetes.csv", 300).await;
    register_split(&engine, dir.path(), "telco_sample.csv", 1500).await;
    for sql in [
        format!(
            "CREATE MODEL dia OPTIONS (model_type = 'linear_reg', label = 'target', \
             data_split_method = 'custom', data_split_col = 'is_eval') AS {}",
            flagged("diabetes")
        ),
        format!(
            "CREATE MODEL tel OPTIONS (model_type = 'logistic_reg', label = 'churn', \
             positive_class = 'Yes', data_split_method = 'custom', data_split_col = 'is_eval') \
             AS {}",
            flagged("telco_sample")
        ),
    ] {
        engine.execute(&sql).await.unwrap();
    }
    let expected = reference("evaluate_holdout.csv");
    for (model, name, train, rows) in [("diabetes", "dia", 300, 142), ("telco", "tel", 1500, 500)] {
        let batch = query(&engine, &format!("SELECT * FROM evaluate('{name}')")).await;
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(
            batch.column(0).as_primitive::<Int64Type>().value(0),
            rows,
            "{model} eval rows"
        );
        let stored = engine.store().load(name).unwrap().description;
        assert_eq!(stored.training_rows, train, "{model} training rows");
        for row in expected.iter().filter(|r| r[0] == model) {
            let (metric, value) = (&row[1], row[2].parse::<f64>().unwrap());
            let i = batch.schema().index_of(metric).unwrap();
            let actual = batch.column(i).as_primitive::<Float64Type>().value(0);
            assert_rel(actual, value, 1e-9, &format!("{model} {metric}"));
        }
    }
}

/// The stored cross-validation spread of `metric` for model `name`: (mean, std).
fn cv(engine: &Engine, name: &str, metric: &str) -> (f64, f64) {
    let a = engine.store().load(name).unwrap().description.assessment;
    let s =
        a.cv.iter()
            .find(|s| s.metric == metric)
            .unwrap_or_else(|| panic!("no cv {metric} in {:?}", a.cv));
    (s.mean, s.std)
}

/// A forecast's folds are blocks of consecutive points: with 3 folds, 144 months make 4
/// blocks of 36, and fold f is fitted on the blocks up to f and judged on the next.
#[tokio::test(flavor = "multi_thread")]
async fn a_forecast_is_cross_validated_on_blocks_of_time() {
    let (engine, _store) = engine_with("air_passengers.csv").await;
    let months = "SELECT to_date(\"Date\" || '-01') AS month, \"Passengers\" AS passengers \
                  FROM air_passengers";
    engine
        .execute(&format!(
            "CREATE MODEL air_cv OPTIONS (model_type = 'forecast', time_col = 'month', \
             value_col = 'passengers', horizon = 36, cv_folds = 3) AS {months}"
        ))
        .await
        .unwrap();
    let mut mase = Vec::new();
    for f in 0..3 {
        let (fit, held) = (36 * (f + 1), 36 * (f + 2));
        engine
            .execute(&format!(
                "CREATE MODEL air_{f} OPTIONS (model_type = 'forecast', time_col = 'month', \
                 value_col = 'passengers', horizon = 36) AS SELECT * FROM ({months}) \
                 ORDER BY month LIMIT {fit}"
            ))
            .await
            .unwrap();
        let batch = query(
            &engine,
            &format!(
                "SELECT mase, rows FROM evaluate('air_{f}', (SELECT * FROM ({months}) ORDER BY \
                 month LIMIT 36 OFFSET {fit}))"
            ),
        )
        .await;
        assert_eq!(batch.column(1).as_primitive::<Int64Type>().value(0), 36);
        assert!(held <= 144);
        mase.push(batch.column(0).as_primitive::<Float64Type>().value(0));
    }
    let mean = mase.iter().sum::<f64>() / 3.0;
    let std = (mase.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    let (cv_mean, cv_std) = cv(&engine, "air_cv", "mase");
    assert_rel(cv_mean, mean, 1e-12, "cv mase mean");
    assert_rel(cv_std, std, 1e-9, "cv mase std");
    // The stored model is fitted on every row.
    let stored = engine.store().load("air_cv").unwrap().description;
    assert_eq!(stored.training_rows, 144);
}

/// A classifier's folds are dealt within each class, so their sizes differ by at most one
/// per class, and together they hold every training row once; the model itself is fitted on
/// all of the training rows, and CREATE MODEL reports the folds' spread.
#[tokio::test(flavor = "multi_thread")]
async fn a_classifier_is_cross_validated_on_stratified_folds() {
    let (engine, _store) = demo_engine(0.1).unwrap();
    let result = engine
        .execute(
            "CREATE MODEL churn_cv OPTIONS (model_type = 'logistic_reg', label = 'churned', \
             data_split_method = 'random', cv_folds = 5) AS \
             SELECT churned, tenure_months, monthly_charges, support_calls, plan FROM customers",
        )
        .await
        .unwrap();
    let batch = &result.batches[0];
    let shown = |name: &str| {
        let i = batch.schema().index_of(name).unwrap();
        batch.column(i).as_string::<i32>().value(0).to_string()
    };
    assert!(
        shown("cv_metrics").starts_with("5 folds: rows="),
        "{}",
        shown("cv_metrics")
    );
    assert!(shown("eval_metrics").starts_with("random, 20% of rows, seed 42: rows="));
    let stored = engine.store().load("churn_cv").unwrap().description;
    let (rows, rows_std) = cv(&engine, "churn_cv", "rows");
    assert_rel(rows * 5.0, stored.training_rows as f64, 1e-12, "fold rows");
    assert!(rows_std <= 1.0, "fold sizes spread by {rows_std}");
    let (auc, auc_std) = cv(&engine, "churn_cv", "auc");
    assert!(
        auc > 0.6 && auc < 1.0 && auc_std > 0.0 && auc_std < 0.1,
        "{auc} ± {auc_std}"
    );
    // With 1000 rows, 'random' holds out about a fifth.
    let eval = query(&engine, "SELECT rows FROM evaluate('churn_cv')").await;
    let eval_rows = eval.column(0).as_primitive::<Int64Type>().value(0) as u64;
    assert_eq!(eval_rows + stored.training_rows, 1000);
}

/// A linear regression's folds are all fitted from one read of the rows (each fold's
/// moments, merged for the others); their metrics equal those of one fit per fold, each on
/// its own rows, as when the rows do not fit the memory limit.
#[tokio::test(flavor = "multi_thread")]
async fn a_linear_regression_is_cross_validated_in_one_read() {
    let (engine, _store) = demo_engine(0.1).unwrap();
    let create = |name: &str| {
        format!(
            "CREATE MODEL {name} OPTIONS (model_type = 'linear_reg', label = 'monthly_charges', \
             data_split_method = 'random', cv_folds = 5) AS \
             SELECT monthly_charges, tenure_months, support_calls, tenure_months * \
             support_calls AS both FROM customers"
        )
    };
    engine.execute(&create("one_read")).await.unwrap();
    engine
        .execute("SET datafusion.runtime.memory_limit = '64K'")
        .await
        .unwrap();
    let result = engine.execute(&create("per_fold")).await.unwrap();
    let batch = &result.batches[0];
    let warnings = batch
        .column(batch.schema().index_of("warnings").unwrap())
        .as_string::<i32>()
        .value(0);
    assert!(
        warnings.contains("every pass read them again"),
        "{warnings}"
    );
    let one_read = engine.store().load("one_read").unwrap().description;
    let metrics: Vec<&str> = one_read
        .assessment
        .cv
        .iter()
        .map(|s| s.metric.as_str())
        .collect();
    assert!(
        metrics.contains(&"r2") && metrics.contains(&"rmse"),
        "{metrics:?}"
    );
    for metric in metrics {
        let (a, a_std) = cv(&engine, "one_read", metric);
        let (b, b_std) = cv(&engine, "per_fold", metric);
        // (Some are 0, as the rows skipped.)
        let near = |x: f64, y: f64, tolerance: f64| (x - y).abs() <= tolerance * x.abs().max(1.0);
        assert!(
            near(a, b, 1e-9) && near(a_std, b_std, 1e-7),
            "{metric}: {a} ± {a_std} in one read, {b} ± {b_std} per fold"
        );
    }
}
