//! `rapport analyze [FILE]`: reads customer texts (plain lines, or JSONL `{"id", "text"}`;
//! standard input without a file) and writes one JSON analysis per input line, with every
//! field the pipeline stores: language, sentiment per message and sentence, emotions, effort,
//! urgency, intent, personal data with a redacted copy, evidence, and the model.
//!
//! `--model neural` (builds with the cargo feature `neural` only) adds the all-MiniLM-L6-v2
//! path: the intent is read by a head trained on the default taxonomy's example phrases over
//! the sentence embeddings, and the record names that model in `intent_model`. The message
//! sentiment's score and label become the shipped neural sentiment head combined with the
//! embedded score (`SentimentHead::combine`, the mix chosen on validation: the combination
//! `BENCHMARKS.md` evaluates), and the record names the model and mix in `sentiment_model`.
//! The other fields stay with the embedded models (there is no neural emotion, effort,
//! urgency or personal-data reader; sentence sentiments stay embedded).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Which models read the texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ModelChoice {
    /// Lexicons, rules and linear models built into the binary (no download).
    #[default]
    Embedded,
    /// The embedded models plus all-MiniLM-L6-v2 for intent and message sentiment (cargo
    /// feature `neural`, weights fetched with `rapport models pull minilm`).
    Neural,
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Input file; standard input when absent.
    pub file: Option<PathBuf>,
    /// Which models read the texts.
    #[arg(long, value_enum, default_value_t = ModelChoice::Embedded)]
    pub model: ModelChoice,
    /// Models directory for `--model neural` (default: $RAPPORT_MODELS_DIR, else
    /// ~/.cache/rapport/models).
    #[arg(long, value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    /// Characters analysed per text; longer texts are cut there and flagged `truncated`.
    #[arg(long, default_value_t = 20_000)]
    pub max_chars: usize,
}

/// Cuts `text` to at most `max` characters (on a character boundary).
pub fn truncate_chars(text: &str, max: usize) -> (&str, bool) {
    match text.char_indices().nth(max) {
        Some((i, _)) => (&text[..i], true),
        None => (text, false),
    }
}

pub fn run(args: AnalyzeArgs) -> Result<()> {
    if args.max_chars == 0 {
        bail!("--max-chars must be at least 1");
    }
    // The neural model is loaded (or refused) before any input is read.
    let neural = neural::Reader::open(args.model, args.models_dir.as_deref())?;
    let interpreter = rapport_server::engine::default_interpreter()
        .context("cannot load the embedded interpretation models")?;
    let (reader, name): (Box<dyn Read>, String) = match &args.file {
        Some(p) => (
            Box::new(
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
            ),
            p.display().to_string(),
        ),
        None => (Box::new(std::io::stdin().lock()), "standard input".into()),
    };
    let mut reader = BufReader::new(reader);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut buf = Vec::new();
    let mut number = 0usize;
    // With the neural model, records wait here to be embedded in batches, with the embedded
    // sentiment the neural head is combined with.
    let mut pending: Vec<Pending> = Vec::new();
    loop {
        buf.clear();
        if reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {name}"))?
            == 0
        {
            break;
        }
        number += 1;
        let line = std::str::from_utf8(&buf).map_err(|e| {
            anyhow::anyhow!(
                "{name}, line {number}: not valid UTF-8 (byte {} of the line)",
                e.valid_up_to() + 1
            )
        })?;
        let line = line.trim_end_matches(['\n', '\r']);
        let (id, text) = if line.trim_start().starts_with('{') {
            let v: Value = serde_json::from_str(line)
                .with_context(|| format!("{name}, line {number}: not a JSON object"))?;
            let text = v
                .get("text")
                .and_then(Value::as_str)
                .with_context(|| format!("{name}, line {number}: no \"text\" string"))?
                .to_owned();
            (v.get("id").cloned().unwrap_or(json!(number)), text)
        } else {
            (json!(number), line.to_owned())
        };
        let (cut, truncated) = truncate_chars(&text, args.max_chars);
        let analysis = interpreter.analyze(cut);
        let mut record = serde_json::to_value(&analysis)?;
        if let Value::Object(m) = &mut record {
            m.insert("id".into(), id);
            m.insert("truncated".into(), Value::Bool(truncated));
            m.insert("empty".into(), Value::Bool(text.trim().is_empty()));
        }
        match &neural {
            Some(reader) => {
                pending.push((cut.to_owned(), record, analysis.sentiment));
                if pending.len() >= BATCH {
                    reader.finish(&mut pending, &mut out)?;
                }
            }
            None => {
                serde_json::to_writer(&mut out, &record)?;
                out.write_all(b"\n")?;
            }
        }
    }
    if let Some(reader) = &neural {
        reader.finish(&mut pending, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// Texts embedded per forward pass of the neural model.
const BATCH: usize = 32;

/// A record waiting for the neural model: text, record, embedded message sentiment.
type Pending = (String, Value, rapport_interpret::Sentiment);

#[cfg(feature = "neural")]
mod neural {
    use std::io::Write;
    use std::path::Path;

    use anyhow::{Context, Result};
    use rapport_interpret::neural::{
        default_intent_sgd, default_models_dir, minilm_dir, minilm_info, IntentHead, MiniLm,
        SentimentHead,
    };
    use rapport_interpret::{IntentTaxonomy, Sentiment};
    use serde_json::{json, Value};

    use super::{ModelChoice, Pending};

    /// all-MiniLM-L6-v2 with an intent head trained on the default taxonomy and the shipped
    /// sentiment head.
    pub struct Reader {
        model: MiniLm,
        intent: IntentHead,
        sentiment: SentimentHead,
        mix: f32,
    }

    impl Reader {
        pub fn open(choice: ModelChoice, models_dir: Option<&Path>) -> Result<Option<Self>> {
            if choice == ModelChoice::Embedded {
                return Ok(None);
            }
            let dir = minilm_dir(&models_dir.map_or_else(default_models_dir, Path::to_path_buf));
            let model = MiniLm::load(&dir)
                .with_context(|| format!("cannot load the neural model from {}", dir.display()))?;
            let intent = IntentHead::from_taxonomy(
                &model,
                &IntentTaxonomy::default_cx(),
                &default_intent_sgd(),
            )
            .context("cannot train the neural intent head")?;
            let (sentiment, mix) =
                SentimentHead::shipped().context("cannot load the neural sentiment head")?;
            Ok(Some(Reader {
                model,
                intent,
                sentiment,
                mix,
            }))
        }

        /// Adds the neural intent and sentiment to the waiting records and writes them out,
        /// in order.
        pub fn finish(&self, pending: &mut Vec<Pending>, out: &mut impl Write) -> Result<()> {
            let texts: Vec<&str> = pending.iter().map(|(t, _, _)| t.as_str()).collect();
            let embeddings = self.model.embed(&texts).context("neural model failed")?;
            for ((_, mut record, embedded), e) in pending.drain(..).zip(embeddings) {
                let intent = self
                    .intent
                    .predict(&e)
                    .context("neural intent head failed")?;
                let sentiment = self
                    .sentiment
                    .combine_sentiment(&e, &embedded, self.mix)
                    .context("neural sentiment head failed")?;
                set_neural_fields(&mut record, &intent, &sentiment, self.mix)?;
                serde_json::to_writer(&mut *out, &record)?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
    }

    /// Writes the neural intent and message sentiment into a record, naming the model.
    pub(super) fn set_neural_fields(
        record: &mut Value,
        intent: &rapport_interpret::IntentPrediction,
        sentiment: &Sentiment,
        mix: f32,
    ) -> Result<()> {
        if let Value::Object(m) = record {
            m.insert("intent".into(), serde_json::to_value(intent)?);
            m.insert("intent_model".into(), serde_json::to_value(minilm_info())?);
            m.insert("sentiment".into(), serde_json::to_value(sentiment)?);
            m.insert(
                "sentiment_model".into(),
                json!({ "model": minilm_info(), "combined_with": "embedded", "mix": mix }),
            );
        }
        Ok(())
    }
}

#[cfg(not(feature = "neural"))]
mod neural {
    use std::io::Write;
    use std::path::Path;

    use anyhow::{bail, Result};

    use super::{ModelChoice, Pending};

    /// Stands in for the neural reader in builds without the feature: asking for it is an
    /// error that says how to get it.
    pub enum Reader {}

    impl Reader {
        pub fn open(choice: ModelChoice, _models_dir: Option<&Path>) -> Result<Option<Self>> {
            if choice == ModelChoice::Neural {
                bail!(
                    "--model neural needs a build with the cargo feature `neural` \
                     (`cargo build --release -p rapport --features neural`) and the \
                     all-MiniLM-L6-v2 weights (`rapport models pull minilm`); \
                     `--model embedded` needs neither"
                );
            }
            Ok(None)
        }

        pub fn finish(&self, _pending: &mut Vec<Pending>, _out: &mut impl Write) -> Result<()> {
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_chars("héllo", 2), ("hé", true));
        assert_eq!(truncate_chars("héllo", 5), ("héllo", false));
        assert_eq!(truncate_chars("😀😀😀", 1), ("😀", true));
    }

    /// The shipped sentiment head loads, and the record's message sentiment becomes the
    /// combination with the embedded score that `BENCHMARKS.md` evaluates.
    #[cfg(feature = "neural")]
    #[test]
    fn neural_sentiment_replaces_the_message_sentiment_with_the_combination() {
        use rapport_interpret::neural::SentimentHead;
        let (head, mix) = SentimentHead::shipped().expect("shipped head");
        assert!((0.0..=1.0).contains(&mix));
        let interpreter = rapport_server::engine::default_interpreter().expect("interpreter");
        let analysis = interpreter.analyze("the support was terrible and slow");
        let mut record = serde_json::to_value(&analysis).expect("json");
        // A made-up unit embedding: the head reads any vector of its dimension.
        let dim = head.dim();
        let embedding: Vec<f32> = (0..dim)
            .map(|i| if i % 2 == 0 { 0.07 } else { -0.03 })
            .collect();
        let combined = head
            .combine_sentiment(&embedding, &analysis.sentiment, mix)
            .expect("combine");
        let p = head.probability(&embedding).expect("probability");
        let want = mix * (2.0 * p - 1.0) + (1.0 - mix) * analysis.sentiment.score.get();
        assert!((combined.score.get() - want.clamp(-1.0, 1.0)).abs() < 1e-6);
        let intent = rapport_interpret::IntentPrediction::from_scores(&[], vec![], 0.5);
        neural::set_neural_fields(&mut record, &intent, &combined, mix).expect("set");
        let score = record["sentiment"]["score"].as_f64().expect("score");
        assert!(
            (score - f64::from(combined.score.get())).abs() < 1e-6,
            "{record}"
        );
        assert_eq!(
            record["sentiment"]["lexicon_score"],
            serde_json::to_value(analysis.sentiment.lexicon_score).expect("json")
        );
        assert_eq!(
            record["sentiment_model"]["mix"].as_f64(),
            Some(f64::from(mix))
        );
        assert_eq!(
            record["sentiment_model"]["model"]["name"],
            record["intent_model"]["name"]
        );
    }
}
