//! `rapport transfer`: copy workspaces between stores (SQLite and PostgreSQL, either way),
//! verified table by table. The copying itself is `rapport_store::transfer`; this is the
//! command around it: naming the two stores, checking the source's audit chain first (a copy
//! re-seals the records onto the target's chain, which must not launder an edit), printing the
//! comparison, recording the transfer in the target's audit trail and checking that chain.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rapport_core::{Actor, AuditEntry, WorkspaceName};
use rapport_govern::audit::ChainVerifier;
use rapport_store::postgres::{PostgresOptions, PostgresStore};
use rapport_store::sqlite::SqliteStore;
use rapport_store::transfer::{ImportOptions, WorkspaceTransfer};
use rapport_store::{AuditQuery, StoreError};
use serde_json::json;

use crate::config::{Config, SecretUrl};

#[derive(Debug, clap::Args)]
pub struct TransferArgs {
    /// The store to copy from: `sqlite:DATA_DIR` or a `postgres://` URL.
    #[arg(long, value_name = "STORE")]
    pub from: String,
    /// The store to copy into: `sqlite:DATA_DIR` (created if missing) or a `postgres://` URL.
    #[arg(long, value_name = "STORE")]
    pub to: String,
    /// The workspace to copy (repeatable); every workspace of the source when left out.
    #[arg(long, value_name = "NAME")]
    pub workspace: Vec<String>,
    /// PostgreSQL schema of the source (default: `storage.schema`).
    #[arg(long, value_name = "SCHEMA")]
    pub from_schema: Option<String>,
    /// PostgreSQL schema of the target, created if missing (default: `storage.schema`).
    #[arg(long, value_name = "SCHEMA")]
    pub to_schema: Option<String>,
    /// Overwrite a workspace the target already holds (its audit records stay: the log is
    /// append-only). Without it such a target is refused and nothing is copied.
    #[arg(long)]
    pub replace: bool,
}

/// Where a store is, as named on the command line.
#[derive(Debug, Clone, PartialEq)]
enum Location {
    Sqlite(PathBuf),
    Postgres(SecretUrl),
}

impl Location {
    fn parse(flag: &str, raw: &str) -> Result<Self> {
        let raw = raw.trim();
        if let Some(dir) = raw.strip_prefix("sqlite:") {
            if dir.is_empty() {
                bail!("{flag} sqlite: names no directory (write sqlite:DATA_DIR)");
            }
            return Ok(Self::Sqlite(PathBuf::from(dir)));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let url = SecretUrl::new(raw);
            rapport_store::postgres::check_url(raw)
                .map_err(|e| anyhow!("{flag} {} {e}", url.redacted()))?;
            return Ok(Self::Postgres(url));
        }
        // Whatever it is, its user-info (which may hold a password) is not repeated.
        let shown = match raw.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}"),
                None => raw.to_owned(),
            },
            None => raw.to_owned(),
        };
        bail!("{flag} {shown:?} is neither sqlite:DATA_DIR nor a postgres:// URL")
    }

    fn describe(&self, schema: &str) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite:{}", dir.display()),
            Self::Postgres(url) => format!("{} (schema {schema})", url.redacted()),
        }
    }
}

async fn open(
    location: &Location,
    schema: &str,
    source: bool,
    config: &Config,
) -> Result<Arc<dyn WorkspaceTransfer>> {
    match location {
        Location::Sqlite(dir) => {
            let db = rapport_store::sqlite::database_path(dir);
            if source && !db.is_file() {
                bail!(
                    "no Rapport store to copy from in {} ({} does not exist)",
                    dir.display(),
                    db.display()
                );
            }
            let store = SqliteStore::open(dir)
                .with_context(|| format!("cannot open the store in {}", dir.display()))?;
            Ok(Arc::new(store))
        }
        Location::Postgres(url) => {
            let options = PostgresOptions {
                connect_timeout: Duration::from_secs(config.storage.connect_timeout_secs),
                ..Default::default()
            };
            let opened = if source {
                PostgresStore::open_existing(url.expose(), schema, options).await
            } else {
                PostgresStore::open(url.expose(), schema, options).await
            };
            match opened {
                Ok(store) => Ok(Arc::new(store)),
                Err(StoreError::NotFound(what)) => {
                    bail!("no Rapport store to copy from: {what} does not exist")
                }
                Err(e) => Err(anyhow!(e)).with_context(|| {
                    format!(
                        "cannot open the PostgreSQL store (schema {schema}) at {}",
                        url.redacted()
                    )
                }),
            }
        }
    }
}

/// Walks a store's whole audit chain; returns (records, head hash) or what is broken.
async fn check_chain(store: &dyn WorkspaceTransfer) -> Result<(u64, String)> {
    const PAGE: usize = 20_000;
    let mut v = ChainVerifier::new();
    let mut from = None;
    loop {
        let page = store
            .audit_records(AuditQuery {
                from_seq: from,
                ascending: true,
                limit: PAGE,
                ..Default::default()
            })
            .await?;
        page.iter().for_each(|r| v.push(r));
        match page.last() {
            Some(last) if page.len() == PAGE => from = Some(last.seq),
            _ => break,
        }
    }
    let report = v.finish();
    if !report.ok {
        let first = report
            .problems
            .first()
            .map(|p| format!(" (first at #{}: {} {})", p.seq, p.kind, p.detail))
            .unwrap_or_default();
        bail!(
            "its audit chain does not verify{first}; run `rapport audit verify` for the full list"
        );
    }
    Ok((report.checked, report.head))
}

pub async fn run(args: TransferArgs, config: &Config) -> Result<()> {
    let from = Location::parse("--from", &args.from)?;
    let to = Location::parse("--to", &args.to)?;
    let from_schema = args
        .from_schema
        .clone()
        .unwrap_or_else(|| config.storage.schema.clone());
    let to_schema = args
        .to_schema
        .clone()
        .unwrap_or_else(|| config.storage.schema.clone());
    if from.describe(&from_schema) == to.describe(&to_schema) {
        bail!("--from and --to name the same store");
    }
    let names: Vec<WorkspaceName> = args
        .workspace
        .iter()
        .map(|n| WorkspaceName::parse(n).map_err(|e| anyhow!("--workspace {n:?}: {e}")))
        .collect::<Result<_>>()?;

    let source = open(&from, &from_schema, true, config).await?;
    let (source_records, source_head) = check_chain(source.as_ref())
        .await
        .with_context(|| format!("refusing to copy from {}", from.describe(&from_schema)))?;
    let target = open(&to, &to_schema, false, config).await?;

    let names = if names.is_empty() {
        source
            .list_workspaces()
            .await?
            .into_iter()
            .map(|w| w.name)
            .collect()
    } else {
        names
    };
    println!(
        "copying {} workspace(s) from {} to {}",
        names.len(),
        from.describe(&from_schema),
        to.describe(&to_schema)
    );
    let options = ImportOptions {
        replace: args.replace,
    };
    for name in &names {
        let dump = source.export_workspace(name).await.map_err(|e| match e {
            StoreError::NotFound(_) => anyhow!("the source has no workspace {name}"),
            e => anyhow!(e),
        })?;
        let report = target
            .import_workspace(&dump, options)
            .await
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("workspace {name} was not copied"))?;
        println!();
        println!(
            "workspace {} ({}){}: {} rows",
            report.workspace_name,
            report.workspace_id,
            if report.replaced {
                ", replacing the target's copy"
            } else {
                ""
            },
            dump.total_rows()
        );
        print!("{}", report.render());
        let ws = rapport_core::WorkspaceId::parse(&report.workspace_id)
            .ok_or_else(|| anyhow!("workspace id {} does not parse", report.workspace_id))?;
        target
            .append_audit(vec![AuditEntry::new(
                Some(ws),
                Actor::System,
                "workspace.transferred",
                None,
                json!({
                    "from": source.backend(),
                    "to": target.backend(),
                    "rows": dump.total_rows(),
                    "audit_records": report.source.last().map_or(0, |s| s.rows),
                    "first_seq": report.audit_first_seq,
                    "replaced": report.replaced,
                    "source_chain_records": source_records,
                    "source_chain_head": source_head,
                }),
            )])
            .await?;
    }
    let (records, head) = check_chain(target.as_ref())
        .await
        .context("the target's audit chain")?;
    println!();
    println!("every table matched; the target's audit chain holds {records} records, intact (head {head})");
    source.close();
    target.close();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_or_say_why_not() {
        assert_eq!(
            Location::parse("--from", "sqlite:./data").unwrap(),
            Location::Sqlite(PathBuf::from("./data"))
        );
        assert!(matches!(
            Location::parse("--to", "postgres://u@127.0.0.1:5432/db").unwrap(),
            Location::Postgres(_)
        ));
        let e = Location::parse("--to", "sqlite:").unwrap_err().to_string();
        assert!(e.contains("names no directory"), "{e}");
        let e = Location::parse("--to", "mysql://root:hunter2@db/x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("neither sqlite:DATA_DIR nor a postgres:// URL"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = Location::parse("--to", "postgres://u:hunter2@[::1/db")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
