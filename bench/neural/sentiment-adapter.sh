#!/usr/bin/env bash
# Trains the neural sentiment head with an encoder adapter (bench/neural/sentiment_adapter.py,
# JAX, pinned below, in a virtual environment), then scores the results with the Rust forward
# pass the product uses: the random UCI split and the three cross-domain tests.
#
#   rapport models pull minilm                       # or: cargo run --release -- models pull minilm
#   bench/neural/sentiment-adapter.sh [OUT_DIR] [--write-head]
#
# MODEL_DIR overrides where the model is read (default: the models directory's
# all-MiniLM-L6-v2); VENV where the Python packages go (default ~/.cache/rapport/venv-adapter).
# With --write-head the random split's head and adapter, with the mix chosen on validation,
# are written to crates/rapport-interpret/model/neural-sentiment-head.json. About 30–40 minutes on
# 2 cores. Needs PyPI once for the packages; no other network.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-target/sentiment-adapter}
WRITE=""
for a in "$@"; do [ "$a" = "--write-head" ] && WRITE="--write-head"; done
[ "$OUT" = "--write-head" ] && OUT=target/sentiment-adapter
MODELS=${RAPPORT_MODELS_DIR:-$HOME/.cache/rapport/models}
MODEL_DIR=${MODEL_DIR:-$MODELS/all-MiniLM-L6-v2}
VENV=${VENV:-$HOME/.cache/rapport/venv-adapter}
[ -f "$MODEL_DIR/model.safetensors" ] || {
  echo "no model in $MODEL_DIR: run 'rapport models pull minilm' first" >&2
  exit 1
}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q jax==0.10.2 jaxlib==0.10.2 optax==0.2.8 numpy==2.4.6 \
  safetensors==0.8.0 tokenizers==0.23.3
mkdir -p "$OUT"
"$VENV/bin/python" bench/neural/sentiment_adapter.py "$MODEL_DIR" data "$OUT" --layers 6 --max-epochs 2
cargo run --release -q -p rapport-interpret --features neural --example evaluate_neural_sentiment \
  -- "$MODEL_DIR" --adapters "$OUT" $WRITE
