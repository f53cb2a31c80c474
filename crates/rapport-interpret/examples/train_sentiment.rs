//! Trains the sentiment weights on the UCI train split and writes
//! `model/sentiment-weights.json`.
//!
//!     cargo run --release -p rapport-interpret --example train_sentiment

mod common;

use rapport_interpret::linear::SgdConfig;
use rapport_interpret::{is_test_split, train_weights, DEFAULT_HASH_BITS};

/// Softening of the model's margin (see `SentimentWeights::temperature`).
const TEMPERATURE: f32 = 3.0;

fn main() {
    let (train, test) = common::uci();
    println!("train {} / test {}", train.len(), test.len());
    // Choose hyper-parameters on a validation part of train (a second, independent hash).
    let (fit, val): (Vec<_>, Vec<_>) = train
        .iter()
        .cloned()
        .partition(|(t, _)| !is_test_split(&format!("val:{t}")));
    let mut best = (0.0, SgdConfig::default(), 0.0f32);
    for l2 in [1e-5f32, 1e-4, 1e-3] {
        for lr in [0.2f32, 0.5, 1.0] {
            for epochs in [10usize, 25] {
                let cfg = SgdConfig {
                    epochs,
                    learning_rate: lr,
                    decay: 0.3,
                    l2,
                    seed: 42,
                };
                let w = train_weights(
                    &fit,
                    DEFAULT_HASH_BITS,
                    1.0,
                    TEMPERATURE,
                    &cfg,
                    "validation",
                )
                .expect("train");
                // The lexicon always keeps a share: the model only saw product reviews.
                for blend in [0.4f32, 0.5, 0.6, 0.7, 0.8] {
                    let mut w = w.clone();
                    w.blend = blend;
                    let i = common::sentiment_interpreter(Some(&w));
                    let acc = common::accuracy(&val, |t| i.sentiment(t).score.get() >= 0.0);
                    if acc > best.0 {
                        best = (acc, cfg, blend);
                    }
                }
            }
        }
    }
    let (val_acc, cfg, blend) = best;
    println!("best on validation: {val_acc:.4} with {cfg:?}, blend {blend}");
    let w = train_weights(
        &train,
        DEFAULT_HASH_BITS,
        blend,
        TEMPERATURE,
        &cfg,
        "UCI Sentiment Labelled Sentences (CC BY 4.0, Kotzias et al. 2015), 80% train split by FNV-1a hash; examples/train_sentiment.rs",
    )
    .expect("train");
    let i = common::sentiment_interpreter(Some(&w));
    let acc = common::accuracy(&test, |t| i.sentiment(t).score.get() >= 0.0);
    let lex = common::accuracy(&test, |t| i.lexicon_score(t) >= 0.0);
    println!(
        "test accuracy: trained {acc:.4}, lexicon only {lex:.4}; {} non-zero hashed weights",
        w.sparse.len()
    );
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("model/sentiment-weights.json");
    let json = serde_json::to_string(&w).expect("json");
    std::fs::write(&path, json).expect("write weights");
    println!("wrote {}", path.display());
}
