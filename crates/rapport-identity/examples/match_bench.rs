//! The matcher as `bench/splink/run.sh` runs it, without building the whole CLI:
//!
//! ```text
//! match_bench data --records 100000 --seed 7 --out DIR
//! match_bench dedupe --input F.csv --settings S.toml --labels truth.csv \
//!     --pairs-out pairs.csv --clusters-out clusters.csv [--threshold 0.9] \
//!     [--write-settings used.toml]
//! ```
//!
//! Without `--settings`, comparisons and blocking are inferred from the columns, as the CLI
//! does; `--write-settings` saves the settings used.
//!
//! `data` is `rapport bench match-data` and `dedupe` is `rapport match dedupe --id-column id
//! --json`: the same library functions as the CLI, in the same order. The one difference is
//! where the clock stops: `elapsed_ms` runs from reading the CSV to writing the pairs and
//! clusters, as Splink's script times it, and the evaluation against `--labels` comes after
//! (reading and matching the labels, `evaluate_ms` in the output).

use std::path::PathBuf;
use std::time::Instant;

use rapport_identity::csv_io::{read_dataset, read_labels, resolve_labels, write_population};
use rapport_identity::matching::synthetic::{generate, SyntheticOptions};
use rapport_identity::matching::{dedupe_dataset, finish, MatchOptions, MatchSettings};

/// The `rapport` binary's allocator: this example stands in for `rapport match dedupe`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As `rapport match` does.
    rapport_identity::matching::avoid_huge_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("data") => {
            let pop = generate(&SyntheticOptions {
                records: flag("--records").unwrap_or("10000".into()).parse()?,
                seed: flag("--seed").unwrap_or("7".into()).parse()?,
                ..SyntheticOptions::default()
            })?;
            let out = PathBuf::from(flag("--out").ok_or("--out DIR is needed")?);
            println!("{}", write_population(&pop, &out)?);
        }
        Some("dedupe") => {
            let opts = MatchOptions {
                id_column: "id".into(),
                settings: flag("--settings").map(PathBuf::from),
                threshold: flag("--threshold").unwrap_or("0.9".into()).parse()?,
                pairs_out: flag("--pairs-out").map(PathBuf::from),
                clusters_out: flag("--clusters-out").map(PathBuf::from),
                labels: flag("--labels").map(PathBuf::from),
                pairs_min_probability: flag("--pairs-min").map(|p| p.parse()).transpose()?,
            };
            let input = PathBuf::from(flag("--input").ok_or("--input F.csv is needed")?);
            let started = Instant::now();
            let data = read_dataset(&input, &opts.id_column)?;
            let read_ms = started.elapsed().as_millis() as u64;
            let settings = match &opts.settings {
                Some(path) => MatchSettings::from_toml(&std::fs::read_to_string(path)?)?,
                // As `rapport match dedupe` without --settings: inferred from the columns.
                None => rapport_identity::matching::infer_settings(&[&data]),
            };
            if let Some(path) = flag("--write-settings") {
                std::fs::write(path, settings.to_toml())?;
            }
            let run = dedupe_dataset(&data, &settings)?;
            let without_labels = MatchOptions {
                labels: None,
                ..opts.clone()
            };
            let run_done = Instant::now();
            let mut report = finish(&run, &without_labels, None, false, started)?;
            let finish_ms = run_done.elapsed().as_millis() as u64;
            let t = Instant::now();
            if let Some(path) = &opts.labels {
                let truth = resolve_labels(&run, &read_labels(path)?)?;
                report.evaluation = Some(run.evaluate(&truth, opts.threshold));
            }
            let evaluate_ms = t.elapsed().as_millis() as u64;
            let mut json = serde_json::to_value(&report)?;
            json["read_ms"] = read_ms.into();
            json["finish_ms"] = finish_ms.into();
            json["evaluate_ms"] = evaluate_ms.into();
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        _ => return Err("usage: match_bench data|dedupe ...".into()),
    }
    Ok(())
}
