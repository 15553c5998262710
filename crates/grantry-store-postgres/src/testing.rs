//! For tests (feature `testing`): a database of its own for each test, on the PostgreSQL server
//! named by `TEST_POSTGRES_URL` (default: `postgres://postgres@127.0.0.1:5432/test`), dropped
//! with whatever still connects to it when the test ends.

use std::str::FromStr;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

pub fn server_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A throwaway database; dropped when this goes.
#[derive(Debug)]
pub struct TestDatabase {
    server: String,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database on the test server (no schema yet).
    pub async fn create() -> TestDatabase {
        TestDatabase::create_on(&server_url()).await
    }

    /// Creates an empty database on the server at `server` (a URL naming any database there).
    pub async fn create_on(server: &str) -> TestDatabase {
        let name = format!("grantry_test_{}", random_suffix());
        let mut admin = PgConnection::connect(server)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL for tests at {server}: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        TestDatabase {
            server: server.to_owned(),
            name,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn options(&self) -> PgConnectOptions {
        PgConnectOptions::from_str(&self.server)
            .expect("TEST_POSTGRES_URL is a PostgreSQL URL")
            .database(&self.name)
    }

    /// The database's size on disk, in bytes.
    pub async fn size(&self) -> u64 {
        let mut connection = PgConnection::connect(&self.url())
            .await
            .expect("connect to the test database");
        let (bytes,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
            .fetch_one(&mut connection)
            .await
            .expect("pg_database_size");
        u64::try_from(bytes).unwrap_or_default()
    }

    /// A URL for this database, e.g. for `GRANTRY_DATABASE_URL`.
    pub fn url(&self) -> String {
        let (base, query) = split_database(&self.server);
        match query {
            Some(query) => format!("{base}/{}?{query}", self.name),
            None => format!("{base}/{}", self.name),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop may run inside a runtime, which cannot be blocked on: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&server).await {
                    let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A server URL without its database name, and its query string.
fn split_database(server: &str) -> (&str, Option<&str>) {
    let (base, query) = server
        .split_once('?')
        .map_or((server, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    match base[scheme_end..].find('/') {
        Some(slash) => (&base[..scheme_end + slash], query),
        None => (base, query),
    }
}

fn random_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}_{:x}_{n}", std::process::id(), nanos)
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_database() {
        assert_eq!(
            super::split_database("postgres://postgres@127.0.0.1:5432/test"),
            ("postgres://postgres@127.0.0.1:5432", None)
        );
        assert_eq!(
            super::split_database("postgres://h/db?sslmode=disable"),
            ("postgres://h", Some("sslmode=disable"))
        );
    }
}
