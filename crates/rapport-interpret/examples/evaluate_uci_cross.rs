//! Cross-domain sentiment on the UCI labelled sentences: for each of Amazon, Yelp and IMDB,
//! train the embedded model on the other two and test on all 1,000 sentences of the third.
//! Hyper-parameters (SGD settings and the lexicon/model blend) are chosen on a validation part
//! of the two training domains only.
//!
//!     cargo run --release -p rapport-interpret --example evaluate_uci_cross

mod common;

use rapport_interpret::linear::SgdConfig;
use rapport_interpret::{is_test_split, train_weights, DEFAULT_HASH_BITS};

const TEMPERATURE: f32 = 3.0;
const DOMAINS: [&str; 3] = ["amazon", "yelp", "imdb"];

fn main() {
    let shipped = common::sentiment_interpreter(None);
    println!("| test domain (trained on the other two) | lexicon + rules only | lexicon + trained model | shipped weights (saw 80% of all three domains) | chosen settings |");
    println!("|---|---|---|---|---|");
    let mut sum = (0.0, 0.0);
    for target in DOMAINS {
        let test = common::uci_domain(target);
        let train: Vec<(String, bool)> = DOMAINS
            .iter()
            .filter(|d| **d != target)
            .flat_map(|d| common::uci_domain(d))
            .collect();
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
                    let w = train_weights(&fit, DEFAULT_HASH_BITS, 1.0, TEMPERATURE, &cfg, "val")
                        .expect("train");
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
        let (_, cfg, blend) = best;
        let w = train_weights(&train, DEFAULT_HASH_BITS, blend, TEMPERATURE, &cfg, "cross")
            .expect("train");
        let i = common::sentiment_interpreter(Some(&w));
        let acc = common::accuracy(&test, |t| i.sentiment(t).score.get() >= 0.0);
        let lex = common::accuracy(&test, |t| i.lexicon_score(t) >= 0.0);
        let ship = common::accuracy(&test, |t| shipped.sentiment(t).score.get() >= 0.0);
        sum.0 += acc;
        sum.1 += lex;
        println!(
            "| {target} ({} sentences) | {:.1}% | **{:.1}%** | {:.1}% (not cross-domain) | lr {}, l2 {:e}, {} epochs, blend {} |",
            test.len(),
            lex * 100.0,
            acc * 100.0,
            ship * 100.0,
            cfg.learning_rate,
            cfg.l2,
            cfg.epochs,
            blend
        );
    }
    println!(
        "| mean of the three | {:.1}% | **{:.1}%** | | |",
        sum.1 / 3.0 * 100.0,
        sum.0 / 3.0 * 100.0
    );
}
