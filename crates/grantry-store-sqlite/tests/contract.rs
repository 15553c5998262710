//! The store contract against SQLite, each test on a fresh database file.

use std::sync::Arc;

use grantry_core::store::Store;

async fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = grantry_store_sqlite::open_and_migrate(&dir.path().join("grantry.db"))
        .await
        .unwrap();
    (dir, Arc::new(store))
}

grantry_store_tests::store_contract!(fresh());

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grantry.db");
    let store = grantry_store_sqlite::open_and_migrate(&path).await.unwrap();
    assert_eq!(
        store.engine().schema_version().await.unwrap(),
        grantry_store_sqlite::SCHEMA_VERSION
    );
    sqlx_bump(&path).await;
    let error = grantry_store_sqlite::open_and_migrate(&path)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("newer than this Grantry"), "{error}");
    store.engine().close().await;
}

/// Pretends a newer Grantry migrated the database.
async fn sqlx_bump(path: &std::path::Path) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", path.display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'from the future', TRUE, x'00', 0)",
    )
    .execute(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn migrating_twice_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grantry.db");
    grantry_store_sqlite::open_and_migrate(&path)
        .await
        .unwrap()
        .engine()
        .close()
        .await;
    grantry_store_sqlite::open_and_migrate(&path)
        .await
        .unwrap()
        .engine()
        .close()
        .await;
}
