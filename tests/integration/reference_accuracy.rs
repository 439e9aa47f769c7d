//! Models trained through SQL against reference libraries (expected values written by the
//! scripts in tests/reference/; no Python is needed to run these tests).

use cohort::Engine;
use cohort::engine::files::register_files;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Float64Type;

use crate::common::engines::{demo_engine, engine};
use crate::common::{assert_rel, engine_with, floats, query, reference, register_split};

/// Compares EXPLAIN_MODEL of `model` with the coefficient rows of a reference file.
async fn assert_explain_matches(engine: &Engine, model: &str, reference_file: &str) {
    let result = engine
        .execute(&format!(
            "SELECT feature, weight, std_err, z_or_t, p_value FROM explain_model('{model}')"
        ))
        .await
        .unwrap();
    let batch = &result.batches[0];
    let features: Vec<String> = batch
        .column(0)
        .as_string::<i32>()
        .iter()
        .map(|s| s.unwrap().replace("(intercept)", "const"))
        .collect();
    let (w, se, t, p) = (
        floats(batch.column(1)),
        floats(batch.column(2)),
        floats(batch.column(3)),
        floats(batch.column(4)),
    );

    let expected = reference(reference_file);
    let terms: Vec<&Vec<String>> = expected.iter().filter(|r| !r[2].is_empty()).collect();
    assert_eq!(features.len(), terms.len());
    for row in terms {
        let i = features.iter().position(|f| *f == row[0]).unwrap();
        let value = |k: usize| row[k].parse::<f64>().unwrap();
        assert_rel(w[i], value(1), 1e-6, &format!("{} weight", row[0]));
        assert_rel(se[i], value(2), 1e-6, &format!("{} std_err", row[0]));
        assert_rel(t[i], value(3), 1e-6, &format!("{} statistic", row[0]));
        assert_rel(p[i], value(4), 1e-6, &format!("{} p", row[0]));
    }
}

/// The value of `metric` from DESCRIBE MODEL, at full precision.
async fn metric(engine: &Engine, model: &str, metric: &str) -> f64 {
    let result = engine
        .execute(&format!("DESCRIBE MODEL {model}"))
        .await
        .unwrap();
    let batch = &result.batches[0];
    let keys = batch.column(0).as_string::<i32>();
    let values = batch.column(1).as_string::<i32>();
    let i = (0..keys.len())
        .find(|&i| keys.value(i) == format!("metric {metric}"))
        .unwrap();
    values.value(i).parse().unwrap()
}

/// The value column of a reference row such as `auc,0.85,,,`.
fn reference_value(file: &str, name: &str) -> f64 {
    reference(file).into_iter().find(|r| r[0] == name).unwrap()[1]
        .parse()
        .unwrap()
}

/// The warnings column of a CREATE MODEL's report.
fn warnings(report: &RecordBatch) -> &str {
    let i = report.schema().index_of("warnings").unwrap();
    report.column(i).as_string::<i32>().value(0)
}

/// With `memory_limit`, sets that memory pool and small batches.
async fn limit_memory(engine: &Engine, memory_limit: Option<&str>) {
    if let Some(limit) = memory_limit {
        for set in [
            format!("SET datafusion.runtime.memory_limit = '{limit}'"),
            "SET datafusion.execution.batch_size = 50".to_string(),
        ] {
            engine.execute(&set).await.unwrap();
        }
    }
}

/// Runs a CREATE MODEL; with `memory_limit`, under that memory pool, which the training rows
/// must overflow, so that every pass of the fit reads them again, in small batches that make
/// several groups. Returns the report's warnings.
async fn create_model(engine: &Engine, sql: &str, memory_limit: Option<&str>) -> String {
    limit_memory(engine, memory_limit).await;
    let result = engine.execute(sql).await.unwrap();
    let warnings = warnings(&result.batches[0]);
    assert_eq!(
        warnings.contains("did not fit the memory pool"),
        memory_limit.is_some(),
        "{warnings}"
    );
    warnings.to_string()
}

#[tokio::test]
async fn diabetes_linear_reg_matches_statsmodels_ols() {
    for memory_limit in [None, Some("32K")] {
        diabetes_linear_reg(memory_limit).await;
    }
}

async fn diabetes_linear_reg(memory_limit: Option<&str>) {
    let (engine, _store) = engine_with("diabetes.csv").await;
    create_model(
        &engine,
        "CREATE MODEL dia OPTIONS (model_type = 'linear_reg', label = 'target') AS \
         SELECT * FROM diabetes",
        memory_limit,
    )
    .await;
    assert_explain_matches(&engine, "dia", "diabetes_ols.csv").await;
    assert_rel(
        metric(&engine, "dia", "r2").await,
        reference_value("diabetes_ols.csv", "r2"),
        1e-9,
        "r2",
    );

    assert!((metric(&engine, "dia", "r2").await - 0.51775).abs() < 5e-6);
}

#[tokio::test]
async fn telco_logistic_reg_matches_statsmodels_logit_and_sklearn_metrics() {
    for memory_limit in [None, Some("32K")] {
        telco_logistic_reg(memory_limit).await;
    }
}

async fn telco_logistic_reg(memory_limit: Option<&str>) {
    let (engine, _store) = engine_with("telco_sample.csv").await;
    create_model(
        &engine,
        "CREATE MODEL churn OPTIONS (model_type = 'logistic_reg', label = 'churn', \
         positive_class = 'Yes') AS SELECT * FROM telco_sample",
        memory_limit,
    )
    .await;
    assert_explain_matches(&engine, "churn", "telco_logit.csv").await;
    // The AUC counts pairs of rows (526 positive × 1,474 negative here): two rows whose
    // probabilities agree to the last bits tie or not as the fit's last digits fall, which
    // moves it by half a pair, 6.4e-7 of it; the fit is exact to about 1e-10.
    for (m, tol) in [("auc", 1e-6), ("log_loss", 1e-9), ("accuracy", 1e-9)] {
        assert_rel(
            metric(&engine, "churn", m).await,
            reference_value("telco_logit.csv", m),
            tol,
            m,
        );
    }
}

#[tokio::test]
async fn demo_churn_model_recovers_the_generators_coefficients() {
    use cohort::demo::churn;
    // 100,000 customers.
    let (engine, _store) = demo_engine(10.0).unwrap();
    engine
        .execute(
            "CREATE MODEL churn OPTIONS (model_type = 'logistic_reg', label = 'churned') AS \
             SELECT churned, tenure_months, monthly_charges, support_calls, age, plan, channel \
             FROM customers",
        )
        .await
        .unwrap();
    let result = engine
        .execute("SELECT feature, weight, std_err FROM explain_model('churn')")
        .await
        .unwrap();
    let batch = &result.batches[0];
    let names = batch.column(0).as_string::<i32>();
    let (w, se) = (floats(batch.column(1)), floats(batch.column(2)));
    // The reference levels are the most frequent ones, basic and web, as in the generator.
    let truth = [
        ("(intercept)", churn::INTERCEPT),
        ("tenure_months", churn::TENURE_MONTHS),
        ("monthly_charges", churn::MONTHLY_CHARGES),
        ("support_calls", churn::SUPPORT_CALLS),
        ("age", churn::AGE),
        ("plan=standard", churn::PLAN[1]),
        ("plan=premium", churn::PLAN[2]),
        ("channel=mobile", churn::CHANNEL[1]),
        ("channel=store", churn::CHANNEL[2]),
        ("channel=partner", churn::CHANNEL[3]),
    ];
    assert_eq!(names.len(), truth.len());
    // Stated tolerance: every estimate within four standard errors of the planted value.
    for (feature, expected) in truth {
        let i = (0..names.len())
            .find(|&i| names.value(i) == feature)
            .unwrap();
        assert!(
            (w[i] - expected).abs() < 4.0 * se[i],
            "{feature}: estimated {} ± {}, planted {expected}",
            w[i],
            se[i]
        );
    }
}

#[tokio::test]
async fn evaluate_on_a_holdout_matches_scikit_learn() {
    let (engine, _store) = engine().unwrap();
    let dir = tempfile::tempdir().unwrap();
    register_split(&engine, dir.path(), "diabetes.csv", 300).await;
    register_split(&engine, dir.path(), "telco_sample.csv", 1500).await;
    engine
        .execute(
            "CREATE MODEL dia OPTIONS (model_type = 'linear_reg', label = 'target') AS \
             SELECT * FROM diabetes_train",
        )
        .await
        .unwrap();
    engine
        .execute(
            "CREATE MODEL tel OPTIONS (model_type = 'logistic_reg', label = 'churn', \
             positive_class = 'Yes') AS SELECT * FROM telco_sample_train",
        )
        .await
        .unwrap();
    let expected = reference("evaluate_holdout.csv");
    for (model, table, rows) in [
        ("diabetes", "EVALUATE('dia', diabetes_test)", 142),
        ("telco", "EVALUATE('tel', telco_sample_test)", 500),
    ] {
        let result = engine
            .execute(&format!("SELECT * FROM {table}"))
            .await
            .unwrap();
        let batch = &result.batches[0];
        assert_eq!(batch.num_rows(), 1);
        let count = batch
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        assert_eq!(count.value(0), rows);
        for row in expected.iter().filter(|r| r[0] == model) {
            let (name, value) = (&row[1], row[2].parse::<f64>().unwrap());
            let i = batch.schema().index_of(name).unwrap();
            let actual = batch.column(i).as_primitive::<Float64Type>().value(0);
            assert_rel(actual, value, 1e-9, &format!("{model} {name}"));
        }
    }
}

/// The telco columns with one of the offers of tests/data/telco_separation.csv.
fn telco_with(offer: &str, table: &str) -> String {
    format!(
        "SELECT churn, tenure, monthly_charges, contract, internet_service, paperless_billing, \
         senior_citizen, total_charges, {offer} FROM {table}"
    )
}

/// Quasi-complete separation (tests/reference/telco_separation.py): a rare offer level that
/// only churners got, or only customers who stayed. The model trains with a warning that
/// names the level; the level's coefficient ends large, in the direction of its class, with
/// NULL statistics; and on the held-out rows it scores as scikit-learn's unpenalised fit.
/// Also with the training rows read again for every pass.
#[tokio::test]
async fn a_rare_level_of_one_class_trains_and_scores_as_scikit_learn() {
    for memory_limit in [None, Some("32K")] {
        rare_level_of_one_class(memory_limit).await;
    }
}

async fn rare_level_of_one_class(memory_limit: Option<&str>) {
    let (engine, _store) = engine().unwrap();
    let dir = tempfile::tempdir().unwrap();
    register_split(&engine, dir.path(), "telco_separation.csv", 1500).await;
    let expected = reference("telco_separation.csv");
    for (case, offer, level, sign) in [
        ("churners", "offer_churners", "retention_call", 1.0),
        ("stayers", "offer_stayers", "loyalty_call", -1.0),
    ] {
        let warnings = create_model(
            &engine,
            &format!(
                "CREATE MODEL {case} OPTIONS (model_type = 'logistic_reg', label = 'churn', \
                 positive_class = 'Yes') AS {}",
                telco_with(offer, "telco_separation_train")
            ),
            memory_limit,
        )
        .await;
        let warning = format!(
            "quasi-complete separation: {offer}={level} predicts the class of some training \
             rows exactly, so its coefficient has no finite estimate and is reported at the \
             large value where the fit stopped, with a NULL standard error (add a penalty, e.g. \
             l2_reg = 1, for a finite estimate)"
        );
        assert!(warnings.split("; ").any(|w| w == warning), "{warnings}");
        let explained = query(
            &engine,
            &format!(
                "SELECT feature, weight, std_err, z_or_t, p_value FROM explain_model('{case}')"
            ),
        )
        .await;
        let names = explained.column(0).as_string::<i32>();
        for (i, weight) in floats(explained.column(1)).into_iter().enumerate() {
            let runaway = names.value(i) == format!("{offer}={level}");
            for c in 2..5 {
                assert_eq!(
                    explained.column(c).is_null(i),
                    runaway,
                    "{}",
                    names.value(i)
                );
            }
            if runaway {
                assert!(sign * weight > 10.0, "{weight}");
            }
        }
        let result = query(
            &engine,
            &format!(
                "SELECT auc, log_loss FROM evaluate('{case}', ({}))",
                telco_with(offer, "telco_separation_test")
            ),
        )
        .await;
        for (c, metric) in ["auc", "log_loss"].into_iter().enumerate() {
            let reference: f64 = expected
                .iter()
                .find(|r| r[0] == case && r[1] == metric)
                .unwrap()[2]
                .parse()
                .unwrap();
            let actual = floats(result.column(c))[0];
            assert!(
                (actual - reference).abs() <= 1e-3,
                "{case} {metric}: {actual} vs scikit-learn {reference}"
            );
        }
    }
}

/// Complete separation stays an error, which names the feature that gives the label away;
/// also with the training rows read again for every pass.
#[tokio::test]
async fn complete_separation_is_an_error_naming_the_feature() {
    for memory_limit in [None, Some("32K")] {
        let (engine, _store) = engine_with("telco_sample.csv").await;
        limit_memory(&engine, memory_limit).await;
        let error = engine
            .execute(
                "CREATE MODEL leak OPTIONS (model_type = 'logistic_reg', label = 'churn', \
                 positive_class = 'Yes') AS SELECT churn, tenure, contract, \
                 CASE WHEN churn = 'Yes' THEN 'closed' ELSE 'open' END AS account \
                 FROM telco_sample",
            )
            .await
            .unwrap_err();
        assert!(
            error.to_string().ends_with(
                "CREATE MODEL leak: the features separate the two classes perfectly, so the \
                 coefficients have no finite estimate; add a penalty (e.g. l2_reg = 1) or remove \
                 the feature that gives the label away: account=closed"
            ),
            "{error}"
        );
    }
}

/// RFM on the CDNOW purchases against pandas.qcut (tests/reference/rfm_cdnow.py): every
/// customer's recency, frequency, monetary value, scores and segment.
#[tokio::test(flavor = "multi_thread")]
async fn rfm_matches_pandas_qcut_on_cdnow() {
    let (engine, _store) = engine_with("cdnow_transactions.csv.gz").await;
    register_files(
        engine.context(),
        &[crate::common::root().join("tests/reference/rfm_cdnow.csv.gz")],
    )
    .await
    .unwrap();
    let result = engine
        .execute(
            "SELECT count(*) AS customers, \
                    count(*) FILTER (WHERE e.customer_id IS NULL OR m.customer_id IS NULL \
                      OR m.recency_days <> e.recency_days OR m.frequency <> e.frequency \
                      OR abs(m.monetary - e.monetary) > 1e-6 OR m.r_score <> e.r_score \
                      OR m.f_score <> e.f_score OR m.m_score <> e.m_score \
                      OR m.rfm_segment <> e.rfm_segment) AS different \
             FROM rfm(cdnow_transactions, customer_col => 'customer_id', \
                      time_col => 'order_date', amount_col => 'dollar_value', \
                      as_of => DATE '1998-07-01') m \
             FULL JOIN rfm_cdnow e ON m.customer_id = e.customer_id",
        )
        .await
        .unwrap();
    let batch = &result.batches[0];
    let count = |i: usize| {
        batch
            .column(i)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0)
    };
    // Every customer who ordered, the 68 whose orders were all $0 included.
    assert_eq!(count(0), 23_570, "customers");
    assert_eq!(count(1), 0, "customers whose RFM differs from pandas");
}

/// ETS on air passengers against statsmodels' ETSModel with AICc selection
/// (tests/reference/forecast_air_passengers.py): trained on 1949-1959, every model tried
/// reaches statsmodels' likelihood (AICc within 0.1) and the 1960 forecast's MAPE is within
/// 5% of statsmodels'.
#[tokio::test(flavor = "multi_thread")]
async fn forecast_air_passengers_is_as_accurate_as_statsmodels() {
    let (engine, _store) = engine_with("air_passengers.csv").await;
    let months = |filter: &str| {
        format!(
            "SELECT to_date(\"Date\" || '-01') AS month, \"Passengers\" AS passengers \
             FROM air_passengers WHERE {filter}"
        )
    };
    engine
        .execute(&format!(
            "CREATE MODEL air OPTIONS (model_type = 'forecast', time_col = 'month', \
             value_col = 'passengers') AS {}",
            months("\"Date\" < '1960'")
        ))
        .await
        .unwrap();
    let result = engine
        .execute(&format!(
            "SELECT mape, rows, rows_skipped FROM evaluate('air', ({}))",
            months("\"Date\" >= '1960'")
        ))
        .await
        .unwrap();
    let batch = &result.batches[0];
    let mape = floats(batch.column(0))[0];
    let count = |i: usize| {
        batch
            .column(i)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0)
    };
    assert_eq!((count(1), count(2)), (12, 0), "rows used and skipped");
    let theirs = reference_value("forecast_air_passengers.csv", "mape");
    assert!(
        mape <= 1.05 * theirs,
        "MAPE {mape} is more than 5% worse than statsmodels' {theirs}"
    );
    // Every model tried fits as well as statsmodels fits it: the same log-likelihood or a
    // better one, as AICc with the parameters counted alike (rows aicc_r; see the script).
    let mut report = Vec::new();
    let mut worse = Vec::new();
    for row in reference("forecast_air_passengers.csv") {
        if row[0] != "aicc_r" {
            continue;
        }
        // The model's name, ETS(M,A,M) say, holds the line's last commas.
        let name = row[2..].join(",");
        let theirs: f64 = row[1].parse().unwrap();
        let ours = metric(&engine, "air", &format!("aicc {name}")).await;
        report.push(format!("{name}: {ours:.4} vs statsmodels' {theirs:.4}"));
        if ours > theirs + 0.1 {
            worse.push(name);
        }
    }
    assert_eq!(report.len(), 15, "{report:?}");
    assert!(
        worse.is_empty(),
        "AICc above statsmodels' for {worse:?}:\n{}",
        report.join("\n")
    );
}

/// Twenty months of demo revenue per region: too short for yearly seasonality, so each
/// series gets a model without it, and the CREATE MODEL report lists them.
#[tokio::test]
async fn short_series_are_fitted_without_seasonality_and_the_report_says_so() {
    let (engine, _store) = demo_engine(1.0).unwrap();
    let result = engine
        .execute(
            "CREATE MODEL short OPTIONS (model_type = 'forecast', time_col = 'month', \
             value_col = 'revenue', id_col = 'region') AS \
             SELECT CAST(date_trunc('month', date) AS DATE) AS month, region, \
             sum(revenue) AS revenue FROM daily_revenue \
             WHERE date < DATE '2025-09-01' GROUP BY 1, 2",
        )
        .await
        .unwrap();
    let warnings = warnings(&result.batches[0]);
    assert!(
        warnings.contains(
            "5 series have fewer than 26 values (two full periods of 12 and two more) and \
             were fitted without seasonality: series "
        ),
        "{warnings}"
    );
    let result = engine
        .execute("SELECT CAST(count(*) AS DOUBLE) FROM forecast('short', 3)")
        .await
        .unwrap();
    assert_eq!(floats(result.batches[0].column(0)), vec![15.0]);
}

/// Forecasts of the demo's daily_revenue against the generator's expected revenue (no
/// noise) past the data: per region, the daily model finds the weekly pattern (Saturday
/// highest, Monday lowest, two weeks ahead within 2% of the truth) and the model of monthly
/// means finds the yearly one (the next twelve months within 2.5%, where a forecast without
/// seasonality would be off by about 8%).
#[tokio::test(flavor = "multi_thread")]
async fn demo_revenue_forecasts_recover_weekly_and_yearly_seasonality() {
    use chrono::Datelike;
    use cohort::demo::{AS_OF, REGIONS, revenue};
    let (engine, _store) = demo_engine(1.0).unwrap();
    let forecasts = |sql: String| {
        let engine = &engine;
        async move {
            let result = engine.execute(&sql).await.unwrap();
            let mut rows = Vec::new();
            for batch in &result.batches {
                let ids = batch.column(0).as_string::<i32>();
                let days = batch
                    .column(1)
                    .as_primitive::<datafusion::arrow::datatypes::Date32Type>();
                let values = batch.column(2).as_primitive::<Float64Type>();
                for r in 0..batch.num_rows() {
                    rows.push((ids.value(r).to_string(), days.value(r), values.value(r)));
                }
            }
            rows
        }
    };
    let mape = |rows: &[(String, i32, f64)], truth: &dyn Fn(usize, i32) -> f64| {
        rows.iter()
            .map(|(id, day, f)| {
                let r = REGIONS.iter().position(|n| n == id).unwrap();
                let t = truth(r, *day);
                (f - t).abs() / t
            })
            .sum::<f64>()
            / rows.len() as f64
    };

    engine
        .execute(
            "CREATE MODEL daily OPTIONS (model_type = 'forecast', time_col = 'date', \
             value_col = 'revenue', id_col = 'region') AS SELECT * FROM daily_revenue",
        )
        .await
        .unwrap();
    let daily = forecasts(
        "SELECT id, time, forecast FROM forecast('daily', 14) ORDER BY id, time".to_string(),
    )
    .await;
    assert_eq!(daily.len(), 14 * REGIONS.len());
    assert_eq!(daily[0].1, AS_OF + 1);
    let error = mape(&daily, &|r, day| revenue::expected(r, day));
    assert!(error < 0.02, "daily MAPE against the truth {error}");
    for region in REGIONS {
        let week: Vec<&(String, i32, f64)> = daily
            .iter()
            .filter(|(id, ..)| id == region)
            .take(7)
            .collect();
        // 1970-01-01 was a Thursday: Monday is day 0 when (days + 3) mod 7 = 0.
        let weekday = |day: i32| (day + 3).rem_euclid(7);
        let best = week.iter().max_by(|a, b| a.2.total_cmp(&b.2)).unwrap();
        let worst = week.iter().min_by(|a, b| a.2.total_cmp(&b.2)).unwrap();
        assert_eq!(
            (weekday(best.1), weekday(worst.1)),
            (5, 0),
            "{region}: {week:?}"
        );
    }

    engine
        .execute(
            "CREATE MODEL monthly OPTIONS (model_type = 'forecast', time_col = 'month', \
             value_col = 'revenue', id_col = 'region') AS \
             SELECT CAST(date_trunc('month', date) AS DATE) AS month, region, \
                    avg(revenue) AS revenue \
             FROM daily_revenue WHERE date < DATE '2026-07-01' GROUP BY 1, 2",
        )
        .await
        .unwrap();
    let monthly = forecasts(
        "SELECT id, time, forecast FROM forecast('monthly', 12) ORDER BY id, time".to_string(),
    )
    .await;
    assert_eq!(monthly.len(), 12 * REGIONS.len());
    // The truth of a month is the mean expected revenue over its days.
    let month_mean = |r: usize, first: i32| {
        let mut day = first;
        let mut sum = 0.0;
        let mut n = 0.0;
        let month_of =
            |d: i32| chrono::NaiveDate::from_epoch_days(d).map(|d| (d.year(), d.month()));
        while month_of(day) == month_of(first) {
            sum += revenue::expected(r, day);
            n += 1.0;
            day += 1;
        }
        sum / n
    };
    let error = mape(&monthly, &month_mean);
    assert!(error < 0.025, "monthly MAPE against the truth {error}");
}

/// Explicit matrix factorization of the demo's ratings against the generator's latent
/// factors (`rating = round(3 + 1.5 u·v + noise)`): items have many ratings each, so the
/// learnt item factors must point where the planted ones do. For the best sellers, the
/// cosines between learnt item factors (SIMILAR_ITEMS) follow the planted cosines.
#[tokio::test(flavor = "multi_thread")]
async fn demo_ratings_factorization_recovers_the_planted_item_factors() {
    use cohort::demo::{DEFAULT_SEED, item_factors};
    let (engine, _store) = demo_engine(2.0).unwrap();
    engine
        .execute(
            "CREATE MODEL stars OPTIONS (model_type = 'matrix_factorization', num_factors = 8) \
             AS SELECT customer_id, product_id, rating FROM interactions",
        )
        .await
        .unwrap();
    let cosine = |a: &[f64], b: &[f64]| {
        let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
        dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
    };
    let (mut learnt, mut planted) = (Vec::new(), Vec::new());
    for product in 1..=10i64 {
        let result = engine
            .execute(&format!(
                "SELECT similar_item, score FROM similar_items('stars', {product}, 1000)"
            ))
            .await
            .unwrap();
        let v = item_factors(DEFAULT_SEED, product);
        for batch in &result.batches {
            let items = batch
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            for (r, score) in floats(batch.column(1)).into_iter().enumerate() {
                learnt.push(score);
                planted.push(cosine(&v, &item_factors(DEFAULT_SEED, items.value(r))));
            }
        }
    }
    let n = learnt.len() as f64;
    let mean = |x: &[f64]| x.iter().sum::<f64>() / n;
    let (ml, mp) = (mean(&learnt), mean(&planted));
    let cov: f64 = learnt
        .iter()
        .zip(&planted)
        .map(|(a, b)| (a - ml) * (b - mp))
        .sum();
    let var = |x: &[f64], m: f64| x.iter().map(|a| (a - m).powi(2)).sum::<f64>();
    let correlation = cov / (var(&learnt, ml) * var(&planted, mp)).sqrt();
    assert!(correlation > 0.8, "correlation of cosines {correlation}");
}

#[tokio::test]
async fn elastic_net_matches_scikit_learn() {
    for memory_limit in [None, Some("32K")] {
        for (file, model, sql, zeroed) in [
            (
                "diabetes.csv",
                "linear",
                "CREATE OR REPLACE MODEL m OPTIONS (model_type = 'linear_reg', label = \
                 'target', l1_reg = 2000, l2_reg = 500) AS SELECT * FROM diabetes",
                "l1_reg = 2000 set to zero: age, s1, s2",
            ),
            (
                "telco_sample.csv",
                "logistic",
                "CREATE OR REPLACE MODEL m OPTIONS (model_type = 'logistic_reg', label = \
                 'churn', positive_class = 'Yes', l1_reg = 20, l2_reg = 2) AS \
                 SELECT * FROM telco_sample",
                "l1_reg = 20 set to zero: internet_service=No, total_charges",
            ),
        ] {
            let (engine, _store) = engine_with(file).await;
            let warnings = create_model(&engine, sql, memory_limit).await;
            assert!(warnings.contains(zeroed), "{warnings}");
            let result = engine
                .execute("SELECT feature, weight, std_err FROM explain_model('m')")
                .await
                .unwrap();
            let batch = &result.batches[0];
            let features = batch.column(0).as_string::<i32>();
            let weights = floats(batch.column(1));
            let expected: Vec<Vec<String>> = reference("elastic_net.csv")
                .into_iter()
                .filter(|r| r[0] == model)
                .collect();
            assert_eq!(features.len(), expected.len());
            for row in expected {
                let name = row[1].replace("const", "(intercept)");
                let i = (0..features.len())
                    .find(|&i| features.value(i) == name)
                    .unwrap_or_else(|| panic!("{name}"));
                let want: f64 = row[2].parse().unwrap();
                if want == 0.0 {
                    assert_eq!(weights[i], 0.0, "{model} {name}");
                } else {
                    assert_rel(weights[i], want, 1e-6, &format!("{model} {name}"));
                }
                // No standard errors under an L1 penalty.
                assert!(batch.column(2).is_null(i), "{model} {name}");
            }
        }
    }
}
