//! `rapport import events FILE.jsonl`: every line is validated before anything is applied; a
//! bad line is reported with its number and nothing from the file is applied.

use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use rapport_core::WorkspaceId;
use rapport_ingest::{parse_line, Limits};
use rapport_store::Store;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Events applied per store call.
const CHUNK: usize = 5_000;

pub async fn events(
    store: &dyn Store,
    ws: &WorkspaceId,
    file: &Path,
    limits: Limits,
    options: &rapport_server::engine::EngineOptions,
) -> Result<()> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let received = Utc::now();
    let mut events = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let number = i + 1;
        let line = line.with_context(|| format!("cannot read line {number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        // A line without a messageId gets one derived from its content, so importing the same
        // file twice does not apply it twice.
        let line = with_stable_message_id(&line);
        match parse_line(&line, received, &limits) {
            Ok(e) => events.push(rapport_server::engine::standardize(
                e,
                &options.standardize,
                &options.purposes,
            )),
            Err(e) => problems.push(format!(
                "line {number}: {} ({})",
                e,
                rapport_core::error::Coded::code(&e)
            )),
        }
    }
    if !problems.is_empty() {
        for p in problems.iter().take(50) {
            eprintln!("{p}");
        }
        if problems.len() > 50 {
            eprintln!("... and {} more", problems.len() - 50);
        }
        bail!(
            "{} invalid line(s) in {}; nothing was imported",
            problems.len(),
            file.display()
        );
    }
    let total = events.len();
    let (mut applied, mut duplicates) = (0, 0);
    let mut rest = events;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(CHUNK));
        let chunk = std::mem::replace(&mut rest, tail);
        let s = store.ingest(ws, chunk).await?;
        applied += s.applied;
        duplicates += s.duplicates;
    }
    println!(
        "imported {total} events from {}: {applied} applied, {duplicates} already present",
        file.display()
    );
    Ok(())
}

fn with_stable_message_id(line: &str) -> String {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(mut m)) if !m.contains_key("messageId") => {
            let digest = hex::encode(&Sha256::digest(line.as_bytes())[..16]);
            m.insert(
                "messageId".into(),
                Value::String(format!("import-{digest}")),
            );
            Value::Object(m).to_string()
        }
        _ => line.to_owned(),
    }
}
