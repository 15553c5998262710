//! Grantry on PostgreSQL: nodes sharing one database see each other's changes within a second,
//! also after losing the change feed, and `migrate-store` moves a SQLite broker over intact.
//! Each test has a database of its own on `TEST_POSTGRES_URL` (default: 127.0.0.1:5432).

use std::time::{Duration, Instant};

use crate::common::views::ApiKey;
use crate::common::views::cli::{MigrateReport, Tally};
use crate::common::{TestApp, expect};
use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;

/// How long another node may take to see a change.
const PROPAGATION: Duration = Duration::from_secs(1);

/// Polls `check` until it holds; answers how long that took, failing after [`PROPAGATION`].
async fn within_a_second<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            let took = started.elapsed();
            eprintln!(
                "{what}: seen by the other node after {} ms",
                took.as_millis()
            );
            return took;
        }
        assert!(
            started.elapsed() < PROPAGATION,
            "{what}: the other node did not see it within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_one_node_are_seen_by_another_within_a_second() {
    let a = TestApp::on_postgres(Mode::Rotating, |_| {}).await;
    let b = a.another_node().await;
    let kept = a.cloud_profile("Kept", &["account.read"], &[]).await;
    let doomed = a.cloud_profile("Doomed", &["account.read"], &[]).await;
    let connection = a.connect(&kept, "u1").await;
    let other = a.connect(&doomed, "u2").await;

    // Both nodes cache the token.
    let before = b.read_token(&connection).await.access_token;
    assert_eq!(a.read_token(&connection).await.access_token, before);
    assert_eq!(b.token(&other).await.0, StatusCode::OK);

    // A refresh on A: B hands out the new token, not the one it cached.
    let (status, refreshed) = a
        .app(
            Method::POST,
            &format!("/v1/connections/{connection}/refresh"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let after = a.read_token(&connection).await.access_token;
    assert_ne!(after, before);
    within_a_second("a refresh", || async {
        b.read_token(&connection).await.access_token == after
    })
    .await;

    // An API key revoked on A stops working on B, which had it cached.
    let key: ApiKey = expect(
        a.admin(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "short-lived", "role": "app"})),
        )
        .await,
        StatusCode::CREATED,
    );
    let secret = key.key.clone().unwrap();
    let read = format!("/v1/connections/{connection}/token");
    assert_eq!(
        b.call(Method::GET, &read, Some(&secret), None).await.0,
        StatusCode::OK
    );
    let id = &key.id;
    assert_eq!(
        a.admin(Method::DELETE, &format!("/v1/api-keys/{id}"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    within_a_second("an API key revocation", || async {
        b.call(Method::GET, &read, Some(&secret), None).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;

    // A connection deleted on A is gone on B.
    let (status, body) = a
        .admin(
            Method::DELETE,
            &format!("/v1/connections/{connection}"),
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    within_a_second("a connection deletion", || async {
        b.token(&connection).await.0 == StatusCode::NOT_FOUND
    })
    .await;

    // So are the connections of a profile deleted on A.
    let (status, body) = a
        .admin(Method::DELETE, &format!("/v1/profiles/{doomed}"), None)
        .await;
    assert!(status.is_success(), "{status} {body}");
    within_a_second("a profile deletion", || async {
        b.token(&other).await.0 == StatusCode::NOT_FOUND
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_the_change_feed_does_not_trust_its_cache() {
    let a = TestApp::on_postgres(Mode::Rotating, |_| {}).await;
    let b = a.another_node().await;
    let profile = a.cloud_profile("P", &["account.read"], &[]).await;
    let connection = a.connect(&profile, "u1").await;
    assert_eq!(b.token(&connection).await.0, StatusCode::OK);

    // Cut every listening connection (as a failover or a network blip would), then change
    // something at once, before the nodes can notice and listen again.
    let database = a.postgres.as_ref().unwrap();
    let mut admin = sqlx::PgConnection::connect(&database.url()).await.unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(cut.len(), 2, "one listener per node");
    let (status, body) = a
        .admin(
            Method::DELETE,
            &format!("/v1/connections/{connection}"),
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    within_a_second("a deletion made while the feed was cut", || async {
        b.token(&connection).await.0 == StatusCode::NOT_FOUND
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_moves_a_sqlite_broker_to_postgres() {
    let app = TestApp::start(Mode::Rotating).await;
    let cloud = app.cloud_profile("Cloud", &["account.read"], &[]).await;
    let dc = app.dc_profile("DC", &["REPO_READ"], &[]).await;
    let cloud_connection = app.connect(&cloud, "u1").await;
    let dc_connection = app.connect(&dc, "u2").await;
    let cloud_token = app.read_token(&cloud_connection).await.access_token;
    let dc_token = app.read_token(&dc_connection).await.access_token;
    let revoked: ApiKey = expect(
        app.admin(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "retired", "role": "app"})),
        )
        .await,
        StatusCode::CREATED,
    );
    let revoked_secret = revoked.key.clone().unwrap();
    let id = &revoked.id;
    app.admin(Method::DELETE, &format!("/v1/api-keys/{id}"), None)
        .await;
    app.grantry
        .create_admin(
            "root",
            &"a long console password".to_owned().into(),
            &grantry_core::Actor::Cli,
        )
        .await
        .unwrap();
    let config = app.config.clone();
    let shared = app.shared();
    let sqlite = format!(
        "sqlite://{}",
        shared.dir.path().join("grantry.db").display()
    );
    app.stop().await;

    let env: Vec<(String, String)> = vec![(
        "GRANTRY_DATA_DIR".into(),
        shared.dir.path().display().to_string(),
    )];
    let target = grantry_store_postgres::testing::TestDatabase::create().await;
    let migrate = |to: String| {
        let (env, sqlite) = (env.clone(), sqlite.clone());
        async move {
            crate::common::process::run(
                &env,
                &[
                    "migrate-store",
                    "--from",
                    &sqlite,
                    "--to",
                    &to,
                    "--output",
                    "json",
                ],
                None,
            )
            .await
        }
    };
    let (ok, out, err) = migrate(target.url()).await;
    assert!(ok, "{err}");
    let report: MigrateReport = serde_json::from_str(&out).unwrap();
    let tally = |copied, present| Tally { copied, present };
    assert_eq!(report.profiles, tally(2, 0));
    assert_eq!(report.connections, tally(2, 0));
    assert_eq!(report.api_keys, tally(3, 0));
    assert_eq!(report.admins, tally(1, 0));
    let events = report.events.copied;
    assert!(events >= 6, "{report:?}");

    let (ok, out, err) = migrate(target.url()).await;
    assert!(ok, "running it again is harmless: {err}");
    let again: MigrateReport = serde_json::from_str(&out).unwrap();
    assert_eq!(again.connections, tally(0, 2));
    assert_eq!(again.events, tally(0, events));

    // A node on PostgreSQL, with the same master key, opens everything that was sealed.
    let mut config = config;
    config.database_url = Some(target.url().into());
    let node = TestApp::node(config, shared).await;
    assert_eq!(
        node.read_token(&cloud_connection).await.access_token,
        cloud_token
    );
    assert_eq!(node.read_token(&dc_connection).await.access_token, dc_token);
    let (status, refreshed) = node
        .app(
            Method::POST,
            &format!("/v1/connections/{cloud_connection}/refresh"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the client secret and refresh token open: {refreshed}"
    );
    assert_ne!(
        node.read_token(&cloud_connection).await.access_token,
        cloud_token
    );
    let read = format!("/v1/connections/{cloud_connection}/token");
    assert_eq!(
        node.call(Method::GET, &read, Some(&revoked_secret), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "a revoked key stays revoked"
    );
    let listed = node.events("kind=connection.created").await;
    assert_eq!(listed.items.len(), 2, "{listed:?}");
    node.stop().await;
}

#[tokio::test]
async fn migrate_store_refuses_what_would_lose_data() {
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> =
        vec![("GRANTRY_DATA_DIR".into(), dir.path().display().to_string())];
    let missing = format!("sqlite://{}", dir.path().join("nothing.db").display());
    let target = grantry_store_postgres::testing::TestDatabase::create().await;
    let refusals = [
        (
            missing.as_str(),
            target.url(),
            "there is no SQLite database",
        ),
        (
            "mysql://localhost/x",
            target.url(),
            "must start with sqlite:// or postgres://",
        ),
        (&target.url(), target.url(), "name the same database"),
    ];
    for (from, to, expected) in refusals {
        let (ok, _, err) = crate::common::process::run(
            &env,
            &["migrate-store", "--from", from, "--to", &to],
            None,
        )
        .await;
        assert!(!ok && err.contains(expected), "{from} → {to}: {err}");
    }

    // A source a running `grantry serve` holds.
    let path = dir.path().join("grantry.db");
    grantry_store_sqlite::open_and_migrate(&path).await.unwrap();
    let _held = grantry::runtime::lock_sqlite(&path).unwrap().unwrap();
    let from = format!("sqlite://{}", path.display());
    let (ok, _, err) = crate::common::process::run(
        &env,
        &["migrate-store", "--from", &from, "--to", &target.url()],
        None,
    )
    .await;
    assert!(!ok && err.contains("is running on"), "{err}");
}

#[tokio::test]
async fn a_database_newer_than_the_binary_is_refused_at_start() {
    let database = grantry_store_postgres::testing::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = vec![
        ("GRANTRY_DATA_DIR".into(), dir.path().display().to_string()),
        ("GRANTRY_DATABASE_URL".into(), database.url()),
        (
            "GRANTRY_LISTEN".into(),
            format!("127.0.0.1:{}", crate::common::process::free_port()),
        ),
    ];
    let latest = grantry_store_postgres::SCHEMA_VERSION;
    let (ok, out, err) = crate::common::process::run(&env, &["migrate"], None).await;
    assert!(
        ok && out.contains(&format!("Schema is at version {latest}.")),
        "{out}{err}"
    );
    let (ok, _, err) = crate::common::process::run(&env, &["migrate"], None).await;
    assert!(ok, "migrating twice is harmless: {err}");

    let mut admin = sqlx::PgConnection::connect(&database.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'from the future', TRUE, decode('00', 'hex'), 0)",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    for command in [&["serve"][..], &["migrate"], &["profiles", "list"]] {
        let (ok, _, err) = crate::common::process::run(&env, command, None).await;
        let refusal = format!("has schema version 99, newer than this Grantry knows ({latest})");
        assert!(!ok && err.contains(&refusal), "{command:?}: {err}");
    }
}

#[tokio::test]
async fn nodes_reach_postgresql_over_verified_tls() {
    use crate::common::throwaway_postgres::ThrowawayPostgres;

    let mut postgres = ThrowawayPostgres::init();
    let file = |name: &str| postgres.dir().join(name).display().to_string();
    let (ca, cert, key) = (file("ca.crt"), file("server.crt"), file("server.key"));
    let extensions = file("server.ext");
    std::fs::write(
        &extensions,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &["-days", "1", "-subj", "/CN=Grantry test CA"],
        ]
        .concat(),
        &[("-keyout", &file("ca.key")), ("-out", &ca)],
    );
    openssl(
        &[&["req"], &ec[..], &["-subj", "/CN=127.0.0.1"]].concat(),
        &[("-keyout", &key), ("-out", &file("server.csr"))],
    );
    openssl(
        &["x509", "-req", "-days", "1"],
        &[
            ("-in", &file("server.csr")),
            ("-CA", &ca),
            ("-CAkey", &file("ca.key")),
            ("-CAcreateserial", ""),
            ("-extfile", &extensions),
            ("-out", &cert),
        ],
    );
    let key = std::path::PathBuf::from(key);
    postgres.hand_over(&key);
    postgres.set("ssl=on");
    postgres.set(&format!("ssl_cert_file={cert}"));
    postgres.set(&format!("ssl_key_file={}", key.display()));
    postgres.start();

    // The URL names the CA that issued the server's certificate.
    let verified = format!("{}?sslmode=verify-full&sslrootcert={ca}", postgres.url());
    let dir = tempfile::tempdir().unwrap();
    let env = |url: &str| -> Vec<(String, String)> {
        vec![
            ("GRANTRY_DATA_DIR".into(), dir.path().display().to_string()),
            ("GRANTRY_DATABASE_URL".into(), url.to_owned()),
        ]
    };
    let (ok, out, err) = crate::common::process::run(&env(&verified), &["migrate"], None).await;
    assert!(ok, "{out}{err}");
    let mut check = sqlx::PgConnection::connect(&verified).await.unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut check)
            .await
            .unwrap();
    assert!(encrypted);

    // Without the certificate's issuer, verification fails, and says so.
    let unverified = format!("{}?sslmode=verify-full", postgres.url());
    let (ok, _, err) = crate::common::process::run(&env(&unverified), &["migrate"], None).await;
    assert!(!ok && err.contains("cannot connect to"), "{err}");
    eprintln!("{err}");
}

/// Runs `openssl` with `args`, then `flags` (a flag with an empty value stands alone).
fn openssl(args: &[&str], flags: &[(&str, &str)]) {
    let mut command = std::process::Command::new("openssl");
    command.args(args);
    for (flag, value) in flags {
        command.arg(flag);
        if !value.is_empty() {
            command.arg(value);
        }
    }
    let output = command
        .output()
        .expect("openssl makes the test certificates");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
