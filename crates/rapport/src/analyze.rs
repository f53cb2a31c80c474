//! `rapport analyze [FILE]`: reads customer texts (plain lines, or JSONL `{"id", "text"}`;
//! standard input without a file) and writes one JSON analysis per input line, with every
//! field the pipeline stores: language, sentiment per message and sentence, emotions, effort,
//! urgency, intent, personal data with a redacted copy, evidence, and the model.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Input file; standard input when absent.
    pub file: Option<PathBuf>,
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
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
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
