#!/usr/bin/env python3
"""Times Fairlearn on the CSV `fairness_bench.rs` writes, doing the same audit: selection
rate, TPR, FPR, TNR, FNR, accuracy, count and mean score by `sex`, by `region` and by their
intersection, with the demographic parity, equalized odds and equal opportunity differences
and ratios of each. Prints one JSON object of timings (seconds) and a few of the numbers, so
the Rust side can check they agree.

    python3 fairness_bench_fairlearn.py data.csv
"""

import json
import sys
import time

import fairlearn
import numpy as np
import pandas as pd
import sklearn.metrics as skm
from fairlearn.metrics import (
    MetricFrame,
    count,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    mean_prediction,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)


def audit(df, groups):
    sf = df[groups[0]] if len(groups) == 1 else df[groups]
    y_true, y_pred = df["repaid"].to_numpy(), df["approved"].to_numpy()
    mf = MetricFrame(
        metrics={
            "count": count,
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "false_negative_rate": false_negative_rate,
            "true_negative_rate": true_negative_rate,
            "accuracy": skm.accuracy_score,
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sf,
    )
    scores = MetricFrame(
        metrics=mean_prediction, y_true=y_true, y_pred=df["score"].to_numpy(), sensitive_features=sf
    )
    diff, ratio = mf.difference(), mf.ratio()
    return {
        "groups": len(mf.by_group),
        "mean_score_groups": len(scores.by_group),
        "demographic_parity_difference": float(diff["selection_rate"]),
        "demographic_parity_ratio": float(ratio["selection_rate"]),
        "equalized_odds_difference": float(
            max(diff["true_positive_rate"], diff["false_positive_rate"])
        ),
        "equalized_odds_ratio": float(
            min(ratio["true_positive_rate"], ratio["false_positive_rate"])
        ),
        "equal_opportunity_difference": float(diff["true_positive_rate"]),
    }


def main():
    path = sys.argv[1]
    t0 = time.perf_counter()
    df = pd.read_csv(path, float_precision="round_trip", keep_default_na=False)
    t1 = time.perf_counter()
    results = {}
    for groups in (["sex"], ["region"], ["sex", "region"]):
        results[" x ".join(groups)] = audit(df, groups)
    t2 = time.perf_counter()
    # The convenience function a user would call, for one number, to time it alone.
    eor = equalized_odds_ratio(
        df["repaid"], df["approved"], sensitive_features=df[["sex", "region"]]
    )
    t3 = time.perf_counter()
    print(
        json.dumps(
            {
                "fairlearn": fairlearn.__version__,
                "rows": len(df),
                "read_csv_seconds": t1 - t0,
                "audit_seconds": t2 - t1,
                "equalized_odds_ratio_call_seconds": t3 - t2,
                "equalized_odds_ratio_call": float(eor),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
