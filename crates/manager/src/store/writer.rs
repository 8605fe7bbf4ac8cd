//! Keeping the single writer connection usable after a failed write. When a write fails with
//! "database or disk is full" (or an I/O error), SQLite may roll the whole transaction back
//! by itself; sqlx does not notice and still counts the transaction as open, so its rollback
//! fails and the next `begin` issues a SAVEPOINT instead of BEGIN. That savepoint opens a
//! transaction nothing ever commits: every later write was answered as done and lost, and
//! the connection held the write lock until a restart. So before the writer is handed out,
//! a connection still counted inside a transaction is closed and replaced (closing rolls
//! back whatever SQLite still had open).
use sqlx::pool::PoolConnectionMetadata;
use sqlx::{AnyConnection, Connection};

use super::StoreError;

/// The pool's `before_acquire` check: `false` replaces the connection.
pub(super) async fn writer_is_clean(
    connection: &mut AnyConnection,
    _: PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    // The usual case costs one atomic read.
    if !connection.is_in_transaction() {
        return Ok(true);
    }
    // A transaction dropped without commit queues its rollback; a ping runs after it.
    connection.ping().await?;
    if !connection.is_in_transaction() {
        return Ok(true);
    }
    tracing::error!(
        "the database writer was left inside a transaction SQLite had already rolled back \
         (after a failed write); replacing the connection"
    );
    Ok(false)
}

impl StoreError {
    /// The database or its disk is full (SQLITE_FULL, PostgreSQL's disk_full): the write was
    /// not stored.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::NoSpace(_))
            || self
                .sqlite_code()
                .is_some_and(|code| code & 0xff == SQLITE_FULL)
            || self.postgres_code().as_deref() == Some(POSTGRES_DISK_FULL)
    }

    /// A text value the database cannot hold: PostgreSQL refuses a NUL character in text
    /// (SQLite stores it). The request carried it, so it is the request's fault.
    pub fn is_unstorable_text(&self) -> bool {
        self.postgres_code().as_deref() == Some(POSTGRES_CHARACTER_NOT_IN_REPERTOIRE)
    }

    /// The database file could not be read or written (SQLITE_IOERR and its variants).
    pub fn is_io_error(&self) -> bool {
        self.sqlite_code()
            .is_some_and(|code| code & 0xff == SQLITE_IOERR)
    }

    fn sqlite_code(&self) -> Option<i64> {
        match self {
            StoreError::Db(sqlx::Error::Database(error))
                if error
                    .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                    .is_some() =>
            {
                error.code()?.parse().ok()
            }
            _ => None,
        }
    }

    fn postgres_code(&self) -> Option<String> {
        match self {
            StoreError::Db(sqlx::Error::Database(error))
                if error
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some() =>
            {
                Some(error.code()?.into_owned())
            }
            _ => None,
        }
    }
}

/// PostgreSQL's SQLSTATEs the manager tells apart.
const POSTGRES_DISK_FULL: &str = "53100";
const POSTGRES_CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";

/// SQLite's primary result codes (the low byte of an extended code).
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;
