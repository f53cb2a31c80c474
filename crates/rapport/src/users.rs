//! `rapport users create|list|password|disable|enable`: people's dashboard accounts.

use std::io::BufRead;

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use rapport_core::{KeyRole, Login, WorkspaceName};

use crate::cli::{RoleArg, StoreArgs};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Make an account. The password is read from the first line of standard input when one
    /// is piped in (`--password-stdin`); otherwise one is generated and printed once.
    Create {
        /// Sign-in name (2-64 characters of a-z, 0-9, '.', '_', '-', '@').
        #[arg(long)]
        login: String,
        /// admin, supervisor, agent or analyst (write is for data sources only).
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long, default_value = WorkspaceName::DEFAULT)]
        workspace: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List a workspace's accounts.
    List {
        #[arg(long, default_value = WorkspaceName::DEFAULT)]
        workspace: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a new password for an account (read from standard input with `--password-stdin`,
    /// otherwise generated and printed once); its dashboard sessions end.
    Password {
        #[arg(long)]
        login: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable an account: it cannot sign in and its dashboard sessions end.
    Disable {
        #[arg(long)]
        login: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Enable a disabled account again.
    Enable {
        #[arg(long)]
        login: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// The first line of standard input, or a generated password (and whether it was generated).
fn password_from(stdin: bool) -> Result<(String, bool)> {
    if !stdin {
        return Ok((rapport_server::users::generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("--password-stdin: standard input held no password");
    }
    Ok((line, false))
}

async fn account(s: &dyn rapport_store::Store, login: &str) -> Result<rapport_store::UserRecord> {
    let login = Login::parse(login).map_err(|e| anyhow!(e))?;
    s.find_user(&login)
        .await?
        .ok_or_else(|| anyhow!("no account has the login {login}"))
}

pub fn role(arg: RoleArg) -> KeyRole {
    match arg {
        RoleArg::Write => KeyRole::Write,
        RoleArg::Agent => KeyRole::Agent,
        RoleArg::Analyst => KeyRole::Analyst,
        RoleArg::Supervisor => KeyRole::Supervisor,
        RoleArg::Admin => KeyRole::Admin,
    }
}

pub async fn run(config: &crate::config::Config, command: UsersCommand) -> Result<()> {
    match command {
        UsersCommand::Create {
            login,
            role: role_arg,
            workspace,
            password_stdin,
            store,
        } => {
            let login = Login::parse(&login).map_err(|e| anyhow!(e))?;
            let role = role(role_arg);
            if !role.is_for_people() {
                bail!("the write role is for data sources; a person is an admin, supervisor, agent or analyst");
            }
            let (password, generated) = password_from(password_stdin)?;
            let s = crate::cli::open_store(&crate::cli::storage(config, &store)?).await?;
            let ws = crate::cli::workspace_id(s.as_ref(), &workspace).await?;
            let user = rapport_server::users::create_user(s.as_ref(), &ws, &login, role, &password)
                .await
                .map_err(|e| anyhow!("{}: {}", e.code, e.message))?;
            let entry = rapport_core::AuditEntry::new(
                Some(ws),
                rapport_core::Actor::System,
                "user.created",
                None,
                serde_json::json!({"user": user.id, "role": role.as_str(), "via": "cli"}),
            );
            s.append_audit(vec![entry]).await?;
            println!(
                "created {} account {} ({}) in workspace {}",
                role.as_str(),
                user.login,
                user.id,
                user.workspace_name
            );
            if generated {
                println!("its password, shown only once:");
                println!("{password}");
            }
            s.close();
            Ok(())
        }
        UsersCommand::List { workspace, store } => {
            let s = crate::cli::open_store(&crate::cli::storage(config, &store)?).await?;
            let ws = crate::cli::workspace_id(s.as_ref(), &workspace).await?;
            for u in s.users(&ws).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    u.login,
                    u.role.as_str(),
                    u.id,
                    rapport_core::time::format(u.created_at),
                    if u.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "active"
                    }
                );
            }
            s.close();
            Ok(())
        }
        UsersCommand::Password {
            login,
            password_stdin,
            store,
        } => {
            let (password, generated) = password_from(password_stdin)?;
            let s = crate::cli::open_store(&crate::cli::storage(config, &store)?).await?;
            let user = account(s.as_ref(), &login).await?;
            rapport_server::users::change_password(
                s.as_ref(),
                &user.workspace_id,
                &user.id,
                &password,
                rapport_core::Actor::System,
                "user.password_reset",
            )
            .await
            .map_err(|e| anyhow!("{}: {}", e.code, e.message))?;
            println!("new password set for {}; its sessions ended", user.login);
            if generated {
                println!("the password, shown only once:");
                println!("{password}");
            }
            s.close();
            Ok(())
        }
        UsersCommand::Disable { login, store } => set_disabled(config, &login, &store, true).await,
        UsersCommand::Enable { login, store } => set_disabled(config, &login, &store, false).await,
    }
}

async fn set_disabled(
    config: &crate::config::Config,
    login: &str,
    store: &StoreArgs,
    disabled: bool,
) -> Result<()> {
    let s = crate::cli::open_store(&crate::cli::storage(config, store)?).await?;
    let user = account(s.as_ref(), login).await?;
    let entry = rapport_core::AuditEntry::new(
        Some(user.workspace_id.clone()),
        rapport_core::Actor::System,
        "user.updated",
        None,
        serde_json::json!({"user": user.id, "disabled": disabled, "via": "cli"}),
    );
    let change = rapport_store::UserChange {
        disabled: Some(disabled),
        ..rapport_store::UserChange::default()
    };
    s.update_user(&user.workspace_id, &user.id, change, vec![entry])
        .await?;
    println!(
        "{} {}",
        if disabled { "disabled" } else { "enabled" },
        user.login
    );
    s.close();
    Ok(())
}
