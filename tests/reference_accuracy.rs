//! Models trained through SQL against reference libraries (expected values written by the
//! scripts in tests/reference/; no Python is needed to run these tests).

use std::path::Path;

use cohort::Engine;
use cohort::engine::files::register_files;
use cohort::store::ModelStore;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Float64Type;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn reference(name: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(root().join("tests/reference").join(name))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn assert_rel(actual: f64, expected: f64, tol: f64, what: &str) {
    let rel = (actual - expected).abs() / expected.abs();
    assert!(
        rel <= tol,
        "{what}: {actual} vs {expected} (relative {rel:e})"
    );
}

fn column(batch: &RecordBatch, i: usize) -> Vec<f64> {
    batch
        .column(i)
        .as_primitive::<Float64Type>()
        .values()
        .to_vec()
}

#[tokio::test]
async fn diabetes_linear_reg_matches_statsmodels_ols() {
    let store = tempfile::tempdir().unwrap();
    let engine = Engine::new(ModelStore::open(store.path()).unwrap()).unwrap();
    register_files(engine.context(), &[root().join("tests/data/diabetes.csv")])
        .await
        .unwrap();
    engine
        .execute(
            "CREATE MODEL dia OPTIONS (model_type = 'linear_reg', label = 'target') AS \
             SELECT * FROM diabetes",
        )
        .await
        .unwrap();
    let result = engine
        .execute("SELECT feature, weight, std_err, z_or_t, p_value FROM explain_model('dia')")
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
        column(batch, 1),
        column(batch, 2),
        column(batch, 3),
        column(batch, 4),
    );

    let expected = reference("diabetes_ols.csv");
    let terms: Vec<&Vec<String>> = expected.iter().filter(|r| !r[2].is_empty()).collect();
    assert_eq!(features.len(), terms.len());
    for row in terms {
        let i = features.iter().position(|f| *f == row[0]).unwrap();
        let value = |k: usize| row[k].parse::<f64>().unwrap();
        assert_rel(w[i], value(1), 1e-6, &format!("{} weight", row[0]));
        assert_rel(se[i], value(2), 1e-6, &format!("{} std_err", row[0]));
        assert_rel(t[i], value(3), 1e-6, &format!("{} t", row[0]));
        assert_rel(p[i], value(4), 1e-6, &format!("{} p", row[0]));
    }

    let r2 = engine
        .execute("SELECT metrics FROM cohort.models WHERE model = 'dia'")
        .await
        .unwrap();
    let metrics = r2.batches[0]
        .column(0)
        .as_string::<i32>()
        .value(0)
        .to_string();
    assert!(metrics.starts_with("r2=0.517748,"), "{metrics}");
}
