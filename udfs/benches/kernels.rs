//! Kernel speed without Python: the inner passes every model's training and scoring run
//! (`cargo bench -p cohort-udfs`, or `-- NAME` for one group). Data is synthetic and seeded,
//! so runs compare like with like; the peer comparisons are in `benches/` at the root.

use std::hint::black_box;

use cohort_udfs::kernels::als::{self, AlsOptions, Csr, Duplicates, Feedback};
use cohort_udfs::kernels::customer_value::simulate::bg_nbd_customers;
use cohort_udfs::kernels::customer_value::{BgNbd, BgNbdLikelihood, maximise};
use cohort_udfs::kernels::ets::{Seasonality, fit_best_many};
use cohort_udfs::kernels::gram;
use cohort_udfs::kernels::kmeans::{KMeansOptions, kmeans};
use cohort_udfs::kernels::logistic::{Block, Column, LogisticOptions, fit_logistic};
use cohort_udfs::kernels::points::Points;
use cohort_udfs::kernels::rng::Rng;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array2;

const ROWS: usize = 200_000;
const COLUMNS: usize = 16;

/// `count` columns of `rows` standard normal values.
fn normal_columns(rows: usize, count: usize, seed: u64) -> Vec<Vec<f64>> {
    (0..count)
        .map(|c| {
            let mut rng = Rng::keyed(seed, c as u64, 0);
            (0..rows).map(|_| rng.normal()).collect()
        })
        .collect()
}

/// One pass of the Gram matrix XᵀX, as linear regression's training accumulates it.
fn gram_pass(c: &mut Criterion) {
    let columns = normal_columns(ROWS, COLUMNS, 1);
    let slices: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
    let shift = vec![0.0; COLUMNS];
    let mut group = c.benchmark_group("gram");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("200k x 16", |b| {
        b.iter(|| {
            let mut out = Array2::zeros((COLUMNS, COLUMNS));
            gram::accumulate(black_box(&slices), &shift, None, out.view_mut());
            out
        })
    });
    group.finish();
}

/// A logistic fit stopped after one IRLS pass (gradient and Hessian over every row), plus
/// the pass that counts the classes.
fn irls_pass(c: &mut Criterion) {
    let mut columns = normal_columns(ROWS, COLUMNS, 2);
    columns[0] = vec![1.0; ROWS];
    let mut rng = Rng::keyed(2, u64::MAX, 0);
    let y: Vec<f64> = (0..ROWS)
        .map(|r| {
            let score = columns[1][r] - 0.5 * columns[2][r];
            f64::from(rng.uniform() < 1.0 / (1.0 + (-score).exp()))
        })
        .collect();
    let blocks = [Block {
        columns: columns.iter().map(|c| Column::plain(c)).collect(),
        y: &y,
        weight: None,
    }];
    let options = LogisticOptions {
        l2: 0.0,
        l1: 0.0,
        intercept: true,
        max_iterations: 1,
    };
    let mut group = c.benchmark_group("logistic");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("one IRLS pass, 200k x 16", |b| {
        b.iter(|| fit_logistic(black_box(&blocks[..]), options))
    });
    group.finish();
}

/// k-means++ seeding and one Lloyd pass (assignment and per-cluster sums).
fn lloyd_pass(c: &mut Criterion) {
    let columns = normal_columns(ROWS, 8, 3);
    let data: Vec<f64> = (0..ROWS)
        .flat_map(|r| columns.iter().map(move |col| col[r] + (r % 8) as f64 * 3.0))
        .collect();
    let points = Points::new(&data, 8);
    let options = KMeansOptions {
        k: 8,
        n_init: 1,
        max_iterations: 1,
        ..KMeansOptions::default()
    };
    let mut group = c.benchmark_group("kmeans");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("seeding and one Lloyd pass, 200k x 8, k = 8", |b| {
        b.iter(|| kmeans(black_box(&points), &options))
    });
    group.finish();
}

/// Implicit-feedback interactions: 5,000 users with 40 items each out of 2,000.
fn interactions() -> (Csr, Csr, usize) {
    let (users, items, per_user) = (5_000usize, 2_000usize, 40usize);
    let mut rng = Rng::keyed(4, 0, 0);
    let mut row = Vec::with_capacity(users * per_user);
    let mut column = Vec::with_capacity(users * per_user);
    for u in 0..users {
        for _ in 0..per_user {
            row.push(u as u32);
            column.push(rng.below(items as u64) as u32);
        }
    }
    let value = vec![1.0; row.len()];
    let user_items = Csr::from_triples(users, &row, &column, &value, Duplicates::Sum);
    let item_users = user_items.transpose(items);
    (user_items, item_users, users)
}

/// One ALS iteration: a users' half-step and an items' half-step, 32 factors.
fn als_half_steps(c: &mut Criterion) {
    let (user_items, item_users, _) = interactions();
    let options = AlsOptions {
        factors: 32,
        l2_reg: 0.1,
        iterations: 1,
        seed: 42,
        feedback: Feedback::Implicit { alpha: 10.0 },
    };
    let mut group = c.benchmark_group("als");
    group.throughput(Throughput::Elements(user_items.values.len() as u64));
    group.bench_function(
        "one iteration (two half-steps), 5k users, 32 factors",
        |b| b.iter(|| als::fit(black_box(&user_items), &item_users, &options)),
    );
    group.finish();
}

/// The 10 best items of every user, screened in f32 and ranked exactly.
fn top_k(c: &mut Criterion) {
    let (user_items, item_users, users) = interactions();
    let options = AlsOptions {
        factors: 32,
        l2_reg: 0.1,
        iterations: 2,
        seed: 42,
        feedback: Feedback::Implicit { alpha: 10.0 },
    };
    let factors = als::fit(&user_items, &item_users, &options);
    let everyone: Vec<usize> = (0..users).collect();
    let mut group = c.benchmark_group("top_k");
    group.throughput(Throughput::Elements(users as u64));
    group.bench_function("top 10 of 2k items, 5k users", |b| {
        b.iter(|| factors.top_k_many(black_box(&everyone), 10, |_, _| true))
    });
    group.finish();
}

/// Model search for 20 monthly series of 10 years: every ETS form, AICc picks.
fn ets_fit(c: &mut Criterion) {
    let series: Vec<Vec<f64>> = (0..20u64)
        .map(|s| {
            let mut rng = Rng::keyed(5, s, 0);
            (0..120)
                .map(|t| {
                    let season = 1.0 + 0.2 * (std::f64::consts::TAU * t as f64 / 12.0).sin();
                    (100.0 + t as f64) * season * (1.0 + 0.03 * rng.normal())
                })
                .collect()
        })
        .collect();
    let slices: Vec<&[f64]> = series.iter().map(Vec::as_slice).collect();
    let mut group = c.benchmark_group("ets");
    group.sample_size(10);
    group.throughput(Throughput::Elements(slices.len() as u64));
    group.bench_function("model search, 20 monthly series x 120", |b| {
        b.iter(|| fit_best_many(black_box(&slices), Seasonality::Auto(12)))
    });
    group.finish();
}

/// A BG/NBD fit of a million customers drawn from the process (FHL's CDNOW estimates,
/// observed 20 to 52 weeks), from lifetimes' start of all ones.
fn bg_nbd_fit(c: &mut Criterion) {
    let truth = BgNbd::from_params(&[0.243, 4.414, 0.793, 2.426]);
    let customers = bg_nbd_customers(&truth, 1_000_000, (20.0, 52.0), 11);
    let lik = BgNbdLikelihood {
        customers: &customers,
        max_x: customers.max_x(),
    };
    let mut group = c.benchmark_group("customer_value");
    group.sample_size(10);
    group.throughput(Throughput::Elements(customers.len() as u64));
    group.bench_function("bg_nbd fit 1M", |b| {
        b.iter(|| maximise(black_box(&lik), &[1.0; 4], 0.0))
    });
    group.finish();
}

criterion_group!(
    kernels,
    bg_nbd_fit,
    gram_pass,
    irls_pass,
    lloyd_pass,
    als_half_steps,
    top_k,
    ets_fit
);
criterion_main!(kernels);
