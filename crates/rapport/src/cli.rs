//! Command definitions and dispatch.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use rapport_core::{KeyRole, WorkspaceName};
use rapport_server::AppState;
use rapport_store::sqlite::SqliteStore;
use rapport_store::Store;

use crate::config::{self, Config};

#[derive(Debug, Parser)]
#[command(
    name = "rapport",
    version,
    about = "Self-hosted engine for AI-driven customer experience"
)]
pub struct Cli {
    /// A TOML configuration file (layered over the defaults, under the environment and flags).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args, Clone, Default)]
pub struct StoreArgs {
    /// Directory of the embedded store.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on, HOST:PORT (port 0 picks a free one).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
}

#[derive(Debug, clap::Args, Clone, Default)]
pub struct ServeCmd {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// `embedded` applies events in this process; `api` stores them on the event bus (the
    /// `[bus]` section) for `rapport worker` processes to apply.
    #[arg(long, value_enum, default_value_t = crate::scaleout::ServeMode::Embedded)]
    pub mode: crate::scaleout::ServeMode,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: API and dashboard.
    Serve(ServeCmd),
    /// Apply events from the event bus (scale-out mode), beside `rapport serve --mode api`.
    Worker(crate::scaleout::WorkerArgs),
    /// Generate a realistic demo company, then serve it with live activity.
    Demo {
        #[command(flatten)]
        serve: ServeArgs,
        /// Seed of the generated company.
        #[arg(long)]
        seed: Option<u64>,
        /// Number of customers.
        #[arg(long)]
        customers: Option<usize>,
        /// No trickle of live activity after start-up.
        #[arg(long)]
        no_live: bool,
    },
    /// Manage workspaces (tenants).
    Workspaces {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Check the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Import data from files.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Probabilistic record matching of CSV files (Fellegi–Sunter).
    Match {
        #[command(subcommand)]
        command: crate::matching::MatchCommand,
    },
    /// Optional model weights.
    Models {
        #[command(subcommand)]
        command: crate::models::ModelsCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Measure performance.
    Bench {
        #[command(subcommand)]
        command: crate::bench::BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the audit chain and name any edited, missing or reordered record (exit code 1).
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace.
    Create {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List workspaces.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Write,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key; prints it alone on the last line (it is shown only once).
    Create {
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long, default_value = WorkspaceName::DEFAULT)]
        workspace: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration without starting anything; prints the effective values.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import Segment-spec events, one JSON object per line. A bad line aborts the whole file.
    Events {
        file: PathBuf,
        #[arg(long, default_value = WorkspaceName::DEFAULT)]
        workspace: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// The process environment, for the configuration's environment layer.
fn environment() -> Vec<(String, String)> {
    std::env::vars().collect()
}

pub fn load_config(file: Option<&Path>) -> Result<Config> {
    config::load(file, &environment())
        .map_err(|problems| anyhow!("invalid configuration:\n  - {}", problems.join("\n  - ")))
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn open_store(dir: &Path) -> Result<Arc<SqliteStore>> {
    SqliteStore::open(dir)
        .map(Arc::new)
        .with_context(|| format!("cannot open the store in {}", dir.display()))
}

pub async fn workspace_id(store: &dyn Store, name: &str) -> Result<rapport_core::WorkspaceId> {
    let name = WorkspaceName::parse(name).map_err(|e| anyhow!(e))?;
    Ok(store
        .workspace_by_name(&name)
        .await?
        .ok_or_else(|| {
            anyhow!("workspace {name} does not exist (rapport workspaces create {name})")
        })?
        .id)
}

fn data_dir(config: &Config, args: &StoreArgs) -> PathBuf {
    args.data_dir
        .clone()
        .unwrap_or_else(|| config.storage.data_dir.clone())
}

/// Binds the listener; port 0 picks a free port.
pub async fn bind(addr: &str) -> Result<tokio::net::TcpListener> {
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("{addr:?} is not HOST:PORT"))?;
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

pub async fn run(cli: Cli) -> Result<()> {
    let mut config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            println!("{}", toml_like(&config)?);
            println!("configuration is valid");
            Ok(())
        }
        Command::Match { command } => {
            tokio::task::spawn_blocking(move || crate::matching::run(command)).await?
        }
        Command::Models { command } => {
            tokio::task::spawn_blocking(move || crate::models::run(command)).await?
        }
        Command::Openapi => {
            print!("{}", rapport_server::openapi::document());
            Ok(())
        }
        Command::Serve(ServeCmd { serve: args, mode }) => {
            if let Some(a) = &args.addr {
                config.server.addr = a.clone();
            }
            config
                .validate()
                .map_err(|p| anyhow!("invalid configuration:\n  - {}", p.join("\n  - ")))?;
            init_logging(&config);
            let store = open_store(&data_dir(&config, &args.store))?;
            let listener = bind(&config.server.addr).await?;
            let sink = crate::scaleout::api_sink(mode, &config, store.clone()).await?;
            let state = AppState::with_sink(
                store.clone(),
                config.limits(),
                config.engine_options(),
                sink.sink.clone(),
            )?;
            println!("Rapport listening on http://{}", listener.local_addr()?);
            rapport_server::serve(listener, state, shutdown_signal()).await?;
            sink.stop().await;
            store.close();
            Ok(())
        }
        Command::Worker(args) => {
            init_logging(&config);
            let store = open_store(&data_dir(&config, &args.store))?;
            let result =
                crate::scaleout::worker(&config, &args, store.clone(), shutdown_signal()).await;
            store.close();
            result
        }
        Command::Demo {
            serve,
            seed,
            customers,
            no_live,
        } => {
            if let Some(a) = &serve.addr {
                config.server.addr = a.clone();
            }
            if let Some(s) = seed {
                config.demo.seed = s;
            }
            if let Some(c) = customers {
                config.demo.customers = c;
            }
            if no_live {
                config.demo.live = false;
            }
            if let Some(d) = &serve.store.data_dir {
                config.demo.data_dir = d.clone();
            }
            config
                .validate()
                .map_err(|p| anyhow!("invalid configuration:\n  - {}", p.join("\n  - ")))?;
            init_logging(&config);
            crate::demo::run(&config).await
        }
        Command::Workspaces { command } => match command {
            WorkspaceCommand::Create { name, store } => {
                let name = WorkspaceName::parse(&name).map_err(|e| anyhow!(e))?;
                let s = open_store(&data_dir(&config, &store))?;
                let ws = s.create_workspace(&name).await?;
                println!("created workspace {} ({})", ws.name, ws.id);
                Ok(())
            }
            WorkspaceCommand::List { store } => {
                let s = open_store(&data_dir(&config, &store))?;
                for ws in s.list_workspaces().await? {
                    println!("{}\t{}", ws.name, ws.id);
                }
                Ok(())
            }
        },
        Command::Keys {
            command:
                KeyCommand::Create {
                    role,
                    workspace,
                    store,
                },
        } => {
            let s = open_store(&data_dir(&config, &store))?;
            let ws = workspace_id(s.as_ref(), &workspace).await?;
            let role = match role {
                RoleArg::Write => KeyRole::Write,
                RoleArg::Admin => KeyRole::Admin,
            };
            let (key, rec) = rapport_server::auth::create_key(s.as_ref(), &ws, role).await?;
            println!(
                "created {} key {} for workspace {}; it is shown only once:",
                role.as_str(),
                rec.id,
                rec.workspace_name
            );
            println!("{key}");
            Ok(())
        }
        Command::Import {
            command:
                ImportCommand::Events {
                    file,
                    workspace,
                    store,
                },
        } => {
            let s = open_store(&data_dir(&config, &store))?;
            let ws = workspace_id(s.as_ref(), &workspace).await?;
            crate::import::events(
                s.as_ref(),
                &ws,
                &file,
                config.limits(),
                &config.engine_options(),
            )
            .await
        }
        Command::Audit {
            command: AuditCommand::Verify { store, json },
        } => {
            let s = open_store(&data_dir(&config, &store))?;
            crate::audit::verify(s.as_ref(), json).await
        }
        Command::Bench { command } => crate::bench::run(command, &config).await,
    }
}

/// The effective configuration, as TOML-ish text for `config check`.
fn toml_like(config: &Config) -> Result<String> {
    let value = serde_json::to_value(config)?;
    let mut out = String::new();
    if let serde_json::Value::Object(sections) = value {
        for (section, body) in sections {
            out.push_str(&format!("[{section}]\n"));
            if let serde_json::Value::Object(keys) = body {
                for (k, v) in keys {
                    out.push_str(&format!("{k} = {v}\n"));
                }
            }
            out.push('\n');
        }
    }
    Ok(out.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `rapport ...` or `cargo run --release -- ...` command the README shows must still
    /// parse with this CLI.
    #[test]
    fn readme_commands_match_the_cli() {
        let readme = include_str!("../../../README.md");
        let mut checked = 0;
        for line in readme.lines() {
            let line = line.trim();
            let rest = if let Some(r) = line.strip_prefix("cargo run --release -- ") {
                r
            } else if let Some(r) = line.strip_prefix("rapport ") {
                r
            } else if let Some(r) = line.strip_prefix("./target/release/rapport ") {
                r
            } else {
                continue;
            };
            let words: Vec<&str> = rest
                .split_whitespace()
                .take_while(|w| !["&", "|", "&&", ">"].contains(w))
                .collect();
            let args = std::iter::once("rapport").chain(words.iter().copied());
            if let Err(e) = Cli::try_parse_from(args) {
                panic!("README command `{line}` no longer parses: {e}");
            }
            checked += 1;
        }
        assert!(checked >= 10, "found only {checked} commands in the README");
        assert!(readme.contains("cargo run --release -- demo"));
        assert!(readme.contains("cargo test --workspace"));
    }
}
