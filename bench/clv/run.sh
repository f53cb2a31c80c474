#!/usr/bin/env bash
# CLV benchmark: `rapport clv fit` against the Lifetimes library on data/cdnow/CDNOW_master.txt,
# in the same run. Both summarise the log per day (same-day purchases merged, observation ending
# on the last day of the file) and fit BG/NBD on every customer and Gamma-Gamma on customers with
# a repeat purchase of positive mean value; the script prints both parameter sets and their
# relative differences.
#
#   bench/clv/run.sh
#   RAPPORT_BIN=path/to/rapport VENV=/tmp/venv bench/clv/run.sh
#
# Installs Lifetimes 0.11.3 with pandas < 3 and numpy < 2 (what it needs) into $VENV.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${VENV:-${TMPDIR:-/tmp}/rapport-bench-clv-venv}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "Lifetimes==0.11.3" "pandas<3" "numpy<2"
fi
if [ -z "${RAPPORT_BIN:-}" ]; then
  (cd "$root" && cargo build -q -p rapport)
  RAPPORT_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/rapport"
fi

data="$root/data/cdnow/CDNOW_master.txt"
start=$(date +%s.%N)
"$RAPPORT_BIN" clv fit --transactions "$data" --json > "$work/rapport.json"
end=$(date +%s.%N)
echo "$end - $start" | bc -l > "$work/rapport_wall.txt"
"$venv/bin/python" "$root/bench/clv/lifetimes_fit.py" "$data" "$work"
