//! The customer_value model on the CDNOW sample against the published estimates (Fader,
//! Hardie & Lee 2005) and the reference values of tests/reference/customer_value_reference.py
//! (an independent scipy likelihood, lifetimes' fitters and mpmath), which need no Python
//! to check.

use cohort::Engine;
use cohort_udfs::kernels::customer_value::special::hyp2f1;
use cohort_udfs::kernels::customer_value::{
    BgNbdLikelihood, Customers, Likelihood, ParetoNbdLikelihood,
};
use datafusion::arrow::array::{Array, AsArray};

use crate::common::{assert_rel, engine_with, floats, ints, query, reference};

const CREATE: &str = "CREATE OR REPLACE MODEL {name} OPTIONS (model_type = 'customer_value', \
     customer_col = 'customer_id', time_col = 'order_date', amount_col = 'dollar_value', \
     calibration_end = DATE '1997-09-30', time_unit = 'week', purchase_model = '{kind}') AS \
     SELECT * FROM cdnow_sample";

/// A value of tests/reference/customer_value_cdnow.csv.
fn expected(name: &str) -> f64 {
    reference("customer_value_cdnow.csv")
        .into_iter()
        .find(|r| r[0] == name)
        .unwrap_or_else(|| panic!("no reference value {name}"))[1]
        .parse()
        .unwrap()
}

async fn fit(engine: &Engine, name: &str, kind: &str) {
    let sql = CREATE.replace("{name}", name).replace("{kind}", kind);
    engine.execute(&sql).await.unwrap();
}

/// EXPLAIN_MODEL's (parameter, value, std_err) rows.
async fn parameters(engine: &Engine, model: &str) -> Vec<(String, f64, f64)> {
    let batch = query(
        engine,
        &format!("SELECT parameter, value, std_err FROM explain_model('{model}')"),
    )
    .await;
    let names = batch.column(0).as_string::<i32>();
    let (values, errors) = (floats(batch.column(1)), floats(batch.column(2)));
    (0..batch.num_rows())
        .map(|i| (names.value(i).to_string(), values[i], errors[i]))
        .collect()
}

/// The log-likelihood DESCRIBE MODEL reports.
async fn log_likelihood(engine: &Engine, model: &str) -> f64 {
    let batch = query(engine, &format!("DESCRIBE MODEL {model}")).await;
    let (keys, values) = (
        batch.column(0).as_string::<i32>(),
        batch.column(1).as_string::<i32>(),
    );
    let i = (0..keys.len())
        .find(|&i| keys.value(i) == "metric log_likelihood")
        .unwrap();
    values.value(i).parse().unwrap()
}

/// Every calibration customer's (x, t_x, T) as CUSTOMER_VALUE reports it.
async fn summaries(engine: &Engine, model: &str) -> Customers {
    let batch = query(
        engine,
        &format!("SELECT frequency, recency, tenure FROM customer_value('{model}', horizon => 39)"),
    )
    .await;
    let mut c = Customers::default();
    for ((x, t_x), t) in ints(batch.column(0))
        .into_iter()
        .zip(floats(batch.column(1)))
        .zip(floats(batch.column(2)))
    {
        c.push(x as u32, t_x, t);
    }
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn bg_nbd_on_cdnow_matches_the_paper_and_lifetimes() {
    let (engine, _store) = engine_with("cdnow_sample.csv.gz").await;
    fit(&engine, "cdnow_value", "bg_nbd").await;

    // The summaries follow the conventions: the same customers and sums as pandas.
    let c = summaries(&engine, "cdnow_value").await;
    assert_eq!(c.len() as f64, expected("customers"));
    assert_eq!(
        c.x.iter().filter(|x| **x > 0).count() as f64,
        expected("repeat_customers")
    );
    assert_eq!(
        c.x.iter().map(|x| f64::from(*x)).sum::<f64>(),
        expected("sum_x")
    );
    assert_rel(c.t_x.iter().sum(), expected("sum_t_x"), 1e-12, "sum t_x");
    assert_rel(c.t.iter().sum(), expected("sum_T"), 1e-12, "sum T");

    // The likelihood at the published parameters equals the independent implementation.
    let lik = BgNbdLikelihood {
        customers: &c,
        max_x: c.max_x(),
    };
    let (ll, _) = lik.value_and_gradient(&[0.243, 4.414, 0.793, 2.426]);
    let want = expected("bg_nbd_ll_published");
    assert!((ll - want).abs() < 1e-6, "{ll} vs {want}");

    // The fit: the published digits, and lifetimes' optimum.
    let fitted = parameters(&engine, "cdnow_value").await;
    let published = [
        ("r", 0.243, 3),
        ("alpha", 4.414, 3),
        ("a", 0.793, 3),
        ("b", 2.426, 3),
        ("p", 6.25, 2),
        ("q", 3.74, 2),
        ("gamma", 15.44, 2),
    ];
    assert_eq!(fitted.len(), published.len());
    for ((name, value, std_err), (want_name, paper, digits)) in fitted.iter().zip(published) {
        assert_eq!(name, want_name);
        let scale = 10f64.powi(digits);
        assert_eq!((value * scale).round() / scale, paper, "{name} = {value}");
        assert!(
            *std_err > 0.0 && std_err.is_finite(),
            "{name} std_err {std_err}"
        );
    }
    for (name, value, _) in &fitted[..4] {
        assert_rel(*value, expected(&format!("bg_nbd_{name}")), 1e-5, name);
    }
    for (name, value, _) in &fitted[4..] {
        assert_rel(*value, expected(&format!("gamma_gamma_{name}")), 1e-3, name);
    }
    let ll = log_likelihood(&engine, "cdnow_value").await;
    assert_eq!((ll * 10.0).round() / 10.0, -9582.4);
    assert!((ll - expected("bg_nbd_ll")).abs() < 1e-6, "{ll}");

    // The paper's example customer: 1.226 purchases in the next 39 weeks.
    let batch = query(
        &engine,
        "SELECT expected_purchases('cdnow_value', 39, 2, 30.43, 38.86), \
                p_alive('cdnow_value', 2, 30.43, 38.86)",
    )
    .await;
    let e = floats(batch.column(0))[0];
    assert_eq!((e * 1000.0).round() / 1000.0, 1.226);
    assert_rel(
        e,
        expected("bg_nbd_expected_example"),
        1e-5,
        "expected purchases",
    );
    assert_rel(
        floats(batch.column(1))[0],
        expected("bg_nbd_p_alive_example"),
        1e-5,
        "p_alive",
    );

    // The holdout: 39 weeks to 1998-06-30, as lifetimes predicts it.
    let batch = query(
        &engine,
        "SELECT customers, holdout_actual, holdout_predicted, mae, rmse \
         FROM evaluate('cdnow_value', cdnow_sample)",
    )
    .await;
    assert_eq!(ints(batch.column(0)), vec![2357]);
    assert_eq!(floats(batch.column(1))[0], expected("holdout_actual"));
    assert_rel(
        floats(batch.column(2))[0],
        expected("bg_nbd_holdout_predicted"),
        1e-4,
        "predicted",
    );
    let (mae, rmse) = (floats(batch.column(3))[0], floats(batch.column(4))[0]);
    assert!(0.0 < mae && mae < rmse, "mae {mae} rmse {rmse}");

    // The calibration table: every customer in one of the frequency groups 0..7+, and the
    // group means add up to EVALUATE's totals.
    let batch = query(
        &engine,
        "SELECT frequency, customers, actual, predicted FROM calibration('cdnow_value', \
         cdnow_sample) ORDER BY frequency",
    )
    .await;
    let groups: Vec<&str> = batch
        .column(0)
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect();
    assert_eq!(groups, ["0", "1", "2", "3", "4", "5", "6", "7+"]);
    let counts = ints(batch.column(1));
    assert_eq!(counts.iter().sum::<i64>(), 2357);
    let actual: f64 = counts
        .iter()
        .zip(floats(batch.column(2)))
        .map(|(n, a)| *n as f64 * a)
        .sum();
    assert_rel(
        actual,
        expected("holdout_actual"),
        1e-12,
        "calibration actual",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pareto_nbd_on_cdnow_matches_lifetimes() {
    let (engine, _store) = engine_with("cdnow_sample.csv.gz").await;
    fit(&engine, "cdnow_pareto", "pareto_nbd").await;
    let fitted = parameters(&engine, "cdnow_pareto").await;
    let names: Vec<&str> = fitted.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, ["r", "alpha", "s", "beta", "p", "q", "gamma"]);
    for (name, value, _) in &fitted[..4] {
        assert_rel(*value, expected(&format!("pareto_nbd_{name}")), 1e-4, name);
    }
    let ll = log_likelihood(&engine, "cdnow_pareto").await;
    assert!((ll - expected("pareto_nbd_ll")).abs() < 1e-4, "{ll}");
    let batch = query(
        &engine,
        "SELECT p_alive('cdnow_pareto', 2, 30.43, 38.86), \
                expected_purchases('cdnow_pareto', 39, 2, 30.43, 38.86)",
    )
    .await;
    assert_rel(
        floats(batch.column(0))[0],
        expected("pareto_nbd_p_alive_example"),
        1e-4,
        "p_alive",
    );
    assert_rel(
        floats(batch.column(1))[0],
        expected("pareto_nbd_expected_example"),
        1e-4,
        "expected",
    );
}

/// 2F1 and the Pareto/NBD likelihood far from the data, against mpmath at 30 digits.
#[test]
fn special_functions_hold_at_extreme_x_and_t() {
    let cases = [
        (1.0, 0.55, 2.2, 0.999),
        (1.0, 300.55, 302.16, 0.98),
        (1.0, 1.61, 1001.2, 0.9999),
        (0.55 + 500.0, 0.61 + 1.0, 0.55 + 0.61 + 501.0, 0.5),
        (2.243, 4.426, 5.219, 0.5),
    ];
    for (i, (a, b, c, z)) in cases.into_iter().enumerate() {
        assert_rel(
            hyp2f1(a, b, c, z),
            expected(&format!("hyp2f1_{i}")),
            1e-12,
            "2F1",
        );
    }
    let cases = [
        ([0.55, 10.58, 0.61, 11.67], (0, 0.0, 1000.0)),
        ([0.55, 10.58, 0.61, 11.67], (300, 77.5, 78.0)),
        ([0.55, 10.58, 0.61, 11.67], (5, 0.5, 5000.0)),
        ([0.55, 200.0, 0.61, 0.3], (2, 1.0, 5000.0)),
        ([0.55, 200.0, 0.61, 0.3], (150, 3000.0, 3100.0)),
    ];
    for (i, (params, (x, t_x, t))) in cases.into_iter().enumerate() {
        let mut c = Customers::default();
        c.push(x, t_x, t);
        let lik = ParetoNbdLikelihood {
            customers: &c,
            max_x: x,
        };
        let (ll, _) = lik.value_and_gradient(&params);
        let want = expected(&format!("pareto_nbd_ll_extreme_{i}"));
        assert!(
            (ll - want).abs() < 1e-9 * want.abs().max(1.0),
            "case {i}: {ll} vs {want}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn customer_value_rows_rank_customers_by_value() {
    let (engine, _store) = engine_with("cdnow_sample.csv.gz").await;
    fit(&engine, "cdnow_rank", "bg_nbd").await;
    let batch = query(
        &engine,
        "SELECT v.customer_id, v.frequency, v.p_alive, v.expected_purchases, \
                v.expected_spend, v.clv, d.clv AS discounted \
         FROM CUSTOMER_VALUE('cdnow_rank', horizon => 52) v \
         JOIN customer_value('cdnow_rank', 52, 0.01) d ON d.customer_id = v.customer_id \
         ORDER BY v.clv DESC LIMIT 20",
    )
    .await;
    assert_eq!(batch.schema().field(0).name(), "customer_id");
    let clv = floats(batch.column(5));
    assert!(clv.windows(2).all(|w| w[0] >= w[1]));
    let column = |i: usize| floats(batch.column(i));
    let (alive, expected, spend, discounted) = (column(2), column(3), column(4), column(6));
    for (i, value) in clv.iter().enumerate() {
        assert!((0.0..=1.0).contains(&alive[i]));
        assert_rel(
            *value,
            expected[i] * spend[i],
            1e-12,
            "clv without discounting",
        );
        let d = discounted[i];
        assert!(d < *value && d > 0.5 * value, "{d} vs {value}");
    }
}
