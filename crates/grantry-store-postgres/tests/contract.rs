//! The store contract against PostgreSQL, each test in a database of its own, dropped afterwards.
//! The server is `TEST_POSTGRES_URL` (default: the machine's, postgres@127.0.0.1:5432).

use std::sync::Arc;

use grantry_core::store::Store;
use grantry_store_postgres::testing::TestDatabase;

async fn fresh() -> (TestDatabase, Arc<dyn Store>) {
    let database = TestDatabase::create().await;
    let store = grantry_store_postgres::connect(database.options(), 4)
        .await
        .unwrap();
    store.engine().migrate().await.unwrap();
    (database, Arc::new(store))
}

grantry_store_tests::store_contract!(fresh());

#[tokio::test]
async fn a_newer_schema_is_refused_and_migrating_twice_is_harmless() {
    let (database, _) = fresh().await;
    let store = grantry_store_postgres::connect(database.options(), 2)
        .await
        .unwrap();
    store.engine().migrate().await.unwrap();
    assert_eq!(
        store.engine().schema_version().await.unwrap(),
        grantry_store_postgres::SCHEMA_VERSION
    );
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'future', TRUE, decode('00', 'hex'), 0)")
        .execute(store.engine().pool())
        .await
        .unwrap();
    let error = store.engine().migrate().await.unwrap_err().to_string();
    assert!(error.contains("newer than this Grantry"), "{error}");
    store.engine().close().await;
}
