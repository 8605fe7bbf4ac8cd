//! Copying a whole farm from one database into another, new one (`castanet manager
//! migrate-db`, e.g. from SQLite to PostgreSQL): every table, row for row, in one write
//! transaction on the destination that commits only when every table's count matches the
//! source's. The source is read in one snapshot.
use futures::TryStreamExt;
use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{Any, AssertSqlSafe, Column, Row, Transaction, ValueRef};

use super::{Engine, Store, StoreError, StoreResult};

/// Every table of the schema, in an order their foreign keys allow (a test checks the list
/// against both engines' schemas).
pub const FARM_TABLES: &[&str] = &[
    "worker_tags",
    "jobs",
    "workers",
    "worker_tag_membership",
    "tasks",
    "task_dependencies",
    "task_failures",
    "job_blocklist",
    "sleep_schedules",
    "last_rendered",
    "status_events",
    "job_task_counts",
    "api_tokens",
    "audit_log",
    "registration_secret",
    "deleted_job_dirs",
    "job_dependencies",
    "notification_rules",
    "notification_deliveries",
    "notification_subjects",
    "rendered_frames",
    "preview_videos",
];

/// Tables whose SQLite rowid the store uses (the scheduler's tie-break, newest-first order);
/// PostgreSQL has it as a column of that name.
const ROWID_TABLES: &[&str] = &["tasks", "last_rendered"];

/// PostgreSQL columns fed by a sequence: after rows came with their values, the sequence
/// goes on after the highest.
const SEQUENCED: &[(&str, &str)] = &[
    ("tasks", "rowid"),
    ("last_rendered", "rowid"),
    ("status_events", "id"),
    ("audit_log", "id"),
];

/// Rows per INSERT statement.
const ROWS_PER_INSERT: usize = 200;

/// What one table's copy moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCopy {
    pub table: &'static str,
    pub rows: u64,
}

/// One stored value, as it goes from one engine to the other.
enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Store {
    /// Copies every table of this store into `destination`, which must hold no farm yet.
    /// `progress` hears each table's count as its rows go in. Nothing is written unless all of it is.
    pub async fn copy_farm_into(
        &self,
        destination: &Store,
        mut progress: impl FnMut(&TableCopy),
    ) -> StoreResult<Vec<TableCopy>> {
        let mut source = self.read.begin().await?;
        if self.engine == Engine::Postgres {
            // Every table read as of one moment.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *source)
                .await?;
        }
        let mut target = destination.begin().await?;
        refuse_a_farm_in(&mut target, &destination.location.to_string()).await?;
        let mut copied = Vec::new();
        for &table in FARM_TABLES {
            let select = match (self.engine, ROWID_TABLES.contains(&table)) {
                (Engine::Sqlite, true) => format!("SELECT rowid, * FROM {table}"),
                _ => format!("SELECT * FROM {table}"),
            };
            // Streamed: a farm's million tasks need not fit in memory at once.
            let mut rows = sqlx::query(AssertSqlSafe(select)).fetch(&mut *source);
            let mut copy = TableCopy { table, rows: 0 };
            let mut chunk = Vec::with_capacity(ROWS_PER_INSERT);
            loop {
                let row = rows.try_next().await?;
                let done = row.is_none();
                chunk.extend(row);
                if chunk.len() == ROWS_PER_INSERT || (done && !chunk.is_empty()) {
                    insert(&mut target, table, &chunk).await?;
                    copy.rows += chunk.len() as u64;
                    chunk.clear();
                    progress(&copy);
                }
                if done {
                    break;
                }
            }
            copied.push(copy);
        }
        if destination.engine == Engine::Postgres {
            for (table, column) in SEQUENCED {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                                   COALESCE(MAX({column}), 0) + 1, false) FROM {table}"
                )))
                .execute(&mut *target)
                .await?;
            }
        }
        for copy in &copied {
            let stored = count(&mut target, copy.table).await?;
            if stored != copy.rows {
                return Err(StoreError::Corrupt(format!(
                    "table {}: {} rows read but {stored} stored; nothing was committed",
                    copy.table, copy.rows
                )));
            }
        }
        target.commit().await?;
        Ok(copied)
    }
}

async fn count(tx: &mut Transaction<'static, Any>, table: &str) -> StoreResult<u64> {
    let (n,): (i64,) = sqlx::query_as(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&mut **tx)
        .await?;
    Ok(n as u64)
}

/// A destination that already holds rows is refused: merging two farms is not a copy.
async fn refuse_a_farm_in(tx: &mut Transaction<'static, Any>, name: &str) -> StoreResult<()> {
    let mut held = Vec::new();
    for &table in FARM_TABLES {
        let n = count(tx, table).await?;
        if n > 0 {
            held.push(format!("{table}: {n}"));
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    Err(StoreError::Refused(format!(
        "the destination {name} already holds a farm ({}); migrate into a new, empty database",
        held.join(", ")
    )))
}

/// One multi-row INSERT of `rows` (all of `table`, same columns). NULLs are written as
/// literals: a bound NULL carries a type, which PostgreSQL checks against the column's.
async fn insert(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    rows: &[AnyRow],
) -> StoreResult<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let columns: Vec<&str> = first.columns().iter().map(|c| c.name()).collect();
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut cells = Vec::with_capacity(rows.len() * columns.len());
    for (r, row) in rows.iter().enumerate() {
        sql.push_str(if r == 0 { "(" } else { ",(" });
        for c in 0..columns.len() {
            if c > 0 {
                sql.push(',');
            }
            match cell(row, c)? {
                Cell::Null => sql.push_str("NULL"),
                value => {
                    cells.push(value);
                    sql.push('$');
                    sql.push_str(&cells.len().to_string());
                }
            }
        }
        sql.push(')');
    }
    let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
    for value in cells {
        query = match value {
            Cell::Null => query,
            Cell::Integer(v) => query.bind(v),
            Cell::Real(v) => query.bind(v),
            Cell::Text(v) => query.bind(v),
            Cell::Blob(v) => query.bind(v),
        };
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

fn cell(row: &AnyRow, index: usize) -> StoreResult<Cell> {
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    let kind = raw.type_info().kind();
    Ok(match kind {
        AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
            Cell::Integer(row.try_get(index)?)
        }
        AnyTypeInfoKind::Bool => Cell::Integer(i64::from(row.try_get::<bool, _>(index)?)),
        AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => Cell::Real(row.try_get(index)?),
        AnyTypeInfoKind::Text => Cell::Text(row.try_get(index)?),
        AnyTypeInfoKind::Blob => Cell::Blob(row.try_get(index)?),
        AnyTypeInfoKind::Null => Cell::Null,
    })
}
