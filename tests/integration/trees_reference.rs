//! Boosted trees trained through SQL against LightGBM and XGBoost with the same settings
//! (held-out AUC and RMSE written by tests/reference/trees_reference.py on the split it
//! committed under tests/data/trees/), and what CREATE MODEL reports for them.

use cohort::Engine;
use datafusion::arrow::array::{Array, AsArray};

use crate::common::{engine_with, floats, query, reference};

/// The reference value of `metric` on `dataset` from `library`.
fn expected(dataset: &str, metric: &str, library: &str) -> f64 {
    reference("trees_accuracy.csv")
        .into_iter()
        .find(|r| r[0] == dataset && r[1] == metric && r[2] == library)
        .unwrap()[3]
        .parse()
        .unwrap()
}

/// Trains `model_type` on the rows of `table` out of the holdout and returns `metric` of
/// EVALUATE on the holdout rows.
async fn holdout_metric(
    engine: &Engine,
    table: &str,
    options: &str,
    metric: &str,
) -> (f64, String) {
    let report = query(
        engine,
        &format!(
            "CREATE MODEL m OPTIONS ({options}) AS \
             SELECT * EXCLUDE (holdout) FROM {table} WHERE NOT holdout"
        ),
    )
    .await;
    let i = report.schema().index_of("warnings").unwrap();
    let warnings = report.column(i).as_string::<i32>().value(0).to_string();
    let result = query(
        engine,
        &format!("SELECT {metric} FROM evaluate('m', (SELECT * FROM {table} WHERE holdout))"),
    )
    .await;
    (floats(result.column(0))[0], warnings)
}

#[tokio::test]
async fn telco_churn_auc_is_lightgbms_and_xgboosts() {
    let (engine, _store) = engine_with("trees/telco_churn.csv.gz").await;
    let (auc, warnings) = holdout_metric(
        &engine,
        "telco_churn",
        "model_type = 'boosted_tree_classifier', label = 'churn', positive_class = 'Yes'",
        "auc",
    )
    .await;
    assert_eq!(warnings, "");
    for library in ["lightgbm", "xgboost"] {
        let reference = expected("telco_churn", "auc", library);
        assert!(
            (auc - reference).abs() <= 0.005,
            "held-out AUC {auc} against {library}'s {reference}"
        );
    }
}

#[tokio::test]
async fn regression_rmse_is_within_two_percent_of_lightgbms() {
    for (file, table, label) in [
        ("trees/carseats.csv", "carseats", "Sales"),
        ("trees/diabetes.csv", "diabetes", "target"),
    ] {
        let (engine, _store) = engine_with(file).await;
        let (rmse, _) = holdout_metric(
            &engine,
            table,
            &format!("model_type = 'boosted_tree_regressor', label = '{label}'"),
            "rmse",
        )
        .await;
        let reference = expected(table, "rmse", "lightgbm");
        assert!(
            (rmse / reference - 1.0).abs() <= 0.02,
            "{table}: held-out RMSE {rmse} against LightGBM's {reference}"
        );
    }
}

#[tokio::test]
async fn describe_and_warnings_say_what_the_trees_could_not_use() {
    let (engine, _store) = engine_with("trees/carseats.csv").await;
    let report = query(
        &engine,
        "CREATE MODEL c OPTIONS (model_type = 'boosted_tree_regressor', label = 'Sales', \
         num_trees = 10) AS SELECT \"Sales\", \"Price\", \"ShelveLoc\", 1.5 AS flat FROM carseats",
    )
    .await;
    let i = report.schema().index_of("warnings").unwrap();
    let warnings = report.column(i).as_string::<i32>().value(0);
    assert!(
        warnings.contains(
            "feature flat is constant in every training row, so no tree can split on it; \
             leave it out of the query"
        ),
        "{warnings}"
    );
    let describe = query(&engine, "DESCRIBE MODEL c").await;
    let values = describe.column(1).as_string::<i32>();
    let shown: Vec<&str> = (0..values.len()).map(|i| values.value(i)).collect();
    assert!(shown.contains(&"Price (Int64, binned at quantiles, NULL to a learned side)"));
    assert!(shown.contains(
        &"ShelveLoc (Utf8, 3 categories split natively, NULL and unseen to a learned side)"
    ));

    // More leaves than the rows allow: the trees stay single leaves, and the report says
    // why and what to change.
    let report = query(
        &engine,
        "CREATE MODEL tiny OPTIONS (model_type = 'boosted_tree_regressor', label = 'Sales', \
         num_leaves = 100) AS SELECT \"Sales\", \"Price\" FROM carseats LIMIT 30",
    )
    .await;
    let warnings = report.column(i).as_string::<i32>().value(0);
    assert!(
        warnings.contains(
            "no tree could split: a split needs min_rows_per_leaf = 20 rows on each side"
        ),
        "{warnings}"
    );
    let result = query(
        &engine,
        "SELECT count(DISTINCT PREDICT('tiny', \"Price\")) FROM carseats",
    )
    .await;
    assert_eq!(
        result
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0),
        1
    );
}

#[tokio::test]
async fn the_same_seed_draws_the_same_rows_from_a_source_of_several_partitions() {
    // Three scans of the file in small batches, each for other rows, read in parallel: a
    // fit must see their rows in the same order on every run, or subsample and
    // eval_fraction (drawn by row position) draw other rows.
    let (engine, _store) = engine_with("trees/telco_churn.csv.gz").await;
    engine
        .execute("SET datafusion.execution.batch_size = 64")
        .await
        .unwrap();
    let part =
        |k: u32| format!("SELECT * EXCLUDE (holdout) FROM telco_churn WHERE tenure % 3 = {k}");
    let fit = format!(
        "CREATE OR REPLACE MODEL m OPTIONS (model_type = 'boosted_tree_classifier', \
         label = 'churn', positive_class = 'Yes', num_trees = 20, subsample = 0.5, \
         early_stopping = true, eval_fraction = 0.2) AS {} UNION ALL {} UNION ALL {}",
        part(0),
        part(1),
        part(2)
    );
    // EVALUATE sums in parallel: its last bits vary, another draw moves the third digit.
    let scores = "SELECT log_loss FROM evaluate('m', (SELECT * FROM telco_churn))";
    let mut seen = Vec::new();
    for _ in 0..4 {
        query(&engine, &fit).await;
        seen.push(floats(query(&engine, scores).await.column(0))[0]);
    }
    assert!(
        seen.iter().all(|s| (s / seen[0] - 1.0).abs() < 1e-12),
        "{seen:?}"
    );
}
