//! Command definitions and dispatch.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use rapport_core::WorkspaceName;
use rapport_server::AppState;
use rapport_store::Store;

use crate::config::{self, Config, StorageConfig};

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
    /// Directory of the embedded store (the `sqlite` backend).
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
    /// Manage people's dashboard accounts.
    Users {
        #[command(subcommand)]
        command: crate::users::UsersCommand,
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
    /// Stored customer profiles: probabilistic dedupe.
    Profiles {
        #[command(subcommand)]
        command: crate::profiles::ProfilesCommand,
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
    /// The audit log, and fairness audits of decisions and predictions.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Read customer texts (lines or JSONL) and print one JSON analysis per line.
    Analyze(crate::analyze::AnalyzeArgs),
    /// Train and evaluate intent classifiers on CSV files; retrain a workspace's model from
    /// agents' corrections.
    Intents {
        #[command(subcommand)]
        command: crate::intents::IntentsCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Prediction models on tabular data: train, evaluate, score, explain.
    Model {
        #[command(subcommand)]
        command: crate::predict::ModelCommand,
    },
    /// Churn models trained on a workspace's own customers: train, list versions, activate.
    Churn {
        #[command(subcommand)]
        command: crate::churn::ChurnCommand,
    },
    /// Customer lifetime value: BG/NBD and Gamma-Gamma on a transaction log, or trained on a
    /// workspace's purchases (`train`, `versions`, `activate`).
    Clv {
        #[command(subcommand)]
        command: crate::predict::ClvCommand,
    },
    /// Copy workspaces between stores (SQLite and PostgreSQL, either way), verified by row
    /// counts and checksums per table.
    Transfer(crate::transfer::TransferArgs),
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
    /// Fairness of decisions or predictions across groups and their intersections (CSV).
    Fairness(crate::fairness::FairnessArgs),
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
    /// Send events and messages in; read nothing.
    Write,
    /// Work conversations: read customers, send messages, record consent.
    Agent,
    /// Read customers and the audit trail; change nothing.
    Analyst,
    /// An agent who may also export customers' data and read the audit trail.
    Supervisor,
    /// Everything, including erasure.
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

/// Opens the configured store: the embedded SQLite store in `storage.data_dir`, or the
/// PostgreSQL store at `storage.url` in `storage.schema` (created and migrated if needed, the
/// server retried until `storage.connect_timeout_secs`).
pub async fn open_store(storage: &StorageConfig) -> Result<Arc<dyn Store>> {
    match storage.backend.as_str() {
        "sqlite" => rapport_store::open_sqlite(&storage.data_dir)
            .with_context(|| format!("cannot open the store in {}", storage.data_dir.display())),
        "postgres" => {
            let url = storage
                .url
                .as_ref()
                .ok_or_else(|| anyhow!("storage.url is required for the postgres backend"))?;
            let options = rapport_store::postgres::PostgresOptions {
                connect_timeout: std::time::Duration::from_secs(storage.connect_timeout_secs),
                ..Default::default()
            };
            rapport_store::open_postgres(url.expose(), &storage.schema, options)
                .await
                .with_context(|| {
                    format!(
                        "cannot open the PostgreSQL store (schema {}) at {}",
                        storage.schema,
                        url.redacted()
                    )
                })
        }
        other => Err(anyhow!("storage.backend {other:?} is not a backend")),
    }
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

/// The storage settings with the command's flags applied. `--data-dir` names the embedded
/// store's directory, so it is refused when another backend is configured rather than ignored.
pub fn storage(config: &Config, args: &StoreArgs) -> Result<StorageConfig> {
    let mut storage = config.storage.clone();
    if let Some(dir) = &args.data_dir {
        if storage.backend != "sqlite" {
            return Err(anyhow!(
                "--data-dir is for the sqlite backend, but storage.backend is {:?}",
                storage.backend
            ));
        }
        storage.data_dir = dir.clone();
    }
    Ok(storage)
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

impl Command {
    /// Whether the command opens no network sockets and writes only files and stdout.
    pub fn only_files_and_stdout(&self) -> bool {
        match self {
            Command::Config { .. }
            | Command::Match { .. }
            | Command::Analyze(_)
            | Command::Model { .. }
            | Command::Openapi => true,
            Command::Audit {
                command: AuditCommand::Fairness(_),
            } => true,
            Command::Clv {
                command: crate::predict::ClvCommand::Workspace(_),
            } => false,
            Command::Clv { .. } => true,
            Command::Intents {
                command: crate::intents::IntentsCommand::Retrain(_),
            } => false,
            Command::Intents { .. } => true,
            _ => false,
        }
    }
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
        Command::Audit {
            command: AuditCommand::Fairness(args),
        } => tokio::task::spawn_blocking(move || crate::fairness::run(args)).await?,
        Command::Analyze(args) => {
            tokio::task::spawn_blocking(move || crate::analyze::run(args)).await?
        }
        Command::Model { command } => {
            tokio::task::spawn_blocking(move || crate::predict::run_model(command)).await?
        }
        Command::Clv {
            command: crate::predict::ClvCommand::Workspace(command),
        } => crate::churn::run_clv(&config, command).await,
        Command::Clv { command } => {
            tokio::task::spawn_blocking(move || crate::predict::run_clv(command)).await?
        }
        Command::Intents {
            command: crate::intents::IntentsCommand::Retrain(args),
        } => crate::intents::retrain(&config, args).await,
        Command::Intents { command } => {
            tokio::task::spawn_blocking(move || crate::intents::run(command)).await?
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
            let store = open_store(&storage(&config, &args.store)?).await?;
            let listener = bind(&config.server.addr).await?;
            let sink = crate::scaleout::api_sink(mode, &config, store.clone()).await?;
            let state = AppState::with_sink(
                store.clone(),
                config.limits(),
                config.engine_options_with_models()?,
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
            let store = open_store(&storage(&config, &args.store)?).await?;
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
                let s = open_store(&storage(&config, &store)?).await?;
                let ws = s.create_workspace(&name).await?;
                println!("created workspace {} ({})", ws.name, ws.id);
                Ok(())
            }
            WorkspaceCommand::List { store } => {
                let s = open_store(&storage(&config, &store)?).await?;
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
            let s = open_store(&storage(&config, &store)?).await?;
            let ws = workspace_id(s.as_ref(), &workspace).await?;
            let role = crate::users::role(role);
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
        Command::Users { command } => crate::users::run(&config, command).await,
        Command::Churn { command } => crate::churn::run(&config, command).await,
        Command::Profiles { command } => {
            init_logging(&config);
            crate::profiles::run(&config, command).await
        }
        Command::Import {
            command:
                ImportCommand::Events {
                    file,
                    workspace,
                    store,
                },
        } => {
            let s = open_store(&storage(&config, &store)?).await?;
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
            let s = open_store(&storage(&config, &store)?).await?;
            crate::audit::verify(s.as_ref(), json).await
        }
        Command::Bench { command } => crate::bench::run(command, &config).await,
        Command::Transfer(args) => crate::transfer::run(args, &config).await,
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
                    // An unset option (such as storage.url) is left out, as TOML has no null.
                    if !v.is_null() {
                        out.push_str(&format!("{k} = {v}\n"));
                    }
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
