"""Reference values for EVALUATE: models fitted with statsmodels on the first rows of a data
set, scored on the rest with scikit-learn's metrics.

Run from the repository root:  python tests/reference/evaluate_holdout.py
Writes tests/reference/evaluate_holdout.csv (model,metric,value), which the Rust tests read.
Generated with statsmodels 0.15.0, scikit-learn 1.9.1, pandas 3.1.1.

The designs match cohort's: string columns one-hot against their most frequent training
level (ties by name), numeric NULLs imputed by the training mean.
"""
import pandas as pd
import statsmodels.api as sm
from sklearn import metrics

from design import design as encoded


def design(train, test):
    X, Xt = encoded(train, test)
    return sm.add_constant(X), sm.add_constant(Xt, has_constant="add")


rows = ["model,metric,value"]

diabetes = pd.read_csv("tests/data/diabetes.csv")
train, test = diabetes.iloc[:300], diabetes.iloc[300:]
X, Xt = design(train.drop(columns="target"), test.drop(columns="target"))
fit = sm.OLS(train["target"], X).fit()
pred = fit.predict(Xt)
y = test["target"]
n, p = len(y), X.shape[1] - 1
r2 = metrics.r2_score(y, pred)
for name, value in [
    ("r2", r2),
    ("adj_r2", 1 - (1 - r2) * (n - 1) / (n - p - 1)),
    ("mse", metrics.mean_squared_error(y, pred)),
    ("mae", metrics.mean_absolute_error(y, pred)),
]:
    rows.append(f"diabetes,{name},{float(value)!r}")

telco = pd.read_csv("tests/data/telco_sample.csv")
train, test = telco.iloc[:1500], telco.iloc[1500:]
X, Xt = design(train.drop(columns="churn"), test.drop(columns="churn"))
fit = sm.Logit((train["churn"] == "Yes").astype(float), X).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
prob = fit.predict(Xt)
y = (test["churn"] == "Yes").astype(float)
for name, value in [
    ("accuracy", metrics.accuracy_score(y, prob >= 0.5)),
    ("precision", metrics.precision_score(y, prob >= 0.5)),
    ("recall", metrics.recall_score(y, prob >= 0.5)),
    ("f1", metrics.f1_score(y, prob >= 0.5)),
    ("auc", metrics.roc_auc_score(y, prob)),
    ("log_loss", metrics.log_loss(y, prob)),
]:
    rows.append(f"telco,{name},{float(value)!r}")

with open("tests/reference/evaluate_holdout.csv", "w") as f:
    f.write("\n".join(rows) + "\n")
