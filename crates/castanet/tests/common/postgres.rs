//! Databases on the test PostgreSQL server (`CASTANET_TEST_POSTGRES`, which `cargo xtask
//! test` starts): one new, empty database per use.
use sqlx::Connection;

/// A new, empty database on `server` (a URL naming any of its databases); its URL.
pub async fn new_database(server: &str) -> String {
    let name = format!("castanet_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .expect("the test PostgreSQL server answers");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("a test database is created");
    let _ = admin.close().await;
    let mut url = url::Url::parse(server).expect("CASTANET_TEST_POSTGRES is a URL");
    url.set_path(&name);
    url.to_string()
}
