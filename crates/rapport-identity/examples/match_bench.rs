//! The matcher as `bench/splink/run.sh` runs it, without building the whole CLI:
//!
//! ```text
//! match_bench data --records 100000 --seed 7 --out DIR
//! match_bench dedupe --input F.csv --settings S.toml --labels truth.csv \
//!     --pairs-out pairs.csv --clusters-out clusters.csv [--threshold 0.9]
//! ```
//!
//! `data` is `rapport bench match-data` and `dedupe` is `rapport match dedupe --id-column id
//! --json`: both call the same library functions as the CLI.

use std::path::PathBuf;

use rapport_identity::csv_io::write_population;
use rapport_identity::matching::synthetic::{generate, SyntheticOptions};
use rapport_identity::matching::{dedupe, MatchOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
                pairs_min_probability: None,
            };
            let input = PathBuf::from(flag("--input").ok_or("--input F.csv is needed")?);
            let report = dedupe(&input, &opts)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        _ => return Err("usage: match_bench data|dedupe ...".into()),
    }
    Ok(())
}
