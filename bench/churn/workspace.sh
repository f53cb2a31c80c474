#!/usr/bin/env bash
# Churn models trained on a workspace's own data: the demo company is built, rapport trains its
# churn model from point-in-time snapshots (older cut-offs train, the newest is held out), and
# scikit-learn's LogisticRegression and HistGradientBoostingClassifier are fitted on the very
# same snapshots and split, in the same run.
#
#   bench/churn/workspace.sh                       # builds rapport (release) if needed
#   RAPPORT_BIN=path/to/rapport CUSTOMERS=2000 SEED=42 bench/churn/workspace.sh
#
# Installs scikit-learn and pandas into a virtual environment ($VENV). Needs python3 and the
# PyPI registry; the benchmark itself uses only loopback.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${VENV:-${TMPDIR:-/tmp}/rapport-bench-churn-venv}"
work="$(mktemp -d)"
trap 'kill "${demo_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "scikit-learn>=1.4,<2" "pandas<3" numpy
fi
if [ -z "${RAPPORT_BIN:-}" ]; then
  (cd "$root" && cargo build -q --release -p rapport)
  RAPPORT_BIN="${CARGO_TARGET_DIR:-$root/target}/release/rapport"
fi

# The demo company, loaded into a store of its own, then the server is stopped.
"$RAPPORT_BIN" demo --no-live --seed "${SEED:-42}" --customers "${CUSTOMERS:-2000}" \
  --data-dir "$work/demo" --addr 127.0.0.1:0 > "$work/demo.out" 2> "$work/demo.err" &
demo_pid=$!
for _ in $(seq 600); do
  grep -q "Rapport listening" "$work/demo.out" 2>/dev/null && break
  sleep 1
done
grep -q "Rapport listening" "$work/demo.out" || { cat "$work/demo.err" >&2; exit 1; }
kill "$demo_pid"; wait "$demo_pid" 2>/dev/null || true

"$RAPPORT_BIN" churn train --data-dir "$work/demo" --activate false --json \
  --snapshots-out "$work/snapshots.csv" > "$work/train.json"
"$venv/bin/python" "$root/bench/churn/workspace_baselines.py" "$work/snapshots.csv" "$work/train.json"
