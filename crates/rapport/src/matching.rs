//! `rapport match dedupe|link`: probabilistic record matching (Fellegi–Sunter) of CSV files,
//! a thin wrapper over `rapport-identity`.

use std::path::PathBuf;

use anyhow::Result;
use rapport_identity::matching::{dedupe, dedupe_incremental, link, MatchOptions};

#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// The column holding each record's unique id.
    #[arg(long)]
    pub id_column: String,
    /// Comparison and blocking settings (TOML); inferred from the data when absent.
    #[arg(long, value_name = "S.toml")]
    pub settings: Option<PathBuf>,
    /// Match probability at or above which records are linked.
    #[arg(long, default_value_t = 0.9)]
    pub threshold: f64,
    /// Where to write scored pairs with per-field contributions.
    #[arg(long, value_name = "pairs.csv")]
    pub pairs_out: Option<PathBuf>,
    /// Where to write record → cluster assignments.
    #[arg(long, value_name = "clusters.csv")]
    pub clusters_out: Option<PathBuf>,
    /// Ground truth (id pairs, or record_id,cluster_id) to print precision, recall, F1 and B-cubed.
    #[arg(long, value_name = "labels.csv")]
    pub labels: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum MatchCommand {
    /// Find duplicates within one file.
    Dedupe {
        #[arg(long, value_name = "F.csv")]
        input: PathBuf,
        /// Records already clustered (same columns as --input): the new records are matched
        /// against them and existing cluster ids never change. Needs --existing-clusters.
        #[arg(long, value_name = "OLD.csv", requires = "existing_clusters")]
        existing: Option<PathBuf>,
        /// `record_id,cluster_id` of every record of --existing (a previous --clusters-out).
        #[arg(long, value_name = "clusters.csv", requires = "existing")]
        existing_clusters: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Link the records of two files.
    Link {
        #[arg(long, value_name = "A.csv")]
        left: PathBuf,
        #[arg(long, value_name = "B.csv")]
        right: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
}

fn options(c: &CommonArgs) -> MatchOptions {
    MatchOptions {
        id_column: c.id_column.clone(),
        settings: c.settings.clone(),
        threshold: c.threshold,
        pairs_out: c.pairs_out.clone(),
        clusters_out: c.clusters_out.clone(),
        labels: c.labels.clone(),
        ..MatchOptions::default()
    }
}

pub fn run(command: MatchCommand) -> Result<()> {
    rapport_identity::matching::avoid_huge_pages();
    let (report, json) = match &command {
        MatchCommand::Dedupe {
            input,
            existing: Some(existing),
            existing_clusters: Some(clusters),
            common,
        } => {
            let report = dedupe_incremental(existing, clusters, input, &options(common))?;
            if common.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            return Ok(());
        }
        MatchCommand::Dedupe { input, common, .. } => {
            (dedupe(input, &options(common))?, common.json)
        }
        MatchCommand::Link {
            left,
            right,
            common,
        } => (link(left, right, &options(common))?, common.json),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}
