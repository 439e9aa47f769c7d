"""Reference RFM scores for tests/integration/reference_accuracy.rs, from pandas.qcut.

Reads ../shared/datasets/cdnow_transactions.csv (CDNOW purchases), writes a gzipped copy to
tests/data/cdnow_transactions.csv.gz and every customer's RFM as of 1998-07-01 to
tests/reference/rfm_cdnow.csv.gz, by cohort's definitions (see rfm's documentation):
every customer with an order before as_of; an order is a row whose amount is not negative,
frequency counts orders, monetary sums all amounts, recency runs from the last order (the
last row for a customer with only returns); customers ranked by value with ties broken by customer id, and the ranks cut by
pandas.qcut(rank, 5, labels=[1, 2, 3, 4, 5]) (recency ranked longest first, so the most
recent scores 5).

    python tests/reference/rfm_cdnow.py
"""
import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT.parent / "shared/datasets/cdnow_transactions.csv"
AS_OF = pd.Timestamp("1998-07-01")

with open(SOURCE, "rb") as src, gzip.GzipFile(ROOT / "tests/data/cdnow_transactions.csv.gz", "wb", mtime=0) as dst:
    shutil.copyfileobj(src, dst)

orders = pd.read_csv(SOURCE, parse_dates=["order_date"])
orders = orders[orders.order_date < AS_OF]
placed = orders[~(orders.dollar_value < 0)]
by_customer = orders.groupby("customer_id")
last = placed.groupby("customer_id").order_date.max().reindex(by_customer.order_date.max().index)
rfm = pd.DataFrame(
    {
        "recency_days": (AS_OF - last.fillna(by_customer.order_date.max())).dt.days,
        "frequency": placed.groupby("customer_id").size().reindex(last.index, fill_value=0),
        "monetary": by_customer.dollar_value.sum(),
    }
).reset_index()
rfm["frequency"] = rfm.frequency.astype(int)
rfm["recency_days"] = rfm.recency_days.astype(int)


def score(by, ascending):
    ranked = rfm.sort_values([by, "customer_id"], ascending=[ascending, True])
    rank = pd.Series(np.arange(1, len(rfm) + 1), index=ranked.index)
    return pd.qcut(rank, 5, labels=[1, 2, 3, 4, 5]).astype(int)


rfm["r_score"] = score("recency_days", False)
rfm["f_score"] = score("frequency", True)
rfm["m_score"] = score("monetary", True)


def segment(r, f):
    if r <= 2:
        return "Lost" if f <= 2 else "At Risk" if f <= 4 else "Cannot Lose"
    if r == 3 and f <= 2:
        return "Hibernating"
    if r == 3 and f == 3:
        return "Needs Attention"
    if f >= 4:
        return "Loyal" if r <= 4 else "Champions"
    if f == 1:
        return "Promising" if r == 4 else "New"
    return "Potential Loyalist"


rfm["rfm_segment"] = [segment(r, f) for r, f in zip(rfm.r_score, rfm.f_score)]
rfm = rfm.sort_values("customer_id")
with gzip.GzipFile(ROOT / "tests/reference/rfm_cdnow.csv.gz", "wb", mtime=0) as out:
    out.write(rfm.to_csv(index=False, float_format="%.6f").encode())
print(rfm.rfm_segment.value_counts())
