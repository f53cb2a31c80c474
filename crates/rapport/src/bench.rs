//! `rapport bench ...`: performance measurements. Filled in below.

use anyhow::Result;

use crate::config::Config;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Sustained HTTP ingest against a raw SQLite baseline.
    Ingest(IngestArgs),
}

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

pub async fn run(_command: BenchCommand, _config: &Config) -> Result<()> {
    anyhow::bail!("not yet")
}
