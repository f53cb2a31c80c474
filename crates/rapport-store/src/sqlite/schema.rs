//! Versioned schema. Each migration runs once, in order, inside one transaction; the version
//! reached is kept in SQLite's `user_version`. Never edit a released migration: add one.

use rusqlite::Connection;

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: workspaces, keys, profiles, identities, traits, events, conversations, messages.
    r#"
    CREATE TABLE workspaces (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        role TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE profiles (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        first_seen INTEGER,
        last_seen INTEGER,
        event_count INTEGER NOT NULL DEFAULT 0,
        channels INTEGER NOT NULL DEFAULT 0,
        has_user_id INTEGER NOT NULL DEFAULT 0,
        name TEXT,
        name_lc TEXT,
        last_lc TEXT,
        email TEXT,
        merged_into TEXT
    );
    CREATE INDEX profiles_recent ON profiles(workspace_id, last_seen) WHERE merged_into IS NULL;
    CREATE INDEX profiles_name ON profiles(workspace_id, name_lc) WHERE merged_into IS NULL;
    CREATE INDEX profiles_last ON profiles(workspace_id, last_lc) WHERE merged_into IS NULL;
    CREATE INDEX profiles_email ON profiles(workspace_id, email) WHERE merged_into IS NULL;
    CREATE INDEX profiles_merged ON profiles(merged_into) WHERE merged_into IS NOT NULL;
    CREATE TABLE identities (
        workspace_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, kind, value)
    ) WITHOUT ROWID;
    CREATE INDEX identities_profile ON identities(profile_id);
    CREATE TABLE traits (
        profile_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        ts INTEGER NOT NULL,
        PRIMARY KEY (profile_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        type TEXT NOT NULL,
        name TEXT,
        channel TEXT NOT NULL,
        ts INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE UNIQUE INDEX events_message ON events(workspace_id, message_id);
    CREATE INDEX events_timeline ON events(profile_id, ts, seq);
    CREATE TABLE channel_daily (
        workspace_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        day INTEGER NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, day, channel)
    ) WITHOUT ROWID;
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        subject TEXT,
        status TEXT NOT NULL,
        opened_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX conversations_profile ON conversations(profile_id);
    CREATE INDEX conversations_recent ON conversations(workspace_id, updated_at);
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        direction TEXT NOT NULL,
        author TEXT NOT NULL,
        text TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        external_id TEXT
    );
    CREATE INDEX messages_conversation ON messages(conversation_id, sent_at);
    CREATE UNIQUE INDEX messages_external ON messages(conversation_id, external_id)
        WHERE external_id IS NOT NULL;
    "#,
    // 2: each message keeps the interpretation stage's analysis (JSON, with model and version).
    r#"
    ALTER TABLE messages ADD COLUMN analysis TEXT;
    "#,
    // 3: standardised trait values beside the raw ones, and data-quality issues per profile.
    r#"
    ALTER TABLE traits ADD COLUMN std_value TEXT;
    CREATE TABLE data_quality (
        profile_id TEXT NOT NULL,
        field TEXT NOT NULL,
        raw TEXT NOT NULL,
        code TEXT NOT NULL,
        problem TEXT NOT NULL,
        ts INTEGER NOT NULL,
        PRIMARY KEY (profile_id, field)
    ) WITHOUT ROWID;
    "#,
    // 4: every merge, with why. Identifiers are named by kind only: the log holds no
    // personal data, so it can outlive an erasure.
    r#"
    CREATE TABLE merge_log (
        seq INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        survivor TEXT NOT NULL,
        merged TEXT NOT NULL,
        message_id TEXT,
        identifier_kinds TEXT NOT NULL,
        rule TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX merge_log_survivor ON merge_log(survivor);
    CREATE INDEX merge_log_merged ON merge_log(merged);
    "#,
    // 5: governance. Consent decisions per purpose; the audit chain (append-only: triggers
    // refuse edits and deletions through SQL, and the hash chain exposes edits made around
    // them); erasures by profile id, and the salted hashes of erased identifiers.
    r#"
    CREATE TABLE consents (
        seq INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        purpose TEXT NOT NULL,
        state TEXT NOT NULL,
        source TEXT NOT NULL,
        at INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL
    );
    CREATE INDEX consents_profile ON consents(profile_id, purpose, at);
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        workspace_id TEXT,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_workspace ON audit_log(workspace_id, seq);
    CREATE INDEX audit_subject ON audit_log(subject, seq) WHERE subject IS NOT NULL;
    CREATE INDEX audit_action ON audit_log(action, seq);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TABLE workspace_secrets (
        workspace_id TEXT PRIMARY KEY,
        tombstone_salt BLOB NOT NULL
    );
    CREATE TABLE tombstones (
        workspace_id TEXT NOT NULL,
        hash TEXT NOT NULL,
        erased_at INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, hash)
    ) WITHOUT ROWID;
    CREATE TABLE erasures (
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        erased_at INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, profile_id)
    ) WITHOUT ROWID;
    "#,
    // 7: decisions about customers (whole, as JSON, beside the columns they are found by;
    // `version` makes approvals compare-and-set) and customers' requests for a person. Both
    // hold personal data and go with an erasure.
    r#"
    CREATE TABLE decisions (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        version INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX decisions_profile ON decisions(workspace_id, profile_id, created_at);
    CREATE INDEX decisions_status ON decisions(workspace_id, status, created_at);
    CREATE TABLE handoffs (
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        conversation_id TEXT,
        source TEXT NOT NULL,
        requested_at INTEGER NOT NULL,
        resolved_at INTEGER,
        PRIMARY KEY (workspace_id, profile_id)
    ) WITHOUT ROWID;
    "#,
    // 8: guarded stitching and unmerge. The merge log also holds refused merges (`status`
    // `refused`, with the rule that refused in `refusal`) and undone ones (`unmerged`). Events,
    // identities and conversations remember the profile they first landed on (`origin`), and
    // events the traits and data-quality flags they carried as applied (`replay`, JSON), so an
    // unmerge can give each side back its own and rebuild both by replaying their events.
    // `merge_blocks` holds pairs of profiles an operator said must not merge again.
    r#"
    ALTER TABLE merge_log ADD COLUMN status TEXT NOT NULL DEFAULT 'merged';
    ALTER TABLE merge_log ADD COLUMN refusal TEXT;
    ALTER TABLE merge_log ADD COLUMN unmerged_at INTEGER;
    CREATE INDEX merge_log_time ON merge_log(workspace_id, at);
    ALTER TABLE events ADD COLUMN origin TEXT;
    ALTER TABLE events ADD COLUMN replay TEXT;
    ALTER TABLE identities ADD COLUMN origin TEXT;
    ALTER TABLE conversations ADD COLUMN origin TEXT;
    CREATE TABLE merge_blocks (
        workspace_id TEXT NOT NULL,
        a TEXT NOT NULL,
        b TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, a, b)
    ) WITHOUT ROWID;
    "#,
    // 9: people's dashboard accounts (passwords as Argon2 hashes only), and alerts (whole, as
    // JSON, beside the columns they are listed by; they hold no personal data).
    r#"
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        login TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX users_workspace ON users(workspace_id, login);
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        open INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX alerts_workspace ON alerts(workspace_id, open, created_at);
    "#,
    // 9 (schema version 9; the labels above skip a number): routing. Queues and agents (whole, as JSON; an agent's capacity also as a column
    // so an assignment can be checked against it), and queue entries: a conversation waiting
    // for, offered to or handled by an agent, with the priority and steps that explain it. At
    // most one open entry per conversation. Entries go with an erasure of their customer.
    r#"
    CREATE TABLE route_queues (
        workspace_id TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (workspace_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE route_agents (
        workspace_id TEXT NOT NULL,
        id TEXT NOT NULL,
        capacity INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (workspace_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE route_entries (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        queue_id TEXT NOT NULL,
        status TEXT NOT NULL,
        agent_id TEXT,
        enqueued_at INTEGER NOT NULL,
        version INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE UNIQUE INDEX route_entries_open ON route_entries(workspace_id, conversation_id)
        WHERE status <> 'finished';
    CREATE INDEX route_entries_queue ON route_entries(workspace_id, status, enqueued_at);
    CREATE INDEX route_entries_agent ON route_entries(workspace_id, agent_id)
        WHERE status IN ('offered', 'accepted');
    CREATE INDEX route_entries_conversation ON route_entries(conversation_id);
    "#,
    // 10: next-best-action. Outcome counts per action (no personal data: the propensities'
    // evidence), and each customer's offers with their outcomes (personal data: erased with
    // the customer).
    r#"
    CREATE TABLE nba_counts (
        workspace_id TEXT NOT NULL,
        action_id TEXT NOT NULL,
        successes INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, action_id)
    ) WITHOUT ROWID;
    CREATE TABLE nba_contacts (
        decision_id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        action_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        at INTEGER NOT NULL,
        outcome TEXT,
        outcome_at INTEGER
    );
    CREATE INDEX nba_contacts_profile ON nba_contacts(workspace_id, profile_id, at);
    "#,
    // 11: accounts can be disabled; dashboard sessions are kept here (tokens only as hashes)
    // so they outlive a restart and every node knows them.
    r#"
    ALTER TABLE users ADD COLUMN disabled_at INTEGER;
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE INDEX sessions_expiry ON sessions(expires_at);
    "#,
    // 12: trained models, versioned per workspace and kind with at most one active, and each
    // customer's materialised features with the scores read from them.
    r#"
    CREATE TABLE model_versions (
        workspace_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        active INTEGER NOT NULL,
        summary TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (workspace_id, kind, version)
    );
    CREATE UNIQUE INDEX model_versions_active ON model_versions(workspace_id, kind) WHERE active = 1;
    CREATE TABLE profile_features (
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        computed_at INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (workspace_id, profile_id)
    ) WITHOUT ROWID;
    "#,
    // 13: probabilistic dedupe of stored profiles. A merge no event asked for says why in the
    // merge log's `detail` (JSON: probability and per-field agreement, no values). The review
    // queue keeps each pair of profiles once (`profile_a` < `profile_b`), whatever its status,
    // so a decided pair is not asked about again; `rank` is the match probability in
    // millionths, for ordering; `body` the probability, weight, per-field contributions and a
    // refusal, as JSON. Rows name profiles and go with an erasure of either.
    r#"
    ALTER TABLE merge_log ADD COLUMN detail TEXT;
    CREATE TABLE dedupe_reviews (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        profile_a TEXT NOT NULL,
        profile_b TEXT NOT NULL,
        rank INTEGER NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        decided_at INTEGER,
        decided_by TEXT,
        UNIQUE (workspace_id, profile_a, profile_b)
    );
    CREATE INDEX dedupe_reviews_status ON dedupe_reviews(workspace_id, status, rank);
    CREATE INDEX dedupe_reviews_b ON dedupe_reviews(profile_b);
    "#,
    // 14: intent models retrained from agents' corrections. Corrections (the redacted text of
    // a message, what the model read and what the agent chose; personal data: erased with the
    // customer), each workspace's model versions (the saved classifier with its training
    // counts and figures) and which version is active (none: the built-in default).
    r#"
    CREATE TABLE intent_corrections (
        workspace_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        text TEXT NOT NULL,
        predicted TEXT,
        confidence_ppm INTEGER NOT NULL,
        model_version INTEGER NOT NULL,
        corrected TEXT,
        corrected_by TEXT NOT NULL,
        corrected_at INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX intent_corrections_recent ON intent_corrections(workspace_id, corrected_at);
    CREATE INDEX intent_corrections_conversation ON intent_corrections(conversation_id);
    CREATE TABLE intent_models (
        workspace_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        summary TEXT NOT NULL,
        model BLOB NOT NULL,
        PRIMARY KEY (workspace_id, version)
    );
    CREATE TABLE intent_active (
        workspace_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        activated_at INTEGER NOT NULL,
        activated_by TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 15: a customer's contacts kept in one B-tree ordered as the contact policy reads them
    // (customer, time). The rowid table with its decision-id key and its customer index
    // wrote three B-tree pages for every offer where this writes one; a next-best-action
    // commit wrote about 15 WAL pages, and that write volume is what slowed commits while the
    // log was checkpointed. An outcome finds its contact through the decision's customer.
    r#"
    CREATE TABLE nba_contacts_by_profile (
        workspace_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        decision_id TEXT NOT NULL,
        action_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        outcome TEXT,
        outcome_at INTEGER,
        PRIMARY KEY (workspace_id, profile_id, at, decision_id)
    ) WITHOUT ROWID;
    INSERT INTO nba_contacts_by_profile
        (workspace_id, profile_id, at, decision_id, action_id, channel, outcome, outcome_at)
        SELECT workspace_id, profile_id, at, decision_id, action_id, channel, outcome, outcome_at
        FROM nba_contacts;
    DROP TABLE nba_contacts;
    ALTER TABLE nba_contacts_by_profile RENAME TO nba_contacts;
    "#,
    // 16: the search indexes hold only profiles that have a name or an email. A new
    // anonymous visitor has neither; indexing its NULLs wrote three more B-tree pages into the
    // commit that created it, and three more again when it signed in and they were replaced.
    // The search's range terms (`name_lc >= ?`) imply `IS NOT NULL`, so it can still use them.
    r#"
    DROP INDEX profiles_name;
    DROP INDEX profiles_last;
    DROP INDEX profiles_email;
    CREATE INDEX profiles_name ON profiles(workspace_id, name_lc)
        WHERE merged_into IS NULL AND name_lc IS NOT NULL;
    CREATE INDEX profiles_last ON profiles(workspace_id, last_lc)
        WHERE merged_into IS NULL AND last_lc IS NOT NULL;
    CREATE INDEX profiles_email ON profiles(workspace_id, email)
        WHERE merged_into IS NULL AND email IS NOT NULL;
    "#,
    // 17: consents, decisions and next-best-action contacts remember the profile they were
    // recorded for once a merge moves them (`origin`; NULL while they never moved, so the
    // inserts need not name it), so an unmerge can give them back. Rows moved by merges made
    // before this migration have none and stay with the survivor.
    r#"
    ALTER TABLE consents ADD COLUMN origin TEXT;
    ALTER TABLE decisions ADD COLUMN origin TEXT;
    ALTER TABLE nba_contacts ADD COLUMN origin TEXT;
    "#,
    // 18: audit entries waiting to join the chain, committed with the change they describe
    // (a next-best-action offer's), moved into `audit_log` in batches by the writer; and no
    // index of decisions by status. That index rewrote a page at every decision, and no query
    // could use more of it than its workspace column, which the index by customer leads with
    // too: the listing's status filter is optional (`?3 IS NULL OR status = ?3`).
    r#"
    CREATE TABLE audit_pending (
        at INTEGER NOT NULL,
        workspace_id TEXT,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT,
        details TEXT NOT NULL
    );
    DROP INDEX decisions_status;
    "#,
    // 19: the decisions waiting for approval, newest first, for the approvals queue. Partial:
    // an offer (`executed`) never enters it, so the next-best-action path writes no page of it.
    r#"
    CREATE INDEX decisions_pending ON decisions(workspace_id, created_at)
        WHERE status = 'pending_approval';
    "#,
    // 20: a next-best-action contact is kept in its offer's decision row (`action_id`,
    // `channel`, `outcome`, `outcome_at`; NULL for any other decision) instead of a table of
    // its own. The two are one to one, made at the same moment for the same customer and moved
    // or erased together, and the contact's own B-tree, ordered by customer, cost one random
    // page in every offer's commit. The contact policy reads a customer's contacts from
    // `decisions_profile`, which now also holds the contact's columns, so it reads them as
    // compactly as from the old table, without visiting the decision rows. `nba_contacts`
    // stays as a view with the same columns, so exports and imports keep their format; its
    // triggers let an import (or this migration) write contacts, and refuse one whose decision
    // is not there before it.
    r#"
    ALTER TABLE decisions ADD COLUMN action_id TEXT;
    ALTER TABLE decisions ADD COLUMN channel TEXT;
    ALTER TABLE decisions ADD COLUMN outcome TEXT;
    ALTER TABLE decisions ADD COLUMN outcome_at INTEGER;
    DROP INDEX decisions_profile;
    CREATE INDEX decisions_profile ON decisions
        (workspace_id, profile_id, created_at, id, action_id, channel, outcome, outcome_at);
    ALTER TABLE nba_contacts RENAME TO nba_contacts_before_20;
    CREATE VIEW nba_contacts AS
        SELECT id AS decision_id, workspace_id, profile_id, action_id, channel,
               created_at AS at, outcome, outcome_at, origin
        FROM decisions WHERE action_id IS NOT NULL;
    CREATE TRIGGER nba_contacts_insert INSTEAD OF INSERT ON nba_contacts
    BEGIN
        SELECT RAISE(ABORT, 'a next-best-action contact needs an action and a channel')
        WHERE NEW.action_id IS NULL OR NEW.channel IS NULL;
        SELECT RAISE(ABORT, 'a next-best-action contact names no decision of its workspace, customer and time that is not a contact already')
        WHERE NOT EXISTS (
            SELECT 1 FROM decisions
            WHERE id = NEW.decision_id AND workspace_id = NEW.workspace_id
              AND profile_id = NEW.profile_id AND created_at = NEW.at
              AND origin IS NEW.origin AND action_id IS NULL);
        UPDATE decisions
        SET action_id = NEW.action_id, channel = NEW.channel,
            outcome = NEW.outcome, outcome_at = NEW.outcome_at
        WHERE id = NEW.decision_id;
    END;
    CREATE TRIGGER nba_contacts_delete INSTEAD OF DELETE ON nba_contacts
    BEGIN
        UPDATE decisions SET action_id = NULL, channel = NULL, outcome = NULL, outcome_at = NULL
        WHERE id = OLD.decision_id;
    END;
    INSERT INTO nba_contacts
        (decision_id, workspace_id, profile_id, action_id, channel, at, outcome, outcome_at, origin)
        SELECT decision_id, workspace_id, profile_id, action_id, channel, at, outcome, outcome_at, origin
        FROM nba_contacts_before_20;
    DROP TABLE nba_contacts_before_20;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`]. Refuses a database written by a newer build.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// Brings the database up to `target` (tests use it to build databases as older releases
/// left them).
pub fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "database schema version {current} is newer than this build's {SCHEMA_VERSION}; upgrade rapport"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(current as usize)
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    Ok(())
}
