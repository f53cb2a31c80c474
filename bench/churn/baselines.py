"""Split the churn data, fit scikit-learn's baselines, and print them beside rapport's
figures (read from the files bench/churn/run.sh wrote). Timing is wall time of fit().

    baselines.py split SRC OUT [SEED]          70/30 stratified split (seed 42 by default)
    baselines.py compare WORK REPEATS FITS WALLS   the fixed-split table
    baselines.py seed-row WORK SEED            one line of JSON: every model's ROC-AUC on a split
    baselines.py seed-summary FILE             the per-seed table and the means
"""
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

LABEL = "churned"


def split(src, out, seed=42):
    df = pd.read_csv(src)
    train, test = train_test_split(df, test_size=0.3, random_state=int(seed), stratify=df[LABEL])
    train.to_csv(f"{out}/train.csv", index=False)
    test.to_csv(f"{out}/test.csv", index=False)


def load(path):
    df = pd.read_csv(path)
    y = df.pop(LABEL).to_numpy()
    return df, y


def timed_fit(make, x, y, repeats):
    times = []
    for _ in range(repeats):
        model = make()
        start = time.perf_counter()
        model.fit(x, y)
        times.append(time.perf_counter() - start)
    return model, statistics.median(times)


def baselines(work):
    """The split's frames and the two baselines' constructors."""
    x_train, y_train = load(f"{work}/train.csv")
    x_test, y_test = load(f"{work}/test.csv")
    categorical = [c for c in x_train.columns if x_train[c].dtype == object]
    numeric = [c for c in x_train.columns if c not in categorical]
    for frame in (x_train, x_test):
        for c in categorical:
            frame[c] = pd.Categorical(frame[c], categories=sorted(x_train[c].dropna().unique()))

    def hgb():
        return HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=42)

    def logistic():
        pre = ColumnTransformer(
            [
                ("num", StandardScaler(), numeric),
                ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        )
        return make_pipeline(pre, LogisticRegression(max_iter=2000))

    return x_train, y_train, x_test, y_test, hgb, logistic


def seed_row(work, seed):
    x_train, y_train, x_test, y_test, hgb, logistic = baselines(work)
    row = dict(seed=int(seed), rapport=json.load(open(f"{work}/eval.json"))["roc_auc"])
    row["rapport_seconds"] = float(open(f"{work}/wall").read())
    for name, make in (("hgb", hgb), ("lr", logistic)):
        model, seconds = timed_fit(make, x_train, y_train, 1)
        row[name] = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
        row[f"{name}_seconds"] = seconds
    print(json.dumps(row))


def seed_summary(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    print(f"ROC-AUC on {len(rows)} other splits (70/30 stratified), one fit each:")
    print(f"{'seed':>6} {'rapport':>8} {'HGB':>8} {'LR':>8}   {'rapport s':>9} {'HGB s':>7} {'LR s':>7}")
    for r in rows:
        print(f"{r['seed']:>6} {r['rapport']:8.4f} {r['hgb']:8.4f} {r['lr']:8.4f}   "
              f"{r['rapport_seconds']:9.3f} {r['hgb_seconds']:7.3f} {r['lr_seconds']:7.3f}")
    mean = lambda k: statistics.mean(r[k] for r in rows)
    print(f"{'mean':>6} {mean('rapport'):8.4f} {mean('hgb'):8.4f} {mean('lr'):8.4f}   "
          f"{mean('rapport_seconds'):9.3f} {mean('hgb_seconds'):7.3f} {mean('lr_seconds'):7.3f}")
    wins = sum(r["rapport"] >= max(r["hgb"], r["lr"]) for r in rows)
    best = max(mean("hgb"), mean("lr"))
    print(f"mean AUC goal (>= {best:.4f}): {'met' if mean('rapport') >= best else 'NOT met'}; "
          f"rapport at least the better baseline on {wins} of {len(rows)} splits")


def compare(work, repeats, fit_times, wall_times):
    repeats = int(repeats)
    x_train, y_train, x_test, y_test, hgb, logistic = baselines(work)

    rows = []
    for name, make in (("HistGradientBoostingClassifier", hgb), ("LogisticRegression", logistic)):
        model, seconds = timed_fit(make, x_train, y_train, repeats)
        p = model.predict_proba(x_test)[:, 1]
        rows.append(
            dict(
                name=f"scikit-learn {name}",
                roc_auc=roc_auc_score(y_test, p),
                pr_auc=average_precision_score(y_test, p),
                brier=brier_score_loss(y_test, p),
                fit_seconds=seconds,
            )
        )
    ours = json.load(open(f"{work}/eval.json"))
    fit = statistics.median(float(t) for t in fit_times.split())
    wall = statistics.median(float(t) for t in wall_times.split())
    rows.insert(
        0,
        dict(
            name="rapport model train (command wall time)",
            roc_auc=ours["roc_auc"],
            pr_auc=ours["pr_auc"],
            brier=ours["brier"],
            fit_seconds=wall,
        ),
    )
    rows.insert(1, dict(name="rapport (fit only, as reported)", roc_auc=None, pr_auc=None, brier=None, fit_seconds=fit))
    hgb_row = rows[2]
    print(f"churn: train {len(y_train)} rows, test {len(y_test)} rows ({int(y_test.sum())} positive); "
          f"median of {repeats} fits; python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
          f"{platform.machine()}, threads {os.environ.get('OMP_NUM_THREADS', 'default')}")
    print(f"{'model':<42} {'ROC-AUC':>8} {'PR-AUC':>8} {'Brier':>8} {'train s':>9} {'vs HGB time':>12}")
    for r in rows:
        fmt = lambda v: f"{v:8.4f}" if v is not None else f"{'':>8}"
        print(f"{r['name']:<42} {fmt(r['roc_auc'])} {fmt(r['pr_auc'])} {fmt(r['brier'])} "
              f"{r['fit_seconds']:9.4f} {r['fit_seconds'] / hgb_row['fit_seconds']:11.2f}x")
    best = max(rows[2]["roc_auc"], rows[3]["roc_auc"])
    print(f"AUC goal (>= {best:.4f}, the better baseline): {'met' if ours['roc_auc'] >= best else 'NOT met'}; "
          f"time goal (<= HGB's {hgb_row['fit_seconds']:.4f} s, command wall time): "
          f"{'met' if wall <= hgb_row['fit_seconds'] else 'NOT met'}")


if __name__ == "__main__":
    if sys.argv[1] == "split":
        split(*sys.argv[2:5])
    elif sys.argv[1] == "seed-row":
        seed_row(*sys.argv[2:4])
    elif sys.argv[1] == "seed-summary":
        seed_summary(sys.argv[2])
    else:
        compare(*sys.argv[2:6])
