"""Fit Lifetimes' BG/NBD and Gamma-Gamma on CDNOW and compare with rapport's fit."""
import json
import platform
import sys
import time

import lifetimes
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

data, work = sys.argv[1], sys.argv[2]
tx = pd.read_csv(data, sep=r"\s+", dtype={"customer_id": str})
tx["date"] = pd.to_datetime(tx["date"].astype(str), format="%Y%m%d")
start = time.perf_counter()
summary = summary_data_from_transaction_data(
    tx, "customer_id", "date", monetary_value_col="dollar_value", freq="D"
)
bg = BetaGeoFitter()
bg.fit(summary["frequency"], summary["recency"], summary["T"])
repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
gg = GammaGammaFitter()
gg.fit(repeat["frequency"], repeat["monetary_value"])
seconds = time.perf_counter() - start

ours = json.load(open(f"{work}/rapport.json"))
wall = float(open(f"{work}/rapport_wall.txt").read())
print(f"CDNOW: {len(summary)} customers, {len(tx)} transactions, {len(repeat)} with repeat purchases; "
      f"Lifetimes {lifetimes.__version__}, pandas {pd.__version__}, python {platform.python_version()}")
print(f"{'parameter':<10} {'Lifetimes':>12} {'rapport':>12} {'rel. diff':>10}")
worst = 0.0
for name, theirs, mine in [
    ("r", bg.params_["r"], ours["bgnbd"]["r"]),
    ("alpha", bg.params_["alpha"], ours["bgnbd"]["alpha"]),
    ("a", bg.params_["a"], ours["bgnbd"]["a"]),
    ("b", bg.params_["b"], ours["bgnbd"]["b"]),
    ("p", gg.params_["p"], ours["gamma_gamma"]["p"]),
    ("q", gg.params_["q"], ours["gamma_gamma"]["q"]),
    ("v", gg.params_["v"], ours["gamma_gamma"]["v"]),
]:
    rel = abs(mine - theirs) / abs(theirs)
    worst = max(worst, rel)
    print(f"{name:<10} {theirs:12.6f} {mine:12.6f} {100 * rel:9.4f}%")
print(f"worst relative difference {100 * worst:.4f}% (goal: within 1%: {'met' if worst <= 0.01 else 'NOT met'})")
print(f"fit time: Lifetimes {seconds:.2f} s (summary and both fits); rapport {ours['fit_seconds']:.2f} s "
      f"(summary and both fits), {wall:.2f} s for the whole command")
