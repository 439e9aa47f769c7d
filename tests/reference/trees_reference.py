"""Reference values for cohort's gradient-boosted trees: LightGBM and XGBoost with LightGBM's
default settings on the telco churn table and two regression tables, and LightGBM's exact
per-row contributions (pred_contrib, TreeSHAP) of a small fixed model.

Run from the repository root:  python tests/reference/trees_reference.py
Generated with lightgbm 4.7.0, xgboost 3.2.0, scikit-learn 1.9.1, pandas 3.1.1, numpy.

Writes (the Rust tests read these and need no Python):
- tests/data/trees/{telco_churn.csv.gz,carseats.csv,diabetes.csv}: the datasets of
  ../shared/datasets with a `holdout` column (a 70/30 split, stratified on the label for
  telco, seed 42), so SQL trains and scores on exactly the rows the libraries did;
- tests/reference/trees_accuracy.csv: held-out AUC (telco) and RMSE (carseats, diabetes);
- tests/reference/trees_shap.json: the trees of a 5-tree, 7-leaf LightGBM model (numeric
  splits `x <= threshold` go left), rows of features, their raw scores and pred_contrib.
"""
import json
import os

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split

DATASETS = os.environ.get("DATASETS", "../shared/datasets")
SEED = 42
os.makedirs("tests/data/trees", exist_ok=True)


def split(data, stratify=None):
    """The data with a `holdout` column: 30% of the rows, drawn with SEED."""
    _, test = train_test_split(
        data.index, test_size=0.3, random_state=SEED, stratify=stratify
    )
    data = data.copy()
    data["holdout"] = data.index.isin(test)
    return data


def as_categories(x):
    """String columns as pandas categories: both libraries then split on them natively."""
    x = x.copy()
    for c in x.columns:
        if x[c].dtype == object or pd.api.types.is_string_dtype(x[c]):
            x[c] = x[c].astype("category")
    return x


def lightgbm_model(objective):
    # LightGBM's defaults; deterministic so the reference does not move between runs.
    return dict(objective=objective, n_estimators=100, learning_rate=0.1, num_leaves=31,
                min_child_samples=20, max_bin=255, reg_lambda=0.0, random_state=SEED,
                n_jobs=2, deterministic=True, verbose=-1)


def xgboost_model(cls, objective):
    # The same growth as LightGBM's: leaf-wise to 31 leaves, 255 bins, no L2 penalty.
    return cls(objective=objective, n_estimators=100, learning_rate=0.1,
               grow_policy="lossguide", max_leaves=31, max_depth=0, max_bin=256,
               reg_lambda=0.0, tree_method="hist", enable_categorical=True,
               random_state=SEED, n_jobs=2)


rows = ["dataset,metric,library,value"]

# Churn: binary log loss.
telco = split(pd.read_csv(f"{DATASETS}/telco_churn.csv"),
              pd.read_csv(f"{DATASETS}/telco_churn.csv")["churn"])
telco.to_csv("tests/data/trees/telco_churn.csv.gz", index=False, compression="gzip")
y = (telco["churn"] == "Yes").astype(int)
x = as_categories(telco.drop(columns=["churn", "holdout"]))
train, test = ~telco["holdout"], telco["holdout"]
m = lgb.LGBMClassifier(**lightgbm_model("binary")).fit(x[train], y[train])
rows.append(f"telco_churn,auc,lightgbm,{roc_auc_score(y[test], m.predict_proba(x[test])[:, 1])!r}")
m = xgboost_model(xgb.XGBClassifier, "binary:logistic").fit(x[train], y[train])
rows.append(f"telco_churn,auc,xgboost,{roc_auc_score(y[test], m.predict_proba(x[test])[:, 1])!r}")
# The linear baseline, one-hot against nothing dropped and standardized, for scale.
dummies = pd.get_dummies(x, dtype=float).fillna(x["total_charges"][train].mean())
dummies = (dummies - dummies[train].mean()) / dummies[train].std().replace(0, 1)
m = LogisticRegression(max_iter=1000).fit(dummies[train], y[train])
rows.append(f"telco_churn,auc,logistic,{roc_auc_score(y[test], m.predict_proba(dummies[test])[:, 1])!r}")

# Regression: squared error.
for name, label in [("carseats", "Sales"), ("diabetes", "target")]:
    data = split(pd.read_csv(f"{DATASETS}/{name}.csv"))
    data.to_csv(f"tests/data/trees/{name}.csv", index=False)
    y = data[label]
    x = as_categories(data.drop(columns=[label, "holdout"]))
    train, test = ~data["holdout"], data["holdout"]
    m = lgb.LGBMRegressor(**lightgbm_model("regression")).fit(x[train], y[train])
    rmse = mean_squared_error(y[test], m.predict(x[test])) ** 0.5
    rows.append(f"{name},rmse,lightgbm,{rmse!r}")
    m = xgboost_model(xgb.XGBRegressor, "reg:squarederror").fit(x[train], y[train])
    rmse = mean_squared_error(y[test], m.predict(x[test])) ** 0.5
    rows.append(f"{name},rmse,xgboost,{rmse!r}")

with open("tests/reference/trees_accuracy.csv", "w") as f:
    f.write("\n".join(rows) + "\n")

# TreeSHAP: a small fixed model on the numeric telco columns, and its exact contributions.
numeric = ["tenure", "monthly_charges", "total_charges", "senior_citizen"]
data = telco[~telco["holdout"]].dropna(subset=numeric)
x, y = data[numeric].astype(float), (data["churn"] == "Yes").astype(int)
booster = lgb.train(
    dict(objective="binary", num_leaves=7, learning_rate=0.3, min_data_in_leaf=20,
         verbose=-1, deterministic=True, num_threads=1, seed=SEED),
    lgb.Dataset(x, y), num_boost_round=5,
)
points = x.iloc[:40].to_numpy()


def nodes(tree):
    """A tree as a flat list of nodes, root first: splits and leaves with their row counts."""
    out = []

    def walk(node):
        i = len(out)
        out.append(None)
        if "leaf_value" in node:
            out[i] = dict(leaf=node["leaf_value"], count=node["leaf_count"])
        else:
            assert node["decision_type"] == "<="
            left, right = walk(node["left_child"]), walk(node["right_child"])
            out[i] = dict(feature=node["split_feature"], threshold=node["threshold"],
                          default_left=node["default_left"], left=left, right=right,
                          count=node["internal_count"])
        return i

    walk(tree["tree_structure"])
    return out


shap = dict(
    features=numeric,
    trees=[nodes(t) for t in booster.dump_model()["tree_info"]],
    rows=points.tolist(),
    raw=booster.predict(points, raw_score=True).tolist(),
    contributions=booster.predict(points, pred_contrib=True).tolist(),
)
with open("tests/reference/trees_shap.json", "w") as f:
    json.dump(shap, f, indent=1)
    f.write("\n")
