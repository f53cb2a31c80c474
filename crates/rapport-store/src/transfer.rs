//! Copying one workspace, whole and unchanged, from one store to another (SQLite to PostgreSQL
//! and back), and proving that the copy is equal.
//!
//! Both backends read a workspace into the same backend-neutral form, a [`WorkspaceDump`]: for
//! every table that holds workspace data, its rows as [`Cell`]s in one canonical shape (times as
//! integers, booleans as 0/1, identifier kinds as a compact JSON array), in one canonical order.
//! [`TableSummary::of`] hashes those rows, so a checksum computed on a SQLite store and one
//! computed on a PostgreSQL store are comparable byte for byte.
//!
//! What is kept and what is renumbered:
//! - every id, every value, every time and the relative order of rows that are ordered by
//!   insertion (events, messages, merges, consents, profiles by creation, the audit records);
//! - sequence numbers are the target's own: the target may hold other workspaces, so rows get
//!   the next numbers there, in their original order;
//! - the audit chain is one chain per store, shared by all its workspaces, so the workspace's
//!   records are re-sealed onto the end of the target's chain (new `seq`, `prev_hash`, `hash`;
//!   time, actor, action, subject and details unchanged). Copying every record of a store into
//!   an empty one therefore reproduces the chain exactly. Because re-sealing would launder an
//!   edit, callers must verify the source chain before copying (the CLI does).
//!
//! An import is one transaction on the target: it refuses a target that already holds the
//! workspace (unless told to replace it), writes every table, reads the copy back inside the
//! same transaction and compares counts and checksums with the source; any difference rolls
//! the whole copy back. A `default` workspace that holds nothing at all (as every new store
//! has) does not count as held: it is replaced by the incoming one.
//!
//! Limits: the dump of one workspace is held in memory (about the size of its rows).

use async_trait::async_trait;
use rapport_core::WorkspaceName;
use sha2::{Digest, Sha256};

use crate::{Store, StoreError};

/// One value of a row, in the backend-neutral form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// How a column is stored, so each backend can read and write it in its own types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Text,
    Bytes,
    /// SQLite `INTEGER` 0/1, PostgreSQL `BOOLEAN`; canonically [`Cell::Int`] 0 or 1.
    Bool,
    /// SQLite JSON text, PostgreSQL `TEXT[]`; canonically compact JSON text (`["a","b"]`).
    TextList,
}

/// Which rows of a table belong to a workspace. `$1` is the workspace id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The workspace's own row.
    Itself,
    Workspace,
    /// Rows keyed by a profile of the workspace.
    Profiles,
    /// Rows keyed by a conversation of the workspace.
    Conversations,
}

impl Scope {
    pub(crate) fn condition(self) -> &'static str {
        match self {
            Scope::Itself => "id = $1",
            Scope::Workspace => "workspace_id = $1",
            Scope::Profiles => "profile_id IN (SELECT id FROM profiles WHERE workspace_id = $1)",
            Scope::Conversations => {
                "conversation_id IN (SELECT id FROM conversations WHERE workspace_id = $1)"
            }
        }
    }
}

/// The order rows are compared (and written) in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Insertion order (`seq` on both backends): it carries meaning (timelines, merge history).
    Seq,
    /// Creation order of profiles (SQLite `rowid`, PostgreSQL `seq`): the oldest profile of a
    /// merge survives.
    Creation,
    /// No meaningful order: rows are sorted by value.
    Sorted,
}

/// A table that holds workspace data, with its columns in the canonical (SQLite) names.
#[derive(Debug)]
pub(crate) struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    pub scope: Scope,
    pub order: Order,
}

use Kind::{Bool, Bytes, Int, Text, TextList};

/// Every table of workspace data, parents before children (the order rows are written in).
/// The audit log is handled apart (see [`AUDIT_COLUMNS`]).
pub(crate) const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "workspaces",
        columns: &[("id", Text), ("name", Text), ("created_at", Int)],
        scope: Scope::Itself,
        order: Order::Sorted,
    },
    TableSpec {
        name: "workspace_secrets",
        columns: &[("workspace_id", Text), ("tombstone_salt", Bytes)],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "api_keys",
        columns: &[
            ("id", Text),
            ("workspace_id", Text),
            ("role", Text),
            ("key_hash", Text),
            ("prefix", Text),
            ("created_at", Int),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "profiles",
        columns: &[
            ("id", Text),
            ("workspace_id", Text),
            ("first_seen", Int),
            ("last_seen", Int),
            ("event_count", Int),
            ("channels", Int),
            ("has_user_id", Bool),
            ("name", Text),
            ("name_lc", Text),
            ("last_lc", Text),
            ("email", Text),
            ("merged_into", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Creation,
    },
    TableSpec {
        name: "identities",
        columns: &[
            ("workspace_id", Text),
            ("kind", Text),
            ("value", Text),
            ("profile_id", Text),
            ("first_seen", Int),
            ("origin", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "traits",
        columns: &[
            ("profile_id", Text),
            ("key", Text),
            ("value", Text),
            ("ts", Int),
            ("std_value", Text),
        ],
        scope: Scope::Profiles,
        order: Order::Sorted,
    },
    TableSpec {
        name: "data_quality",
        columns: &[
            ("profile_id", Text),
            ("field", Text),
            ("raw", Text),
            ("code", Text),
            ("problem", Text),
            ("ts", Int),
        ],
        scope: Scope::Profiles,
        order: Order::Sorted,
    },
    TableSpec {
        name: "events",
        columns: &[
            ("workspace_id", Text),
            ("message_id", Text),
            ("profile_id", Text),
            ("type", Text),
            ("name", Text),
            ("channel", Text),
            ("ts", Int),
            ("received_at", Int),
            ("body", Text),
            ("origin", Text),
            ("replay", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Seq,
    },
    TableSpec {
        name: "channel_daily",
        columns: &[
            ("workspace_id", Text),
            ("channel", Text),
            ("day", Int),
            ("events", Int),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "conversations",
        columns: &[
            ("id", Text),
            ("workspace_id", Text),
            ("profile_id", Text),
            ("channel", Text),
            ("subject", Text),
            ("status", Text),
            ("opened_at", Int),
            ("updated_at", Int),
            ("message_count", Int),
            ("origin", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "messages",
        columns: &[
            ("id", Text),
            ("conversation_id", Text),
            ("direction", Text),
            ("author", Text),
            ("text", Text),
            ("sent_at", Int),
            ("external_id", Text),
            ("analysis", Text),
        ],
        scope: Scope::Conversations,
        order: Order::Seq,
    },
    TableSpec {
        name: "merge_log",
        columns: &[
            ("workspace_id", Text),
            ("survivor", Text),
            ("merged", Text),
            ("message_id", Text),
            ("identifier_kinds", TextList),
            ("rule", Text),
            ("at", Int),
            ("status", Text),
            ("refusal", Text),
            ("unmerged_at", Int),
            ("detail", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Seq,
    },
    TableSpec {
        name: "merge_blocks",
        columns: &[
            ("workspace_id", Text),
            ("a", Text),
            ("b", Text),
            ("created_at", Int),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "dedupe_reviews",
        columns: &[
            ("id", Text),
            ("workspace_id", Text),
            ("profile_a", Text),
            ("profile_b", Text),
            ("rank", Int),
            ("body", Text),
            ("status", Text),
            ("created_at", Int),
            ("decided_at", Int),
            ("decided_by", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "consents",
        columns: &[
            ("workspace_id", Text),
            ("profile_id", Text),
            ("purpose", Text),
            ("state", Text),
            ("source", Text),
            ("at", Int),
            ("recorded_at", Int),
            ("origin", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Seq,
    },
    TableSpec {
        name: "tombstones",
        columns: &[("workspace_id", Text), ("hash", Text), ("erased_at", Int)],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "erasures",
        columns: &[
            ("workspace_id", Text),
            ("profile_id", Text),
            ("erased_at", Int),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "decisions",
        columns: &[
            ("id", Text),
            ("workspace_id", Text),
            ("profile_id", Text),
            ("kind", Text),
            ("status", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("version", Int),
            ("body", Text),
            ("origin", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "handoffs",
        columns: &[
            ("workspace_id", Text),
            ("profile_id", Text),
            ("conversation_id", Text),
            ("source", Text),
            ("requested_at", Int),
            ("resolved_at", Int),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "users",
        columns: &[
            ("id", Text),
            ("workspace_id", Text),
            ("login", Text),
            ("role", Text),
            ("password_hash", Text),
            ("created_at", Int),
            ("disabled_at", Int),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "alerts",
        columns: &[
            ("id", Text),
            ("workspace_id", Text),
            ("created_at", Int),
            ("open", Bool),
            ("body", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "route_queues",
        columns: &[("workspace_id", Text), ("id", Text), ("body", Text)],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "route_agents",
        columns: &[
            ("workspace_id", Text),
            ("id", Text),
            ("capacity", Int),
            ("body", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "nba_counts",
        columns: &[
            ("workspace_id", Text),
            ("action_id", Text),
            ("successes", Int),
            ("failures", Int),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "route_entries",
        columns: &[
            ("id", Text),
            ("workspace_id", Text),
            ("conversation_id", Text),
            ("queue_id", Text),
            ("status", Text),
            ("agent_id", Text),
            ("enqueued_at", Int),
            ("version", Int),
            ("body", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "nba_contacts",
        columns: &[
            ("decision_id", Text),
            ("workspace_id", Text),
            ("profile_id", Text),
            ("action_id", Text),
            ("channel", Text),
            ("at", Int),
            ("outcome", Text),
            ("outcome_at", Int),
            ("origin", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "model_versions",
        columns: &[
            ("workspace_id", Text),
            ("kind", Text),
            ("version", Int),
            ("created_at", Int),
            ("created_by", Text),
            ("active", Bool),
            ("summary", Text),
            ("body", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "profile_features",
        columns: &[
            ("workspace_id", Text),
            ("profile_id", Text),
            ("computed_at", Int),
            ("body", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "intent_corrections",
        columns: &[
            ("workspace_id", Text),
            ("message_id", Text),
            ("conversation_id", Text),
            ("profile_id", Text),
            ("text", Text),
            ("predicted", Text),
            ("confidence_ppm", Int),
            ("model_version", Int),
            ("corrected", Text),
            ("corrected_by", Text),
            ("corrected_at", Int),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "intent_models",
        columns: &[
            ("workspace_id", Text),
            ("version", Int),
            ("created_at", Int),
            ("created_by", Text),
            ("summary", Text),
            ("model", Bytes),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
    TableSpec {
        name: "intent_active",
        columns: &[
            ("workspace_id", Text),
            ("version", Int),
            ("activated_at", Int),
            ("activated_by", Text),
        ],
        scope: Scope::Workspace,
        order: Order::Sorted,
    },
];

/// The audit log's name in reports.
pub const AUDIT_TABLE: &str = "audit_log";

/// The audit columns a copy keeps (the chain columns `seq`, `prev_hash` and `hash` are the
/// target's own). Rows are the workspace's records in chain order.
pub(crate) const AUDIT_COLUMNS: &[(&str, Kind)] = &[
    ("at", Int),
    ("workspace_id", Text),
    ("actor", Text),
    ("action", Text),
    ("subject", Text),
    ("details", Text),
];

/// The rows of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRows {
    pub table: &'static str,
    pub rows: Vec<Vec<Cell>>,
}

/// Everything one store holds about one workspace, in the backend-neutral form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceDump {
    pub workspace_id: String,
    pub workspace_name: String,
    /// One entry per table of [`TABLES`] in that order, then the audit log.
    pub tables: Vec<TableRows>,
}

impl WorkspaceDump {
    pub fn summaries(&self) -> Vec<TableSummary> {
        self.tables.iter().map(TableSummary::of).collect()
    }

    pub(crate) fn table(&self, name: &str) -> &[Vec<Cell>] {
        self.tables
            .iter()
            .find(|t| t.table == name)
            .map(|t| t.rows.as_slice())
            .unwrap_or(&[])
    }

    pub fn total_rows(&self) -> usize {
        self.tables.iter().map(|t| t.rows.len()).sum()
    }
}

/// Row count and checksum of one table of one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    pub table: &'static str,
    pub rows: u64,
    /// SHA-256 (hex) over the rows in canonical order, every cell tagged by type and
    /// length-prefixed, so no two different tables hash alike.
    pub checksum: String,
}

impl TableSummary {
    pub fn of(t: &TableRows) -> Self {
        let mut h = Sha256::new();
        for row in &t.rows {
            h.update((row.len() as u64).to_be_bytes());
            for cell in row {
                let (tag, bytes): (u8, &[u8]) = match cell {
                    Cell::Null => (0, &[]),
                    Cell::Int(i) => {
                        h.update([1]);
                        h.update(i.to_be_bytes());
                        continue;
                    }
                    Cell::Text(s) => (2, s.as_bytes()),
                    Cell::Bytes(b) => (3, b),
                };
                h.update([tag]);
                h.update((bytes.len() as u64).to_be_bytes());
                h.update(bytes);
            }
        }
        Self {
            table: t.table,
            rows: t.rows.len() as u64,
            checksum: hex::encode(h.finalize()),
        }
    }
}

/// What an import did, with both sides' counts and checksums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReport {
    pub workspace_id: String,
    pub workspace_name: String,
    pub source: Vec<TableSummary>,
    /// Read back from the target inside the importing transaction.
    pub target: Vec<TableSummary>,
    /// Whether an earlier copy of the workspace in the target was deleted first.
    pub replaced: bool,
    /// The target's first audit sequence number given to the copied records (the next one
    /// when there were none).
    pub audit_first_seq: i64,
}

impl TransferReport {
    /// Whether every table has the same count and checksum on both sides.
    pub fn verified(&self) -> bool {
        self.source == self.target
    }

    /// A plain-text table: one line per table, both sides, and whether they match.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{:<18} {:>10} {:>10}  {:<16} {:<16} {}\n",
            "table", "source", "target", "source sha256", "target sha256", "match"
        );
        for (s, t) in self.source.iter().zip(&self.target) {
            let ok = s == t;
            out.push_str(&format!(
                "{:<18} {:>10} {:>10}  {:<16} {:<16} {}\n",
                s.table,
                s.rows,
                t.rows,
                &s.checksum[..16],
                &t.checksum[..16],
                if ok { "yes" } else { "NO" }
            ));
        }
        out
    }
}

/// How an import treats a target that already holds the workspace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Delete the target's copy of the workspace (every row but its audit records, which are
    /// append-only and stay) before copying. Without it such a target is refused.
    pub replace: bool,
}

/// Reading and writing whole workspaces; served by both backends.
#[async_trait]
pub trait WorkspaceTransfer: Store {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Reads every row of the workspace in one consistent snapshot.
    /// [`StoreError::NotFound`] if the store has no workspace of that name.
    async fn export_workspace(&self, name: &WorkspaceName) -> Result<WorkspaceDump, StoreError>;

    /// Writes `dump` in one transaction, verifies it by reading it back and returns the
    /// comparison. [`StoreError::Conflict`] when the target already holds the workspace (by
    /// name or id) and `options.replace` is off; [`StoreError::Internal`] (with nothing
    /// written) when the copy read back differs from the dump.
    async fn import_workspace(
        &self,
        dump: &WorkspaceDump,
        options: ImportOptions,
    ) -> Result<TransferReport, StoreError>;
}

/// The canonical form of an identifier-kind list read from either backend.
pub(crate) fn text_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Sorts the rows of a table whose order means nothing, so both sides compare alike.
pub(crate) fn canonical_order(spec_order: Order, rows: &mut [Vec<Cell>]) {
    if spec_order == Order::Sorted {
        rows.sort();
    }
}

/// The refusal for a target that already holds the workspace.
pub(crate) fn already_held(name: &str, id: &str, rows: i64) -> StoreError {
    StoreError::Conflict(format!(
        "the target already holds workspace {name} ({id}, {rows} rows); nothing was copied \
         (pass --replace to overwrite it)"
    ))
}

/// Compares the dump with what was read back; the error names the tables that differ.
pub(crate) fn check(
    dump: &WorkspaceDump,
    back: &WorkspaceDump,
    replaced: bool,
    audit_first_seq: i64,
) -> Result<TransferReport, StoreError> {
    let report = TransferReport {
        workspace_id: dump.workspace_id.clone(),
        workspace_name: dump.workspace_name.clone(),
        source: dump.summaries(),
        target: back.summaries(),
        replaced,
        audit_first_seq,
    };
    if report.verified() {
        return Ok(report);
    }
    let differ: Vec<String> = report
        .source
        .iter()
        .zip(&report.target)
        .filter(|(s, t)| s != t)
        .map(|(s, t)| format!("{} ({} rows, read back {})", s.table, s.rows, t.rows))
        .collect();
    Err(StoreError::Internal(format!(
        "the copy of workspace {} read back differently in {}; nothing was written",
        dump.workspace_name,
        differ.join(", ")
    )))
}

/// Reseals audit rows (canonical [`AUDIT_COLUMNS`] cells) onto a chain whose head is
/// `(seq, hash)`, returning the records to insert.
pub(crate) fn reseal(
    rows: &[Vec<Cell>],
    mut seq: i64,
    mut prev: String,
) -> Result<Vec<rapport_core::AuditRecord>, StoreError> {
    let text = |c: &Cell| -> Result<Option<String>, StoreError> {
        match c {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            other => Err(StoreError::Internal(format!(
                "audit cell {other:?} is not text"
            ))),
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let [at, ws, actor, action, subject, details] = row.as_slice() else {
            return Err(StoreError::Internal("audit row of the wrong width".into()));
        };
        let Cell::Int(at_ms) = at else {
            return Err(StoreError::Internal("audit time is not an integer".into()));
        };
        seq += 1;
        let mut r = rapport_core::AuditRecord {
            seq: 0,
            at_ms: *at_ms,
            workspace: text(ws)?,
            actor: text(actor)?.unwrap_or_default(),
            action: text(action)?.unwrap_or_default(),
            subject: text(subject)?,
            details: text(details)?.unwrap_or_default(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        r.link(seq, &prev);
        prev.clone_from(&r.hash);
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(table: &'static str, rows: Vec<Vec<Cell>>) -> TableRows {
        TableRows { table, rows }
    }

    #[test]
    fn checksums_tell_types_and_boundaries_apart() {
        let a = TableSummary::of(&rows("t", vec![vec![Cell::Text("ab".into()), Cell::Null]]));
        let b = TableSummary::of(&rows(
            "t",
            vec![vec![Cell::Text("a".into()), Cell::Text("b".into())]],
        ));
        let c = TableSummary::of(&rows("t", vec![vec![Cell::Text("1".into()), Cell::Null]]));
        let d = TableSummary::of(&rows("t", vec![vec![Cell::Int(1), Cell::Null]]));
        let e = TableSummary::of(&rows(
            "t",
            vec![vec![Cell::Bytes(b"ab".to_vec()), Cell::Null]],
        ));
        let all = [&a, &b, &c, &d, &e];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x.checksum, y.checksum);
            }
        }
        // Same rows, same checksum; order matters.
        let r1 = vec![vec![Cell::Int(1)], vec![Cell::Int(2)]];
        let mut r2 = r1.clone();
        assert_eq!(
            TableSummary::of(&rows("t", r1.clone())),
            TableSummary::of(&rows("t", r2.clone()))
        );
        r2.reverse();
        assert_ne!(
            TableSummary::of(&rows("t", r1)).checksum,
            TableSummary::of(&rows("t", r2)).checksum
        );
    }

    #[test]
    fn resealed_records_chain_and_keep_their_content() {
        let row = |n: i64| {
            vec![
                Cell::Int(1_700_000_000_000 + n),
                Cell::Text("ws_1".into()),
                Cell::Text("system".into()),
                Cell::Text("consent.granted".into()),
                Cell::Null,
                Cell::Text(format!("{{\"n\":{n}}}")),
            ]
        };
        let recs = reseal(&[row(1), row(2)], 7, "ab".repeat(32)).expect("reseal");
        assert_eq!(recs[0].seq, 8);
        assert_eq!(recs[1].seq, 9);
        assert_eq!(recs[0].prev_hash, "ab".repeat(32));
        assert_eq!(recs[1].prev_hash, recs[0].hash);
        assert_eq!(recs[1].hash, recs[1].compute_hash());
        assert_eq!(recs[1].details, "{\"n\":2}");
        assert_eq!(recs[0].subject, None);
    }

    #[test]
    fn every_table_is_scoped_and_parents_come_first() {
        let pos = |n: &str| TABLES.iter().position(|t| t.name == n).expect(n);
        assert_eq!(pos("workspaces"), 0);
        assert!(pos("profiles") < pos("traits"));
        assert!(pos("conversations") < pos("messages"));
        assert!(TABLES.iter().all(|t| t.name != AUDIT_TABLE));
    }
}
