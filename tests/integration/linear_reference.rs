//! The linear kernel against statsmodels OLS on the diabetes data
//! (tests/reference/diabetes_ols.py wrote the expected values).

use cohort_udfs::kernels::linear::{LinearOptions, fit_linear};
use cohort_udfs::kernels::moments::Moments;

use crate::common::{assert_rel, csv, reference};

#[test]
fn diabetes_matches_statsmodels_ols() {
    let rows = csv("tests/data/diabetes.csv");
    let header = &rows[0];
    let columns: Vec<Vec<f64>> = (0..header.len())
        .map(|j| rows[1..].iter().map(|r| r[j].parse().unwrap()).collect())
        .collect();
    assert_eq!(header.last().map(String::as_str), Some("target"));

    // Accumulate in uneven pieces merged out of order, as partitions would be.
    let mut total = Moments::new(columns.len());
    for (lo, hi) in [(300, 442), (0, 1), (1, 300)] {
        let mut part = Moments::new(columns.len());
        part.update(&columns.iter().map(|c| &c[lo..hi]).collect::<Vec<_>>());
        total.merge(&part);
    }
    let fit = fit_linear(&total, LinearOptions::default()).unwrap();
    assert!(fit.dropped.is_empty());

    for row in &reference("diabetes_ols.csv") {
        let value = |i: usize| row[i].parse::<f64>().unwrap();
        match row[0].as_str() {
            "r2" => assert_rel(fit.r2, value(1), 1e-9, "r2"),
            "adj_r2" => assert_rel(fit.adj_r2, value(1), 1e-9, "adj_r2"),
            "const" => {
                assert_rel(fit.intercept, value(1), 1e-6, "intercept");
                assert_rel(fit.intercept_std_err, value(2), 1e-6, "intercept se");
                assert_rel(fit.intercept_t(), value(3), 1e-6, "intercept t");
                assert_rel(fit.intercept_p(), value(4), 1e-6, "intercept p");
            }
            name => {
                let j = header.iter().position(|h| h == name).unwrap();
                assert_rel(fit.coef[j], value(1), 1e-6, name);
                assert_rel(fit.std_err[j], value(2), 1e-6, name);
                assert_rel(fit.t[j], value(3), 1e-6, name);
                assert_rel(fit.p[j], value(4), 1e-6, name);
            }
        }
    }
    // The published figure for this data.
    assert!((fit.r2 - 0.51775).abs() < 5e-6, "{}", fit.r2);
}
