"""cohort's customer_value fit against lifetimes' BetaGeoFitter and GammaGammaFitter on the same
million customers, drawn from the BG/NBD process with FHL's CDNOW estimates (r 0.243, alpha
4.414, a 0.793, b 2.426 per week), each observed 20 to 52 weeks from a first purchase, and
spending per purchase day from the Gamma-Gamma model with the CDNOW estimates (p 6.25,
q 3.74, gamma 15.44).

Writes the purchases as orders (customer_id, order_date, amount) to DIR/orders.csv, fits
lifetimes on the customers' summaries of those same dates (weeks = days / 7, calibration to
the last day; the spend model on the repeat customers' mean repeat spend, lifetimes' own
convention), and prints the command that fits cohort on the file:

    /tmp/cv/bin/python benches/customer_value_peers.py [customers] [DIR]
"""
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

R, ALPHA, A, B = 0.243, 4.414, 0.793, 2.426
P, Q, GAMMA = 6.25, 3.74, 15.44
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
out = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/customer_value_bench")
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(11)

END = 52 * 7  # calibration ends on day 364 after 2025-01-01
lam = rng.gamma(R, 1.0 / ALPHA, n)
p = rng.beta(A, B, n)
first = END - np.floor(rng.uniform(20.0, 52.0, n) * 7).astype(int)
customers, days = [np.arange(n)], [first]
now = np.zeros(n)
alive = np.ones(n, dtype=bool)
while alive.any():
    i = np.flatnonzero(alive)
    now[i] += rng.exponential(1.0 / lam[i])
    past = first[i] + now[i] * 7 >= END + 1
    day = first[i] + np.floor(np.minimum(now[i] * 7, END + 1)).astype(int)
    alive[i[past]] = False
    j, d = i[~past], day[~past]
    customers.append(j)
    days.append(d)
    alive[j[rng.uniform(size=j.size) < p[j]]] = False
orders = pd.DataFrame({"customer_id": np.concatenate(customers), "day": np.concatenate(days)})
orders = orders.drop_duplicates()
g = orders.groupby("customer_id").day
x = (g.count() - 1).values
t_x = ((g.max() - g.min()) / 7.0).values
T = ((END - g.min()) / 7.0).values
orders["order_date"] = pd.Timestamp("2025-01-01") + pd.to_timedelta(orders.day, unit="D")
nu = rng.gamma(Q, 1.0 / GAMMA, n)
orders["amount"] = rng.gamma(P, 1.0 / nu[orders.customer_id.values])
orders[["customer_id", "order_date", "amount"]].to_csv(out / "orders.csv", index=False, date_format="%Y-%m-%d")

# The spend model's inputs: per repeat customer, the mean spend of the purchases after the first.
orders = orders.sort_values(["customer_id", "day"])
repeat = orders[orders.customer_id.duplicated()]
spend = repeat.groupby("customer_id").amount.agg(["count", "mean"])

start = time.perf_counter()
fit = BetaGeoFitter().fit(x, t_x, T)
middle = time.perf_counter()
spend_fit = GammaGammaFitter().fit(spend["count"], spend["mean"])
end = time.perf_counter()
print(
    f"{n} customers, {len(orders)} purchase days: lifetimes BetaGeoFitter.fit "
    f"{middle - start:.2f} s, GammaGammaFitter.fit {end - middle:.2f} s, "
    f"both {end - start:.2f} s"
)
print(f"params {fit.params_.to_dict()} {spend_fit.params_.to_dict()}")
print(
    f"RAYON_NUM_THREADS=2 cohort {out / 'orders.csv'} -c \"CREATE MODEL v OPTIONS (model_type = "
    "'customer_value', customer_col = 'customer_id', time_col = 'order_date', amount_col = "
    "'amount', calibration_end = DATE '2025-12-31', time_unit = 'week') AS SELECT * FROM orders\""
)
