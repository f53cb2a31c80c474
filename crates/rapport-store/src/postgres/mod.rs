//! The PostgreSQL backend: the system of record when several Rapport nodes share one database.
//!
//! **Client.** tokio-postgres with a deadpool pool, not sqlx: it is the smaller build (no macro
//! crates, no second SQLite binding to clash with rusqlite), it has no compile-time query
//! checking we would have to switch off, and it gives direct access to array parameters, which
//! is how batches are written (below).
//!
//! **Schema.** Everything lives in one PostgreSQL schema named at open, so several stores (test
//! runs, tenants of a shared server) can share a database. The schema is created if missing and
//! every pooled connection starts with `search_path` set to it, so the SQL never names it.
//! Migrations are versioned in a `schema_version` table and applied at open under an advisory
//! lock, so nodes starting together migrate once.
//!
//! **Concurrency.** Several API nodes may ingest for the same customer at the same moment. Each
//! write is one READ COMMITTED transaction that
//! - locks every profile it reads identity from or writes to (`SELECT ... FOR UPDATE`, in id
//!   order), and re-reads `merged_into` under the lock, so a profile merged away by another
//!   node is followed to its survivor instead of receiving events;
//! - claims new identifiers with `INSERT ... ON CONFLICT DO NOTHING` on the identities primary
//!   key: if another transaction claimed one first, the insert waits for it and then inserts
//!   nothing, and this transaction rolls back and starts again, now seeing the other's profile.
//!   The same holds for `messageId`s. So one identifier never gets two profiles and one event is
//!   never applied twice;
//! - is retried, with jittered backoff, after such a lost race or a deadlock.
//!
//! No lock is held across transactions and no advisory lock per identifier is needed (PostgreSQL
//! keeps advisory locks in a small shared table that a 10,000-event batch would overflow).
//!
//! **Governance.** Consents, the audit chain (one chain for every workspace and node, kept
//! gapless by a single `audit_head` row each appender locks last) and erasure live in `govern`.
//! Erasure deletes the customer's rows in one transaction, then vacuums the tables; what that
//! does and does not remove from the server's files is spelled out there.
//!
//! **Bulk writes.** An ingest batch is resolved in memory against identities and profiles read in
//! one query each, and its rows (profiles, identities, events, traits, counters) are written with
//! one multi-row `INSERT ... SELECT FROM unnest($1, $2, ...)` per table: a handful of round trips
//! per batch instead of several per event. Merges write what is pending first, then move rows
//! with set-based statements exactly as the SQLite backend does.

mod apply;
mod decide;
mod dedupe;
mod flush;
mod govern;
mod intents;
mod models;
mod nba;
mod read;
mod routing;
pub mod schema;
mod store_impl;
mod transfer;
mod unmerge;
mod users;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::StoreError;

/// How a [`PostgresStore`] connects and behaves under contention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections kept at most.
    pub pool_size: usize,
    /// How long [`PostgresStore::open`] keeps retrying an unreachable server (with exponential
    /// backoff) before it gives up with [`StoreError::Unavailable`]. Also bounds the wait for a
    /// free pooled connection.
    pub connect_timeout: Duration,
    /// Attempts of one write that keeps losing races or deadlocks before it is refused as
    /// [`StoreError::Unavailable`].
    pub max_attempts: u32,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            connect_timeout: Duration::from_secs(30),
            max_attempts: 12,
        }
    }
}

/// PostgreSQL store in one schema of one database.
pub struct PostgresStore {
    pool: Pool,
    schema: String,
    /// `host:port/database`, for messages; never the password.
    target: String,
    options: PostgresOptions,
    policy: crate::PolicyCell,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .finish()
    }
}

/// Whether `name` can be a schema name as written, without quoting: lowercase ASCII letters,
/// digits and `_`, not starting with a digit, at most 63 bytes (PostgreSQL's limit).
pub fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63
        && !name.starts_with("pg_")
}

/// Checks, without connecting, that `url` is a connection URL (`postgres://...`) or a
/// `key=value` connection string this backend can use. The error never repeats the URL, which
/// may hold a password.
pub fn check_url(url: &str) -> Result<(), String> {
    let cfg: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("is not a PostgreSQL connection URL ({e})"))?;
    if cfg.get_hosts().is_empty() {
        return Err("names no host".into());
    }
    Ok(())
}

fn describe_target(cfg: &tokio_postgres::Config) -> String {
    let host = cfg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let db = cfg.get_dbname().or(cfg.get_user()).unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

impl PostgresStore {
    /// Connects to `url` (a `postgres://` URL or a `key=value` connection string), creates
    /// `schema` if it is missing, migrates it and makes sure the `default` workspace exists.
    ///
    /// An unreachable server is retried with backoff for `options.connect_timeout`, then
    /// reported as [`StoreError::Unavailable`]; a malformed URL or schema name as
    /// [`StoreError::InvalidInput`].
    pub async fn open(
        url: &str,
        schema: &str,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        Self::open_with(url, schema, options, true).await
    }

    /// As [`PostgresStore::open`], but a schema that does not exist yet is
    /// [`StoreError::NotFound`] instead of being created (for reading from a store that must
    /// already be there, such as the source of a transfer).
    pub async fn open_existing(
        url: &str,
        schema: &str,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        Self::open_with(url, schema, options, false).await
    }

    async fn open_with(
        url: &str,
        schema: &str,
        options: PostgresOptions,
        create: bool,
    ) -> Result<Self, StoreError> {
        if !valid_schema_name(schema) {
            return Err(StoreError::InvalidInput(format!(
                "schema name {schema:?} must be lowercase letters, digits and _, start with a letter or _, and fit in 63 bytes"
            )));
        }
        let mut cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::InvalidInput(format!("invalid PostgreSQL URL: {e}")))?;
        let target = describe_target(&cfg);
        // Every connection the pool opens starts in the store's schema (after any options the
        // URL sets itself).
        let options_text = match cfg.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} -c search_path={schema}"),
            _ => format!("-c search_path={schema}"),
        };
        cfg.options(options_text);
        cfg.application_name("rapport");
        cfg.connect_timeout(options.connect_timeout.min(Duration::from_secs(10)));
        let manager = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot build connection pool: {e}")))?;
        let store = Self {
            pool,
            schema: schema.to_owned(),
            target,
            options,
            policy: crate::PolicyCell::default(),
        };
        let mut client = store.connect_with_retry().await?;
        if !create {
            let exists = client
                .query_opt(
                    "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                    &[&store.schema],
                )
                .await
                .map_err(pg_error)?
                .is_some();
            if !exists {
                return Err(StoreError::NotFound(format!(
                    "PostgreSQL schema {} at {}",
                    store.schema, store.target
                )));
            }
        }
        schema::migrate(&mut client, &store.schema).await?;
        apply::ensure_default_workspace(&mut client).await?;
        Ok(store)
    }

    /// The schema this store lives in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The first connection, retried with exponential backoff until the connect timeout.
    async fn connect_with_retry(&self) -> Result<deadpool_postgres::Client, StoreError> {
        let deadline = Instant::now() + self.options.connect_timeout;
        let mut delay = Duration::from_millis(50);
        loop {
            // One attempt never outlives the deadline, even against a host that drops packets.
            let remaining = deadline.saturating_duration_since(Instant::now());
            let err = match tokio::time::timeout(remaining, self.pool.get()).await {
                Ok(Ok(c)) => return Ok(c),
                Ok(Err(e)) => e,
                Err(_) => {
                    deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Create)
                }
            };
            // A refusal by the server itself (bad password, no such database) will not go away.
            if let deadpool_postgres::PoolError::Backend(pg) = &err {
                if let Some(db) = pg.as_db_error() {
                    return Err(StoreError::Unavailable(format!(
                        "PostgreSQL at {} refused the connection: {}",
                        self.target,
                        db.message()
                    )));
                }
            }
            let now = Instant::now();
            if now + delay >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "cannot reach PostgreSQL at {} within {:?}: {}",
                    self.target,
                    self.options.connect_timeout,
                    pool_error_text(&err)
                )));
            }
            tracing::warn!(target = %self.target, error = %pool_error_text(&err), retry_in = ?delay, "PostgreSQL not reachable yet");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| {
            StoreError::Unavailable(format!(
                "no PostgreSQL connection to {}: {}",
                self.target,
                pool_error_text(&e)
            ))
        })
    }

    /// Runs `job` in a READ COMMITTED transaction and commits it. A job that lost a race or a
    /// deadlock is rolled back and run again, up to `max_attempts` times, so `job` must do all
    /// its work through the transaction it is given.
    pub(crate) async fn write<R, F>(&self, job: F) -> Result<R, StoreError>
    where
        R: Send,
        F: for<'t> Fn(&'t Transaction<'t>) -> BoxFuture<'t, Result<R, Failure>> + Send + Sync,
    {
        let mut attempt = 1;
        loop {
            let mut client = self.client().await?;
            let outcome = async {
                let tx = client.transaction().await?;
                let r = job(&tx).await?;
                // Not retried: if the connection drops during COMMIT the outcome is unknown, and
                // only some writes could safely run twice.
                tx.commit().await.map_err(|e| Failure::Store(pg_error(e)))?;
                Ok::<R, Failure>(r)
            }
            .await;
            match outcome {
                Ok(r) => return Ok(r),
                Err(Failure::Retry(why)) if attempt < self.options.max_attempts => {
                    tracing::debug!(attempt, why, "write lost a race; retrying");
                    drop(client);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(Failure::Retry(why)) => {
                    return Err(StoreError::Unavailable(format!(
                        "write abandoned after {attempt} attempts under contention ({why})"
                    )))
                }
                Err(Failure::Store(e)) => return Err(e),
            }
        }
    }

    /// Runs `job` in a read-only REPEATABLE READ transaction, so it sees one snapshot.
    pub(crate) async fn read<R, F>(&self, job: F) -> Result<R, StoreError>
    where
        R: Send,
        F: for<'t> FnOnce(&'t Transaction<'t>) -> BoxFuture<'t, Result<R, StoreError>> + Send,
    {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let r = job(&tx).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(r)
    }

    /// Closes the pool; later calls fail with [`StoreError::Unavailable`].
    pub fn close(&self) {
        self.pool.close();
    }
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A parameter list.
pub(crate) type Params<'p> = [&'p (dyn ToSql + Sync)];

/// Runs a statement through the connection's statement cache; returns rows affected.
pub(crate) async fn exec(
    tx: &Transaction<'_>,
    sql: &str,
    params: &Params<'_>,
) -> Result<u64, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.execute(&stmt, params).await
}

/// Runs a query through the connection's statement cache.
pub(crate) async fn query(
    tx: &Transaction<'_>,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.query(&stmt, params).await
}

/// Runs a query expected to return at most one row.
pub(crate) async fn query_opt(
    tx: &Transaction<'_>,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<Row>, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.query_opt(&stmt, params).await
}

/// Jittered exponential backoff: about 4 ms, 8 ms, ... capped near 250 ms.
fn backoff(attempt: u32) -> Duration {
    let base = 2u64.pow(attempt.min(6) + 1);
    let jitter = uuid::Uuid::new_v4().as_u128() as u64 % (base + 1);
    Duration::from_millis(base + jitter)
}

fn pool_error_text(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(pg) => pg_error_text(pg),
        other => other.to_string(),
    }
}

/// The error's code and message without its detail, which can quote row values (personal
/// data) that must not reach logs.
fn pg_error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

/// Maps a driver error into the store's error kinds.
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let text = pg_error_text(&e);
    if e.is_closed() {
        return StoreError::Unavailable(format!("PostgreSQL connection lost: {text}"));
    }
    match e.code() {
        None => StoreError::Unavailable(text),
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(text),
        Some(c) => match &c.code()[..2] {
            // connection exceptions, insufficient resources, operator intervention, system errors
            "08" | "53" | "57" | "58" => StoreError::Unavailable(text),
            _ => StoreError::Internal(text),
        },
    }
}

/// Why a write job stopped: a lost race worth retrying, or a final error.
#[derive(Debug)]
pub(crate) enum Failure {
    Retry(&'static str),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.is_closed() {
            // The transaction died with its connection, so nothing was applied; another pooled
            // connection (a fresh one, the pool discards closed ones) may do better.
            return Failure::Retry("connection lost");
        }
        match e.code() {
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => Failure::Retry("deadlock"),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => {
                Failure::Retry("serialization failure")
            }
            _ => Failure::Store(pg_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["rapport", "_x", "rapport_test_0f3a", &"a".repeat(63)] {
            assert!(valid_schema_name(ok), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Rapport",
            "a-b",
            "a b",
            "a;drop",
            "pg_catalog",
            "\"x\"",
            &"a".repeat(64),
        ] {
            assert!(!valid_schema_name(bad), "{bad}");
        }
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) <= Duration::from_millis(8));
        for a in 1..40 {
            assert!(backoff(a) <= Duration::from_millis(256));
        }
    }
}
