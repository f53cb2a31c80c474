#!/usr/bin/env bash
# Side-by-side dedupe of synthetic person records: Rapport against Splink 5 (DuckDB), same
# data, same preprocessing, blocking rules and comparisons, same machine, same run.
#
#   bench/splink/run.sh [SIZE...]        default sizes: 10000 100000 1000000
#
# Environment: THREADS (default 2) threads for both tools; WORK (default
# /tmp/rapport-match-bench) for data and outputs; SPLINK_VENV (default
# ~/.cache/rapport-splink-venv) where Splink is installed from PyPI; SKIP_SPLINK=1 runs only
# Rapport; SEED (default 7). Prints one JSON line per tool and size, with the load average
# (1, 5, 15 minutes) just before that tool started.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(10000 100000 1000000)
THREADS=${THREADS:-2}
WORK=${WORK:-/tmp/rapport-match-bench}
VENV=${SPLINK_VENV:-$HOME/.cache/rapport-splink-venv}
SEED=${SEED:-7}
TARGET=${CARGO_TARGET_DIR:-target}
mkdir -p "$WORK"

if [ "${SKIP_SPLINK:-0}" != 1 ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/python" -c 'import splink, duckdb' 2>/dev/null \
    || "$VENV/bin/pip" install --quiet 'splink==5.0.0'
fi
# The matcher as the CLI runs it (`rapport bench match-data`, `rapport match dedupe`), from a
# small example binary so the benchmark does not need a release build of the whole server.
cargo build --release -q -p rapport-identity --example match_bench
BENCH="$TARGET/release/examples/match_bench"

peak_kb() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
# Wall-clock seconds of the whole process (start-up and imports included).
wall_s() {
  sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$1" \
    | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }'
}

for n in "${SIZES[@]}"; do
  data="$WORK/data-$n"
  if [ ! -s "$data/records.csv" ]; then
    "$BENCH" data --records "$n" --seed "$SEED" --out "$data" >&2
  fi
  out="$WORK/out-$n"
  mkdir -p "$out"
  # Both tools start with the input in the page cache: this machine's kernel reclaims idle
  # file pages, and whichever tool ran first would otherwise also pay for reading the disk.
  cat "$data/records.csv" > /dev/null
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  RAYON_NUM_THREADS=$THREADS /usr/bin/time -v -o "$out/rapport.time" \
    "$BENCH" dedupe --input "$data/records.csv" \
      --settings bench/splink/settings.toml --threshold 0.9 \
      --pairs-out "$out/rapport_pairs.csv" --clusters-out "$out/rapport_clusters.csv" \
      --labels "$data/truth.csv" > "$out/rapport.json"
  python3 - "$out/rapport.json" "$(peak_kb "$out/rapport.time")" "$n" "$THREADS" "$(wall_s "$out/rapport.time")" "$load" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
e = r["evaluation"]["pairwise"]
t = r["timings"]
threads = int(sys.argv[4])
print(json.dumps({
    "tool": "rapport", "records": int(sys.argv[3]), "threads": threads,
    "candidate_pairs": r["candidate_pairs"], "links": r["links"],
    "precision": e["precision"], "recall": e["recall"], "f1": e["f1"],
    "predict_s": (t["blocking_ms"] + t["compare_ms"] + t["score_ms"]) / 1000,
    "end_to_end_s": r["elapsed_ms"] / 1000,
    "pairs_per_s_per_core": r["pairs_per_second"] / threads,
    "peak_rss_mb": int(sys.argv[2]) / 1024,
    "process_wall_s": float(sys.argv[5]),
    "load_before": sys.argv[6],
    "read_s": r.get("read_ms", 0) / 1000,
    "finish_s": r.get("finish_ms", 0) / 1000,
    "evaluate_s": r.get("evaluate_ms", 0) / 1000,
    "timings_ms": t,
}))
PY
  if [ "${SKIP_SPLINK:-0}" != 1 ]; then
    cat "$data/records.csv" > /dev/null
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    /usr/bin/time -v -o "$out/splink.time" \
      "$VENV/bin/python" bench/splink/splink_dedupe.py "$data" "$out" --threads "$THREADS" \
      > "$out/splink.json"
    python3 - "$out/splink.json" "$(peak_kb "$out/splink.time")" "$n" "$(wall_s "$out/splink.time")" "$load" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
r["records"] = int(sys.argv[3])
r["load_before"] = sys.argv[5]
r["peak_rss_mb"] = int(sys.argv[2]) / 1024
r["process_wall_s"] = float(sys.argv[4])
print(json.dumps(r))
PY
  fi
done
