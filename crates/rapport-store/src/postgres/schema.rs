//! Versioned schema for PostgreSQL. Each migration runs once, in order, in one transaction with
//! the version bump; `schema_version` holds the version reached. Never edit a released migration:
//! add one.
//!
//! The tables mirror the SQLite backend's (times are milliseconds since the epoch in `BIGINT`,
//! JSON is kept as the exact text received so bodies read back byte for byte), with PostgreSQL
//! types where they help: booleans, `TEXT[]` for identifier kinds, identity columns for the
//! sequence numbers, and the `"C"` collation on the columns searched by prefix so that range
//! scans compare code points as SQLite does, whatever the database's locale.

use deadpool_postgres::Client;

use super::pg_error;
use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite backend has at its version 4.
    r#"
    CREATE TABLE workspaces (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        role TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE profiles (
        id TEXT PRIMARY KEY,
        -- creation order: the oldest profile of a merge survives
        seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        first_seen BIGINT,
        last_seen BIGINT,
        event_count BIGINT NOT NULL DEFAULT 0,
        channels BIGINT NOT NULL DEFAULT 0,
        has_user_id BOOLEAN NOT NULL DEFAULT false,
        name TEXT,
        name_lc TEXT COLLATE "C",
        last_lc TEXT COLLATE "C",
        email TEXT COLLATE "C",
        merged_into TEXT
    );
    CREATE INDEX profiles_recent ON profiles (workspace_id, last_seen DESC NULLS LAST)
        WHERE merged_into IS NULL;
    CREATE INDEX profiles_name ON profiles (workspace_id, name_lc) WHERE merged_into IS NULL;
    CREATE INDEX profiles_last ON profiles (workspace_id, last_lc) WHERE merged_into IS NULL;
    CREATE INDEX profiles_email ON profiles (workspace_id, email) WHERE merged_into IS NULL;
    CREATE INDEX profiles_merged ON profiles (merged_into) WHERE merged_into IS NOT NULL;
    CREATE TABLE identities (
        workspace_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        first_seen BIGINT NOT NULL,
        PRIMARY KEY (workspace_id, kind, value)
    );
    CREATE INDEX identities_profile ON identities (profile_id);
    CREATE TABLE traits (
        profile_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        ts BIGINT NOT NULL,
        std_value TEXT,
        PRIMARY KEY (profile_id, key)
    );
    CREATE TABLE data_quality (
        profile_id TEXT NOT NULL,
        field TEXT NOT NULL,
        raw TEXT NOT NULL,
        code TEXT NOT NULL,
        problem TEXT NOT NULL,
        ts BIGINT NOT NULL,
        PRIMARY KEY (profile_id, field)
    );
    CREATE TABLE events (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        type TEXT NOT NULL,
        name TEXT,
        channel TEXT NOT NULL,
        ts BIGINT NOT NULL,
        received_at BIGINT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (workspace_id, message_id)
    );
    CREATE INDEX events_timeline ON events (profile_id, ts, seq);
    CREATE TABLE channel_daily (
        workspace_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        day BIGINT NOT NULL,
        events BIGINT NOT NULL,
        PRIMARY KEY (workspace_id, day, channel)
    );
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        subject TEXT,
        status TEXT NOT NULL,
        opened_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        message_count BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX conversations_profile ON conversations (profile_id);
    CREATE INDEX conversations_recent ON conversations (workspace_id, updated_at);
    CREATE TABLE messages (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        direction TEXT NOT NULL,
        author TEXT NOT NULL,
        text TEXT NOT NULL,
        sent_at BIGINT NOT NULL,
        external_id TEXT,
        analysis TEXT
    );
    CREATE INDEX messages_conversation ON messages (conversation_id, sent_at);
    CREATE UNIQUE INDEX messages_external ON messages (conversation_id, external_id)
        WHERE external_id IS NOT NULL;
    -- Identifiers are named by kind only: the log holds no personal data.
    CREATE TABLE merge_log (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        survivor TEXT NOT NULL,
        merged TEXT NOT NULL,
        message_id TEXT,
        identifier_kinds TEXT[] NOT NULL,
        rule TEXT NOT NULL,
        at BIGINT NOT NULL
    );
    CREATE INDEX merge_log_survivor ON merge_log (survivor);
    CREATE INDEX merge_log_merged ON merge_log (merged);
    "#,
    // 2: governance, as SQLite's migration 5. Consent decisions per purpose; the audit chain
    // and its head; the salt of each workspace's tombstones, the tombstones themselves (salted
    // hashes of erased identifiers) and the ids of erased profiles.
    //
    // The chain is one sequence across all workspaces and all nodes. `audit_head` is a single
    // row holding the last sequence number and hash: every appender locks it (`FOR UPDATE`) as
    // the last step of its transaction and moves it along with its records, so appenders on any
    // number of nodes queue on that row, numbers come out without gaps (a rolled-back append
    // leaves the head where it was), and the chain order is the commit order. Locking the
    // newest `audit_log` row instead would not do: on an empty log there is no row to lock.
    //
    // The log refuses UPDATE, DELETE and TRUNCATE through a trigger. An owner or superuser can
    // still disable the trigger or write the files; the hash chain is what exposes that.
    r#"
    CREATE TABLE consents (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        purpose TEXT NOT NULL,
        state TEXT NOT NULL,
        source TEXT NOT NULL,
        at BIGINT NOT NULL,
        recorded_at BIGINT NOT NULL
    );
    CREATE INDEX consents_profile ON consents (profile_id, purpose, at);
    CREATE TABLE audit_head (
        only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL
    );
    INSERT INTO audit_head (seq, hash)
        VALUES (0, '0000000000000000000000000000000000000000000000000000000000000000');
    CREATE TABLE audit_log (
        seq BIGINT PRIMARY KEY,
        at BIGINT NOT NULL,
        workspace_id TEXT,
        actor TEXT NOT NULL,
        action TEXT COLLATE "C" NOT NULL,
        subject TEXT,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_workspace ON audit_log (workspace_id, seq);
    CREATE INDEX audit_subject ON audit_log (subject, seq) WHERE subject IS NOT NULL;
    CREATE INDEX audit_action ON audit_log (action, seq);
    CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege';
    END
    $$;
    CREATE TRIGGER audit_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
    CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
    CREATE TABLE workspace_secrets (
        workspace_id TEXT PRIMARY KEY,
        tombstone_salt BYTEA NOT NULL
    );
    CREATE TABLE tombstones (
        workspace_id TEXT NOT NULL,
        hash TEXT NOT NULL,
        erased_at BIGINT NOT NULL,
        PRIMARY KEY (workspace_id, hash)
    );
    CREATE TABLE erasures (
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        erased_at BIGINT NOT NULL,
        PRIMARY KEY (workspace_id, profile_id)
    );
    "#,
    // 4: decisions and requests for a person, as SQLite's migration 7.
    r#"
    CREATE TABLE decisions (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT,
        version BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX decisions_profile ON decisions (workspace_id, profile_id, created_at);
    CREATE INDEX decisions_status ON decisions (workspace_id, status, created_at);
    CREATE TABLE handoffs (
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        conversation_id TEXT,
        source TEXT NOT NULL,
        requested_at BIGINT NOT NULL,
        resolved_at BIGINT,
        PRIMARY KEY (workspace_id, profile_id)
    );
    "#,
    // 5: guarded stitching and unmerge, as SQLite's migration 8.
    r#"
    ALTER TABLE merge_log ADD COLUMN status TEXT NOT NULL DEFAULT 'merged';
    ALTER TABLE merge_log ADD COLUMN refusal TEXT;
    ALTER TABLE merge_log ADD COLUMN unmerged_at BIGINT;
    CREATE INDEX merge_log_time ON merge_log (workspace_id, at);
    ALTER TABLE events ADD COLUMN origin TEXT;
    ALTER TABLE events ADD COLUMN replay TEXT;
    ALTER TABLE identities ADD COLUMN origin TEXT;
    ALTER TABLE conversations ADD COLUMN origin TEXT;
    CREATE TABLE merge_blocks (
        workspace_id TEXT NOT NULL,
        a TEXT NOT NULL,
        b TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (workspace_id, a, b)
    );
    "#,
    // 6: people's dashboard accounts and alerts, as SQLite's migration 9.
    r#"
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        login TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX users_workspace ON users (workspace_id, login);
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        open BOOLEAN NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX alerts_workspace ON alerts (workspace_id, open, created_at);
    "#,
    // 6 (schema version 6; the labels above skip a number): routing queues, agents and
    // queue entries, as SQLite's migration 9.
    r#"
    CREATE TABLE route_queues (
        workspace_id TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (workspace_id, id)
    );
    CREATE TABLE route_agents (
        workspace_id TEXT NOT NULL,
        id TEXT NOT NULL,
        capacity BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (workspace_id, id)
    );
    CREATE TABLE route_entries (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        queue_id TEXT NOT NULL,
        status TEXT NOT NULL,
        agent_id TEXT,
        enqueued_at BIGINT NOT NULL,
        version BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE UNIQUE INDEX route_entries_open ON route_entries (workspace_id, conversation_id)
        WHERE status <> 'finished';
    CREATE INDEX route_entries_queue ON route_entries (workspace_id, status, enqueued_at);
    CREATE INDEX route_entries_agent ON route_entries (workspace_id, agent_id)
        WHERE status IN ('offered', 'accepted');
    CREATE INDEX route_entries_conversation ON route_entries (conversation_id);
    "#,
    // 7: next-best-action's outcome counts and customers' offers, as SQLite's migration 10.
    r#"
    CREATE TABLE nba_counts (
        workspace_id TEXT NOT NULL,
        action_id TEXT NOT NULL,
        successes BIGINT NOT NULL,
        failures BIGINT NOT NULL,
        PRIMARY KEY (workspace_id, action_id)
    );
    CREATE TABLE nba_contacts (
        decision_id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        action_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        at BIGINT NOT NULL,
        outcome TEXT,
        outcome_at BIGINT
    );
    CREATE INDEX nba_contacts_profile ON nba_contacts (workspace_id, profile_id, at);
    "#,
    // 8: disabled accounts and dashboard sessions, as SQLite's migration 11.
    r#"
    ALTER TABLE users ADD COLUMN disabled_at BIGINT;
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id),
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX sessions_user ON sessions (user_id);
    CREATE INDEX sessions_expiry ON sessions (expires_at);
    "#,
    // 9: trained models and materialised features, as SQLite's migration 12.
    r#"
    CREATE TABLE model_versions (
        workspace_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        version BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        active BOOLEAN NOT NULL,
        summary TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (workspace_id, kind, version)
    );
    CREATE UNIQUE INDEX model_versions_active ON model_versions (workspace_id, kind) WHERE active;
    CREATE TABLE profile_features (
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        computed_at BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (workspace_id, profile_id)
    );
    "#,
    // 10: probabilistic dedupe's merge detail and review queue, as SQLite's migration 13.
    r#"
    ALTER TABLE merge_log ADD COLUMN detail TEXT;
    CREATE TABLE dedupe_reviews (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        profile_a TEXT NOT NULL,
        profile_b TEXT NOT NULL,
        rank BIGINT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        decided_at BIGINT,
        decided_by TEXT,
        UNIQUE (workspace_id, profile_a, profile_b)
    );
    CREATE INDEX dedupe_reviews_status ON dedupe_reviews (workspace_id, status, rank);
    CREATE INDEX dedupe_reviews_b ON dedupe_reviews (profile_b);
    "#,
    // 11: intent corrections and intent model versions, as SQLite's migration 14.
    r#"
    CREATE TABLE intent_corrections (
        workspace_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        text TEXT NOT NULL,
        predicted TEXT,
        confidence_ppm BIGINT NOT NULL,
        model_version BIGINT NOT NULL,
        corrected TEXT,
        corrected_by TEXT NOT NULL,
        corrected_at BIGINT NOT NULL,
        PRIMARY KEY (workspace_id, message_id)
    );
    CREATE INDEX intent_corrections_recent ON intent_corrections (workspace_id, corrected_at);
    CREATE INDEX intent_corrections_conversation ON intent_corrections (conversation_id);
    CREATE TABLE intent_models (
        workspace_id TEXT NOT NULL,
        version BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        summary TEXT NOT NULL,
        model BYTEA NOT NULL,
        PRIMARY KEY (workspace_id, version)
    );
    CREATE TABLE intent_active (
        workspace_id TEXT PRIMARY KEY,
        version BIGINT NOT NULL,
        activated_at BIGINT NOT NULL,
        activated_by TEXT NOT NULL
    );
    "#,
    // 12: where moved consents, decisions and next-best-action contacts came from, as
    // SQLite's migration 17 (NULL: never moved).
    r#"
    ALTER TABLE consents ADD COLUMN origin TEXT;
    ALTER TABLE decisions ADD COLUMN origin TEXT;
    ALTER TABLE nba_contacts ADD COLUMN origin TEXT;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock key that serialises migrations of one schema across nodes.
fn migration_lock_key(schema: &str) -> i64 {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "rapport-migrate:".bytes().chain(schema.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// Creates `schema` if needed and brings it up to [`SCHEMA_VERSION`]. Refuses a schema written
/// by a newer build.
pub async fn migrate(client: &mut Client, schema: &str) -> Result<(), StoreError> {
    migrate_to(client, schema, SCHEMA_VERSION).await
}

/// Brings `schema` up to `target` (tests use it to build schemas as older releases left them).
/// `schema` must be a valid schema name (see [`super::valid_schema_name`]) and the connection's
/// `search_path` must name it.
pub async fn migrate_to(client: &mut Client, schema: &str, target: i64) -> Result<(), StoreError> {
    debug_assert!(super::valid_schema_name(schema));
    let tx = client.transaction().await.map_err(pg_error)?;
    // Transaction-scoped: released at commit or rollback, even if this process dies.
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&migration_lock_key(schema)],
    )
    .await
    .map_err(pg_error)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
         CREATE TABLE IF NOT EXISTS \"{schema}\".schema_version (
             version BIGINT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(pg_error)?;
    let current: i64 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM \"{schema}\".schema_version"),
            &[],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "PostgreSQL schema {schema} is at version {current}, newer than this build's {SCHEMA_VERSION}; upgrade rapport"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(current as usize)
    {
        let version = (i + 1) as i64;
        tx.batch_execute(sql).await.map_err(|e| {
            StoreError::Internal(format!(
                "migration {version} failed: {}",
                super::pg_error_text(&e)
            ))
        })?;
        tx.execute(
            &format!("INSERT INTO \"{schema}\".schema_version (version) VALUES ($1)"),
            &[&version],
        )
        .await
        .map_err(pg_error)?;
        tracing::info!(schema, version, "applied PostgreSQL schema migration");
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(())
}

/// The version `schema` is at (0 when it has none).
pub async fn version(client: &Client, schema: &str) -> Result<i64, StoreError> {
    debug_assert!(super::valid_schema_name(schema));
    let row = client
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM \"{schema}\".schema_version"),
            &[],
        )
        .await
        .map_err(pg_error)?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_audit_head_starts_at_the_genesis_hash() {
        assert!(super::MIGRATIONS[1].contains(rapport_core::GENESIS_HASH));
    }
}
