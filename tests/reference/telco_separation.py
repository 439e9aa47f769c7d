"""Reference values for logistic regression under quasi-complete separation: a rare level
that holds only one class, fitted by scikit-learn's unpenalised LogisticRegression.

Run from the repository root:  python tests/reference/telco_separation.py
Writes tests/data/telco_separation.csv (tests/data/telco_sample.csv with two extra string
columns) and tests/reference/telco_separation.csv (case,metric,value), which the Rust tests
read (they need no Python).
Generated with scikit-learn 1.9.1, statsmodels 0.15.0, pandas 3.1.1, numpy 2.

The extra columns are an `offer` the customer got: mostly 'none', else 'email' or 'phone' at
random (no bearing on churn), and a rare level on a handful of rows of one class only:
`offer_churners` has 'retention_call' on 8 churners of the first 1,500 rows (the training
rows) and 3 of the last 500 (the held-out rows); `offer_stayers` has 'loyalty_call' on 8 and
3 customers who stayed. Each case fits churn on the telco columns and one of them.

The design matches cohort's: string columns one-hot against their most frequent training
level (ties by name), numeric columns standardised with NULLs imputed by the training mean
(standardising changes nothing in an unpenalised fit but helps L-BFGS converge).
"""
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from design import design

TRAIN = 1500
telco = pd.read_csv("tests/data/telco_sample.csv")
rng = np.random.default_rng(19)
base = rng.choice(["none", "email", "phone"], size=len(telco), p=[0.7, 0.2, 0.1]).astype(object)
churned = (telco["churn"] == "Yes").to_numpy()


def inject(level, rows_of_class):
    offer = base.copy()
    index = np.arange(len(telco))
    for lo, hi, count in [(0, TRAIN, 8), (TRAIN, len(telco), 3)]:
        candidates = index[lo:hi][rows_of_class[lo:hi]]
        offer[rng.choice(candidates, size=count, replace=False)] = level
    return offer


telco["offer_churners"] = inject("retention_call", churned)
telco["offer_stayers"] = inject("loyalty_call", ~churned)
telco.to_csv("tests/data/telco_separation.csv", index=False)


rows = ["case,metric,value"]
for case, drop in [("churners", "offer_stayers"), ("stayers", "offer_churners")]:
    data = pd.read_csv("tests/data/telco_separation.csv").drop(columns=drop)
    train, test = data.iloc[:TRAIN], data.iloc[TRAIN:]
    X, Xt = design(train.drop(columns="churn"), test.drop(columns="churn"), standardize=True)
    y = (train["churn"] == "Yes").astype(float)
    yt = (test["churn"] == "Yes").astype(float)
    # penalty=None, as scikit-learn 1.9 spells it (C = inf); a convergence warning stops.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = LogisticRegression(C=np.inf, tol=1e-10, max_iter=100_000).fit(X, y)
    prob = fit.predict_proba(Xt)[:, 1]
    rows.append(f"{case},auc,{float(roc_auc_score(yt, prob))!r}")
    rows.append(f"{case},log_loss,{float(log_loss(yt, prob))!r}")
    # For comparison only: statsmodels' Newton fit, which warns of the separation.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm_fit = sm.Logit(y, sm.add_constant(X)).fit(disp=0, method="newton")
    sm_prob = sm_fit.predict(sm.add_constant(Xt, has_constant="add"))
    level = [c for c in X.columns if c.startswith("offer") and c.endswith("_call")][0]
    print(
        f"{case}: scikit-learn AUC {roc_auc_score(yt, prob):.6f} log-loss "
        f"{log_loss(yt, prob):.6f}, {level} {fit.coef_[0][list(X.columns).index(level)]:.2f}; "
        f"statsmodels AUC {roc_auc_score(yt, sm_prob):.6f} log-loss "
        f"{log_loss(yt, sm_prob):.6f}, {level} {sm_fit.params[level]:.2f} "
        f"(se {sm_fit.bse[level]:.3g})"
    )

with open("tests/reference/telco_separation.csv", "w") as f:
    f.write("\n".join(rows) + "\n")
