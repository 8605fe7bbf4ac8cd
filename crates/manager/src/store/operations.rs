//! Operations on the database as a whole: readiness, counts for metrics, online backup.
use std::path::{Path, PathBuf};

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use super::{Engine, Store, StoreError, StoreResult};

/// Below this much free space where the database lives, the manager is not ready: a job's
/// tasks and the WAL need room.
const MIN_FREE_BYTES: u64 = 16 * 1024 * 1024;

/// Rows per status of one table, for metrics.
pub type StatusCounts = Vec<(String, i64)>;

impl Store {
    /// Checks that the database takes writes and has every migration applied; returns
    /// the number of applied migrations.
    pub async fn check_ready(&self) -> StoreResult<i64> {
        let mut tx = self.begin().await?;
        // A commit that writes, as every real one does, so a full disk fails readiness too:
        // rewriting SQLite's (unused) user version appends to the WAL; taking a transaction
        // id makes PostgreSQL log the commit.
        let write = match self.engine {
            Engine::Sqlite => "PRAGMA user_version = 0",
            Engine::Postgres => "SELECT txid_current()",
        };
        sqlx::query(write).execute(&mut *tx).await?;
        tx.commit().await?;
        if let Some(database) = self.location.sqlite_file() {
            check_free_space(database)?;
        }
        let (applied,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.read)
                .await?;
        let expected = super::migrations(self.engine).iter().count() as i64;
        if applied < expected {
            return Err(StoreError::Corrupt(format!(
                "{applied} of {expected} migrations applied"
            )));
        }
        Ok(applied)
    }

    /// The database's size on disk: the SQLite file and its WAL, or what PostgreSQL
    /// counts for the database.
    pub async fn database_bytes(&self) -> StoreResult<u64> {
        let Some(database) = self.location.sqlite_file() else {
            let (bytes,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
                .fetch_one(&self.read)
                .await?;
            return Ok(bytes.max(0) as u64);
        };
        let mut bytes = 0;
        for suffix in ["", "-wal"] {
            let mut path = database.as_os_str().to_os_string();
            path.push(suffix);
            bytes += tokio::fs::metadata(&path)
                .await
                .map(|m| m.len())
                .unwrap_or(0);
        }
        Ok(bytes)
    }

    async fn counts(&self, sql: &'static str) -> StoreResult<StatusCounts> {
        Ok(sqlx::query_as(sql).fetch_all(&self.read).await?)
    }

    pub async fn task_status_counts(&self) -> StoreResult<StatusCounts> {
        self.counts("SELECT status, COUNT(*) FROM tasks GROUP BY status")
            .await
    }

    pub async fn job_status_counts(&self) -> StoreResult<StatusCounts> {
        self.counts("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .await
    }

    pub async fn worker_status_counts(&self) -> StoreResult<StatusCounts> {
        self.counts("SELECT status, COUNT(*) FROM workers WHERE deleted_at IS NULL GROUP BY status")
            .await
    }
}

/// Copies the database at `database` into a new file `destination`, consistently, while
/// a manager may be using it (SQLite's `VACUUM INTO` reads one snapshot). The copy is written
/// next to `destination` as `<name>.partial-<random>`, flushed to disk, and only then given
/// its name: a backup killed half-way leaves no file under that name, only `<name>.partial-…`
/// ones.
pub async fn backup(database: &Path, destination: &Path) -> StoreResult<()> {
    // symlink_metadata: a dangling link takes the name too.
    if std::fs::symlink_metadata(destination).is_ok() {
        return Err(exists_already(destination));
    }
    if !database.exists() {
        return Err(StoreError::NotFound(format!(
            "no database at {}",
            database.display()
        )));
    }
    let partial = partial_name(destination);
    let mut placed = copy_into(database, &partial).await;
    if placed.is_ok() {
        let (from, to) = (partial.clone(), destination.to_path_buf());
        placed = tokio::task::spawn_blocking(move || place(&from, &to))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => exists_already(destination),
                _ => file_error(destination, e),
            });
    }
    // After a hard link this is the backup's second name; after a failure, a half copy
    // (with the journal SQLite keeps while writing it).
    let _ = tokio::fs::remove_file(&partial).await;
    if placed.is_err() {
        let mut journal = partial.into_os_string();
        journal.push("-journal");
        let _ = tokio::fs::remove_file(journal).await;
    }
    placed
}

fn exists_already(destination: &Path) -> StoreError {
    StoreError::NotFound(format!(
        "{} exists already; choose a new file for the backup",
        destination.display()
    ))
}

fn file_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::File {
        path: path.display().to_string(),
        source,
    }
}

/// `<destination>.partial-<8 random hex digits>`, in the destination's folder.
fn partial_name(destination: &Path) -> PathBuf {
    let name = destination
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    destination.with_file_name(format!("{name}.partial-{}", &random[..8]))
}

/// `VACUUM INTO partial`, then flushed to disk (SQLite leaves that to the OS).
async fn copy_into(database: &Path, partial: &Path) -> StoreResult<()> {
    let mut connection = SqliteConnectOptions::new()
        .filename(database)
        .read_only(true)
        .busy_timeout(std::time::Duration::from_secs(20))
        .connect()
        .await?;
    sqlx::query("VACUUM INTO ?")
        .bind(partial.to_string_lossy().into_owned())
        .execute(&mut connection)
        .await?;
    drop(connection);
    let synced = partial.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&synced)?.sync_all())
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
        .map_err(|e| file_error(partial, e))
}

/// Gives the finished copy its name without replacing a file that appeared meanwhile: a
/// hard link fails when the name is taken. File systems without hard links (some network
/// shares) get the name reserved, then the copy renamed over the reservation.
fn place(partial: &Path, destination: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(partial, destination) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(e),
        // Not necessarily unsupported (EPERM is what some file systems answer): the
        // reservation below tells a taken name and a refused folder apart.
        Err(_) => place_without_hard_link(partial, destination)?,
    }
    // The new name on disk too; a folder that cannot be opened or synced changes nothing.
    let folder = destination
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(folder) = std::fs::File::open(folder) {
        let _ = folder.sync_all();
    }
    Ok(())
}

/// Reserves `destination` (creating it only if no file, link or folder has that name) and
/// renames `partial` over the reservation. AlreadyExists when the name is taken;
/// PermissionDenied and other errors as the file system gives them.
fn place_without_hard_link(partial: &Path, destination: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(destination)?;
    if let Err(e) = std::fs::rename(partial, destination) {
        // Only the empty reservation this call made goes.
        if std::fs::symlink_metadata(destination).is_ok_and(|m| m.is_file() && m.len() == 0) {
            let _ = std::fs::remove_file(destination);
        }
        return Err(e);
    }
    Ok(())
}

/// A small commit may still fit where a job's tasks no longer do: the SQLite file's disk
/// needs room to spare.
fn check_free_space(database: &Path) -> StoreResult<()> {
    let folder = database
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let free = castanet_protocol::disk::free_bytes(folder).map_err(|e| {
        StoreError::NoSpace(format!(
            "cannot tell the free space of {}: {e}",
            folder.display()
        ))
    })?;
    if free < MIN_FREE_BYTES {
        return Err(StoreError::NoSpace(format!(
            "the database's disk ({}) has {free} bytes free; at least {MIN_FREE_BYTES} are needed",
            folder.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_hard_links_a_file_created_before_placing_is_kept_and_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let partial = dir.path().join("b.sqlite.partial-1");
        let destination = dir.path().join("b.sqlite");
        std::fs::write(&partial, b"copy").expect("partial");
        std::fs::write(&destination, b"someone else's").expect("destination");
        let placed = place_without_hard_link(&partial, &destination);
        assert_eq!(
            placed.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::AlreadyExists)
        );
        assert_eq!(
            std::fs::read(&destination).expect("kept"),
            b"someone else's"
        );

        std::fs::remove_file(&destination).expect("removed");
        place_without_hard_link(&partial, &destination).expect("placed");
        assert_eq!(std::fs::read(&destination).expect("placed"), b"copy");
        assert!(!partial.exists());
    }
}
