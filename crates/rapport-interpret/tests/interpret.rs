//! Integration tests of `rapport-interpret`: scenarios, properties and accuracy guards on the
//! shipped public data (fast enough for debug builds).

use std::sync::OnceLock;

use proptest::prelude::*;
use rapport_interpret::linear::SgdConfig;
use rapport_interpret::{
    is_test_split, parse_uci, train_weights, EscalationKind, IntentClassifier, IntentConfig,
    IntentTaxonomy, Interpreter, InterpreterOptions, MessageAnalysis, PiiKind, SentimentLabel,
    UrgencyLevel, UrgencyReasonKind, DEFAULT_HASH_BITS,
};

fn interp() -> &'static Interpreter {
    static I: OnceLock<Interpreter> = OnceLock::new();
    I.get_or_init(|| Interpreter::embedded(IntentTaxonomy::default_cx()).expect("interpreter"))
}

fn data(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"))
}

#[test]
fn frustrated_conversation_falls_two_levels_with_reasons() {
    let texts = [
        "Hi, my internet has been slow since Monday.",
        "I already called twice and nothing changed. This is getting really annoying.",
        "This is ridiculous!!! Third time contacting you. Cancel my account, I'm done.",
    ];
    let msgs: Vec<MessageAnalysis> = texts.iter().map(|t| interp().analyze(t)).collect();
    let c = interp().analyze_conversation(&msgs);
    assert_eq!(c.trajectory.len(), 3);
    assert!(c.trend < 0.0 && c.change < 0.0, "{c:?}");
    assert!(c.levels_dropped >= 2, "{c:?}");
    assert_eq!(c.last_label, Some(SentimentLabel::VeryNegative));
    assert!(c.repeated_contact.len() >= 2);
    assert!(msgs[2].urgency.has(UrgencyReasonKind::RepeatedContact));
    assert!(msgs[2].urgency.has(UrgencyReasonKind::Cancellation));
    assert!(msgs[2].urgency.level >= UrgencyLevel::High);
    assert!(c
        .escalation
        .iter()
        .any(|e| e.kind == EscalationKind::Cancellation));
    assert!(c
        .escalation
        .iter()
        .any(|e| e.kind == EscalationKind::RisingAnger));
    assert!(c.escalate && !c.evidence.is_empty());
    assert!(msgs[2].effort.as_ref().is_some_and(|e| e.score.get() <= -3));
    assert_eq!(msgs[2].intent.label.as_deref(), Some("cancel_service"));
}

#[test]
fn analysis_round_trips_through_json_and_names_its_model() {
    let a = interp().analyze("Thanks so much, the engineer was brilliant 😊. My email is a@b.co");
    assert_eq!(a.model.name, "rapport-lexicon");
    assert!(
        a.sentiment.label >= SentimentLabel::Positive,
        "{:?}",
        a.sentiment
    );
    assert!(a.urgency.level == UrgencyLevel::Low);
    let json = serde_json::to_string(&a).expect("serialize");
    let back: MessageAnalysis = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(a, back);
    assert!(
        !json.contains("a@b.co\""),
        "entities must not carry the raw text"
    );
}

#[test]
fn non_english_is_low_confidence() {
    let a = interp()
        .analyze("Mi pedido no ha llegado todavía y nadie contesta el teléfono, estoy harta.");
    assert!(!a.language.supported);
    assert!(a.sentiment.confidence <= 0.3);
}

#[test]
fn sentences_are_scored_separately() {
    let text = "The engineer was lovely. The router is still broken and I am furious.";
    let a = interp().analyze(text);
    assert_eq!(a.sentences.len(), 2);
    assert!(a.sentences[0].sentiment.score.get() > 0.0);
    assert!(a.sentences[1].sentiment.score.get() < 0.0);
    assert_eq!(a.sentences[0].span.slice(text), "The engineer was lovely.");
}

#[test]
fn uci_trained_model_beats_floor() {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for f in ["amazon", "yelp", "imdb"] {
        for row in parse_uci(&data(&format!("uci-sentiment/{f}.json"))).expect("uci") {
            if is_test_split(&row.0) {
                test.push(row);
            } else {
                train.push(row);
            }
        }
    }
    assert_eq!(train.len() + test.len(), 3000);
    // Same settings as examples/train_sentiment.rs chose (measured: 88.7% on test).
    let cfg = SgdConfig {
        epochs: 25,
        learning_rate: 1.0,
        decay: 0.3,
        l2: 1e-3,
        seed: 42,
    };
    let w = train_weights(&train, DEFAULT_HASH_BITS, 0.8, 3.0, &cfg, "test").expect("train");
    let fresh = Interpreter::with_options(
        IntentTaxonomy::default_cx(),
        InterpreterOptions {
            sentiment_weights: Some(w),
            ..Default::default()
        },
    )
    .expect("interpreter");
    let acc = |f: &dyn Fn(&str) -> bool| {
        test.iter().filter(|(t, y)| f(t) == *y).count() as f64 / test.len() as f64
    };
    let trained = acc(&|t| fresh.sentiment(t).score.get() >= 0.0);
    let shipped = acc(&|t| interp().sentiment(t).score.get() >= 0.0);
    let lexicon = acc(&|t| interp().lexicon_score(t) >= 0.0);
    assert!(trained >= 0.86, "retrained accuracy {trained}");
    assert!(shipped >= 0.86, "shipped weights accuracy {shipped}");
    assert!(lexicon >= 0.75, "lexicon-only accuracy {lexicon}");
}

#[test]
fn banking77_subset_beats_floor() {
    // 25 training examples per intent and every 4th test query keep this fast in debug;
    // the full benchmark is in examples/evaluate.rs (91.5% there).
    let rows = |f: &str| -> Vec<(String, String)> {
        data(f)
            .lines()
            .skip(1)
            .filter_map(|l| {
                let (t, c) = l.rsplit_once(',')?;
                Some((t.trim_matches('"').to_string(), c.to_string()))
            })
            .collect()
    };
    let train = rows("banking77/train.csv");
    let test = rows("banking77/test.csv");
    let mut labels: Vec<String> = train.iter().map(|r| r.1.clone()).collect();
    labels.sort();
    labels.dedup();
    let idx = |c: &str| labels.iter().position(|l| l == c);
    let mut per_class = vec![0usize; labels.len()];
    let mut examples = Vec::new();
    for (t, c) in &train {
        if let Some(i) = idx(c) {
            if per_class[i] < 25 {
                per_class[i] += 1;
                examples.push((t.as_str(), i));
            }
        }
    }
    let clf =
        IntentClassifier::train_examples(labels.clone(), &examples, 0.0, IntentConfig::default());
    let sample: Vec<&(String, String)> = test.iter().step_by(4).collect();
    let ok = sample
        .iter()
        .filter(|(t, c)| Some(clf.best(t).0) == idx(c))
        .count();
    let acc = ok as f64 / sample.len() as f64;
    assert!(acc >= 0.72, "BANKING77 subset accuracy {acc}");
}

fn message_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z]{1,10}",
        "\\PC{0,12}",
        Just("not".to_string()),
        Just("VERY good".to_string()),
        Just("terrible!!!".to_string()),
        Just("😡".to_string()),
        Just(":)".to_string()),
        Just("4111 1111 1111 1111".to_string()),
        Just("4111111111111111".to_string()),
        "[a-z]{1,8}@[a-z]{1,8}\\.(com|org|io)",
        Just("my name is Zoë Brontë".to_string()),
        Just("12 Baker Street".to_string()),
        "[0-9 +().-]{0,16}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn never_panics_and_scores_stay_in_range(text in "\\PC{0,200}") {
        let a = interp().analyze(&text);
        let s = a.sentiment.score.get();
        prop_assert!((-1.0..=1.0).contains(&s));
        for sent in &a.sentences {
            prop_assert!((-1.0..=1.0).contains(&sent.sentiment.score.get()));
        }
        prop_assert!((0.0..=1.0).contains(&a.sentiment.confidence));
    }

    #[test]
    fn offsets_are_in_range_and_slice_back(text in message_strategy()) {
        let a = interp().analyze(&text);
        let chars = text.chars().count();
        prop_assert_eq!(a.chars, chars);
        for e in &a.evidence {
            prop_assert!(e.span.start <= e.span.end && e.span.end <= chars);
            prop_assert_eq!(e.span.slice(&text), e.phrase.as_str());
        }
        for r in &a.urgency.reasons {
            prop_assert_eq!(r.span.slice(&text), r.phrase.as_str());
        }
        for p in &a.pii {
            prop_assert!(p.span.start < p.span.end && p.span.end <= chars);
        }
        for s in &a.sentences {
            prop_assert!(s.span.end <= chars);
        }
    }

    #[test]
    fn redaction_leaves_no_email_or_card(text in message_strategy()) {
        let a = interp().analyze(&text);
        let again = interp().pii(&a.redacted);
        prop_assert!(
            !again.iter().any(|e| matches!(e.kind, PiiKind::Email | PiiKind::Card)),
            "{:?} -> {:?}", text, a.redacted
        );
        prop_assert!(!a.redacted.contains("4111111111111111"));
    }
}

#[path = "../examples/common/cx.rs"]
mod cx;
#[path = "../examples/common/pii_gen.rs"]
mod pii_gen;

#[test]
fn pii_detection_on_synthetic_chat_and_email_meets_f2_goal() {
    // Seed 3 is neither the tuning seed (1) nor the reported one (7).
    let samples = pii_gen::generate(3, 400);
    assert!(samples.iter().any(|s| s.decoys > 0));
    let (counts, coverage, errors) = pii_gen::evaluate(interp(), &samples);
    let all = counts[pii_gen::KINDS.len() - 1];
    assert!(
        all.f2() >= 0.90,
        "F2 {:.3}; first errors: {:?}",
        all.f2(),
        &errors[..errors.len().min(5)]
    );
    assert!(coverage >= 0.90, "redaction recall {coverage:.3}");
    for (k, c) in pii_gen::KINDS.iter().zip(&counts) {
        assert!(c.recall() >= 0.8, "{k}: {c:?}");
    }
}

#[test]
fn pii_generator_is_seeded_and_labels_slice_back() {
    let a = pii_gen::generate(11, 50);
    let b = pii_gen::generate(11, 50);
    assert_eq!(
        a.iter().map(|s| &s.text).collect::<Vec<_>>(),
        b.iter().map(|s| &s.text).collect::<Vec<_>>()
    );
    for s in &a {
        for l in &s.labels {
            let piece: String = s.text.chars().skip(l.start).take(l.end - l.start).collect();
            assert!(
                !piece.trim().is_empty() && piece.trim() == piece,
                "{l:?} in {:?}",
                s.text
            );
            if l.kind == "card" {
                let d: String = piece.chars().filter(char::is_ascii_digit).collect();
                assert!(rapport_interpret::luhn_valid(&d), "{piece}");
            }
            if l.kind == "iban" {
                assert!(rapport_interpret::iban_valid(&piece), "{piece}");
            }
        }
    }
}

#[test]
fn hand_labelled_set_is_well_formed_and_scored() {
    let set = cx::load();
    assert!(set.len() >= 300, "{}", set.len());
    let held = set.iter().filter(|g| g.split == "heldout").count();
    assert!(held >= 100 && held < set.len() / 2, "{held}");
    let r = cx::evaluate(interp(), &set, "all");
    assert_eq!(r.messages, set.len());
    // Floors a little under the figures in BENCHMARKS.md, so a rule change that makes the
    // detectors clearly worse on the labelled set fails here.
    let emo = cx::micro(&r.emotions);
    let reasons = cx::micro(&r.reasons);
    let level = f64::from(r.level_exact) / r.messages as f64;
    assert!(
        emo.f1() >= EMOTION_MICRO_F1_FLOOR,
        "emotion micro-F1 {:.3}",
        emo.f1()
    );
    assert!(
        reasons.f1() >= REASON_MICRO_F1_FLOOR,
        "reason micro-F1 {:.3}",
        reasons.f1()
    );
    assert!(level >= LEVEL_EXACT_FLOOR, "urgency level exact {level:.3}");
}

const EMOTION_MICRO_F1_FLOOR: f64 = 0.60;
const REASON_MICRO_F1_FLOOR: f64 = 0.75;
const LEVEL_EXACT_FLOOR: f64 = 0.62;
