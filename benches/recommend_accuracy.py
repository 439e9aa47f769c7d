"""Implicit-feedback recommendation accuracy of cohort against the `implicit` library and a
popularity baseline, on grocery-style baskets and on MovieLens, in one run.

    python benches/recommend_accuracy.py [--cohort target/release/cohort] [--movielens DIR]

Needs numpy, pandas, scipy, pyarrow and implicit (pip); cohort built with `cargo build
--release`; MovieLens 100K fetched with ../shared/datasets/fetch-movielens.sh.

- Baskets: the demo's orders (`cohort --demo`), a basket being a customer's products of one
  day. Each customer's last basket is held out; the rest, as (customer, product) pairs with
  value 1 whatever the number of purchases, trains.
- MovieLens 100K: ratings >= 4 as interactions, split 80/20 at random (numpy seed 42), the
  held-out items of a user being its test ratings >= 4.

Both sides fit 32 factors, regularisation 0.1, 15 iterations, at cohort alpha 1, 5, 10, 20
and 40 (confidence 1 + alpha); `implicit` weighs an interaction by its alpha alone, so it
gets alpha + 1 for the same confidence. The popularity baseline recommends the items with the
most training users. Every list leaves out the user's training items. precision@10 is the
contract's (EVALUATE's): per user, hits in the top 10 over min(10, held-out items), averaged
over users; it is computed here from each side's top-10 lists, and cohort's EVALUATE is run
on the same split to check that it reports the same figure. The table replaces the
"## Recommendation accuracy" section of benches/RESULTS.md.
"""
import argparse
import datetime
import os
import platform
import subprocess
import tempfile

# implicit runs its own threads and asks for a single-threaded BLAS.
for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from implicit.cpu.als import AlternatingLeastSquares  # noqa: E402

from cohort_run import run_timed, write_section  # noqa: E402

SECTION = "## Recommendation accuracy"
FACTORS, REG, ITERATIONS = 32, 0.1, 15
ALPHAS = [1, 5, 10, 20, 40]


def baskets(binary, tmp):
    """Training (user, item) pairs and each user's held-out items, from the demo orders."""
    path = os.path.join(tmp, "orders.parquet")
    subprocess.run(
        [binary, "--demo", "-q", "-c",
         f"COPY (SELECT customer_id, order_date, product_id FROM orders) TO '{path}'"],
        check=True, capture_output=True,
    )
    orders = pq.read_table(path).to_pandas()
    last = orders.groupby("customer_id").order_date.transform("max")
    pairs = orders[["customer_id", "product_id"]].set_axis(["user_id", "item_id"], axis=1)
    return pairs[orders.order_date < last], pairs[orders.order_date == last]


def movielens(directory):
    ratings = pacsv.read_csv(os.path.join(directory, "ratings.csv")).to_pandas()
    test = np.random.default_rng(42).random(len(ratings)) < 0.2
    liked = ratings.rating >= 4
    return (ratings[~test & liked][["user_id", "item_id"]],
            ratings[test & liked][["user_id", "item_id"]])


def precision_at_10(top, held):
    """Mean over users with held-out items of |top-10 ∩ held-out| / min(10, |held-out|)."""
    return float(np.mean([
        len(set(top.get(u, [])) & items) / min(10, len(items)) for u, items in held.items()
    ]))


def popularity(train, held):
    order = train.item_id.value_counts().index.tolist()
    seen = train.groupby("user_id").item_id.apply(set).to_dict()
    return {u: [i for i in order if i not in seen.get(u, ())][:10] for u in held}


def implicit_top(train, held, alpha):
    users, items = train.user_id.to_numpy(), train.item_id.to_numpy()
    shape = (users.max() + 1, items.max() + 1)
    user_items = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=shape)
    model = AlternatingLeastSquares(
        factors=FACTORS, regularization=REG, alpha=alpha + 1.0, iterations=ITERATIONS,
        random_state=42,
    )
    model.fit(user_items, show_progress=False)
    known = np.array(sorted(u for u in held if u < shape[0]))
    ids, _ = model.recommend(known, user_items[known], N=10, filter_already_liked_items=True)
    return {int(u): [int(i) for i in row] for u, row in zip(known, ids)}


def cohort_top(binary, tmp, train, held, alpha):
    """cohort's top-10 lists and its EVALUATE precision@10 on the held-out pairs."""
    paths = {}
    for name, part in (("train", train), ("held", held)):
        paths[name] = os.path.join(tmp, f"{name}.parquet")
        part.to_parquet(paths[name], index=False)
    lines = [
        f"CREATE TABLE train AS SELECT * FROM '{paths['train']}'",
        f"CREATE TABLE held AS SELECT * FROM '{paths['held']}'",
        "CREATE MODEL likes OPTIONS (model_type = 'matrix_factorization', "
        f"feedback_type = 'implicit', num_factors = {FACTORS}, l2_reg = {REG}, "
        f"alpha = {alpha}, max_iterations = {ITERATIONS}) AS "
        "SELECT user_id, item_id, 1 AS n FROM train",
        "SELECT precision_at_k FROM evaluate('likes', held)",
        "SELECT \"user\", item FROM recommend('likes', 10)",
    ]
    _, out = run_timed(binary, lines)
    blocks = out.strip().split("\n")
    evaluated = float(blocks[blocks.index("precision_at_k") + 1])
    top = {}
    for line in blocks[blocks.index("user,item") + 1:]:
        u, i = line.split(",")
        top.setdefault(int(u), []).append(int(i))
    return top, evaluated


def compare(binary, tmp, name, train, held_pairs):
    # As EVALUATE: distinct pairs, held-out pairs of users and items seen in training.
    train = train.drop_duplicates()
    held_pairs = held_pairs.drop_duplicates()
    held_pairs = held_pairs[held_pairs.user_id.isin(set(train.user_id))
                            & held_pairs.item_id.isin(set(train.item_id))]
    held = {int(u): set(g.item_id) for u, g in held_pairs.groupby("user_id")}
    rows = []
    baseline = precision_at_10(popularity(train, held), held)
    for alpha in ALPHAS:
        top, evaluated = cohort_top(binary, tmp, train, held_pairs, alpha)
        ours = precision_at_10(top, held)
        theirs = precision_at_10(implicit_top(train, held, alpha), held)
        print(f"{name} alpha {alpha}: cohort {ours:.4f} (EVALUATE {evaluated:.4f}), "
              f"implicit {theirs:.4f}, popularity {baseline:.4f}", flush=True)
        rows.append(
            f"| {name} | {alpha} | {ours:.4f} | {evaluated:.4f} | {theirs:.4f} | "
            f"{ours / theirs:.3f} | {baseline:.4f} |"
        )
    sizes = (f"{name}: {train.user_id.nunique():,} users, {train.item_id.nunique():,} items, "
             f"{len(train):,} training pairs, {len(held):,} users with held-out items "
             f"({len(held_pairs) / len(held):.1f} each on average)")
    return rows, sizes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cohort", default="target/release/cohort")
    parser.add_argument(
        "--movielens", default=os.path.expanduser("~/.cache/datasets/movielens_100k")
    )
    parser.add_argument("--results", default="benches/RESULTS.md")
    args = parser.parse_args()
    rows, sizes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (train, held) in (
            ("baskets", baskets(args.cohort, tmp)),
            ("MovieLens", movielens(args.movielens)),
        ):
            r, s = compare(args.cohort, tmp, name, train, held)
            rows += r
            sizes.append(s)
    table = [
        SECTION,
        "",
        f"{os.cpu_count()} threads, {platform.processor() or platform.machine()}, "
        f"{datetime.date.today()}; implicit 0.7 (CPU) as the peer; "
        "`benches/recommend_accuracy.py`.",
        "",
        *[f"- {s}" for s in sizes],
        "",
        "Implicit ALS, 32 factors, regularisation 0.1, 15 iterations; implicit at alpha + 1 "
        "(the same confidence). precision@10 = hits over min(10, held-out items), averaged "
        "over users, from each side's top-10 lists; EVALUATE is cohort's own figure.",
        "",
        "| data | alpha | cohort | cohort EVALUATE | implicit | cohort / implicit | popularity |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    write_section(args.results, table)


if __name__ == "__main__":
    main()
