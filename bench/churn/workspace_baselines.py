"""Fit scikit-learn's baselines on rapport's churn snapshots (cutoff > 0 train, cutoff 0 test)
and print them beside rapport's own held-out figures from `rapport churn train --json`."""
import json
import platform
import sys
import time

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

snapshots, report = sys.argv[1], sys.argv[2]
df = pd.read_csv(snapshots)
y = df.pop("churned").to_numpy()
cut = df.pop("cutoff").to_numpy()
train, test = cut > 0, cut == 0
# Columns with no value in the training part tell no learner anything (rapport's trees skip
# them on their own; scikit-learn's binning refuses them).
df = df[[c for c in df.columns if df.loc[train, c].notna().any()]]
text = [c for c in df.columns if df[c].dtype == object]
numeric = [c for c in df.columns if c not in text]


def score(name, model, x_test, seconds):
    p = model.predict_proba(x_test)[:, 1]
    print(f"| {name} | {roc_auc_score(y[test], p):.4f} | {average_precision_score(y[test], p):.4f} "
          f"| {brier_score_loss(y[test], p):.4f} | {seconds:.3f} s |")


lr = make_pipeline(
    ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore"), text),
    ]),
    LogisticRegression(max_iter=2000),
)
x = df.copy()
for c in text:
    x[c] = x[c].fillna("missing")
start = time.perf_counter()
lr.fit(x[train], y[train])
lr_s = time.perf_counter() - start

hgb_x = df.copy()
for c in text:
    hgb_x[c] = hgb_x[c].astype("category")
hgb = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
start = time.perf_counter()
hgb.fit(hgb_x[train], y[train])
hgb_s = time.perf_counter() - start

r = json.load(open(report))
h = r["summary"]["holdout"]
print(f"snapshots: {len(y)} ({int(train.sum())} train, {int(test.sum())} held out; "
      f"{int(y[train].sum())} and {int(y[test].sum())} churned); "
      f"python {platform.python_version()}, scikit-learn {sklearn.__version__}")
print("| model | ROC-AUC | PR-AUC | Brier | fit |")
print("|---|---|---|---|---|")
print(f"| rapport (gradient-boosted trees, calibrated) | {h['roc_auc']:.4f} | {h['pr_auc']:.4f} | {h['brier']:.4f} "
      f"| {r['summary']['fit_seconds']:.3f} s (evaluation and final fit) |")
score("scikit-learn LogisticRegression (median-imputed, missing indicators, one-hot)", lr, x[test], lr_s)
score("scikit-learn HistGradientBoostingClassifier (defaults)", hgb, hgb_x[test], hgb_s)
