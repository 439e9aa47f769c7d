//! The trees against LightGBM (a fixed model's structure and its exact contributions, from
//! tests/reference/trees_shap.json) and against what boosting must do on planted data.

use serde::Deserialize;

use super::binning::{Binned, Bins};
use super::grow::Growth;
use super::split::Limits;
use super::*;

/// A LightGBM tree node as tests/reference/trees_reference.py writes it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Dumped {
    Split {
        feature: u32,
        threshold: f64,
        default_left: bool,
        left: u32,
        right: u32,
        count: u64,
    },
    Leaf {
        leaf: f64,
        count: u64,
    },
}

#[derive(Deserialize)]
struct Reference {
    trees: Vec<Vec<Dumped>>,
    rows: Vec<Vec<f64>>,
    raw: Vec<f64>,
    contributions: Vec<Vec<f64>>,
}

fn reference() -> Reference {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/reference/trees_shap.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn contributions_match_lightgbm_pred_contrib() {
    let reference = reference();
    let trees = reference
        .trees
        .iter()
        .map(|nodes| Tree {
            nodes: nodes
                .iter()
                .map(|n| match *n {
                    Dumped::Split {
                        feature,
                        threshold,
                        default_left,
                        left,
                        right,
                        count,
                    } => Node::Split {
                        feature,
                        rule: Rule::AtMost(threshold),
                        missing_left: default_left,
                        left,
                        right,
                        gain: 0.0,
                        count,
                    },
                    Dumped::Leaf { leaf, count } => Node::Leaf { value: leaf, count },
                })
                .collect(),
        })
        .collect();
    let forest = Forest { base: 0.0, trees };
    let d = reference.rows[0].len();
    let columns: Vec<Vec<f64>> = (0..d)
        .map(|j| reference.rows.iter().map(|r| r[j]).collect())
        .collect();
    let columns: Vec<Column> = columns.iter().map(|c| Column::Numeric(c)).collect();
    let raw = forest.raw(&columns);
    for (r, expected) in reference.contributions.iter().enumerate() {
        assert!(
            (raw[r] - reference.raw[r]).abs() < 1e-9,
            "row {r} raw score"
        );
        let mut phi = vec![0.0; d];
        forest.contributions(&columns, r, &mut phi);
        for j in 0..d {
            assert!(
                (phi[j] - expected[j]).abs() < 1e-6,
                "row {r} feature {j}: {} against {}",
                phi[j],
                expected[j]
            );
        }
        assert!(
            (forest.base_value() - expected[d]).abs() < 1e-6,
            "base value"
        );
    }
}

/// Planted data: y depends on x0 (a threshold), on category c1 (levels 1, 4 and 6 high) and
/// is missing-aware on x2 (NaN is high); x3 is noise.
fn planted(n: usize) -> (Vec<Vec<f64>>, Vec<u32>, Vec<f64>) {
    let mut rng = crate::kernels::rng::Rng::keyed(7, 1, 2);
    let mut x: Vec<Vec<f64>> = (0..3).map(|_| Vec::with_capacity(n)).collect();
    let mut c = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let x0 = rng.uniform();
        let level = rng.below(8) as u32;
        let x2 = if rng.uniform() < 0.2 {
            f64::NAN
        } else {
            rng.uniform()
        };
        let x3 = rng.uniform();
        let signal = (x0 > 0.6) as u8 as f64 * 1.5
            + [1, 4, 6].contains(&level) as u8 as f64
            + x2.is_nan() as u8 as f64
            - 1.5;
        y.push((rng.uniform() < 1.0 / (1.0 + (-2.0 * signal).exp())) as u8 as f64);
        x[0].push(x0);
        x[1].push(x2);
        x[2].push(x3);
        c.push(level);
    }
    (x, c, y)
}

fn params(objective: Objective) -> Params {
    Params {
        objective,
        num_trees: 60,
        growth: Growth {
            num_leaves: 15,
            max_depth: None,
            limits: Limits {
                l2: 0.0,
                min_rows: 20,
            },
            learning_rate: 0.1,
        },
        subsample: 1.0,
        colsample: 1.0,
        seed: 42,
        early_stopping_rounds: None,
    }
}

#[test]
fn boosting_finds_planted_structure_and_contributions_add_up() {
    let (x, codes, y) = planted(20_000);
    let columns = [
        Column::Numeric(&x[0]),
        Column::Categorical(&codes),
        Column::Numeric(&x[1]),
        Column::Numeric(&x[2]),
    ];
    let bins = vec![
        Bins::numeric(&mut x[0].clone(), 255),
        Bins::categorical(8),
        Bins::numeric(&mut x[1].clone(), 255),
        Bins::numeric(&mut x[2].clone(), 255),
    ];
    let mut data = Binned::new(bins);
    data.push(&columns);
    let train: Vec<u32> = (0..20_000).collect();
    let fit = boost(&data, &y, None, &train, &[], &params(Objective::Binary));
    assert_eq!(fit.forest.trees.len(), 60);
    // The scores kept while boosting are the ensemble's scores of the raw values.
    let raw = fit.forest.raw(&columns);
    for (a, b) in raw.iter().zip(&fit.scores) {
        assert!((a - b).abs() < 1e-9);
    }
    // Every contribution adds up to the raw score; the noise feature contributes least.
    let base = fit.forest.base_value();
    let mut total = [0.0; 4];
    for (r, raw) in raw.iter().enumerate().take(2000) {
        let mut phi = [0.0; 4];
        fit.forest.contributions(&columns, r, &mut phi);
        let sum: f64 = phi.iter().sum();
        assert!((base + sum - raw).abs() < 1e-9, "row {r}");
        for (t, p) in total.iter_mut().zip(phi) {
            *t += p.abs();
        }
    }
    assert!(
        total[3] < total[0].min(total[1]).min(total[2]) / 3.0,
        "{total:?}"
    );
    // Missing x2 raises the score, as planted.
    let low = fit.forest.raw(&[
        Column::Numeric(&[0.1]),
        Column::Categorical(&[0]),
        Column::Numeric(&[0.5]),
        Column::Numeric(&[0.5]),
    ])[0];
    let missing = fit.forest.raw(&[
        Column::Numeric(&[0.1]),
        Column::Categorical(&[0]),
        Column::Numeric(&[f64::NAN]),
        Column::Numeric(&[0.5]),
    ])[0];
    assert!(missing > low + 0.5, "{missing} against {low}");
}

#[test]
fn early_stopping_keeps_the_best_trees() {
    // Pure noise: the evaluation loss soon stops improving.
    let mut rng = crate::kernels::rng::Rng::keyed(3, 4, 5);
    let x: Vec<f64> = (0..4000).map(|_| rng.uniform()).collect();
    let y: Vec<f64> = (0..4000).map(|_| rng.uniform()).collect();
    let mut data = Binned::new(vec![Bins::numeric(&mut x.clone(), 255)]);
    data.push(&[Column::Numeric(&x)]);
    let train: Vec<u32> = (0..3000).collect();
    let eval: Vec<u32> = (3000..4000).collect();
    let mut p = params(Objective::Squared);
    p.early_stopping_rounds = Some(5);
    p.num_trees = 200;
    let fit = boost(&data, &y, None, &train, &eval, &p);
    assert!(fit.stopped_early);
    assert!(fit.forest.trees.len() < 50, "{}", fit.forest.trees.len());
    let best = fit.eval_loss.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(fit.eval_loss[fit.forest.trees.len() - 1], best);
}
