//! The PostgreSQL side of [`crate::transfer`]: reading a workspace in one REPEATABLE READ
//! snapshot and writing one in one transaction, each table with multi-row
//! `INSERT ... SELECT FROM unnest(...)` statements in chunks.

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{exec, pg_error, query, query_opt, Failure, PostgresStore};
use crate::transfer::{
    already_held, canonical_order, check, reseal, text_list, Cell, ImportOptions, Kind, Order,
    TableRows, TransferReport, WorkspaceDump, WorkspaceTransfer, AUDIT_COLUMNS, AUDIT_TABLE,
    TABLES,
};
use crate::StoreError;
use rapport_core::WorkspaceName;

/// Rows per multi-row insert.
const CHUNK: usize = 2_000;

fn read_cell(row: &Row, i: usize, kind: Kind) -> Result<Cell, StoreError> {
    let bad = |e: tokio_postgres::Error| StoreError::Internal(format!("column {i}: {e}"));
    Ok(match kind {
        Kind::Int => row
            .try_get::<_, Option<i64>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, Cell::Int),
        Kind::Bool => row
            .try_get::<_, Option<bool>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, |b| Cell::Int(i64::from(b))),
        Kind::Text => row
            .try_get::<_, Option<String>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, Cell::Text),
        Kind::Bytes => row
            .try_get::<_, Option<Vec<u8>>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, Cell::Bytes),
        Kind::TextList => row
            .try_get::<_, Option<Vec<String>>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, |v| Cell::Text(text_list(&v))),
    })
}

async fn select(
    tx: &Transaction<'_>,
    table: &str,
    columns: &[(&str, Kind)],
    condition: &str,
    order: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Vec<Cell>>, StoreError> {
    let cols: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let sql = format!(
        "SELECT {} FROM {table} WHERE {condition}{order}",
        cols.join(", ")
    );
    let rows = query(tx, &sql, args).await.map_err(pg_error)?;
    rows.iter()
        .map(|r| {
            columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| read_cell(r, i, *kind))
                .collect()
        })
        .collect()
}

/// Reads workspace `id` as `tx` sees it; audit records after `audit_after` only.
async fn dump(
    tx: &Transaction<'_>,
    id: &str,
    name: &str,
    audit_after: i64,
) -> Result<WorkspaceDump, StoreError> {
    let mut tables = Vec::with_capacity(TABLES.len() + 1);
    for spec in TABLES {
        let order = match spec.order {
            Order::Seq | Order::Creation => " ORDER BY seq",
            Order::Sorted => "",
        };
        let mut rows = select(
            tx,
            spec.name,
            spec.columns,
            spec.scope.condition(),
            order,
            &[&id],
        )
        .await?;
        canonical_order(spec.order, &mut rows);
        tables.push(TableRows {
            table: spec.name,
            rows,
        });
    }
    let audit = select(
        tx,
        AUDIT_TABLE,
        AUDIT_COLUMNS,
        "workspace_id = $1 AND seq > $2",
        " ORDER BY seq",
        &[&id, &audit_after],
    )
    .await?;
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

/// One column of a chunk, as the array parameter `unnest` takes.
fn column_param(
    rows: &[Vec<Cell>],
    i: usize,
    kind: Kind,
) -> Result<Box<dyn ToSql + Sync + Send>, StoreError> {
    let wrong =
        |c: &Cell| StoreError::InvalidInput(format!("unexpected value {c:?} in column {i}"));
    Ok(match kind {
        Kind::Int => Box::new(
            rows.iter()
                .map(|r| match &r[i] {
                    Cell::Null => Ok(None),
                    Cell::Int(v) => Ok(Some(*v)),
                    c => Err(wrong(c)),
                })
                .collect::<Result<Vec<Option<i64>>, _>>()?,
        ),
        Kind::Bool => Box::new(
            rows.iter()
                .map(|r| match &r[i] {
                    Cell::Null => Ok(None),
                    Cell::Int(v) => Ok(Some(*v != 0)),
                    c => Err(wrong(c)),
                })
                .collect::<Result<Vec<Option<bool>>, _>>()?,
        ),
        Kind::Text | Kind::TextList => Box::new(
            rows.iter()
                .map(|r| match &r[i] {
                    Cell::Null => Ok(None),
                    Cell::Text(v) => Ok(Some(v.clone())),
                    c => Err(wrong(c)),
                })
                .collect::<Result<Vec<Option<String>>, _>>()?,
        ),
        Kind::Bytes => Box::new(
            rows.iter()
                .map(|r| match &r[i] {
                    Cell::Null => Ok(None),
                    Cell::Bytes(v) => Ok(Some(v.clone())),
                    c => Err(wrong(c)),
                })
                .collect::<Result<Vec<Option<Vec<u8>>>, _>>()?,
        ),
    })
}

/// `INSERT INTO table (...) SELECT ... FROM unnest($1::.., ...) WITH ORDINALITY ... ORDER BY`
/// the array position, so generated sequence numbers follow the rows' order.
fn insert_sql(table: &str, columns: &[(&str, Kind)]) -> String {
    let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, k))| {
            let t = match k {
                Kind::Int => "int8",
                Kind::Bool => "bool",
                Kind::Text | Kind::TextList => "text",
                Kind::Bytes => "bytea",
            };
            format!("${}::{t}[]", i + 1)
        })
        .collect();
    let values: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, k))| match k {
            Kind::TextList => {
                format!("ARRAY(SELECT json_array_elements_text(u.c{i}::json))")
            }
            _ => format!("u.c{i}"),
        })
        .collect();
    let aliases: Vec<String> = (0..columns.len()).map(|i| format!("c{i}")).collect();
    format!(
        "INSERT INTO {table} ({}) SELECT {} FROM unnest({}) WITH ORDINALITY AS u({}, ord) ORDER BY ord",
        names.join(", "),
        values.join(", "),
        arrays.join(", "),
        aliases.join(", ")
    )
}

async fn insert_rows(
    tx: &Transaction<'_>,
    table: &str,
    columns: &[(&str, Kind)],
    rows: &[Vec<Cell>],
) -> Result<(), Failure> {
    let sql = insert_sql(table, columns);
    for chunk in rows.chunks(CHUNK) {
        let params = columns
            .iter()
            .enumerate()
            .map(|(i, (_, k))| column_param(chunk, i, *k))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        exec(tx, &sql, &refs).await?;
    }
    Ok(())
}

async fn rows_held(tx: &Transaction<'_>, id: &str) -> Result<i64, Failure> {
    let mut total = 0;
    for spec in TABLES.iter().skip(1) {
        let sql = format!(
            "SELECT count(*) FROM {} WHERE {}",
            spec.name,
            spec.scope.condition()
        );
        total += query_opt(tx, &sql, &[&id])
            .await?
            .map_or(0, |r| r.get::<_, i64>(0));
    }
    total += query_opt(
        tx,
        "SELECT count(*) FROM audit_log WHERE workspace_id = $1",
        &[&id],
    )
    .await?
    .map_or(0, |r| r.get::<_, i64>(0));
    Ok(total)
}

async fn import(
    tx: &Transaction<'_>,
    dump: &WorkspaceDump,
    options: ImportOptions,
) -> Result<TransferReport, Failure> {
    // Serialises concurrent imports of the same workspace (and its name) on this server.
    let clashing: Vec<(String, String)> = query(
        tx,
        "SELECT id, name FROM workspaces WHERE name = $1 OR id = $2 FOR UPDATE",
        &[&dump.workspace_name, &dump.workspace_id],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let mut replaced = false;
    for (id, name) in &clashing {
        let held = rows_held(tx, id).await?;
        if held > 0 && !options.replace {
            return Err(already_held(name, id, held).into());
        }
        replaced |= held > 0;
        for spec in TABLES.iter().rev() {
            let sql = format!("DELETE FROM {} WHERE {}", spec.name, spec.scope.condition());
            exec(tx, &sql, &[id]).await?;
        }
    }
    for spec in TABLES {
        insert_rows(tx, spec.name, spec.columns, dump.table(spec.name)).await?;
    }

    // The audit head is locked last, as every appender does (see `govern`).
    let head = query_opt(tx, "SELECT seq, hash FROM audit_head FOR UPDATE", &[])
        .await?
        .ok_or_else(|| StoreError::Internal("audit_head row missing".into()))?;
    let (seq, prev): (i64, String) = (head.get(0), head.get(1));
    let records = reseal(dump.table(AUDIT_TABLE), seq, prev.clone())?;
    for chunk in records.chunks(CHUNK) {
        let seqs: Vec<i64> = chunk.iter().map(|r| r.seq).collect();
        let ats: Vec<i64> = chunk.iter().map(|r| r.at_ms).collect();
        let wss: Vec<Option<String>> = chunk.iter().map(|r| r.workspace.clone()).collect();
        let actors: Vec<String> = chunk.iter().map(|r| r.actor.clone()).collect();
        let actions: Vec<String> = chunk.iter().map(|r| r.action.clone()).collect();
        let subjects: Vec<Option<String>> = chunk.iter().map(|r| r.subject.clone()).collect();
        let details: Vec<String> = chunk.iter().map(|r| r.details.clone()).collect();
        let prevs: Vec<String> = chunk.iter().map(|r| r.prev_hash.clone()).collect();
        let hashes: Vec<String> = chunk.iter().map(|r| r.hash.clone()).collect();
        exec(
            tx,
            "INSERT INTO audit_log (seq, at, workspace_id, actor, action, subject, details, prev_hash, hash)
             SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::text[], $8::text[], $9::text[])",
            &[
                &seqs, &ats, &wss, &actors, &actions, &subjects, &details, &prevs, &hashes,
            ],
        )
        .await?;
    }
    if let Some(last) = records.last() {
        exec(
            tx,
            "UPDATE audit_head SET seq = $1, hash = $2",
            &[&last.seq, &last.hash],
        )
        .await?;
    }

    let back = self::dump(tx, &dump.workspace_id, &dump.workspace_name, seq).await?;
    Ok(check(dump, &back, replaced, seq + 1)?)
}

#[async_trait]
impl WorkspaceTransfer for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn export_workspace(&self, name: &WorkspaceName) -> Result<WorkspaceDump, StoreError> {
        let name = name.as_str().to_owned();
        self.read(|tx| {
            Box::pin(async move {
                let id: String =
                    query_opt(tx, "SELECT id FROM workspaces WHERE name = $1", &[&name])
                        .await
                        .map_err(pg_error)?
                        .ok_or_else(|| StoreError::NotFound(format!("workspace {name}")))?
                        .get(0);
                dump(tx, &id, &name, 0).await
            })
        })
        .await
    }

    async fn import_workspace(
        &self,
        dump: &WorkspaceDump,
        options: ImportOptions,
    ) -> Result<TransferReport, StoreError> {
        let dump = Arc::new(dump.clone());
        self.write(|tx| {
            let dump = dump.clone();
            Box::pin(async move { import(tx, &dump, options).await })
        })
        .await
    }
}
