//! Data loading shared by the examples (file I/O lives here, not in the library).
#![allow(dead_code)]

pub mod cx;
pub mod pii_gen;

use std::collections::HashMap;
use std::path::PathBuf;

/// The repository's `data/` directory.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

/// Labelled sentences (true = positive).
pub type Labelled = Vec<(String, bool)>;

/// The labelled sentences of one UCI domain (`amazon`, `yelp` or `imdb`).
pub fn uci_domain(name: &str) -> Labelled {
    let path = data_dir().join(format!("uci-sentiment/{name}.json"));
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    rapport_interpret::parse_uci(&json).expect("UCI JSON")
}

/// An interpreter with the default taxonomy and `weights` for sentiment (the shipped ones
/// when `None`).
pub fn sentiment_interpreter(
    weights: Option<&rapport_interpret::SentimentWeights>,
) -> rapport_interpret::Interpreter {
    rapport_interpret::Interpreter::with_options(
        rapport_interpret::IntentTaxonomy::default_cx(),
        rapport_interpret::InterpreterOptions {
            sentiment_weights: weights.cloned(),
            ..Default::default()
        },
    )
    .expect("interpreter")
}

/// all-MiniLM-L6-v2 from the directory named by the first argument that is not a `--flag`,
/// else from the default models directory.
#[cfg(feature = "neural")]
pub fn minilm_from_args() -> rapport_interpret::neural::MiniLm {
    use rapport_interpret::neural::{default_models_dir, minilm_dir, MiniLm};
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| minilm_dir(&default_models_dir()));
    MiniLm::load(&dir).expect("load all-MiniLM-L6-v2")
}

/// All UCI sentences, split into (train, test) by the library's stable hash.
pub fn uci() -> (Labelled, Labelled) {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for name in ["amazon", "yelp", "imdb"] {
        for row in uci_domain(name) {
            if rapport_interpret::is_test_split(&row.0) {
                test.push(row);
            } else {
                train.push(row);
            }
        }
    }
    (train, test)
}

/// Reads a `text,category` CSV.
pub fn csv_rows(path: &str) -> Vec<(String, String)> {
    let path = data_dir().join(path);
    let mut r = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    r.records()
        .map(|rec| {
            let rec = rec.expect("csv record");
            (rec[0].to_string(), rec[1].to_string())
        })
        .collect()
}

/// Accuracy of `predict(text) -> positive?` on labelled sentences.
pub fn accuracy(data: &[(String, bool)], predict: impl Fn(&str) -> bool) -> f64 {
    let ok = data.iter().filter(|(t, y)| predict(t) == *y).count();
    ok as f64 / data.len().max(1) as f64
}

/// One line of a figures table.
pub struct Row {
    pub what: String,
    pub figure: String,
    pub note: String,
}

/// Class indexes of labelled rows, growing `labels` with classes not seen yet.
pub fn encode(rows: &[(String, String)], labels: &mut Vec<String>) -> Vec<usize> {
    let mut index: HashMap<String, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), i))
        .collect();
    rows.iter()
        .map(|(_, c)| {
            *index.entry(c.clone()).or_insert_with(|| {
                labels.push(c.clone());
                labels.len() - 1
            })
        })
        .collect()
}

/// Mean over classes of per-class F1.
pub fn macro_f1(gold: &[usize], pred: &[usize], classes: usize) -> f64 {
    let mut tp = vec![0f64; classes];
    let mut fp = vec![0f64; classes];
    let mut fneg = vec![0f64; classes];
    for (&g, &p) in gold.iter().zip(pred) {
        if g == p {
            tp[g] += 1.0;
        } else {
            fp[p] += 1.0;
            fneg[g] += 1.0;
        }
    }
    let f1: f64 = (0..classes)
        .map(|c| {
            let d = 2.0 * tp[c] + fp[c] + fneg[c];
            if d > 0.0 {
                2.0 * tp[c] / d
            } else {
                0.0
            }
        })
        .sum();
    f1 / classes as f64
}

/// Mean and p95 in milliseconds of embedding one BANKING77 test sentence at a time with
/// `embed` (100 sentences, after five to warm up).
#[cfg(feature = "neural")]
pub fn single_sentence_latency(
    embed: impl Fn(&str) -> Result<Vec<f32>, rapport_interpret::neural::NeuralError>,
) -> (f64, f64) {
    let b_test = csv_rows("banking77/test.csv");
    for (t, _) in b_test.iter().take(5) {
        embed(t).expect("embed");
    }
    let mut times: Vec<f64> = b_test
        .iter()
        .skip(5)
        .take(100)
        .map(|(t, _)| {
            let t0 = std::time::Instant::now();
            std::hint::black_box(embed(t).expect("embed"));
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
    (mean, p95)
}
