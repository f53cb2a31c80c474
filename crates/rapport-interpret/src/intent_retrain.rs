//! Retraining an intent classifier from agents' corrections: the taxonomy's example phrases
//! plus the (redacted) texts of messages whose intent an agent corrected, each correction
//! repeated so that a handful of them changes how similar messages are read. Messages marked
//! out of scope become examples of an extra class, [`OUT_OF_SCOPE_LABEL`], which answers
//! out of scope when it wins (the taxonomy's confidence threshold still applies on top).
//!
//! The candidate is judged before anyone switches to it: k-fold over the corrections (at most
//! five folds), each fold read by a model trained without it, gives the new model's accuracy
//! on corrections it did not see; the old model is scored on the same corrections. Pure and
//! synchronous: loading corrections and storing the model is the caller's job.

use serde::{Deserialize, Serialize};

use crate::error::InterpretError;
use crate::intent::{IntentClassifier, IntentConfig, IntentTaxonomy, OUT_OF_SCOPE_LABEL};
use crate::text::stable_hash;

/// How many times a correction counts as an example. The default taxonomy has about a
/// dozen phrases per intent, so a few corrections weigh as much as the shipped phrases.
pub const DEFAULT_CORRECTION_WEIGHT: usize = 4;

/// Most folds of the cross-validation.
const MAX_FOLDS: usize = 5;

/// One corrected message.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrectionExample {
    /// The message text with personal data replaced by placeholders.
    pub text: String,
    /// The intent the agent chose; `None` for out of scope.
    pub intent: Option<String>,
}

/// What a retraining used and how the candidate scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainReport {
    /// Example phrases of the taxonomy.
    pub taxonomy_examples: usize,
    /// Corrections used (each counted `correction_weight` times).
    pub corrections: usize,
    /// Of them, messages marked out of scope.
    pub out_of_scope_corrections: usize,
    /// Corrections naming an intent the taxonomy does not have (left out).
    pub skipped_corrections: usize,
    /// How many times a correction counts as an example.
    pub correction_weight: usize,
    /// Folds of the cross-validation (0 without corrections).
    pub folds: usize,
    /// Share of the corrections the old model reads as the agents did; `None` without
    /// corrections.
    pub old_accuracy: Option<f64>,
    /// Share of the corrections the new model, trained without them, reads as the agents did
    /// (cross-validated); `None` without corrections.
    pub new_accuracy: Option<f64>,
    /// The new model's accuracy on the taxonomy's own phrases (a check that corrections did
    /// not unlearn them; these are training data, so it is optimistic).
    pub taxonomy_accuracy: f64,
}

/// Whether a prediction agrees with a correction.
fn agrees(clf: &IntentClassifier, c: &CorrectionExample) -> bool {
    let p = clf.predict(&c.text);
    match &c.intent {
        None => p.out_of_scope,
        Some(l) => !p.out_of_scope && p.label.as_deref() == Some(l.as_str()),
    }
}

fn share(right: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        right as f64 / of as f64
    }
}

/// The labels and examples of a model trained on the taxonomy's phrases plus `corrections`
/// (each `weight` times), with an extra [`OUT_OF_SCOPE_LABEL`] class when a correction marks
/// a message out of scope.
fn examples_of<'a>(
    taxonomy: &'a IntentTaxonomy,
    corrections: &[&'a CorrectionExample],
    weight: usize,
) -> (Vec<String>, Vec<(&'a str, usize)>) {
    let mut labels: Vec<String> = taxonomy.intents.iter().map(|i| i.name.clone()).collect();
    let oos = corrections.iter().any(|c| c.intent.is_none());
    if oos {
        labels.push(OUT_OF_SCOPE_LABEL.to_owned());
    }
    let class_of = |c: &CorrectionExample| match &c.intent {
        None => labels.len() - 1,
        Some(l) => labels.iter().position(|x| x == l).unwrap_or(0),
    };
    let mut examples: Vec<(&str, usize)> = taxonomy
        .intents
        .iter()
        .enumerate()
        .flat_map(|(c, i)| i.examples.iter().map(move |e| (e.as_str(), c)))
        .filter(|(e, _)| !e.trim().is_empty())
        .collect();
    for c in corrections {
        let class = class_of(c);
        examples.extend(std::iter::repeat_n((c.text.as_str(), class), weight));
    }
    (labels, examples)
}

/// Trains on the taxonomy's phrases plus `corrections` (each `weight` times).
fn train(
    taxonomy: &IntentTaxonomy,
    corrections: &[&CorrectionExample],
    weight: usize,
    config: IntentConfig,
) -> IntentClassifier {
    let (labels, examples) = examples_of(taxonomy, corrections, weight);
    IntentClassifier::train_examples(labels, &examples, taxonomy.threshold, config)
}

/// The corrections a retraining learns from: those with text, naming one of the taxonomy's
/// intents or out of scope.
fn usable<'a>(
    taxonomy: &IntentTaxonomy,
    corrections: &'a [CorrectionExample],
) -> Vec<&'a CorrectionExample> {
    let known = |l: &str| taxonomy.intents.iter().any(|i| i.name == l);
    corrections
        .iter()
        .filter(|c| !c.text.trim().is_empty())
        .filter(|c| c.intent.as_deref().is_none_or(known))
        .collect()
}

/// The labels (in the order of the classifier [`retrain`] returns) and the weighted examples
/// it was trained on, for training another model on the same evidence (the neural path's
/// intent head).
pub fn training_set<'a>(
    taxonomy: &'a IntentTaxonomy,
    corrections: &'a [CorrectionExample],
    weight: usize,
) -> (Vec<String>, Vec<(&'a str, usize)>) {
    examples_of(taxonomy, &usable(taxonomy, corrections), weight.max(1))
}

/// A new classifier from `taxonomy` and `corrections`, with the figures of old and new on the
/// corrections. `old` is the model in use (scored on every usable correction).
pub fn retrain(
    taxonomy: &IntentTaxonomy,
    corrections: &[CorrectionExample],
    old: &IntentClassifier,
    weight: usize,
    config: IntentConfig,
) -> Result<(IntentClassifier, RetrainReport), InterpretError> {
    taxonomy.validate()?;
    let weight = weight.max(1);
    let usable = usable(taxonomy, corrections);
    let skipped = corrections.len() - usable.len();

    // Folds by a stable hash of the text, so the same corrections give the same figures, and
    // a text corrected twice never sits on both sides of a fold.
    let folds = usable.len().min(MAX_FOLDS);
    let fold_of = |c: &CorrectionExample| (stable_hash(c.text.as_bytes()) % folds as u64) as usize;
    let mut right = 0usize;
    for k in 0..folds {
        let (held, kept): (Vec<&CorrectionExample>, Vec<&CorrectionExample>) =
            usable.iter().copied().partition(|c| fold_of(c) == k);
        if held.is_empty() {
            continue;
        }
        let candidate = train(taxonomy, &kept, weight, config);
        right += held.iter().filter(|c| agrees(&candidate, c)).count();
    }
    let old_right = usable.iter().filter(|c| agrees(old, c)).count();

    let clf = train(taxonomy, &usable, weight, config);
    let (mut phrases, mut phrases_right) = (0usize, 0usize);
    for intent in &taxonomy.intents {
        for e in intent.examples.iter().filter(|e| !e.trim().is_empty()) {
            phrases += 1;
            let p = clf.predict(e);
            phrases_right += usize::from(p.label.as_deref() == Some(intent.name.as_str()));
        }
    }
    let any = !usable.is_empty();
    let report = RetrainReport {
        taxonomy_examples: phrases,
        corrections: usable.len(),
        out_of_scope_corrections: usable.iter().filter(|c| c.intent.is_none()).count(),
        skipped_corrections: skipped,
        correction_weight: weight,
        folds,
        old_accuracy: any.then(|| share(old_right, usable.len())),
        new_accuracy: any.then(|| share(right, usable.len())),
        taxonomy_accuracy: share(phrases_right, phrases),
    };
    Ok((clf, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(text: &str, intent: Option<&str>) -> CorrectionExample {
        CorrectionExample {
            text: text.to_owned(),
            intent: intent.map(str::to_owned),
        }
    }

    #[test]
    fn corrections_change_how_similar_messages_are_read() {
        let tax = IntentTaxonomy::default_cx();
        let old = IntentClassifier::train(&tax, IntentConfig::default()).expect("train");
        let probe = "the parrot ate my router cable again";
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
            fix("whatever", Some("no_such_intent")),
        ];
        let (new, report) = retrain(
            &tax,
            &corrections,
            &old,
            DEFAULT_CORRECTION_WEIGHT,
            IntentConfig::default(),
        )
        .expect("retrain");
        assert_eq!(report.corrections, 6);
        assert_eq!(report.skipped_corrections, 1);
        assert_eq!(report.out_of_scope_corrections, 3);
        assert_eq!(report.folds, 5);
        assert!(
            report.new_accuracy > report.old_accuracy,
            "the candidate reads unseen corrections better: {report:?}"
        );
        assert!(report.taxonomy_accuracy > 0.9, "{report:?}");
        assert_eq!(new.predict(probe).label.as_deref(), Some("technical_issue"));
        let oos = new.predict("what is the capital of ecuador");
        assert!(oos.out_of_scope && oos.label.is_none(), "{oos:?}");
        assert!(oos
            .alternatives
            .iter()
            .all(|a| a.label != OUT_OF_SCOPE_LABEL));
        assert!(new.intents().all(|l| l != OUT_OF_SCOPE_LABEL));
        // The training set another model can learn from is the one this model learnt from:
        // its labels, in its order, and every phrase plus each usable correction four times.
        let (labels, examples) = training_set(&tax, &corrections, DEFAULT_CORRECTION_WEIGHT);
        assert_eq!(labels, new.labels());
        assert_eq!(
            examples.len(),
            report.taxonomy_examples + 6 * DEFAULT_CORRECTION_WEIGHT
        );
        let oos_class = labels.len() - 1;
        assert_eq!(
            examples.iter().filter(|(_, c)| *c == oos_class).count(),
            3 * DEFAULT_CORRECTION_WEIGHT
        );
        assert!(examples.iter().all(|(t, _)| *t != "whatever"));
        // The learnt class survives saving and loading.
        let (loaded, _) =
            IntentClassifier::from_bytes(&new.to_bytes("t").expect("save")).expect("load");
        assert!(
            loaded
                .predict("what is the capital of ecuador")
                .out_of_scope
        );
    }

    #[test]
    fn without_corrections_the_taxonomy_alone_is_trained() {
        let tax = IntentTaxonomy::default_cx();
        let old = IntentClassifier::train(&tax, IntentConfig::default()).expect("train");
        let (new, report) = retrain(&tax, &[], &old, 4, IntentConfig::default()).expect("retrain");
        assert_eq!((report.corrections, report.folds), (0, 0));
        assert_eq!((report.old_accuracy, report.new_accuracy), (None, None));
        assert_eq!(new.labels(), old.labels());
    }
}
