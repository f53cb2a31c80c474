//! `rapport profiles dedupe`: probabilistic dedupe of a workspace's stored profiles (see
//! `rapport_server::dedupe`), from the command line.

use anyhow::{anyhow, Result};
use rapport_core::{Actor, WorkspaceName};
use rapport_server::dedupe::DedupeThresholds;
use rapport_server::engine::Engine;

use crate::cli::{open_store, storage, workspace_id, StoreArgs};
use crate::config::Config;

#[derive(Debug, clap::Subcommand)]
pub enum ProfilesCommand {
    /// Find likely duplicate profiles: merge those at or above the auto-merge threshold
    /// (logged, reversible with unmerge), queue those at or above the review threshold for a
    /// person (the dashboard's Duplicates page), leave the rest. Prints a summary.
    Dedupe(DedupeArgs),
}

#[derive(Debug, clap::Args)]
pub struct DedupeArgs {
    #[arg(long, default_value = WorkspaceName::DEFAULT)]
    pub workspace: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Merge pairs at or above this probability (default: `identity.dedupe_auto_merge`).
    #[arg(long, value_name = "P")]
    pub auto_merge_threshold: Option<f64>,
    /// Queue pairs at or above this probability for review (default:
    /// `identity.dedupe_review`).
    #[arg(long, value_name = "P")]
    pub review_threshold: Option<f64>,
    /// Print what would be done without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(config: &Config, command: ProfilesCommand) -> Result<()> {
    let ProfilesCommand::Dedupe(args) = command;
    let options = config.engine_options();
    let thresholds = DedupeThresholds {
        auto_merge: args
            .auto_merge_threshold
            .unwrap_or(options.dedupe.auto_merge),
        review: args.review_threshold.unwrap_or(options.dedupe.review),
    };
    let problems = thresholds.problems();
    if !problems.is_empty() {
        return Err(anyhow!("{}", problems.join("; ")));
    }
    let store = open_store(&storage(config, &args.store)?).await?;
    let ws = workspace_id(store.as_ref(), &args.workspace).await?;
    let engine = Engine::new(store.clone(), options)?;
    let report = engine
        .dedupe(&ws, thresholds, args.dry_run, Actor::System)
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    store.close();
    Ok(())
}
