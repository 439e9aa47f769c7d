"""Boosted-tree speed, accuracy and memory of cohort against LightGBM on the same data, in
one run.

    python benches/trees_peers.py [--cohort target/release/cohort] [--rows 1000000] [--runs 2]

Needs numpy, pandas, pyarrow, scikit-learn and lightgbm (pip); cohort built with
`cargo build --release`. Writes two Parquet files of `--rows` rows with 32 standard-normal
features and a churn label drawn from a logistic model with thresholds, interactions and
squares (which trees find and a linear model does not); the second adds 4 string columns
of 8 to 200 levels, each level with an effect of its own. Every tenth row's last three are
held out (`holdout`). On each, with LightGBM's defaults on both sides (100 trees, 31 leaves,
learning rate 0.1, 255 bins, 20 rows per leaf) and the same thread count:

- cohort: CREATE MODEL ... OPTIONS (model_type = 'boosted_tree_classifier') over the
  in-memory table's training rows (its own per-statement timing), EVALUATE's AUC on the
  held-out rows, and PREDICT_CHURN of every row;
- LightGBM: lgb.Dataset of the training rows (pandas; string columns as categories, which
  LightGBM splits natively as cohort does) and lgb.train, timed together as CREATE MODEL
  bins and trains; AUC on the held-out rows; predict of every row.

LightGBM's AUC is also given for its bin-construction seeds 1-4 (data_random_seed: which
200,000 rows the bins are cut from), the spread that bins alone make. Peak memory is that
of a process that loads the file and fits, and of one that only loads it. The table
replaces the "## Boosted trees" section of benches/RESULTS.md; ratios are the claims.
"""
import argparse
import datetime
import os
import platform
import re
import sys
import tempfile
import time

THREADS = os.cpu_count() or 1
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(THREADS)

import lightgbm as lgb  # noqa: E402  (thread settings must come first)
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from cohort_run import cohort_peak, python_peak, run_timed, write_section  # noqa: E402

SECTION = "## Boosted trees"
D = 32
LEVELS = [20, 50, 8, 200]
PARAMS = {"objective": "binary", "num_threads": THREADS, "verbose": -1}


def make_data(n, path, strings):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n, D))
    z = (
        0.8 * X[:, 0] - 0.6 * (X[:, 1] > 0.5) + 0.5 * X[:, 2] * X[:, 3]
        + 0.4 * np.abs(X[:, 4]) - 0.3 * X[:, 5] ** 2 + 0.2 * X[:, 6:16].sum(1) / 3
    )
    columns = {f"x{j}": X[:, j] for j in range(D)}
    if strings:
        for k, (levels, scale) in enumerate(zip(LEVELS, [0.5, 0.3, 0.6, 0.4])):
            codes = rng.integers(0, levels, n)
            z = z + rng.normal(0, scale, levels)[codes]
            columns[f"s{k}"] = pa.array([f"l{v}" for v in codes])
    columns["c"] = rng.random(n) < 1 / (1 + np.exp(-(z - 0.5)))
    columns["holdout"] = np.arange(n) % 10 >= 7
    pq.write_table(pa.table(columns), path, row_group_size=1 << 17)


def features(strings):
    names = [f"x{j}" for j in range(D)] + ([f"s{k}" for k in range(len(LEVELS))] if strings else [])
    return ", ".join(names)


def cohort_side(binary, path, strings, runs):
    """Best CREATE MODEL and scoring seconds, and the held-out AUC."""
    create = (
        "CREATE OR REPLACE MODEL bt OPTIONS (model_type = 'boosted_tree_classifier', "
        "label = 'c') AS SELECT * EXCLUDE (holdout) FROM t WHERE NOT holdout"
    )
    score = f"SELECT sum(PREDICT_CHURN('bt', {features(strings)})) FROM t"
    lines = [f"CREATE TABLE t AS SELECT * FROM '{path}'"]
    lines += [create, score] * runs
    lines.append("SELECT auc FROM EVALUATE('bt', (SELECT * FROM t WHERE holdout))")
    seconds, stdout = run_timed(binary, lines)
    auc = float(stdout.strip().splitlines()[-1])
    return min(seconds[1:-1:2]), min(seconds[2:-1:2]), auc


def frame(path):
    data = pq.read_table(path).to_pandas()
    for column in data.columns:
        if column.startswith("s"):
            data[column] = data[column].astype("category")
    holdout = data.pop("holdout").to_numpy()
    label = data.pop("c").to_numpy().astype(float)
    return data, label, holdout


def lightgbm_side(path, runs):
    """Best Dataset-and-train and scoring seconds, the held-out AUC, and the AUCs of bin
    seeds 1-4."""
    data, label, holdout = frame(path)
    train, test = data[~holdout], data[holdout]
    fits, scores = [], []
    for _ in range(runs):
        t = time.perf_counter()
        model = lgb.train(PARAMS, lgb.Dataset(train, label[~holdout], params={"verbose": -1}), 100)
        fits.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.predict(data, num_threads=THREADS).sum()
        scores.append(time.perf_counter() - t)
    auc = roc_auc_score(label[holdout], model.predict(test, num_threads=THREADS))
    seeds = []
    for seed in range(1, 5):
        params = {**PARAMS, "data_random_seed": seed}
        m = lgb.train(params, lgb.Dataset(train, label[~holdout], params={"verbose": -1, "data_random_seed": seed}), 100)
        seeds.append(roc_auc_score(label[holdout], m.predict(test, num_threads=THREADS)))
    return min(fits), min(scores), auc, seeds


PY_LOAD = """
import sys
sys.path.insert(0, {here!r})
from trees_peers import frame
data, label, holdout = frame({path!r})
"""
PY_FIT = """
import lightgbm as lgb
from trees_peers import PARAMS
lgb.train(PARAMS, lgb.Dataset(data[~holdout], label[~holdout], params={"verbose": -1}), 100)
"""


def peaks(binary, path):
    """Peak memory (MiB) of loading, and of loading and fitting, for cohort and LightGBM."""
    load = f"CREATE TABLE t AS SELECT * FROM '{path}'"
    fit = (
        "CREATE MODEL bt OPTIONS (model_type = 'boosted_tree_classifier', label = 'c') "
        "AS SELECT * EXCLUDE (holdout) FROM t WHERE NOT holdout"
    )
    setup = PY_LOAD.format(here=os.path.dirname(os.path.abspath(__file__)), path=path)
    return {
        "load": (cohort_peak(binary, [load]), python_peak(sys.executable, setup)),
        "fit": (cohort_peak(binary, [load, fit]), python_peak(sys.executable, setup + PY_FIT)),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cohort", default="target/release/cohort")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--results", default="benches/RESULTS.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for strings in (False, True):
            path = os.path.join(tmp, f"churn_{int(strings)}.parquet")
            make_data(args.rows, path, strings)
            ours = cohort_side(args.cohort, path, strings, args.runs)
            theirs = lightgbm_side(path, args.runs)
            memory = peaks(args.cohort, path)
            print(f"strings={strings}: cohort {ours}, LightGBM {theirs}, memory {memory}")
            rows.append((strings, ours, theirs, memory))
    train_rows = args.rows - args.rows // 10 * 3
    table = [
        SECTION,
        "",
        f"{args.rows:,} rows ({train_rows:,} to train, the rest held out), 32 float64 features "
        f"(and 4 string columns of {', '.join(map(str, LEVELS))} levels), a binary churn label; "
        f"{THREADS} threads, {platform.processor() or platform.machine()}, "
        f"{datetime.date.today()}, lightgbm {lgb.__version__}. LightGBM's defaults on both sides "
        f"(100 trees, 31 leaves, learning rate 0.1, 255 bins, 20 rows per leaf); best of {args.runs}. "
        "Fit: cohort's CREATE MODEL over the in-memory table; LightGBM's Dataset and train "
        "from a pandas frame (both bin the rows, then boost). Score: every row, as "
        "PREDICT_CHURN and predict.",
        "",
        "| features | cohort fit s | LightGBM fit s | fit speed-up | cohort score s | LightGBM score s | score speed-up | held-out AUC cohort | LightGBM | LightGBM, bin seeds 1-4 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for strings, (cf, cs, ca), (lf, ls, la, seeds), _ in rows:
        label = "32 numeric + 4 string" if strings else "32 numeric"
        table.append(
            f"| {label} | {cf:.2f} | {lf:.2f} | {lf / cf:.2f}× | {cs:.2f} | {ls:.2f} | "
            f"{ls / cs:.2f}× | {ca:.4f} | {la:.4f} | {min(seeds):.4f}-{max(seeds):.4f} |"
        )
    table += [
        "",
        "Peak resident memory (MiB) of a process that loads the file (cohort: an in-memory",
        "table; LightGBM: a pandas frame) and of one that loads it and fits; the fit's own",
        "share is the difference.",
        "",
        "| features | cohort load | cohort load + fit | fit's share | LightGBM load | LightGBM load + fit | fit's share |",
        "|---|---|---|---|---|---|---|",
    ]
    for strings, _, _, memory in rows:
        label = "32 numeric + 4 string" if strings else "32 numeric"
        (cl, ll), (cf, lf) = memory["load"], memory["fit"]
        table.append(
            f"| {label} | {cl:,.0f} | {cf:,.0f} | {cf - cl:,.0f} | {ll:,.0f} | {lf:,.0f} | {lf - ll:,.0f} |"
        )
    table += [
        "",
        "Both grow trees leaf-wise on gradient histograms, a node's larger child as its",
        "parent's histogram less the smaller's. cohort keeps every row's bins twice (by column",
        "for a split's partition, by row for a histogram, so a deep node's scattered rows cost",
        "a cache line each) and asks the cache for the rows ahead of the one it adds.",
    ]
    gap = max(abs(ca - la) for _, (_, _, ca), (_, _, la, _), _ in rows)
    spread = max(max(seeds) - min(seeds) for _, _, (_, _, _, seeds), _ in rows)
    table += [
        "",
        f"Held-out AUCs of the two differ by at most {gap:.4f} in this run; LightGBM's own moves",
        f"by up to {spread:.4f} with the rows its bins are cut from (both cut bins the same way,",
        "cohort from every k-th row of the training rows, LightGBM from 200,000 drawn at random).",
    ]
    write_section(args.results, table)


if __name__ == "__main__":
    main()
