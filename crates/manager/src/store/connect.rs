//! Where the manager's database is and how to connect to it: an SQLite file (the embedded
//! default) or a PostgreSQL server. Both are reached through sqlx's `Any` driver, so the rest
//! of the store runs one code path; `Engine` picks SQL where the dialects differ.
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

use super::{StoreError, StoreResult};

/// How long a PostgreSQL server may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The database engine behind a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine a connection belongs to (`AnyConnection::backend_name`).
    pub(super) fn of(connection: &sqlx::AnyConnection) -> Self {
        if connection.backend_name() == "PostgreSQL" {
            Engine::Postgres
        } else {
            Engine::Sqlite
        }
    }

    /// `sqlite` or `postgres`, as the config's URL scheme spells it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// The config's `database`: `sqlite:FILE`, a plain file path (SQLite), or `postgres://…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseLocation {
    /// Reads the config's value; relative SQLite paths are taken relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return DatabaseLocation::Postgres(text.to_string());
        }
        let path = Path::new(text.strip_prefix("sqlite:").unwrap_or(text));
        DatabaseLocation::Sqlite(if path.is_absolute() {
            path.to_path_buf()
        } else {
            base.join(path)
        })
    }

    pub fn engine(&self) -> Engine {
        match self {
            DatabaseLocation::Sqlite(_) => Engine::Sqlite,
            DatabaseLocation::Postgres(_) => Engine::Postgres,
        }
    }

    /// The SQLite file, if that is the engine.
    pub fn sqlite_file(&self) -> Option<&Path> {
        match self {
            DatabaseLocation::Sqlite(path) => Some(path),
            DatabaseLocation::Postgres(_) => None,
        }
    }
}

impl std::fmt::Display for DatabaseLocation {
    /// For messages and logs: the file, or the server URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseLocation::Sqlite(path) => write!(f, "{}", path.display()),
            DatabaseLocation::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// The write pool (one connection: writes are serialised on both engines, so no
/// transaction ever fails on a conflict) and the read pool.
pub(super) struct Pools {
    pub read: AnyPool,
    pub write: super::leadership::Writer,
}

pub(super) async fn connect(location: &DatabaseLocation) -> StoreResult<Pools> {
    sqlx::any::install_default_drivers();
    match location {
        DatabaseLocation::Sqlite(path) => connect_sqlite(path).await,
        DatabaseLocation::Postgres(url) => connect_postgres(url).await,
    }
}

async fn connect_sqlite(path: &Path) -> StoreResult<Pools> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
            path: parent.display().to_string(),
            source,
        })?;
    }
    let url = |mode: &str| {
        let mut url = url::Url::parse("sqlite://").expect("a constant URL");
        url.set_path(&path.to_string_lossy());
        url.query_pairs_mut().append_pair("mode", mode);
        url.to_string()
    };
    // No ping before each use: the connections are local files, and a ping is one more
    // round trip to SQLite's thread per transaction. The pragmas hold per connection.
    let write = AnyPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection
                    .execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 20000;",
                    )
                    .await?;
                Ok(())
            })
        })
        .before_acquire(|connection, meta| {
            Box::pin(super::writer::writer_is_clean(connection, meta))
        })
        .connect_with(options(&url("rwc"))?)
        .await?;
    let migrations = super::migrations(Engine::Sqlite);
    refuse_newer_schema(&write, &migrations, &path.display().to_string()).await?;
    migrations.run(&write).await?;
    let read = AnyPoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection
                    .execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 20000;")
                    .await?;
                Ok(())
            })
        })
        .connect_with(options(&url("ro"))?)
        .await?;
    Ok(Pools {
        read,
        write: super::leadership::Writer::active(write),
    })
}

async fn connect_postgres(url: &str) -> StoreResult<Pools> {
    let options = options(url)?;
    // One connection first, to say what is wrong: a pool retries until its timeout and then
    // only says that it timed out.
    match tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect_with(&options)).await {
        Ok(Ok(probe)) => {
            let _ = probe.close().await;
        }
        Ok(Err(error)) => return Err(postgres_error(url, error)),
        Err(_) => return Err(postgres_error(url, sqlx::Error::PoolTimedOut)),
    }
    let read = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options.clone())
        .await
        .map_err(|e| postgres_error(url, e))?;
    refuse_newer_schema(
        &read,
        &super::migrations(Engine::Postgres),
        &without_password(url),
    )
    .await?;
    // No writer yet: `Store::open` takes over at once unless another manager is active.
    Ok(Pools {
        read,
        write: super::leadership::Writer::default(),
    })
}

fn options(url: &str) -> StoreResult<AnyConnectOptions> {
    with_keepalives(url)
        .parse::<AnyConnectOptions>()
        .map_err(|e| {
            StoreError::Config(format!(
                "database URL {} is not valid: {e}",
                without_password(url)
            ))
        })
}

/// Creates the empty database `name` (letters, digits, `_`) on the PostgreSQL server that
/// `server` reaches (a URL of any of its databases, whose user may create databases); returns
/// the new database's URL.
pub async fn create_postgres_database(server: &str, name: &str) -> StoreResult<String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Config(format!(
            "{name:?} is not a database name this creates (letters, digits and _ only)"
        )));
    }
    sqlx::any::install_default_drivers();
    let mut admin = AnyConnection::connect_with(&options(server)?)
        .await
        .map_err(|e| postgres_error(server, e))?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    let _ = admin.close().await;
    let mut url = url::Url::parse(server)
        .map_err(|e| StoreError::Config(format!("{}: {e}", without_password(server))))?;
    url.set_path(name);
    Ok(url.to_string())
}

/// PostgreSQL URLs get server-side TCP keepalives of a few seconds: when a manager's host
/// dies without closing its connections, the server notices within about 5 s and releases
/// the leader lock its writer held (the default is two hours), so a standby takes over.
fn with_keepalives(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return url.to_string();
    }
    let mut options: Vec<String> = parsed
        .query_pairs()
        .filter(|(key, _)| key == "options")
        .map(|(_, value)| value.into_owned())
        .collect();
    options.push(
        "-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3".into(),
    );
    let others: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(key, _)| key != "options")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(others)
        .append_pair("options", &options.join(" "));
    parsed.to_string()
}

/// A connection failure, said in terms of the config: which server, and what went wrong.
fn postgres_error(url: &str, error: sqlx::Error) -> StoreError {
    let server = without_password(url);
    let what = match &error {
        sqlx::Error::Io(e) => format!("cannot reach the PostgreSQL server at {server}: {e}"),
        sqlx::Error::PoolTimedOut => {
            format!("the PostgreSQL server at {server} did not answer within 10 s")
        }
        sqlx::Error::Database(db) if db.code().as_deref() == Some("28P01") => format!(
            "PostgreSQL at {server} refused the password (check the user and password in `database`)"
        ),
        sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000") => format!(
            "PostgreSQL at {server}: the database does not exist (create it first: createdb …)"
        ),
        other => format!("cannot connect to PostgreSQL at {server}: {other}"),
    };
    StoreError::Config(what)
}

/// A database a newer manager has migrated is left alone: this manager does not know its
/// tables, and migrating "back" is not a thing. Checked before anything is written.
async fn refuse_newer_schema(
    pool: &AnyPool,
    migrations: &sqlx::migrate::Migrator,
    database: &str,
) -> StoreResult<()> {
    // No table yet (a new database) reads as no version.
    let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await
        .unwrap_or(None);
    let known = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    match applied {
        Some(applied) if applied > known => Err(StoreError::Config(format!(
            "the database {database} has schema version {applied}, newer than this manager's \
             {known}: a newer Castanet wrote it. Run that version (or newer) of the manager; \
             nothing was changed"
        ))),
        _ => Ok(()),
    }
}
