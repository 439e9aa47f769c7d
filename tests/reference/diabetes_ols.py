"""Reference values for cohort's linear regression: statsmodels OLS on the diabetes data.

Run from the repository root:  python tests/reference/diabetes_ols.py
Writes tests/reference/diabetes_ols.csv, which the Rust tests read (they need no Python).
Needs: statsmodels, pandas (generated with statsmodels 0.15.0, pandas 3.1.1).
"""
import pandas as pd
import statsmodels.api as sm

data = pd.read_csv("tests/data/diabetes.csv")
features = [c for c in data.columns if c != "target"]
fit = sm.OLS(data["target"], sm.add_constant(data[features])).fit()

rows = ["term,coef,std_err,t,p"]
for term in ["const"] + features:
    rows.append(
        f"{term},{float(fit.params[term])!r},{float(fit.bse[term])!r},"
        f"{float(fit.tvalues[term])!r},{float(fit.pvalues[term])!r}"
    )
rows.append(f"r2,{float(fit.rsquared)!r},,,")
rows.append(f"adj_r2,{float(fit.rsquared_adj)!r},,,")
with open("tests/reference/diabetes_ols.csv", "w") as f:
    f.write("\n".join(rows) + "\n")
