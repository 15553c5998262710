//! Runs the whole flow with every log at TRACE, then searches the log output and the database
//! files for every secret and token the run handled. It installs the global log subscriber, which
//! is safe because nextest runs every test in a process of its own.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::common::views::{Connection, Profile};
use crate::common::{TestApp, expect, query};
use bitbucket_sim::Mode;
use grantry_crypto::Binding;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_everything() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    captured
}

/// Opens a sealed value the way the server does, to learn the plaintext to search for.
fn open(app: &TestApp, table: &str, column: &str, row: &str, sealed: &[u8]) -> String {
    let plain = app
        .grantry
        .keys
        .open(sealed, Binding::new(table, column, row))
        .unwrap();
    String::from_utf8(plain.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_or_the_database_file() {
    let logs = capture_everything();
    let app = TestApp::start(Mode::Rotating).await;
    let mut secrets: Vec<(&str, String)> = vec![
        ("admin API key", app.admin_key.clone()),
        ("app API key", app.app_key.clone()),
    ];

    let (key, consumer_secret) = app
        .consumer(&["account.read", "repositories.read"], true)
        .await;
    secrets.push(("consumer secret", consumer_secret.clone()));
    let body = json!({"name": "Cloud", "provider": "bitbucket-cloud", "key": key, "secret": consumer_secret, "private": true,
                      "allowed_return_urls": ["https://app.example.com/done"]});
    let answer = app.admin(Method::POST, "/v1/profiles", Some(body)).await;
    let profile = expect::<Profile>(answer, StatusCode::CREATED).id;

    let link = app
        .session(json!({"profile": profile, "end_user_id": "u1"}))
        .await;
    secrets.push(("connect link", link.rsplit('/').next().unwrap().to_owned()));
    let callback = app.until_callback(&link).await;
    secrets.push(("authorization code", query(&callback, "code").unwrap()));
    secrets.push(("OAuth state", query(&callback, "state").unwrap()));
    let (landed, _) = app.browse(callback.as_str()).await;
    let connection = query(&landed, "connection_id").unwrap();

    let first = app.read_token(&connection).await;
    secrets.push(("access token", first.access_token));
    app.app(
        Method::POST,
        &format!("/v1/connections/{connection}/refresh"),
        None,
    )
    .await;
    let second = app.read_token(&connection).await;
    secrets.push(("refreshed access token", second.access_token));
    let id = grantry_core::ids::ConnectionId::parse(&connection).unwrap();
    let row = app.grantry.store.connection(&id).await.unwrap().unwrap();
    secrets.push((
        "refresh token",
        open(
            &app,
            "connections",
            "refresh_token",
            &connection,
            row.refresh_token.as_ref().unwrap(),
        ),
    ));

    // A flow the application confirms: the browser's nonce and the verification code.
    let link = app
        .session(json!({"profile": profile, "end_user_id": "u2", "return_url": "https://app.example.com/done"}))
        .await;
    let opened = app.http.get(&link).send().await.unwrap();
    let cookie = opened.headers()["set-cookie"].to_str().unwrap();
    let nonce = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    secrets.push(("browser nonce", nonce.to_owned()));
    let authorize = opened.headers()["location"].to_str().unwrap().to_owned();
    let (landed, _) = app.browse(&authorize).await;
    secrets.push((
        "verification code",
        query(&landed, "verification_code").unwrap(),
    ));
    let (status, confirmed) = app.confirm(&landed, Some("u2")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{confirmed}");

    let dc = app.dc_profile("DC", &["REPO_READ"], &["REPO_READ"]).await;
    let dc_link = app.session(json!({"profile": dc})).await;
    let dc_callback = app.until_callback(&dc_link).await;
    let state = query(&dc_callback, "state").unwrap();
    let session = app
        .grantry
        .store
        .session_by_state(&grantry_crypto::sha256_hex(&state))
        .await
        .unwrap()
        .unwrap();
    let verifier = open(
        &app,
        "connect_sessions",
        "pkce_verifier",
        session.id.as_str(),
        session.pkce_verifier.as_ref().unwrap(),
    );
    secrets.push(("PKCE verifier", verifier));
    app.browse(dc_callback.as_str()).await;

    // One API token Bitbucket refuses (it is not stored), one it takes (it is, sealed).
    let refused = json!({"profile": profile, "credential": {"type": "api_token", "email": "ops@example.com", "token": "ATATT-very-secret-api-token"}});
    app.app(Method::POST, "/v1/connections", Some(refused))
        .await;
    secrets.push((
        "refused API token",
        "ATATT-very-secret-api-token".to_owned(),
    ));
    let made = app
        .sim_post(
            "/_sim/api-tokens",
            json!({"user": "alice", "scopes": "read:user:bitbucket"}),
        )
        .await;
    let api_token = made["token"].as_str().unwrap().to_owned();
    let stored = json!({"profile": profile, "end_user_id": "ops", "credential":
                        {"type": "api_token", "email": "alice@example.com", "token": api_token}});
    let (status, body) = app.app(Method::POST, "/v1/connections", Some(stored)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    secrets.push(("API token", api_token));
    let cc = json!({"profile": profile, "credential": {"type": "client_credentials"}});
    let answer = app.app(Method::POST, "/v1/connections", Some(cc)).await;
    let cc: Connection = expect(answer, StatusCode::CREATED);
    let cc_token = app.read_token(&cc.id).await;
    secrets.push(("client credentials token", cc_token.access_token));

    app.admin(
        Method::PATCH,
        &format!("/v1/profiles/{profile}"),
        Some(json!({"secret": "a-wrong-secret-value"})),
    )
    .await;
    secrets.push(("wrong secret", "a-wrong-secret-value".to_owned()));
    app.app(
        Method::POST,
        &format!("/v1/connections/{connection}/refresh"),
        None,
    )
    .await;

    let kept = app.stop().await;
    let db_dir = kept.path().to_owned();
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        text.contains("TRACE") && text.contains("/v1/connections/{id}/token"),
        "the capture works"
    );
    assert!(
        text.contains("unauthorized_client"),
        "failures are logged, just not secrets"
    );
    let mut database = Vec::new();
    for entry in std::fs::read_dir(&db_dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("grantry.db")
        {
            database.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(!database.is_empty());
    for (what, secret) in &secrets {
        assert!(secret.len() >= 8, "{what} is too short to search for");
        assert!(
            !text.contains(secret.as_str()),
            "the {what} appears in the logs"
        );
        let found = database
            .windows(secret.len())
            .any(|w| w == secret.as_bytes());
        assert!(
            !found,
            "the {what} appears in plaintext in the database files"
        );
    }
}
