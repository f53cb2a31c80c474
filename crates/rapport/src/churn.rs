//! `rapport churn` and `rapport clv train|versions|activate`: models trained on a workspace's
//! own data, from the command line (the same training, versions and activation as
//! `/v1/models/{kind}`).

use std::sync::Arc;

use anyhow::{anyhow, Result};
use clap::Subcommand;
use rapport_core::{Actor, WorkspaceName};
use rapport_server::churn::{ChurnError, KIND};
use rapport_server::engine::Engine;

use crate::cli::StoreArgs;

#[derive(Debug, Subcommand)]
pub enum ChurnCommand {
    /// Train a churn model on the workspace's customers (point-in-time snapshots at past
    /// cut-offs, measured on the newest) and store it as a new version.
    Train {
        #[arg(long, default_value = WorkspaceName::DEFAULT)]
        workspace: String,
        /// Make it the active version (`true`/`false`); by default only when it scores at
        /// least as well on its held-out cut-off as the active one.
        #[arg(long)]
        activate: Option<bool>,
        /// Print the version and its summary as JSON.
        #[arg(long)]
        json: bool,
        /// Also write the training snapshots as CSV (a `cutoff` column, 0 the newest and held
        /// out, the features, `churned`), for comparing other learners on the same split.
        #[arg(long, value_name = "F.csv")]
        snapshots_out: Option<std::path::PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the versions, newest first.
    Versions {
        #[arg(long, default_value = WorkspaceName::DEFAULT)]
        workspace: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Make a version the active one (also to roll back).
    Activate {
        #[arg(long, default_value = WorkspaceName::DEFAULT)]
        workspace: String,
        #[arg(long)]
        version: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `rapport clv` on a workspace's purchases.
#[derive(Debug, Subcommand)]
pub enum ClvModelCommand {
    /// Fit lifetime value (BG/NBD and Gamma-Gamma) on the workspace's `Order Completed`
    /// events, measured on the newest `clv.holdout_days`, and store it as a new version.
    Train {
        #[arg(long, default_value = WorkspaceName::DEFAULT)]
        workspace: String,
        /// Make it the active version (`true`/`false`); by default only when its held-out
        /// error is no worse than the active one's.
        #[arg(long)]
        activate: Option<bool>,
        /// Print the version and its summary as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the lifetime-value model's versions, newest first.
    Versions {
        #[arg(long, default_value = WorkspaceName::DEFAULT)]
        workspace: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Make a lifetime-value version the active one (also to roll back).
    Activate {
        #[arg(long, default_value = WorkspaceName::DEFAULT)]
        workspace: String,
        #[arg(long)]
        version: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run_clv(config: &crate::config::Config, command: ClvModelCommand) -> Result<()> {
    use rapport_server::clv::KIND as CLV;
    let (workspace, store) = match &command {
        ClvModelCommand::Train {
            workspace, store, ..
        }
        | ClvModelCommand::Versions { workspace, store }
        | ClvModelCommand::Activate {
            workspace, store, ..
        } => (workspace.clone(), store.clone()),
    };
    let s = crate::cli::open_store(&crate::cli::storage(config, &store)?).await?;
    let ws = crate::cli::workspace_id(s.as_ref(), &workspace).await?;
    let engine = Arc::new(Engine::new(s.clone(), config.engine_options())?);
    let out = match command {
        ClvModelCommand::Train { activate, json, .. } => {
            let r = engine
                .train_clv(&ws, Actor::System, activate)
                .await
                .map_err(plain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                let h = &r.summary["holdout"];
                println!(
                    "trained lifetime-value model version {} ({}) on {} customers ({} with a repeat purchase); held-out {} days: purchases predicted {} vs actual {}, error per customer {} (keeping past rates: {})",
                    r.version.version,
                    if r.version.active { "active" } else { "not active" },
                    r.summary["customers"],
                    r.summary["repeat_customers"],
                    h["holdout_days"],
                    h["predicted_purchases"].as_f64().map_or("-".into(), |x| format!("{x:.1}")),
                    h["actual_purchases"],
                    h["mae"].as_f64().map_or("-".into(), |x| format!("{x:.3}")),
                    h["naive_mae"].as_f64().map_or("-".into(), |x| format!("{x:.3}")),
                );
            }
            Ok(())
        }
        ClvModelCommand::Versions { .. } => {
            for v in s.model_versions(&ws, CLV).await? {
                println!(
                    "{}\t{}\t{}\t{}\theld-out error {}",
                    v.version,
                    if v.active { "active" } else { "-" },
                    v.created_at.format("%Y-%m-%d %H:%M:%S"),
                    v.created_by,
                    v.summary
                        .pointer("/holdout/mae")
                        .cloned()
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        ClvModelCommand::Activate { version, .. } => {
            let v = engine
                .activate_model(&ws, CLV, version, Actor::System)
                .await
                .map_err(plain)?;
            println!("lifetime-value model version {} is active", v.version);
            Ok(())
        }
    };
    s.close();
    out
}

fn plain(e: ChurnError) -> anyhow::Error {
    match e {
        ChurnError::Insufficient(m) => anyhow!("training_data_insufficient: {m}"),
        other => anyhow!(other.to_string()),
    }
}

pub async fn run(config: &crate::config::Config, command: ChurnCommand) -> Result<()> {
    let (workspace, store) = match &command {
        ChurnCommand::Train {
            workspace, store, ..
        }
        | ChurnCommand::Versions { workspace, store }
        | ChurnCommand::Activate {
            workspace, store, ..
        } => (workspace.clone(), store.clone()),
    };
    let s = crate::cli::open_store(&crate::cli::storage(config, &store)?).await?;
    let ws = crate::cli::workspace_id(s.as_ref(), &workspace).await?;
    let engine = Arc::new(Engine::new(s.clone(), config.engine_options())?);
    let out = match command {
        ChurnCommand::Train {
            activate,
            json,
            snapshots_out,
            ..
        } => {
            if let Some(path) = snapshots_out {
                let (_, snaps) = engine
                    .churn_snapshots(&ws, chrono::Utc::now())
                    .await
                    .map_err(plain)?;
                write_snapshots(&path, &snaps)?;
            }
            let r = engine
                .train_churn(&ws, Actor::System, activate)
                .await
                .map_err(plain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                let h = &r.summary["holdout"];
                println!(
                    "trained churn model version {} ({}) on {} snapshots with {} churned; held-out cut-off: ROC-AUC {}, PR-AUC {}, Brier {}",
                    r.version.version,
                    if r.version.active { "active" } else { "not active" },
                    r.summary["rows"],
                    r.summary["positives"],
                    h["roc_auc"],
                    h["pr_auc"],
                    h["brier"]
                );
            }
            Ok(())
        }
        ChurnCommand::Versions { .. } => {
            for v in s.model_versions(&ws, KIND).await? {
                println!(
                    "{}\t{}\t{}\t{}\tROC-AUC {}",
                    v.version,
                    if v.active { "active" } else { "-" },
                    v.created_at.format("%Y-%m-%d %H:%M:%S"),
                    v.created_by,
                    v.summary
                        .pointer("/holdout/roc_auc")
                        .cloned()
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        ChurnCommand::Activate { version, .. } => {
            let v = engine
                .activate_churn(&ws, version, Actor::System)
                .await
                .map_err(plain)?;
            println!("churn model version {} is active", v.version);
            Ok(())
        }
    };
    s.close();
    out
}

fn write_snapshots(
    path: &std::path::Path,
    snaps: &[rapport_server::churn::Snapshot],
) -> Result<()> {
    let mut w = csv::Writer::from_path(path)
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    if let Some((_, first, _)) = snaps.first() {
        let mut header = vec!["cutoff".to_owned()];
        header.extend(first.values.iter().map(|(n, _)| n.clone()));
        header.push("churned".into());
        w.write_record(&header)?;
    }
    for (k, v, y) in snaps {
        let mut row = vec![k.to_string()];
        row.extend(v.values.iter().map(|(_, x)| x.cell()));
        row.push(if *y == Some(true) { "1" } else { "0" }.into());
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}
