"""Forecasting speed and accuracy of cohort against statsmodels' ETSModel.

    python benches/forecast_peers.py [--cohort target/release/cohort] [--series 10000]
                                     [--peer-series 200]

Needs numpy, pandas, pyarrow and statsmodels (pip); cohort built with `cargo build --release`.

Data: --series monthly series x 120 points (ten years), each an ETS(M,A,M)-like path with
its own level, growth, seasonal amplitude and noise (numpy seed 11). The last 12 points of
every series are held out.

Both sides choose among the same 15 ETS models by AICc, fitted by maximum likelihood:
cohort in one CREATE MODEL with id_col over all series (and again over the peer subset),
statsmodels in a Python loop over the first --peer-series series (a loop over all 10,000
would take hours). Speed is series per second; accuracy is the MAPE of the 12-month
forecast on the held-out points of the peer subset. statsmodels runs on one thread;
cohort is timed with all threads and with one (RAYON_NUM_THREADS=1).

The table replaces the "## Forecasts" section of benches/RESULTS.md.
"""
import argparse
import datetime
import os
import platform
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from cohort_run import run_timed, write_section

SECTION = "## Forecasts"
POINTS, HOLDOUT = 120, 12


def synthetic(n, path):
    rng = np.random.default_rng(11)
    t = np.arange(POINTS)
    level = rng.uniform(50, 500, (n, 1))
    growth = rng.uniform(-0.002, 0.01, (n, 1))
    amplitude = rng.uniform(0.0, 0.3, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    noise = rng.uniform(0.01, 0.08, (n, 1))
    season = 1 + amplitude * np.sin(2 * np.pi * t / 12 + phase)
    walk = np.cumprod(1 + noise * rng.standard_normal((n, POINTS)) * 0.5, axis=1)
    values = level * (1 + growth) ** t * season * walk
    months = pd.date_range("2015-01-01", periods=POINTS, freq="MS").date
    table = pa.table({
        "id": np.repeat(np.arange(n), POINTS),
        "month": np.tile(months, n),
        "value": values.reshape(-1),
    })
    pq.write_table(table, path)
    return values


def statsmodels_fit(y):
    best = None
    for error in ["add", "mul"]:
        for trend, damped in [(None, False), ("add", False), ("add", True)]:
            for seasonal in [None, "add", "mul"]:
                if error == "add" and seasonal == "mul":
                    continue
                model = ETSModel(y, error=error, trend=trend, damped_trend=damped,
                                 seasonal=seasonal, seasonal_periods=12 if seasonal else None)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = model.fit(disp=False)
                if best is None or result.aicc < best.aicc:
                    best = result
    return best


def mape(actual, forecast):
    return float(np.mean(np.abs(actual - forecast) / np.abs(actual)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cohort", default="target/release/cohort")
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--peer-series", type=int, default=200)
    parser.add_argument("--results", default="benches/RESULTS.md")
    args = parser.parse_args()
    peers = min(args.peer_series, args.series)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "series.parquet")
        values = synthetic(args.series, path)
        cut = pd.date_range("2015-01-01", periods=POINTS, freq="MS")[POINTS - HOLDOUT].date()
        train = f"SELECT id, month, value FROM t WHERE month < DATE '{cut}'"
        create = ("CREATE OR REPLACE MODEL {name} OPTIONS (model_type = 'forecast', "
                  "time_col = 'month', value_col = 'value', id_col = 'id') AS {query}")
        statements = [
            f"CREATE TABLE t AS SELECT * FROM '{path}'",
            create.format(name="everything", query=train),
            create.format(name="peers", query=f"{train} AND id < {peers}"),
            f"SELECT mape FROM evaluate('peers', (SELECT id, month, value FROM t "
            f"WHERE month >= DATE '{cut}' AND id < {peers}))",
        ]
        seconds, out = run_timed(args.cohort, statements)
        ours_all, ours_mape = seconds[1], float(out.strip().split("\n")[-1])
        os.environ["RAYON_NUM_THREADS"] = "1"
        one_thread, _ = run_timed(args.cohort, statements[:2])
        del os.environ["RAYON_NUM_THREADS"]
        ours_one = one_thread[1]

        start = time.perf_counter()
        errors = []
        for s in range(peers):
            y = pd.Series(values[s, :POINTS - HOLDOUT],
                          index=pd.period_range("2015-01", periods=POINTS - HOLDOUT, freq="M"))
            fit = statsmodels_fit(y)
            errors.append(mape(values[s, POINTS - HOLDOUT:], np.asarray(fit.forecast(HOLDOUT))))
        theirs = time.perf_counter() - start
        theirs_mape = float(np.mean(errors))

    ours_rate, ours_one_rate = args.series / ours_all, args.series / ours_one
    theirs_rate = peers / theirs
    print(f"cohort {ours_rate:,.0f} series/s ({ours_one_rate:,.0f} on one thread), "
          f"MAPE {ours_mape:.4f}; statsmodels {theirs_rate:.1f} series/s, MAPE {theirs_mape:.4f}")
    table = [
        SECTION,
        "",
        f"{os.cpu_count()} threads, {platform.processor() or platform.machine()}, "
        f"{datetime.date.today()}; statsmodels ETSModel as the peer.",
        "",
        f"{args.series:,} monthly series x {POINTS} points (synthetic, multiplicative season "
        f"and growth), the last {HOLDOUT} held out; both sides pick among the same 15 ETS "
        "models by AICc.",
        "",
        "| measure | cohort | statsmodels | cohort speed-up |",
        "|---|---|---|---|",
        f"| series per second, all threads ({args.series:,} series) | {ours_rate:,.0f} | "
        f"{theirs_rate:.1f} | {ours_rate / theirs_rate:,.0f}x |",
        f"| series per second, one thread | {ours_one_rate:,.0f} | {theirs_rate:.1f} | "
        f"{ours_one_rate / theirs_rate:,.0f}x |",
        f"| 12-month MAPE on the first {peers} series | {ours_mape:.4f} | {theirs_mape:.4f} | - |",
        "",
        f"statsmodels loops over the first {peers} series on one thread (its speed per series "
        "does not depend on how many there are); cohort's time is the whole CREATE MODEL, "
        "reading the rows included.",
    ]
    write_section(args.results, table)


if __name__ == "__main__":
    main()
