//! `rapport bench match-data`: writes the seeded synthetic population of
//! `rapport_identity::matching::synthetic` as `records.csv` and `truth.csv`
//! (`record_id,cluster_id`), for benchmarking record matching.

use std::path::PathBuf;

use anyhow::Result;
use rapport_identity::csv_io::write_population;
use rapport_identity::matching::synthetic::{generate, SyntheticOptions};

#[derive(Debug, clap::Args)]
pub struct MatchDataArgs {
    /// Number of records to write (the last household may be cut short to hit it exactly).
    #[arg(long, default_value_t = 10_000)]
    pub records: usize,
    /// Seed: the same seed and size give the same files.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Directory to write `records.csv` and `truth.csv` (`record_id,cluster_id`) into.
    #[arg(long)]
    pub out: PathBuf,
    /// Largest number of records of one person (duplicate counts follow Zipf up to this).
    #[arg(long, default_value_t = 8)]
    pub max_duplicates: usize,
    /// Zipf exponent of the duplicate counts (larger: fewer duplicates).
    #[arg(long, default_value_t = 1.6)]
    pub zipf_exponent: f64,
}

pub fn run(args: MatchDataArgs) -> Result<()> {
    let pop = generate(&SyntheticOptions {
        records: args.records,
        seed: args.seed,
        max_duplicates: args.max_duplicates,
        zipf_exponent: args.zipf_exponent,
    })?;
    let summary = write_population(&pop, &args.out)?;
    println!("{summary}");
    Ok(())
}
