//! k-means through SQL against scikit-learn (tests/reference/kmeans_blobs.py wrote the
//! expected values), and against the segments the demo generator planted.

use std::collections::HashMap;

use cohort::demo::{DEFAULT_SEED, Segment, planted_segment};
use datafusion::arrow::array::RecordBatch;

use crate::common::engines::demo_engine;
use crate::common::{engine_with, query, reference};

fn floats(batch: &RecordBatch, name: &str) -> Vec<f64> {
    crate::common::floats(batch.column_by_name(name).unwrap())
}

fn ints(batch: &RecordBatch, name: &str) -> Vec<i64> {
    crate::common::ints(batch.column_by_name(name).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn kmeans_matches_scikit_learn() {
    let (engine, _store) = engine_with("kmeans_blobs.csv").await;
    let rows = reference("kmeans_blobs.csv");
    for standardize in ["true", "false"] {
        let expected: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == standardize).collect();
        engine
            .execute(&format!(
                "CREATE OR REPLACE MODEL blobs OPTIONS (model_type = 'kmeans', num_clusters = 5, \
                 n_init = 10, standardize = {standardize}) AS SELECT a, b, c, d FROM kmeans_blobs"
            ))
            .await
            .unwrap();
        let metrics = query(&engine, "SELECT * FROM evaluate('blobs', kmeans_blobs)").await;
        let inertia = floats(&metrics, "inertia")[0];
        let sklearn: f64 = expected[0][4].parse().unwrap();
        let rel = (inertia - sklearn).abs() / sklearn;
        println!("standardize={standardize}: inertia {inertia} vs {sklearn} (relative {rel:e})");
        if standardize == "false" {
            // The raw columns (one on a scale 100 times the others) have several local
            // optima within a fraction of a percent; ten starts of either library land on
            // different ones (forty of cohort's land below scikit-learn's). The bar:
            assert!(rel < 0.005, "inertia {inertia} vs {sklearn}");
            continue;
        }
        // Standardized, both find the planted groups: the same optimum.
        assert!(
            rel < 1e-9,
            "standardize={standardize}: inertia {inertia} vs {sklearn}"
        );

        let profile = query(
            &engine,
            "SELECT * FROM segment_profile('blobs') ORDER BY segment",
        )
        .await;
        let sizes = ints(&profile, "size");
        for (s, row) in expected.iter().enumerate() {
            assert_eq!(
                sizes[s],
                row[3].parse::<i64>().unwrap(),
                "size of segment {}",
                s + 1
            );
            for (c, name) in ["a", "b", "c", "d"].iter().enumerate() {
                let mine = floats(&profile, name)[s];
                let theirs: f64 = row[5 + c].parse().unwrap();
                assert!(
                    (mine - theirs).abs() <= 1e-6 * theirs.abs().max(1.0),
                    "standardize={standardize} segment {} {name}: {mine} vs {theirs}",
                    s + 1
                );
            }
        }
    }
}

/// Adjusted Rand index of two labelings (Hubert and Arabie).
fn adjusted_rand(a: &[i64], b: &[i64]) -> f64 {
    let choose2 = |n: f64| n * (n - 1.0) / 2.0;
    let mut table: HashMap<(i64, i64), f64> = HashMap::new();
    let mut rows: HashMap<i64, f64> = HashMap::new();
    let mut cols: HashMap<i64, f64> = HashMap::new();
    for (x, y) in a.iter().zip(b) {
        *table.entry((*x, *y)).or_default() += 1.0;
        *rows.entry(*x).or_default() += 1.0;
        *cols.entry(*y).or_default() += 1.0;
    }
    let index: f64 = table.values().map(|n| choose2(*n)).sum();
    let sum_rows: f64 = rows.values().map(|n| choose2(*n)).sum();
    let sum_cols: f64 = cols.values().map(|n| choose2(*n)).sum();
    let expected = sum_rows * sum_cols / choose2(a.len() as f64);
    let max = (sum_rows + sum_cols) / 2.0;
    (index - expected) / (max - expected)
}

#[test]
fn adjusted_rand_of_known_cases() {
    assert_eq!(adjusted_rand(&[0, 0, 1, 1], &[5, 5, 7, 7]), 1.0);
    // scikit-learn: adjusted_rand_score([0, 0, 1, 2], [0, 0, 1, 1]) = 0.5714285714285715
    assert!((adjusted_rand(&[0, 0, 1, 2], &[0, 0, 1, 1]) - 0.5714285714285715).abs() < 1e-15);
}

/// The demo's planted behavioural segments, recovered from each customer's orders.
#[tokio::test(flavor = "multi_thread")]
async fn demo_segments_are_recovered() {
    let (engine, _store) = demo_engine(1.0).unwrap();
    // Per customer: days since the last order, orders per month over the months the
    // generator could place orders in (since signup, at most two years), and order value.
    let features = "SELECT o.customer_id, \
         CAST(DATE '2026-07-01' - max(o.order_date) AS BIGINT) AS recency_days, \
         count(*) / greatest(1.0, CAST(DATE '2026-06-30' - greatest(min(c.signup_date), \
           DATE '2024-06-30') AS DOUBLE) / 30.44) AS per_month, \
         avg(o.amount) AS order_value \
         FROM orders o JOIN customers c USING (customer_id) GROUP BY o.customer_id";
    let columns = "recency_days, per_month, order_value";
    engine
        .execute(&format!(
            "CREATE MODEL planted OPTIONS (model_type = 'kmeans', num_clusters = 4) AS \
             SELECT recency_days, per_month, order_value FROM ({features})"
        ))
        .await
        .unwrap();
    let batch = query(
        &engine,
        &format!(
            "SELECT customer_id, segment('planted', {columns}) AS segment FROM ({features}) \
             ORDER BY customer_id"
        ),
    )
    .await;
    let ids = ints(&batch, "customer_id");
    let found = ints(&batch, "segment");
    let planted: Vec<i64> = ids
        .iter()
        .map(|&id| {
            let s = planted_segment(DEFAULT_SEED, id);
            Segment::ALL.iter().position(|&x| x == s).unwrap() as i64
        })
        .collect();
    let mut confusion = std::collections::BTreeMap::new();
    for (f, p) in found.iter().zip(&planted) {
        *confusion.entry((p, f)).or_insert(0) += 1;
    }
    println!("(planted, found) -> customers: {confusion:?}");
    let ari = adjusted_rand(&found, &planted);
    println!("adjusted Rand index, demo orders: {ari:.3}");
    // 0.508 with seed 42: champions, loyal and at-risk customers are recovered (96%, 91%
    // and 93% in one segment each); occasional buyers with a few orders long ago look like
    // at-risk ones, which is the generator's noise, not the clustering's.
    assert!(ari > 0.45, "adjusted Rand index {ari}");
}
