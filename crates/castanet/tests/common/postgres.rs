//! Databases on the test PostgreSQL server (`CASTANET_TEST_POSTGRES`, which `cargo xtask
//! test` starts): one new, empty database per use.

/// A new, empty database on `server` (a URL naming any of its databases); its URL.
pub async fn new_database(server: &str) -> String {
    let name = format!("castanet_test_{}", uuid::Uuid::new_v4().simple());
    castanet_manager::store::create_postgres_database(server, &name)
        .await
        .expect("a test database is created on CASTANET_TEST_POSTGRES")
}
