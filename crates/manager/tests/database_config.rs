//! A database the manager cannot use gets one clear error naming the problem, and nothing is
//! written: an unreachable PostgreSQL server, a refused password, a database a newer manager
//! migrated. The PostgreSQL cases that need a server run when `CASTANET_TEST_POSTGRES` names
//! one (`cargo xtask test` starts one) and say they skip otherwise.
mod common;

use castanet_manager::store::{DatabaseLocation, Store};

async fn open_error(location: &DatabaseLocation) -> String {
    match Store::open(location).await {
        Ok(store) => {
            store.close().await;
            panic!("{location} opened")
        }
        Err(error) => error.to_string(),
    }
}

fn test_server() -> Option<String> {
    let server = std::env::var("CASTANET_TEST_POSTGRES").ok();
    if server.is_none() {
        println!("skipped: no CASTANET_TEST_POSTGRES server (cargo xtask postgres starts one)");
    }
    server
}

/// Marks `location`'s database as migrated by a newer manager: the store migrates it, then
/// a migration this manager does not know is recorded as applied.
async fn pretend_a_newer_manager_migrated(location: &DatabaseLocation) {
    Store::open(location).await.expect("opens").close().await;
    let record =
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                  VALUES (99990101000000, 'from the future', TRUE, '', 0)";
    assert_eq!(common::execute_on(location, record).await, 1);
}

#[tokio::test]
async fn an_unreachable_postgresql_server_is_named_without_its_password() {
    // Port 1 on loopback: nothing listens there.
    let location = DatabaseLocation::Postgres("postgres://farm:hunter2@127.0.0.1:1/farm".into());
    let error = open_error(&location).await;
    assert!(
        error
            .contains("cannot reach the PostgreSQL server at postgres://farm:***@127.0.0.1:1/farm"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
}

#[tokio::test]
async fn a_wrong_password_is_said_as_such() {
    let Some(server) = test_server() else { return };
    let mut url = url::Url::parse(&server).expect("a URL");
    url.set_password(Some("not-the-password"))
        .expect("a password");
    let error = open_error(&DatabaseLocation::Postgres(url.to_string())).await;
    assert!(error.contains("refused the password"), "{error}");
    assert!(!error.contains("not-the-password"), "{error}");
}

#[tokio::test]
async fn a_missing_postgresql_database_is_named() {
    let Some(server) = test_server() else { return };
    let mut url = url::Url::parse(&server).expect("a URL");
    url.set_path("no_such_farm");
    let error = open_error(&DatabaseLocation::Postgres(url.to_string())).await;
    assert!(error.contains("the database does not exist"), "{error}");
}

#[tokio::test]
async fn an_sqlite_database_of_a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("farm.sqlite");
    let location = DatabaseLocation::Sqlite(file.clone());
    pretend_a_newer_manager_migrated(&location).await;
    let before = std::fs::read(&file).expect("the database file");
    let error = open_error(&location).await;
    assert!(error.contains("schema version 99990101000000"), "{error}");
    assert!(error.contains("newer than this manager's"), "{error}");
    assert_eq!(std::fs::read(&file).expect("the database file"), before);
}

#[tokio::test]
async fn a_postgresql_database_of_a_newer_schema_is_refused_untouched() {
    if test_server().is_none() {
        return;
    }
    let url = common::postgres_database().await.expect("a test database");
    let location = DatabaseLocation::Postgres(url);
    pretend_a_newer_manager_migrated(&location).await;
    // Touches every row without changing one: the count of applied migrations.
    let applied = "UPDATE _sqlx_migrations SET description = description";
    let before = common::execute_on(&location, applied).await;
    let error = open_error(&location).await;
    assert!(error.contains("newer than this manager's"), "{error}");
    assert_eq!(common::execute_on(&location, applied).await, before);
}
