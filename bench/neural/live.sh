#!/usr/bin/env bash
# What reading customer messages with the neural path costs on the live API, against the
# embedded models, in the same run on the same machine: two servers on loopback, one with
# interpret.model = "embedded" and one with "neural", alternating request by request.
#
#   cargo build --release -p rapport --features neural
#   rapport models pull minilm
#   bench/neural/live.sh [REQUESTS]          # default 200 of each kind per server
#
# RAPPORT_BIN overrides the binary (default target/release/rapport). Stops by itself; only
# loopback traffic.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${RAPPORT_BIN:-${CARGO_TARGET_DIR:-target}/release/rapport}
N=${1:-200}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

start() { # NAME MODEL -> prints "URL KEY"
  local dir=$tmp/$1
  mkdir -p "$dir"
  local key
  key=$("$BIN" keys create --role admin --data-dir "$dir" | tail -n 1)
  RAPPORT__INTERPRET__MODEL=$2 RAPPORT__LOG__LEVEL=warn \
    "$BIN" serve --data-dir "$dir" --addr 127.0.0.1:0 >"$dir/out.log" 2>&1 &
  pids+=($!)
  local url=""
  for _ in $(seq 1 600); do
    url=$(sed -n 's/^Rapport listening on //p' "$dir/out.log" | head -n 1)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$dir/out.log" >&2; echo "server $1 did not start" >&2; exit 1; }
  echo "$url $key"
}

read -r EURL EKEY < <(start embedded embedded)
read -r NURL NKEY < <(start neural neural)

python3 - "$N" "$EURL" "$EKEY" "$NURL" "$NKEY" <<'PY'
import json, sys, time, urllib.request, statistics, os, platform

n = int(sys.argv[1])
servers = {"embedded": (sys.argv[2], sys.argv[3]), "neural": (sys.argv[4], sys.argv[5])}
texts = [
    "I was charged twice for my order and nobody answers my emails.",
    "Thanks, the replacement arrived today and works perfectly!",
    "My internet keeps dropping every evening. This is the third time I'm contacting you.",
    "How do I change the delivery address for order 58213?",
    "Cancel my subscription now, I'm done with this service.",
    "The app crashes when I open the billing page, can you help?",
    "Still waiting for my refund after two weeks, really disappointed.",
    "Can I upgrade to the family plan without losing my data?",
]

def post(server, path, body):
    url, key = servers[server]
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + key})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        out = json.loads(r.read())
    return (time.perf_counter() - t) * 1000.0, out

conv = {s: post(s, "/v1/conversations", {"userId": "bench-" + s, "channel": "chat"})[1]["id"]
        for s in servers}
# Warm-up, and a check that each server reads with what it was asked to.
for s in servers:
    _, out = post(s, "/v1/analyze", {"texts": [{"text": texts[0]}]})
    used = out["results"][0]["model"].get("neural")
    assert (used is not None) == (s == "neural"), (s, out["results"][0]["model"])

kinds = {
    "POST /v1/analyze, 1 text": lambda s, i: post(s, "/v1/analyze", {"texts": [{"text": texts[i % len(texts)]}]}),
    "POST /v1/analyze, 32 texts": lambda s, i: post(s, "/v1/analyze", {"texts": [{"text": texts[(i + k) % len(texts)]} for k in range(32)]}),
    "POST /v1/conversations/{id}/messages (customer message, analysed and stored)": lambda s, i: post(
        s, f"/v1/conversations/{conv[s]}/messages",
        {"direction": "inbound", "author": "customer", "text": texts[i % len(texts)]}),
}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Machine: {os.cpu_count()} cores, {cpu}; load average at start {os.getloadavg()[0]:.2f}; {n} requests of each kind per server, alternating servers.\n")
print("| request | embedded p50 / p95 | neural p50 / p95 | neural / embedded (p50) |")
print("|---|---|---|---|")
for name, call in kinds.items():
    lat = {s: [] for s in servers}
    for i in range(n):
        for s in servers:
            lat[s].append(call(s, i)[0])
    def q(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(p * len(xs)))]
    e, u = lat["embedded"], lat["neural"]
    print(f"| {name} | {q(e, .5):.2f} / {q(e, .95):.2f} ms | {q(u, .5):.2f} / {q(u, .95):.2f} ms | {q(u, .5) / q(e, .5):.1f}x |")
PY
