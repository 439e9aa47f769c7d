"""Reference values for the customer_value model (tests/integration/customer_value.rs and
udfs/src/kernels/customer_value/).

Reads ../shared/datasets/cdnow_sample.csv (the 2,357-customer CDNOW sample of Fader, Hardie &
Lee 2005), writes a gzipped copy to tests/data/cdnow_sample.csv.gz and the reference values
to tests/reference/customer_value_cdnow.csv (name,value):

- the per-customer summary, by the conventions of BTYD and lifetimes: purchases on the same
  day are one (amounts summed); calibration is 1997-01-01 to 1997-09-30 inclusive; x is the
  number of repeat purchase days, t_x and T run from the first purchase to the last and to
  1997-09-30, in weeks (days / 7); m is the mean amount of the repeat purchase days;
- the BG/NBD log-likelihood at the published parameters, from an implementation written
  here with scipy (FHL 2005 eq. 6), independent of lifetimes and of cohort;
- lifetimes' BetaGeoFitter, ParetoNBDFitter (tolerance tightened so that the optimum is
  reached to 1e-4 relative) and GammaGammaFitter on the same summaries;
- 2F1 and the Pareto/NBD log-likelihood at extreme x and T, from mpmath at 30 digits with
  the likelihood in its original form (before the Euler transformation cohort uses).

    python -m venv /tmp/cv && /tmp/cv/bin/pip install lifetimes scipy pandas mpmath
    /tmp/cv/bin/python tests/reference/customer_value_reference.py
"""
import gzip
import shutil
from pathlib import Path

import mpmath as mp
import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT.parent / "shared/datasets/cdnow_sample.csv"
END = pd.Timestamp("1997-09-30")
HOLDOUT_END = pd.Timestamp("1998-06-30")

with open(SOURCE, "rb") as src, gzip.GzipFile(ROOT / "tests/data/cdnow_sample.csv.gz", "wb", mtime=0) as dst:
    shutil.copyfileobj(src, dst)

orders = pd.read_csv(SOURCE, parse_dates=["order_date"])
days = orders.groupby(["customer_id", "order_date"], as_index=False).dollar_value.sum()
cal = days[days.order_date <= END]
first = cal.groupby("customer_id").order_date.min()
last = cal.groupby("customer_id").order_date.max()
count = cal.groupby("customer_id").order_date.count()
summary = pd.DataFrame({
    "x": count - 1,
    "t_x": (last - first).dt.days / 7.0,
    "T": (END - first).dt.days / 7.0,
})
repeat = cal[cal.order_date > cal.customer_id.map(first)]
summary["m"] = repeat.groupby("customer_id").dollar_value.mean()
holdout = days[(days.order_date > END) & (days.order_date <= HOLDOUT_END)]
summary["holdout"] = holdout.groupby("customer_id").order_date.count().reindex(summary.index).fillna(0)
x, t_x, T = summary.x.values.astype(float), summary.t_x.values, summary["T"].values

rows = [
    ("customers", len(summary)),
    ("repeat_customers", int((summary.x > 0).sum())),
    ("sum_x", summary.x.sum()),
    ("sum_t_x", t_x.sum()),
    ("sum_T", T.sum()),
    ("holdout_actual", summary.holdout.sum()),
]


def bg_nbd_ll(r, alpha, a, b):
    """FHL 2005 eq. 6, summed over customers."""
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return float(np.sum(a1 + a2 + np.logaddexp(a3, a4)))


rows.append(("bg_nbd_ll_published", bg_nbd_ll(0.243, 4.414, 0.793, 2.426)))

bg = BetaGeoFitter().fit(summary.x, summary.t_x, summary["T"], tol=1e-12)
for name in ["r", "alpha", "a", "b"]:
    rows.append((f"bg_nbd_{name}", bg.params_[name]))
rows.append(("bg_nbd_ll", bg_nbd_ll(*[bg.params_[n] for n in ["r", "alpha", "a", "b"]])))
rows.append(("bg_nbd_expected_example", float(bg.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86))))
rows.append(("bg_nbd_p_alive_example", float(np.ravel(bg.conditional_probability_alive(2, 30.43, 38.86))[0])))
rows.append(("bg_nbd_holdout_predicted", float(np.sum(bg.conditional_expected_number_of_purchases_up_to_time(39, x, t_x, T)))))

pareto = ParetoNBDFitter().fit(summary.x, summary.t_x, summary["T"], tol=1e-12, maxiter=20000)
pareto = ParetoNBDFitter().fit(
    summary.x, summary.t_x, summary["T"], tol=1e-14, maxiter=20000,
    initial_params=pareto._unload_params("r", "alpha", "s", "beta"),
)
for name in ["r", "alpha", "s", "beta"]:
    rows.append((f"pareto_nbd_{name}", pareto.params_[name]))
rows.append(("pareto_nbd_ll", float(ParetoNBDFitter._conditional_log_likelihood(
    pareto._unload_params("r", "alpha", "s", "beta"), x, t_x, T).sum())))
rows.append(("pareto_nbd_p_alive_example", float(np.ravel(pareto.conditional_probability_alive(2, 30.43, 38.86))[0])))
rows.append(("pareto_nbd_expected_example", float(pareto.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86))))

spenders = summary[(summary.x > 0) & (summary.m > 0)]
gg = GammaGammaFitter().fit(spenders.x, spenders.m)
rows.append(("gamma_gamma_customers", len(spenders)))
for name, key in [("p", "p"), ("q", "q"), ("gamma", "v")]:
    rows.append((f"gamma_gamma_{name}", gg.params_[key]))

# Extreme arguments, at 30 digits.
mp.mp.dps = 30
for i, (a, b, c, z) in enumerate([
    (1, 0.55, 2.2, 0.999),
    (1, 300.55, 302.16, 0.98),
    (1, 1.61, 1001.2, 0.9999),
    (0.55 + 500, 0.61 + 1, 0.55 + 0.61 + 501, 0.5),
    (2.243, 4.426, 5.219, 0.5),
]):
    rows.append((f"hyp2f1_{i}", float(mp.hyp2f1(a, b, c, z))))


def pareto_ll_mp(r, alpha, s, beta, x, t_x, T):
    """Fader & Hardie (2005) eq. 22 as written, in mpmath."""
    r, alpha, s, beta, x, t_x, T = map(mp.mpf, (r, alpha, s, beta, x, t_x, T))
    if alpha >= beta:
        f = lambda t: mp.hyp2f1(r + s + x, s + 1, r + s + x + 1, (alpha - beta) / (alpha + t)) / (alpha + t) ** (r + s + x)
    else:
        f = lambda t: mp.hyp2f1(r + s + x, r + x, r + s + x + 1, (beta - alpha) / (beta + t)) / (beta + t) ** (r + s + x)
    a0 = f(t_x) - f(T)
    like = mp.gamma(r + x) * alpha ** r * beta ** s / mp.gamma(r) * (
        1 / ((alpha + T) ** (r + x) * (beta + T) ** s) + s / (r + s + x) * a0)
    return float(mp.log(like))


for i, (params, cust) in enumerate([
    ((0.55, 10.58, 0.61, 11.67), (0, 0, 1000)),
    ((0.55, 10.58, 0.61, 11.67), (300, 77.5, 78)),
    ((0.55, 10.58, 0.61, 11.67), (5, 0.5, 5000)),
    ((0.55, 200.0, 0.61, 0.3), (2, 1.0, 5000)),
    ((0.55, 200.0, 0.61, 0.3), (150, 3000.0, 3100)),
]):
    rows.append((f"pareto_nbd_ll_extreme_{i}", pareto_ll_mp(*params, *cust)))

out = ROOT / "tests/reference/customer_value_cdnow.csv"
with open(out, "w") as f:
    f.write("name,value\n")
    for name, value in rows:
        f.write(f"{name},{float(value)!r}\n")
print(open(out).read())
