//! Emotion heads on all-MiniLM-L6-v2 embeddings, added to the embedded emotion rules, measured
//! on the hand-labelled customer messages (`tests/data/cx-messages.jsonl`).
//!
//!     cargo run --release -p rapport-interpret --features neural --example evaluate_emotion_neural [-- MODEL_DIR] [--write-heads]
//!
//! Everything is chosen on the `dev` part (208 messages): the heads' SGD learning rate and L2
//! (60 epochs) and the reporting
//! threshold by 5-fold cross-validation, on the micro-F1 of the rules' emotions plus the
//! heads' (out-of-fold heads). The heads are then trained on all of `dev` and scored once on
//! `heldout` (104 messages): rules alone, heads alone, rules plus heads. `--write-heads` saves
//! those heads as `model/neural-emotion-heads.json`, which `Interpreter::neural` ships; the last
//! rows read `heldout` through that interpreter (the live path) with the shipped heads.

mod common;

use common::cx;
use rapport_interpret::linear::SgdConfig;
use rapport_interpret::neural::{add_found, EmotionHeads, EMOTION_KINDS};
use rapport_interpret::{EmotionKind, IntentTaxonomy, Interpreter, MessageAnalysis};

const FOLDS: usize = 5;
const L2S: [f32; 4] = [1e-1, 1e-2, 1e-3, 1e-4];
const RATES: [f32; 3] = [1e-3, 3e-3, 1e-2];

fn sgd(learning_rate: f32, l2: f32) -> SgdConfig {
    SgdConfig {
        epochs: 60,
        learning_rate,
        decay: 0.2,
        l2,
        seed: 42,
    }
}

fn gold_kinds(g: &cx::Gold) -> Vec<EmotionKind> {
    EMOTION_KINDS
        .into_iter()
        .filter(|k| g.emotions.contains_key(k.as_str()))
        .collect()
}

/// Emotion counts of `analyses` (the rules' own) with the heads' probabilities `probs` added
/// from `threshold` (none when `threshold` is None), or the heads alone when `rules` is false.
fn report(
    set: &[&cx::Gold],
    analyses: &[&MessageAnalysis],
    probs: &[Vec<(EmotionKind, f32)>],
    threshold: Option<f32>,
    rules: bool,
) -> cx::Report {
    let mut r = cx::Report::default();
    for ((g, a), p) in set.iter().zip(analyses).zip(probs) {
        let mut a = (*a).clone();
        if !rules {
            a.emotions.clear();
        }
        if let Some(t) = threshold {
            add_found(p, t, &mut a.emotions);
        }
        cx::score(&mut r, g, &a);
    }
    r
}

fn row(name: &str, r: &cx::Report) -> String {
    let m = cx::micro(&r.emotions);
    format!(
        "| {name} | {:.2} | {:.2} | **{:.2}** | {:.2} | {:.2} |",
        m.precision(),
        m.recall(),
        m.f1(),
        cx::macro_f1(&r.emotions),
        r.emotions.get("none").map_or(0.0, cx::Counts::f1)
    )
}

fn main() {
    let write = std::env::args().any(|a| a == "--write-heads");
    let model = common::minilm_from_args();
    let set = cx::load();
    let texts: Vec<&str> = set.iter().map(|g| g.text.as_str()).collect();
    let embeddings = model.embed(&texts).expect("embed");
    let rules = Interpreter::embedded(IntentTaxonomy::default_cx()).expect("interpreter");
    let analyses: Vec<MessageAnalysis> = texts.iter().map(|t| rules.analyze(t)).collect();

    let dev: Vec<usize> = (0..set.len()).filter(|&i| set[i].split == "dev").collect();
    let held: Vec<usize> = (0..set.len())
        .filter(|&i| set[i].split == "heldout")
        .collect();
    let pick = |idx: &[usize]| -> (Vec<&cx::Gold>, Vec<&MessageAnalysis>) {
        (
            idx.iter().map(|&i| &set[i]).collect(),
            idx.iter().map(|&i| &analyses[i]).collect(),
        )
    };
    let data = |idx: &[usize]| -> Vec<(Vec<f32>, Vec<EmotionKind>)> {
        idx.iter()
            .map(|&i| (embeddings[i].clone(), gold_kinds(&set[i])))
            .collect()
    };

    // Out-of-fold probabilities on dev for each L2; then the best (L2, threshold).
    let (dev_gold, dev_an) = pick(&dev);
    let thresholds: Vec<f32> = (2..=19).map(|k| k as f32 * 0.05).collect();
    let mut best = (f64::MIN, 0.0f32, 0.0f32, 0.0f32);
    let settings = RATES.iter().flat_map(|&r| L2S.iter().map(move |&l| (r, l)));
    for (rate, l2) in settings {
        let mut oof = vec![Vec::new(); dev.len()];
        for fold in 0..FOLDS {
            let train: Vec<usize> = (0..dev.len())
                .filter(|p| p % FOLDS != fold)
                .map(|p| dev[p])
                .collect();
            let heads = EmotionHeads::train(&data(&train), &sgd(rate, l2), 0.5).expect("train");
            for p in (0..dev.len()).filter(|p| p % FOLDS == fold) {
                oof[p] = heads.probabilities(&embeddings[dev[p]]).expect("probs");
            }
        }
        for &t in &thresholds {
            let f1 = cx::micro(&report(&dev_gold, &dev_an, &oof, Some(t), true).emotions).f1();
            if f1 > best.0 + 1e-12 {
                best = (f1, rate, l2, t);
            }
        }
    }
    let (cv_f1, rate, l2, threshold) = best;
    let rules_dev =
        cx::micro(&report(&dev_gold, &dev_an, &vec![vec![]; dev.len()], None, true).emotions).f1();
    println!(
        "chosen on dev (5-fold): learning rate {rate:e}, L2 {l2:e}, threshold {threshold:.2}; dev micro-F1 rules alone {rules_dev:.3}, rules + heads (out of fold) {cv_f1:.3}\n"
    );

    let heads = EmotionHeads::train(&data(&dev), &sgd(rate, l2), threshold).expect("train");
    let (held_gold, held_an) = pick(&held);
    let probs: Vec<_> = held
        .iter()
        .map(|&i| heads.probabilities(&embeddings[i]).expect("probs"))
        .collect();
    println!("## heldout (104 messages), emotions\n");
    println!("| reader | micro precision | micro recall | micro-F1 | macro-F1 | `none` F1 |");
    println!("|---|---|---|---|---|---|");
    let none = vec![vec![]; held.len()];
    println!(
        "{}",
        row(
            "embedded rules",
            &report(&held_gold, &held_an, &none, None, true)
        )
    );
    println!(
        "{}",
        row(
            "MiniLM heads alone",
            &report(&held_gold, &held_an, &probs, Some(threshold), false)
        )
    );
    let both = report(&held_gold, &held_an, &probs, Some(threshold), true);
    println!("{}", row("rules + MiniLM heads", &both));
    println!(
        "\n### rules + MiniLM heads, per emotion (heldout)\n\n{}",
        cx::table(&both)
    );

    if write {
        let saved = heads.save(&format!(
            "the 208 dev messages of tests/data/cx-messages.jsonl; learning rate {rate:e}, L2 {l2:e} and threshold {threshold:.2} chosen by 5-fold cross-validation on them (examples/evaluate_emotion_neural.rs)"
        ));
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("model/neural-emotion-heads.json");
        std::fs::write(&path, serde_json::to_string(&saved).expect("json") + "\n")
            .expect("write heads");
        println!("wrote {}", path.display());
        return;
    }

    // The live path: Interpreter::neural with the shipped heads.
    let neural = Interpreter::neural(IntentTaxonomy::default_cx(), model).expect("neural");
    let live: Vec<MessageAnalysis> =
        neural.analyze_batch(&held.iter().map(|&i| texts[i]).collect::<Vec<_>>());
    let live_refs: Vec<&MessageAnalysis> = live.iter().collect();
    println!(
        "\n## heldout through Interpreter::neural (shipped heads)\n\n| reader | micro precision | micro recall | micro-F1 | macro-F1 | `none` F1 |\n|---|---|---|---|---|---|\n{}",
        row("live neural path", &report(&held_gold, &live_refs, &none, None, true))
    );
}
