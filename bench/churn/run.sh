#!/usr/bin/env bash
# Churn benchmark: rapport's gradient-boosted classifier against scikit-learn's
# HistGradientBoostingClassifier and LogisticRegression, on one fixed split of
# data/churn/churn.csv (70/30, stratified, seed 42), in the same run on the same machine.
#
#   bench/churn/run.sh            # builds the rapport binary (debug profile) if needed
#   RAPPORT_BIN=path/to/rapport bench/churn/run.sh   # e.g. <target>/release/rapport: the
#                                 # training times of BENCHMARKS.md are release builds (in the
#                                 # debug profile rapport-predict itself is not optimised)
#   REPEATS=5 VENV=/tmp/venv bench/churn/run.sh
#   THREADS=2 bench/churn/run.sh  # threads for both sides (default 1: on a shared machine,
#                                 # OpenMP's spinning threads make multi-threaded times erratic)
#   SEEDS="1 2 3 4 5" bench/churn/run.sh  # then also a second look: the same comparison of
#                                 # ROC-AUC (one fit each) on splits with these seeds, and means
#
# Installs scikit-learn and pandas into a virtual environment ($VENV). Needs python3 and the
# PyPI registry; the benchmark itself uses no network.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${VENV:-${TMPDIR:-/tmp}/rapport-bench-churn-venv}"
repeats="${REPEATS:-5}"
export OMP_NUM_THREADS="${THREADS:-1}" RAYON_NUM_THREADS="${THREADS:-1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "scikit-learn>=1.4,<2" "pandas<3" numpy
fi
if [ -z "${RAPPORT_BIN:-}" ]; then
  (cd "$root" && cargo build -q -p rapport)
  RAPPORT_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/rapport"
fi

"$venv/bin/python" "$root/bench/churn/baselines.py" split "$root/data/churn/churn.csv" "$work"

# rapport: median training time over the repeats (the time the train command reports for
# fitting, and the wall time of the whole command, process start and CSV parse included).
fit_times=(); wall_times=()
for i in $(seq "$repeats"); do
  start=$(date +%s.%N)
  "$RAPPORT_BIN" model train --task classification --input "$work/train.csv" --label churned \
    --output "$work/model.json" --json > "$work/train.json"
  end=$(date +%s.%N)
  fit_times+=("$("$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["training_seconds"])' "$work/train.json")")
  wall_times+=("$(echo "$end - $start" | bc -l)")
done
"$RAPPORT_BIN" model eval --model "$work/model.json" --input "$work/test.csv" --json > "$work/eval.json"

"$venv/bin/python" "$root/bench/churn/baselines.py" compare "$work" "$repeats" \
  "${fit_times[*]}" "${wall_times[*]}"

# Second look, not the one fixed split: other split seeds, one fit per model each.
if [ -n "${SEEDS:-}" ]; then
  : > "$work/seeds.jsonl"
  for seed in $SEEDS; do
    mkdir -p "$work/s$seed"
    "$venv/bin/python" "$root/bench/churn/baselines.py" split "$root/data/churn/churn.csv" "$work/s$seed" "$seed"
    start=$(date +%s.%N)
    "$RAPPORT_BIN" model train --task classification --input "$work/s$seed/train.csv" --label churned \
      --output "$work/s$seed/model.json" --json > "$work/s$seed/train.json"
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l > "$work/s$seed/wall"
    "$RAPPORT_BIN" model eval --model "$work/s$seed/model.json" --input "$work/s$seed/test.csv" --json \
      > "$work/s$seed/eval.json"
    "$venv/bin/python" "$root/bench/churn/baselines.py" seed-row "$work/s$seed" "$seed" >> "$work/seeds.jsonl"
  done
  echo
  "$venv/bin/python" "$root/bench/churn/baselines.py" seed-summary "$work/seeds.jsonl"
fi
