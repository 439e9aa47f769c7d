"""Reference values for cohort's logistic regression: statsmodels Logit and scikit-learn
metrics on tests/data/telco_sample.csv (the first 2,000 rows of the IBM Telco churn sample).

Run from the repository root:  python tests/reference/telco_logit.py
Writes tests/reference/telco_logit.csv, which the Rust tests read (they need no Python).
Generated with statsmodels 0.15.0, scikit-learn 1.9.1, pandas 3.1.1.

The design matches cohort's: string columns are one-hot encoded against their most frequent
level (ties broken by name), rows with a missing value in a numeric column are kept with
that value imputed by the mean, and the label is churn = 'Yes'.
"""
import pandas as pd
import statsmodels.api as sm
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

data = pd.read_csv("tests/data/telco_sample.csv")
y = (data.pop("churn") == "Yes").astype(float)
columns = []
for name in data.columns:
    col = data[name]
    if not pd.api.types.is_numeric_dtype(col):
        counts = col.value_counts()
        reference = sorted(counts[counts == counts.max()].index)[0]
        for level in sorted(set(col.dropna()) - {reference}):
            columns.append((f"{name}={level}", (col == level).astype(float)))
    else:
        columns.append((name, col.fillna(col.mean()).astype(float)))
X = pd.DataFrame(dict(columns))
fit = sm.Logit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
p = fit.predict(sm.add_constant(X))

rows = ["term,coef,std_err,z,p"]
for term in fit.params.index:
    rows.append(
        f"{term},{float(fit.params[term])!r},{float(fit.bse[term])!r},"
        f"{float(fit.tvalues[term])!r},{float(fit.pvalues[term])!r}"
    )
rows.append(f"auc,{float(roc_auc_score(y, p))!r},,,")
rows.append(f"log_loss,{float(log_loss(y, p))!r},,,")
rows.append(f"accuracy,{float(accuracy_score(y, p >= 0.5))!r},,,")
with open("tests/reference/telco_logit.csv", "w") as f:
    f.write("\n".join(rows) + "\n")
