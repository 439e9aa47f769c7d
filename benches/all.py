"""Regenerates every speed table of benches/RESULTS.md in one run, with one cohort build on
one machine: training and scoring (peers.py, four sizes), k-means (kmeans_peers.py),
boosted trees against LightGBM (trees_peers.py), recommendations (recommend_peers.py) and
forecasts (forecast_peers.py).

    python benches/all.py [--cohort target/release/cohort]

Needs what those scripts need (numpy, pyarrow, pandas, scikit-learn, scikit-learn-intelex,
implicit, statsmodels, lightgbm; pip) and cohort built with `cargo build --release`. Each script
replaces its own sections; the others (accuracy, customer value, the cluster, Flight SQL,
the binary's size) are left as they are. The ratios are the claims.
"""
import argparse
import os

from compare import run

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = [
    ("peers.py", ["--sizes", "1000000x8,1000000x32,10000000x8,10000000x32"]),
    ("kmeans_peers.py", []),
    ("trees_peers.py", []),
    ("recommend_peers.py", []),
    ("forecast_peers.py", ["--peer-series", "20"]),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cohort", default="target/release/cohort")
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    args = parser.parse_args()
    binary, results = os.path.abspath(args.cohort), os.path.abspath(args.results)
    for script, extra in SCRIPTS:
        run(script, binary, results, extra)


if __name__ == "__main__":
    main()
