//! CLINC150 with out-of-scope detection on MiniLM embeddings: a softmax head (the crate's
//! `IntentHead`, trained by SGD or to convergence by full-batch L-BFGS), nearest class
//! centroid, nearest neighbour, the k-th nearest neighbour's cosine, Mahalanobis distance to
//! the class means, the crate's `OutOfScopeScorer` (full-batch softmax probability averaged
//! with the Mahalanobis score), the embedded n-gram classifier, and the crate's
//! `EnsembleScorer` (those scores together, with the n-gram classifier reading the text; with
//! the plain or the relative Mahalanobis score), each answering out of scope when its
//! confidence is below a threshold.
//!
//! Embeddings are cached next to the example binary (`clinc150-embeddings-<hash>.f32`, keyed
//! by the texts and the model version), so a second run skips the 1-3 minutes of embedding.
//! `CLINC_SKIP_SGD=1` leaves out the slow SGD rows. `CLINC_CALIBRATE_WITH_OOS_TRAIN=1` adds
//! the 100 `oos_train` texts to the validation out-of-scope texts (and leaves out the rows
//! that train on them as a class).
//!
//! Heads are trained on `train` (15,000 texts, 150 intents); "+ oos_train" rows add the 100
//! out-of-scope training texts as a 151st class. The SGD setting of the softmax head is chosen
//! on `val` in-scope accuracy, thresholds on `val` + `oos_val` only; every figure is on `test`
//! (4,500) + `oos_test` (1,000). The other settings (full-batch L2, covariance shrinkage) are
//! chosen by the validation in-scope accuracy at validation OOS recall >= 0.75; both score
//! scales (z-scores, ranks) get a row. The scores of `OutOfScopeScorer` and `EnsembleScorer`
//! are put on one scale with the (unlabelled) validation texts and embeddings; the ensemble
//! weights are equal (not tuned), k and the intent mix are chosen on validation as above. Two
//! lines name one row each, chosen on validation by one of two rules, with its test figures:
//! the best validation in-scope accuracy at validation OOS recall >= 0.75; and the most
//! validation OOS recall at a threshold costing at most 1 point of validation in-scope
//! accuracy (a budget measured on 3,000 in-scope texts rather than 100 out-of-scope ones).
//!
//!     CARGO_TARGET_DIR=/root/.cache/tgt-neural cargo run --release -p rapport-interpret \
//!         --features neural --example evaluate_clinc_neural -- [MODEL_DIR]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use rapport_interpret::linear::SgdConfig;
use rapport_interpret::neural::{
    default_intent_sgd, EnsembleConfig, EnsembleParts, EnsembleScorer, FullBatchConfig, IntentHead,
    Mahalanobis, MiniLm, NearestNeighbours, OutOfScopeScorer, ScaleKind, MINILM_VERSION,
};
use rapport_interpret::{IntentClassifier, IntentConfig};

/// Best class (or `None` for a learnt out-of-scope class) and confidence of every row.
type Predictions = Vec<(Option<usize>, f32)>;

/// In-scope accuracy and out-of-scope recall at `threshold`; gold `None` is out of scope.
fn figures(pred: &Predictions, gold: &[Option<usize>], threshold: f32) -> (f64, f64, f64) {
    let (mut ins, mut ins_ok, mut oos, mut oos_ok) = (0usize, 0usize, 0usize, 0usize);
    for (&(p, conf), g) in pred.iter().zip(gold) {
        let answer = if conf < threshold { None } else { p };
        match g {
            Some(_) => {
                ins += 1;
                ins_ok += usize::from(answer == *g);
            }
            None => {
                oos += 1;
                oos_ok += usize::from(answer.is_none());
            }
        }
    }
    let ratio = |a: usize, b: usize| a as f64 / b.max(1) as f64;
    (
        ratio(ins_ok, ins),
        ratio(oos_ok, oos),
        ratio(ins_ok + oos_ok, ins + oos),
    )
}

#[derive(Clone, Copy)]
enum Goal {
    /// Maximise the mean of in-scope accuracy and out-of-scope recall.
    Balanced,
    /// Maximise accuracy over all rows (out of scope counted as one more class).
    Accuracy,
    /// The best in-scope accuracy with out-of-scope recall at least this.
    MinRecall(f64),
    /// The best out-of-scope recall with in-scope accuracy at most this far (a fraction)
    /// below its value without a threshold: a budget of in-scope rejections, measured on the
    /// 3,000 in-scope validation texts rather than on the 100 out-of-scope ones.
    MaxCost(f64),
}

/// The threshold meeting `goal` best on validation, among the validation confidences.
fn tune(pred: &Predictions, gold: &[Option<usize>], goal: Goal) -> f32 {
    let mut candidates: Vec<f32> = pred.iter().map(|p| p.1).collect();
    candidates.push(f32::NEG_INFINITY);
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    let unthresholded = figures(pred, gold, f32::NEG_INFINITY).0;
    let mut best = (f64::MIN, f32::NEG_INFINITY);
    for th in candidates {
        let (ins, rec, acc) = figures(pred, gold, th);
        let value = match goal {
            Goal::Balanced => (ins + rec) / 2.0,
            Goal::Accuracy => acc,
            Goal::MinRecall(min) if rec >= min => 1.0 + ins,
            Goal::MinRecall(_) => rec,
            Goal::MaxCost(cost) if ins >= unthresholded - cost - 1e-12 => 1.0 + rec,
            Goal::MaxCost(_) => ins,
        };
        if value > best.0 {
            best = (value, th);
        }
    }
    best.1
}

const GOALS: [(&str, Goal); 5] = [
    ("balanced", Goal::Balanced),
    ("max val accuracy", Goal::Accuracy),
    ("val OOS recall >= 0.75", Goal::MinRecall(0.75)),
    ("val OOS recall >= 0.80", Goal::MinRecall(0.80)),
    ("val in-scope cost <= 1 point", Goal::MaxCost(0.01)),
];

/// Cosine similarities of every row of `a` to every row of `b` (all unit length), through
/// one matrix product.
fn cosines(a: &[Vec<f32>], b: &[Vec<f32>]) -> Vec<Vec<f32>> {
    use candle_core::{Device, Tensor};
    let dim = a.first().map_or(0, Vec::len);
    let ta = Tensor::from_vec(a.concat(), (a.len(), dim), &Device::Cpu).expect("tensor");
    let tb = Tensor::from_vec(b.concat(), (b.len(), dim), &Device::Cpu).expect("tensor");
    ta.matmul(&tb.t().expect("t"))
        .expect("matmul")
        .to_vec2::<f32>()
        .expect("vec")
}

fn argmax(xs: &[f32]) -> (usize, f32) {
    xs.iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, f32::MIN))
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// The validation in-scope accuracy at the threshold keeping validation OOS recall >= 0.75:
/// how every setting here is chosen.
fn val_goal(pred: &Predictions, gold: &[Option<usize>]) -> f64 {
    let th = tune(pred, gold, Goal::MinRecall(0.75));
    figures(pred, gold, th).0
}

/// Embeddings of `texts`, from a cache file next to the example binary when one was written
/// for the same texts and model version, else computed (and the cache written).
fn embed_cached(model: &MiniLm, texts: &[String]) -> Vec<Vec<f32>> {
    // FNV-1a over the model version and the texts.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = MINILM_VERSION
        .bytes()
        .chain(texts.iter().flat_map(|t| t.bytes().chain([0u8])));
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("clinc150-embeddings-{hash:016x}.f32"));
    let dim = model.dim();
    if let Ok(bytes) = std::fs::read(&path) {
        if bytes.len() == texts.len() * dim * 4 {
            eprintln!("embeddings from {}", path.display());
            return bytes
                .chunks_exact(dim * 4)
                .map(|row| {
                    row.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect()
                })
                .collect();
        }
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let e = model.embed(&refs).expect("embed");
    let bytes: Vec<u8> = e.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
    match std::fs::write(&path, bytes) {
        Ok(()) => eprintln!("embeddings cached in {}", path.display()),
        Err(err) => eprintln!("could not cache embeddings in {}: {err}", path.display()),
    }
    e
}

/// Area under the ROC curve of the confidence separating in-scope (positive) from
/// out-of-scope rows (ties count half).
fn auroc(pred: &Predictions, gold: &[Option<usize>]) -> f64 {
    let mut rows: Vec<(f32, bool)> = pred
        .iter()
        .zip(gold)
        .map(|(p, g)| (p.1, g.is_some()))
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut pos, mut i) = (0.0f64, 0usize, 0usize);
    while i < rows.len() {
        let mut j = i;
        while j < rows.len() && rows[j].0 == rows[i].0 {
            j += 1;
        }
        // Ranks i+1..=j share their mean.
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        for r in &rows[i..j] {
            if r.1 {
                rank_sum += mean_rank;
                pos += 1;
            }
        }
        i = j;
    }
    let neg = rows.len() - pos;
    if pos == 0 || neg == 0 {
        return 0.5;
    }
    (rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos * neg) as f64
}

struct Method {
    name: String,
    val: Predictions,
    test: Predictions,
    note: String,
}

fn main() {
    let model = common::minilm_from_args();
    let path = common::data_dir().join("clinc150/data_full.json");
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let data: HashMap<String, Vec<(String, String)>> =
        serde_json::from_str(&json).expect("clinc json");
    let part = |k: &str| data.get(k).cloned().unwrap_or_default();
    let train = part("train");
    let oos_train = part("oos_train");
    let mut labels = Vec::new();
    let ytrain = common::encode(&train, &mut labels);
    let index: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let with_oos = |a: &str, b: &str| -> (Vec<String>, Vec<Option<usize>>) {
        let mut texts = Vec::new();
        let mut gold = Vec::new();
        for (t, l) in part(a) {
            texts.push(t);
            gold.push(Some(*index.get(l.as_str()).expect("label seen in train")));
        }
        for (t, _) in part(b) {
            texts.push(t);
            gold.push(None);
        }
        (texts, gold)
    };
    // `CLINC_CALIBRATE_WITH_OOS_TRAIN=1`: the 100 `oos_train` texts join `oos_val` as
    // validation (200 out-of-scope texts to set thresholds on instead of 100), and the rows
    // that train on them as a class are left out (they would calibrate on their own training
    // texts).
    let calibrate_with_oos_train =
        std::env::var_os("CLINC_CALIBRATE_WITH_OOS_TRAIN").is_some_and(|v| v != "0");
    let (mut val_texts, mut val_gold) = with_oos("val", "oos_val");
    if calibrate_with_oos_train {
        for (t, _) in &oos_train {
            val_texts.push(t.clone());
            val_gold.push(None);
        }
    }
    let oos_class_variants: &[bool] = if calibrate_with_oos_train {
        &[false]
    } else {
        &[false, true]
    };
    let (test_texts, test_gold) = with_oos("test", "oos_test");

    let t0 = Instant::now();
    let train_texts: Vec<String> = train.iter().map(|(t, _)| t.clone()).collect();
    let oos_texts: Vec<String> = oos_train.iter().map(|(t, _)| t.clone()).collect();
    let all: Vec<String> = [&train_texts, &oos_texts, &val_texts, &test_texts]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let mut e_all = embed_cached(&model, &all).into_iter();
    let mut take = |n: usize| -> Vec<Vec<f32>> { e_all.by_ref().take(n).collect() };
    let e_train = take(train_texts.len());
    let e_oos = take(oos_texts.len());
    let e_val = take(val_texts.len());
    let e_test = take(test_texts.len());
    eprintln!(
        "embedded {} texts in {:.1} s",
        all.len(),
        t0.elapsed().as_secs_f64()
    );
    let skip_sgd = std::env::var_os("CLINC_SKIP_SGD").is_some_and(|v| v != "0");

    let mut methods = Vec::new();

    // Softmax heads, with and without the out-of-scope training texts as a class.
    let classes = labels.len();
    let head_rows = |with_oos_class: bool| -> (Vec<String>, Vec<(Vec<f32>, usize)>) {
        let mut head_labels = labels.clone();
        let mut rows: Vec<(Vec<f32>, usize)> = e_train
            .iter()
            .cloned()
            .zip(ytrain.iter().copied())
            .collect();
        if with_oos_class {
            head_labels.push("oos".into());
            rows.extend(e_oos.iter().cloned().map(|e| (e, classes)));
        }
        (head_labels, rows)
    };
    let predict = |h: &IntentHead, e: &[Vec<f32>]| -> Predictions {
        e.iter()
            .map(|v| {
                let (c, p) = h.best(v).expect("best");
                ((c < classes).then_some(c), p)
            })
            .collect()
    };
    for &with_oos_class in oos_class_variants {
        if skip_sgd {
            break;
        }
        let (head_labels, rows) = head_rows(with_oos_class);
        // A small sweep: SGD over 15,000 texts and 150 classes is slow here, and a sweep of
        // eight settings per head (up to 100 epochs) had not finished after 30 minutes.
        let sweep: Vec<SgdConfig> = [(0.01, 30), (0.05, 30), (0.05, 60)]
            .into_iter()
            .map(|(learning_rate, epochs)| SgdConfig {
                learning_rate,
                epochs,
                ..default_intent_sgd()
            })
            .collect();
        let n_settings = sweep.len();
        let mut best: Option<(f64, SgdConfig, IntentHead, f64)> = None;
        for cfg in sweep {
            let t0 = Instant::now();
            let h = IntentHead::train(head_labels.clone(), &rows, 0.0, &cfg).expect("train");
            let secs = t0.elapsed().as_secs_f64();
            // Chosen by the validation in-scope accuracy at the threshold that keeps the
            // validation out-of-scope recall at 0.75 or more: the goal, on validation only.
            let ins = val_goal(&predict(&h, &e_val), &val_gold);
            if best.as_ref().is_none_or(|b| ins > b.0) {
                best = Some((ins, cfg, h, secs));
            }
        }
        let (v, cfg, h, secs) = best.expect("one setting");
        methods.push(Method {
            name: format!(
                "softmax head{}",
                if with_oos_class { " + oos_train class" } else { "" }
            ),
            val: predict(&h, &e_val),
            test: predict(&h, &e_test),
            note: format!(
                "lr {} epochs {} l2 {:e} (of {n_settings}), trained in {secs:.1} s, val in-scope {:.1}% at val OOS recall >= 0.75",
                cfg.learning_rate,
                cfg.epochs,
                cfg.l2,
                v * 100.0
            ),
        });
    }

    // Softmax heads trained to convergence (full-batch L-BFGS), L2 chosen on validation.
    let l2s = [1e-2f32, 1e-3, 1e-4, 1e-5];
    let mut full_heads = Vec::new();
    for &with_oos_class in oos_class_variants {
        let (head_labels, rows) = head_rows(with_oos_class);
        let mut best: Option<(f64, f32, IntentHead, String)> = None;
        for l2 in l2s {
            let t0 = Instant::now();
            let cfg = FullBatchConfig {
                l2,
                ..FullBatchConfig::default()
            };
            let (h, report) =
                IntentHead::train_full_batch(head_labels.clone(), &rows, 0.0, &cfg).expect("train");
            let v = val_goal(&predict(&h, &e_val), &val_gold);
            let how = format!(
                "{} L-BFGS iterations, loss {:.4}, {:.1} s",
                report.iterations,
                report.loss,
                t0.elapsed().as_secs_f64()
            );
            eprintln!(
                "full-batch softmax{} l2 {l2:e}: val in-scope {:.1}% at val OOS recall >= 0.75 ({how})",
                if with_oos_class { " + oos class" } else { "" },
                v * 100.0
            );
            if best.as_ref().is_none_or(|b| v > b.0) {
                best = Some((v, l2, h, how));
            }
        }
        let (v, l2, h, how) = best.expect("one setting");
        methods.push(Method {
            name: format!(
                "softmax head, full-batch L-BFGS{}",
                if with_oos_class {
                    " + oos_train class"
                } else {
                    ""
                }
            ),
            val: predict(&h, &e_val),
            test: predict(&h, &e_test),
            note: format!(
                "l2 {l2:e} (of {}), {how}, val in-scope {:.1}% at val OOS recall >= 0.75",
                l2s.len(),
                v * 100.0
            ),
        });
        full_heads.push((with_oos_class, h));
    }

    // Mahalanobis distance to the class means (shared covariance of the training
    // embeddings, shrinkage chosen on validation).
    let in_scope_rows: Vec<(Vec<f32>, usize)> = e_train
        .iter()
        .cloned()
        .zip(ytrain.iter().copied())
        .collect();
    let shrinkages = [0.01f32, 0.03, 0.1, 0.3];
    let distances: Vec<(f32, Mahalanobis)> = shrinkages
        .iter()
        .map(|&a| {
            let m = Mahalanobis::fit(&in_scope_rows, classes, a).expect("fit");
            (a, m)
        })
        .collect();
    let by_distance = |m: &Mahalanobis, e: &[Vec<f32>]| -> Predictions {
        e.iter()
            .map(|v| {
                let (c, d) = m.nearest(v).expect("nearest");
                (Some(c), -d)
            })
            .collect()
    };
    let (v, a, m) = distances
        .iter()
        .map(|(a, m)| (val_goal(&by_distance(m, &e_val), &val_gold), *a, m))
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .expect("one shrinkage");
    let (chosen_shrinkage, chosen_distance) = (a, m.clone());
    // The same shrinkage, with the relative score (minus the background distance).
    let relative_distance =
        Mahalanobis::fit_relative(&in_scope_rows, classes, chosen_shrinkage).expect("fit");
    methods.push(Method {
        name: "Mahalanobis, nearest class mean".into(),
        val: by_distance(m, &e_val),
        test: by_distance(m, &e_test),
        note: format!(
            "confidence: minus the squared distance; shrinkage {a} (of {}), val in-scope {:.1}% at val OOS recall >= 0.75",
            shrinkages.len(),
            v * 100.0
        ),
    });

    // The crate's scorer: full-batch softmax probability averaged with the Mahalanobis
    // score, both scaled on the validation embeddings.
    for (with_oos_class, head) in &full_heads {
        for (kind, kind_name) in [(ScaleKind::ZScore, "z-scores"), (ScaleKind::Rank, "ranks")] {
            let mut best: Option<(f64, f32, Predictions, Predictions)> = None;
            for (a, m) in &distances {
                let scorer =
                    OutOfScopeScorer::calibrate(head.clone(), m.clone(), &e_val, kind, 0.5)
                        .expect("calibrate");
                let run = |e: &[Vec<f32>]| -> Predictions {
                    e.iter()
                        .map(|v| {
                            let (c, s) = scorer.score(v).expect("score");
                            ((c < classes).then_some(c), s)
                        })
                        .collect()
                };
                let val = run(&e_val);
                let v = val_goal(&val, &val_gold);
                eprintln!(
                    "scorer{} {kind_name} shrinkage {a}: val in-scope {:.1}% at val OOS recall >= 0.75",
                    if *with_oos_class { " + oos class" } else { "" },
                    v * 100.0
                );
                if best.as_ref().is_none_or(|b| v > b.0) {
                    best = Some((v, *a, val, run(&e_test)));
                }
            }
            let (v, a, val, test) = best.expect("one shrinkage");
            methods.push(Method {
                name: format!(
                    "full-batch softmax{} + Mahalanobis ({kind_name})",
                    if *with_oos_class { " + oos_train class" } else { "" }
                ),
                val,
                test,
                note: format!(
                    "`OutOfScopeScorer`, weight 0.5; shrinkage {a} (of {}), val in-scope {:.1}% at val OOS recall >= 0.75",
                    shrinkages.len(),
                    v * 100.0
                ),
            });
        }
    }

    // k-th nearest training embedding (cosine), k chosen on validation.
    let ks = [1usize, 5, 10, 20];
    let mut best_nn: Option<(f64, NearestNeighbours, Predictions)> = None;
    let nearest_class: Vec<usize> = cosines(&e_val, &e_train)
        .iter()
        .map(|row| ytrain[argmax(row).0])
        .collect();
    for k in ks {
        let nn = NearestNeighbours::fit(&e_train, k).expect("fit");
        let val: Predictions = nearest_class
            .iter()
            .zip(nn.scores(&e_val).expect("scores"))
            .map(|(&c, s)| (Some(c), s))
            .collect();
        let v = val_goal(&val, &val_gold);
        eprintln!(
            "k-th nearest neighbour k {k}: val in-scope {:.1}% at val OOS recall >= 0.75",
            v * 100.0
        );
        if best_nn.as_ref().is_none_or(|b| v > b.0) {
            best_nn = Some((v, nn, val));
        }
    }
    let (v, neighbours, val) = best_nn.expect("one k");
    let test_nearest: Vec<usize> = cosines(&e_test, &e_train)
        .iter()
        .map(|row| ytrain[argmax(row).0])
        .collect();
    methods.push(Method {
        name: "k-th nearest neighbour".into(),
        val,
        test: test_nearest
            .iter()
            .zip(neighbours.scores(&e_test).expect("scores"))
            .map(|(&c, s)| (Some(c), s))
            .collect(),
        note: format!(
            "confidence: cosine to the k-th most similar training text, intent of the nearest; k {} (of {ks:?}), val in-scope {:.1}% at val OOS recall >= 0.75",
            neighbours.k(),
            v * 100.0
        ),
    });

    // The embedded n-gram classifier (default features, as in evaluate_clinc) on the same
    // splits, and ensembles of it with the neural scores.
    let t0 = Instant::now();
    let examples: Vec<(&str, usize)> = train
        .iter()
        .map(|(t, _)| t.as_str())
        .zip(ytrain.iter().copied())
        .collect();
    let embedded =
        IntentClassifier::train_examples(labels.clone(), &examples, 0.0, IntentConfig::default());
    eprintln!(
        "n-gram classifier trained in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let by_ngram = |texts: &[String]| -> Predictions {
        texts
            .iter()
            .map(|t| {
                let (c, p) = embedded.best(t);
                (Some(c), p)
            })
            .collect()
    };
    methods.push(Method {
        name: "embedded n-gram classifier (words 1-2 + chars 3-5)".into(),
        val: by_ngram(&val_texts),
        test: by_ngram(&test_texts),
        note: "confidence: its best probability".into(),
    });

    let val_refs: Vec<&str> = val_texts.iter().map(String::as_str).collect();
    let test_refs: Vec<&str> = test_texts.iter().map(String::as_str).collect();
    let plain_head = full_heads
        .iter()
        .find(|(with_oos_class, _)| !with_oos_class)
        .map(|(_, h)| h.clone())
        .expect("head without the oos class");
    let variants: [(&str, bool, bool, bool); 5] = [
        (
            "full-batch softmax + Mahalanobis + n-gram classifier",
            true,
            false,
            false,
        ),
        (
            "full-batch softmax + Mahalanobis + k-th neighbour",
            false,
            true,
            false,
        ),
        (
            "full-batch softmax + Mahalanobis + n-gram classifier + k-th neighbour",
            true,
            true,
            false,
        ),
        (
            "full-batch softmax + relative Mahalanobis + n-gram classifier",
            true,
            false,
            true,
        ),
        (
            "full-batch softmax + relative Mahalanobis + n-gram classifier + k-th neighbour",
            true,
            true,
            true,
        ),
    ];
    for (variant, with_ngram, with_nn, relative) in variants {
        let parts = EnsembleParts {
            head: plain_head.clone(),
            distance: if relative {
                relative_distance.clone()
            } else {
                chosen_distance.clone()
            },
            neighbours: with_nn.then(|| neighbours.clone()),
            embedded: with_ngram.then(|| embedded.clone()),
        };
        // The intent mix only matters with the n-gram classifier.
        let mixes: &[f32] = if with_ngram { &[0.5, 0.7, 0.9] } else { &[1.0] };
        for (kind, kind_name) in [(ScaleKind::ZScore, "z-scores"), (ScaleKind::Rank, "ranks")] {
            let mut best: Option<(f64, f32, EnsembleScorer, Predictions)> = None;
            for &intent_mix in mixes {
                let config = EnsembleConfig {
                    kind,
                    intent_mix,
                    weights: [1.0; 4],
                };
                let scorer = EnsembleScorer::calibrate(parts.clone(), &val_refs, &e_val, &config)
                    .expect("calibrate");
                let val: Predictions = scorer
                    .score_batch(&val_refs, &e_val)
                    .expect("score")
                    .into_iter()
                    .map(|(c, s)| (Some(c), s))
                    .collect();
                let v = val_goal(&val, &val_gold);
                eprintln!(
                    "{variant} ({kind_name}) intent mix {intent_mix}: val in-scope {:.1}% at val OOS recall >= 0.75",
                    v * 100.0
                );
                if best.as_ref().is_none_or(|b| v > b.0) {
                    best = Some((v, intent_mix, scorer, val));
                }
            }
            let (v, intent_mix, scorer, val) = best.expect("one mix");
            let test = scorer
                .score_batch(&test_refs, &e_test)
                .expect("score")
                .into_iter()
                .map(|(c, s)| (Some(c), s))
                .collect();
            methods.push(Method {
                name: format!("{variant} ({kind_name})"),
                val,
                test,
                note: format!(
                    "`EnsembleScorer`, equal weights; shrinkage {chosen_shrinkage}{}{}, val in-scope {:.1}% at val OOS recall >= 0.75",
                    if with_nn {
                        format!(", k {}", neighbours.k())
                    } else {
                        String::new()
                    },
                    if with_ngram {
                        format!(", intent mix {intent_mix} (of {})", mixes.len())
                    } else {
                        String::new()
                    },
                    v * 100.0
                ),
            });
        }
    }

    // Nearest class centroid (cosine).
    let mut sums = vec![vec![0f32; model.dim()]; classes];
    for (e, &y) in e_train.iter().zip(&ytrain) {
        for (s, x) in sums[y].iter_mut().zip(e) {
            *s += x;
        }
    }
    let centroids: Vec<Vec<f32>> = sums.into_iter().map(unit).collect();
    let by_centroid = |e: &[Vec<f32>]| -> Predictions {
        cosines(e, &centroids)
            .iter()
            .map(|row| {
                let (c, s) = argmax(row);
                (Some(c), s)
            })
            .collect()
    };
    methods.push(Method {
        name: "nearest class centroid".into(),
        val: by_centroid(&e_val),
        test: by_centroid(&e_test),
        note: "confidence: cosine to the centroid".into(),
    });

    // Nearest training example (cosine).
    let by_neighbour = |e: &[Vec<f32>]| -> Predictions {
        cosines(e, &e_train)
            .iter()
            .map(|row| {
                let (i, s) = argmax(row);
                (Some(ytrain[i]), s)
            })
            .collect()
    };
    methods.push(Method {
        name: "nearest neighbour".into(),
        val: by_neighbour(&e_val),
        test: by_neighbour(&e_test),
        note: "confidence: cosine to the nearest training text".into(),
    });

    print!("| head |");
    for (name, _) in GOALS {
        print!(" test in-scope / OOS recall, {name} |");
    }
    println!(" note |");
    println!("|---|{}---|", "---|".repeat(GOALS.len()));
    for m in &methods {
        print!("| {} |", m.name);
        for (_, goal) in GOALS {
            let th = tune(&m.val, &val_gold, goal);
            let (ins, rec, _) = figures(&m.test, &test_gold, th);
            let (v_ins, v_rec, _) = figures(&m.val, &val_gold, th);
            print!(
                " {:.1}% / {:.1}% (th {th:.3}; val {:.1}% / {:.1}%) |",
                ins * 100.0,
                rec * 100.0,
                v_ins * 100.0,
                v_rec * 100.0
            );
        }
        println!(" {} |", m.note);
    }

    // The one row chosen on validation: the best validation in-scope accuracy at validation
    // OOS recall >= 0.75 (ties to the earlier row).
    let chosen = methods
        .iter()
        .map(|m| (val_goal(&m.val, &val_gold), m))
        .fold(None::<(f64, &Method)>, |best, (v, m)| match best {
            Some(b) if b.0 >= v => Some(b),
            _ => Some((v, m)),
        })
        .expect("one method");
    let th = tune(&chosen.1.val, &val_gold, Goal::MinRecall(0.75));
    let (ins, rec, _) = figures(&chosen.1.test, &test_gold, th);
    println!();
    println!(
        "chosen on validation: {} (val in-scope {:.1}% at val OOS recall >= 0.75); test {:.1}% in-scope / {:.1}% OOS recall",
        chosen.1.name,
        chosen.0 * 100.0,
        ins * 100.0,
        rec * 100.0
    );

    // The second rule: thresholds that keep validation in-scope accuracy within 1 point of its
    // value without a threshold, and the row with the most validation OOS recall there (ties
    // to the higher validation in-scope accuracy, then the earlier row).
    let at_cost = |m: &Method| {
        let th = tune(&m.val, &val_gold, Goal::MaxCost(0.01));
        let (v_ins, v_rec, _) = figures(&m.val, &val_gold, th);
        (v_rec, v_ins, th)
    };
    let chosen = methods
        .iter()
        .fold(None::<((f64, f64, f32), &Method)>, |best, m| {
            let v = at_cost(m);
            match best {
                Some(b) if (b.0 .0, b.0 .1) >= (v.0, v.1) => Some(b),
                _ => Some((v, m)),
            }
        })
        .expect("one method");
    let ((v_rec, v_ins, th), m) = chosen;
    let (ins, rec, _) = figures(&m.test, &test_gold, th);
    println!(
        "chosen on validation, in-scope cost <= 1 point: {} (val {:.1}% in-scope / {:.1}% OOS recall, th {th:.3}); test {:.1}% in-scope / {:.1}% OOS recall",
        m.name,
        v_ins * 100.0,
        v_rec * 100.0,
        ins * 100.0,
        rec * 100.0
    );

    // Diagnostics, not results: how well each confidence ranks in-scope above out-of-scope
    // texts (AUROC), and the test in-scope accuracy at a threshold set on test itself so
    // that test OOS recall is >= 0.75 (what a perfectly transferred threshold would give).
    println!();
    println!("| head (diagnostics, not results) | val AUROC | test AUROC | test in-scope at test OOS recall >= 0.75 (threshold set on test) |");
    println!("|---|---|---|---|");
    for m in &methods {
        let th = tune(&m.test, &test_gold, Goal::MinRecall(0.75));
        let (ins, rec, _) = figures(&m.test, &test_gold, th);
        println!(
            "| {} | {:.3} | {:.3} | {:.1}% / {:.1}% |",
            m.name,
            auroc(&m.val, &val_gold),
            auroc(&m.test, &test_gold),
            ins * 100.0,
            rec * 100.0
        );
    }
}
