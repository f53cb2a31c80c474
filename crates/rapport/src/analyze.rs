//! `rapport analyze [FILE]`: reads customer texts (plain lines, or JSONL `{"id", "text"}`;
//! standard input without a file) and writes one JSON analysis per input line, with every
//! field the pipeline stores: language, sentiment per message and sentence, emotions, effort,
//! urgency, intent, personal data with a redacted copy, evidence, and the model.
//!
//! `--model neural` (builds with the cargo feature `neural` only) reads with
//! `Interpreter::neural`, the interpreter the server uses under `interpret.model = "neural"`:
//! the intent comes from a head trained on the default taxonomy's example phrases over the
//! all-MiniLM-L6-v2 sentence embeddings, and the message and sentence sentiment scores become
//! the shipped neural sentiment head combined with the embedded score (the mix chosen on
//! validation: the combination `BENCHMARKS.md` evaluates). The record's `model.neural` names
//! the model, the mix and whether it read the intent. The other fields stay with the
//! embedded models (there is no neural emotion, effort, urgency or personal-data reader).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use rapport_interpret::truncate_chars;
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

pub fn run(args: AnalyzeArgs) -> Result<()> {
    if args.max_chars == 0 {
        bail!("--max-chars must be at least 1");
    }
    // The neural model is loaded (or refused) before any input is read.
    let interpreter = match args.model {
        ModelChoice::Embedded => rapport_server::engine::default_interpreter()
            .context("cannot load the embedded interpretation models")?,
        ModelChoice::Neural => crate::models::neural_interpreter(args.models_dir.as_deref())?,
    };
    // The neural model embeds texts in batches; the embedded one answers line by line.
    let batch = if interpreter.has_neural() { BATCH } else { 1 };
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
        pending.push(Pending {
            id,
            empty: text.trim().is_empty(),
            text: cut.to_owned(),
            truncated,
        });
        if pending.len() >= batch {
            write_batch(&interpreter, &mut pending, &mut out)?;
        }
    }
    write_batch(&interpreter, &mut pending, &mut out)?;
    out.flush()?;
    Ok(())
}

/// Texts embedded per forward pass of the neural model.
const BATCH: usize = 32;

/// An input line waiting to be analysed.
struct Pending {
    id: Value,
    text: String,
    truncated: bool,
    empty: bool,
}

/// Analyses the waiting lines and writes one record each, in order.
fn write_batch(
    interpreter: &rapport_interpret::Interpreter,
    pending: &mut Vec<Pending>,
    out: &mut impl Write,
) -> Result<()> {
    let texts: Vec<&str> = pending.iter().map(|p| p.text.as_str()).collect();
    let analyses = interpreter.analyze_batch(&texts);
    for (p, analysis) in pending.drain(..).zip(analyses) {
        let mut record = serde_json::to_value(&analysis)?;
        if let Value::Object(m) = &mut record {
            m.insert("id".into(), p.id);
            m.insert("truncated".into(), Value::Bool(p.truncated));
            m.insert("empty".into(), Value::Bool(p.empty));
        }
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
    }
    Ok(())
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
}
