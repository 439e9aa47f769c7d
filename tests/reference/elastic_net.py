"""Reference values for cohort's L1 and elastic-net penalties: scikit-learn's ElasticNet on
the diabetes data and LogisticRegression(penalty='elasticnet', solver='saga') on
tests/data/telco_sample.csv.

Run from the repository root:  python tests/reference/elastic_net.py
Writes tests/reference/elastic_net.csv (model, term, coef), which the Rust tests read.
Generated with scikit-learn 1.9.1, pandas 3.1.1.

cohort penalises the coefficients of its design, where numeric features are standardised
(population standard deviation, NULLs imputed with the mean afterwards) and text is one-hot
against its most frequent level: it minimises ½ RSS + l1 Σ|β| + ½ l2 Σβ² (linear) or
−log-likelihood + l1 Σ|β| + ½ l2 Σβ² (logistic), the intercept unpenalised. In
scikit-learn's terms that is ElasticNet(alpha = (l1 + l2) / n, l1_ratio = l1 / (l1 + l2))
and LogisticRegression(C = 1 / (l1 + l2), l1_ratio = l1 / (l1 + l2)) on the same design.
The coefficients are written in the features' own units, as EXPLAIN_MODEL gives them.
"""
import numpy as np
import pandas as pd
from sklearn.linear_model import ElasticNet, LogisticRegression

from design import encoding

LINEAR = (2000.0, 500.0)  # l1_reg, l2_reg on the diabetes data
LOGISTIC = (20.0, 2.0)  # on the telco sample


def design(data):
    """cohort's design: (name, column, mean, std) per design column."""
    return [(name, column(data), mean, std) for name, column, mean, std in encoding(data)]


def standardised(columns):
    return np.column_stack([(c - m) / s for _, c, m, s in columns])


def raw_units(columns, coef, intercept):
    """Coefficients per unit of each feature, and the intercept that goes with them."""
    weights = [w / s for (_, _, _, s), w in zip(columns, coef)]
    return weights, intercept - sum(w * m for (_, _, m, _), w in zip(columns, weights))


rows = ["model,term,coef"]

data = pd.read_csv("tests/data/diabetes.csv")
y = data.pop("target").to_numpy()
columns = design(data)
l1, l2 = LINEAR
fit = ElasticNet(
    alpha=(l1 + l2) / len(y), l1_ratio=l1 / (l1 + l2), tol=1e-14, max_iter=10**7
).fit(standardised(columns), y)
weights, intercept = raw_units(columns, fit.coef_, fit.intercept_)
rows.append(f"linear,const,{float(intercept)!r}")
rows += [f"linear,{name},{float(w)!r}" for (name, *_), w in zip(columns, weights)]

data = pd.read_csv("tests/data/telco_sample.csv")
y = (data.pop("churn") == "Yes").astype(float).to_numpy()
columns = design(data)
l1, l2 = LOGISTIC
fit = LogisticRegression(
    penalty="elasticnet", solver="saga", C=1 / (l1 + l2), l1_ratio=l1 / (l1 + l2),
    tol=1e-13, max_iter=10**7,
).fit(standardised(columns), y)
weights, intercept = raw_units(columns, fit.coef_[0], fit.intercept_[0])
rows.append(f"logistic,const,{float(intercept)!r}")
rows += [f"logistic,{name},{float(w)!r}" for (name, *_), w in zip(columns, weights)]

with open("tests/reference/elastic_net.csv", "w") as f:
    f.write("\n".join(rows) + "\n")
