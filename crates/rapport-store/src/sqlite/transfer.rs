//! The SQLite side of [`crate::transfer`]: reading a workspace in one read transaction and
//! writing one in a single job of the writer (one savepoint, so all or nothing).

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension};

use super::SqliteStore;
use crate::transfer::{
    already_held, canonical_order, check, reseal, text_list, Cell, ImportOptions, Kind, Order,
    TableRows, TransferReport, WorkspaceDump, WorkspaceTransfer, AUDIT_COLUMNS, AUDIT_TABLE,
    TABLES,
};
use crate::StoreError;
use rapport_core::{WorkspaceName, GENESIS_HASH};

/// `$1` placeholders as SQLite writes them.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

fn read_cell(row: &rusqlite::Row<'_>, i: usize, kind: Kind) -> Result<Cell, StoreError> {
    Ok(match kind {
        Kind::Int | Kind::Bool => row.get::<_, Option<i64>>(i)?.map_or(Cell::Null, Cell::Int),
        Kind::Text => row
            .get::<_, Option<String>>(i)?
            .map_or(Cell::Null, Cell::Text),
        Kind::Bytes => row
            .get::<_, Option<Vec<u8>>>(i)?
            .map_or(Cell::Null, Cell::Bytes),
        Kind::TextList => match row.get::<_, Option<String>>(i)? {
            None => Cell::Null,
            Some(json) => {
                let items: Vec<String> = serde_json::from_str(&json).map_err(|e| {
                    StoreError::Internal(format!("stored identifier kinds are not a list: {e}"))
                })?;
                Cell::Text(text_list(&items))
            }
        },
    })
}

fn to_value(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Int(i) => Value::Integer(*i),
        Cell::Text(s) => Value::Text(s.clone()),
        Cell::Bytes(b) => Value::Blob(b.clone()),
    }
}

fn select(
    conn: &Connection,
    table: &str,
    columns: &[(&str, Kind)],
    condition: &str,
    order: &str,
    args: &[Value],
) -> Result<Vec<Vec<Cell>>, StoreError> {
    let cols: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let sql = sqlite_sql(&format!(
        "SELECT {} FROM {table} WHERE {condition}{order}",
        cols.join(", ")
    ));
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(columns.len());
        for (i, (_, kind)) in columns.iter().enumerate() {
            row.push(read_cell(r, i, *kind)?);
        }
        out.push(row);
    }
    Ok(out)
}

/// Reads the workspace `id` as it stands on `conn`; audit records after `audit_after` only.
fn dump(
    conn: &Connection,
    id: &str,
    name: &str,
    audit_after: i64,
) -> Result<WorkspaceDump, StoreError> {
    let mut tables = Vec::with_capacity(TABLES.len() + 1);
    let ws = [Value::Text(id.to_owned())];
    for spec in TABLES {
        let order = match spec.order {
            Order::Seq => " ORDER BY seq",
            Order::Creation => " ORDER BY rowid",
            Order::Sorted => "",
        };
        let mut rows = select(
            conn,
            spec.name,
            spec.columns,
            spec.scope.condition(),
            order,
            &ws,
        )?;
        canonical_order(spec.order, &mut rows);
        tables.push(TableRows {
            table: spec.name,
            rows,
        });
    }
    let audit = select(
        conn,
        AUDIT_TABLE,
        AUDIT_COLUMNS,
        "workspace_id = $1 AND seq > $2",
        " ORDER BY seq",
        &[Value::Text(id.to_owned()), Value::Integer(audit_after)],
    )?;
    tables.push(TableRows {
        table: AUDIT_TABLE,
        rows: audit,
    });
    Ok(WorkspaceDump {
        workspace_id: id.to_owned(),
        workspace_name: name.to_owned(),
        tables,
    })
}

/// Rows the target holds for workspace `id` in any table, the audit log included.
fn rows_held(conn: &Connection, id: &str) -> Result<i64, StoreError> {
    let mut total = 0;
    for spec in TABLES.iter().skip(1) {
        let sql = sqlite_sql(&format!(
            "SELECT count(*) FROM {} WHERE {}",
            spec.name,
            spec.scope.condition()
        ));
        total += conn.query_row(&sql, [id], |r| r.get::<_, i64>(0))?;
    }
    total += conn.query_row(
        "SELECT count(*) FROM audit_log WHERE workspace_id = ?1",
        [id],
        |r| r.get::<_, i64>(0),
    )?;
    Ok(total)
}

/// Deletes every row of workspace `id` but its audit records, children first.
fn delete_workspace(conn: &Connection, id: &str) -> Result<(), StoreError> {
    for spec in TABLES.iter().rev() {
        let sql = sqlite_sql(&format!(
            "DELETE FROM {} WHERE {}",
            spec.name,
            spec.scope.condition()
        ));
        conn.execute(&sql, [id])?;
    }
    Ok(())
}

fn import(
    conn: &Connection,
    dump: &WorkspaceDump,
    options: ImportOptions,
) -> Result<TransferReport, StoreError> {
    // The imported records are sealed after the chain's head below: waiting entries first.
    super::govern::flush_deferred_audit(conn)?;
    // The target's workspaces that clash by name or by id.
    let mut clashing: Vec<(String, String)> = Vec::new();
    {
        let mut stmt =
            conn.prepare("SELECT id, name FROM workspaces WHERE name = ?1 OR id = ?2")?;
        let mut rows = stmt.query([&dump.workspace_name, &dump.workspace_id])?;
        while let Some(r) = rows.next()? {
            clashing.push((r.get(0)?, r.get(1)?));
        }
    }
    let mut replaced = false;
    for (id, name) in &clashing {
        let held = rows_held(conn, id)?;
        if held > 0 && !options.replace {
            return Err(already_held(name, id, held));
        }
        replaced |= held > 0;
        delete_workspace(conn, id)?;
    }
    // Identities may have moved or vanished: the writer's identity cache starts over.
    super::cache::clear();

    for spec in TABLES {
        let cols: Vec<&str> = spec.columns.iter().map(|c| c.0).collect();
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let mut stmt = conn.prepare(&format!(
            "INSERT INTO {} ({}) VALUES ({})",
            spec.name,
            cols.join(", "),
            marks.join(", ")
        ))?;
        for row in dump.table(spec.name) {
            stmt.execute(params_from_iter(row.iter().map(to_value)))?;
        }
    }

    let head: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
    let records = reseal(dump.table(AUDIT_TABLE), seq, prev)?;
    {
        let mut insert = conn.prepare(
            "INSERT INTO audit_log (seq, at, workspace_id, actor, action, subject, details, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for r in &records {
            insert.execute(rusqlite::params![
                r.seq,
                r.at_ms,
                r.workspace,
                r.actor,
                r.action,
                r.subject,
                r.details,
                r.prev_hash,
                r.hash
            ])?;
        }
    }

    let back = self::dump(conn, &dump.workspace_id, &dump.workspace_name, seq)?;
    check(dump, &back, replaced, seq + 1)
}

#[async_trait]
impl WorkspaceTransfer for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn export_workspace(&self, name: &WorkspaceName) -> Result<WorkspaceDump, StoreError> {
        let name = name.as_str().to_owned();
        self.flush_deferred_audit().await?;
        self.read(move |conn| {
            // One read transaction: every table from the same snapshot.
            let tx = conn.unchecked_transaction()?;
            let id: Option<String> = tx
                .query_row("SELECT id FROM workspaces WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .optional()?;
            let id = id.ok_or_else(|| StoreError::NotFound(format!("workspace {name}")))?;
            let d = dump(&tx, &id, &name, 0)?;
            tx.finish()?;
            Ok(d)
        })
        .await
    }

    async fn import_workspace(
        &self,
        dump: &WorkspaceDump,
        options: ImportOptions,
    ) -> Result<TransferReport, StoreError> {
        let dump = dump.clone();
        self.write(move |conn| import(conn, &dump, options)).await
    }
}

#[cfg(test)]
mod coverage {
    use std::collections::BTreeSet;

    use super::super::schema;
    use crate::transfer::{AUDIT_COLUMNS, TABLES};

    /// Tables that hold no workspace data of their own: the audit log is copied apart,
    /// `audit_head` is the chain's single-row pointer, `audit_pending` holds audit entries
    /// waiting to join the chain (moved into it before an export reads it), and dashboard
    /// sessions are sign-ins to the source's servers (people sign in again on the target).
    const NOT_COPIED: &[&str] = &["audit_head", "audit_pending", "sessions"];

    /// An offer's contact is kept in its decision row (migration 20) and travels as the
    /// `nba_contacts` table, which SQLite keeps as a view of those rows.
    const CONTACT_COLUMNS: &[&str] = &["action_id", "channel", "outcome", "outcome_at"];

    #[test]
    fn contacts_travel_as_the_nba_contacts_view() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("db");
        schema::migrate(&mut conn).expect("migrate");
        let view: BTreeSet<String> = conn
            .prepare("SELECT name FROM pragma_table_info('nba_contacts')")
            .expect("stmt")
            .query_map([], |r| r.get(0))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect();
        let spec = TABLES
            .iter()
            .find(|s| s.name == "nba_contacts")
            .expect("spec");
        let copied: BTreeSet<String> = spec.columns.iter().map(|(c, _)| (*c).to_owned()).collect();
        assert_eq!(view, copied);
        for c in CONTACT_COLUMNS {
            assert!(copied.contains(*c), "{c}");
        }
    }

    /// A table or column added by a migration but not to the transfer would be lost by
    /// `rapport transfer` without any checksum noticing: this names it.
    #[test]
    fn every_table_and_column_of_the_schema_is_transferred() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("db");
        schema::migrate(&mut conn).expect("migrate");
        let tables: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .expect("stmt")
            .query_map([], |r| r.get(0))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect();
        let mut missing = Vec::new();
        for t in &tables {
            if NOT_COPIED.contains(&t.as_str()) {
                continue;
            }
            let columns: BTreeSet<String> = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
                .expect("stmt")
                .query_map([], |r| r.get(0))
                .expect("query")
                .map(|r| r.expect("row"))
                .collect();
            let copied: BTreeSet<String> = if t == crate::transfer::AUDIT_TABLE {
                AUDIT_COLUMNS.iter().map(|(c, _)| (*c).to_owned()).collect()
            } else if let Some(spec) = TABLES.iter().find(|s| s.name == t) {
                spec.columns.iter().map(|(c, _)| (*c).to_owned()).collect()
            } else {
                missing.push(format!("table {t}"));
                continue;
            };
            // Columns each side computes for itself: row ids and the audit chain's links.
            let own = ["seq", "prev_hash", "hash"];
            for c in columns.difference(&copied) {
                if t == "decisions" && CONTACT_COLUMNS.contains(&c.as_str()) {
                    continue;
                }
                if !own.contains(&c.as_str()) {
                    missing.push(format!("{t}.{c}"));
                }
            }
        }
        assert!(missing.is_empty(), "not transferred: {missing:?}");
    }
}
