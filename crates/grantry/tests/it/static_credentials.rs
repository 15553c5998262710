//! API tokens and access tokens, made in the simulator as a user or an admin makes them in
//! Bitbucket, stored in Grantry and used every way an application uses a connection: a token
//! read, a proxied call, `git clone` and `git push` through the credential helper. A missing
//! scope is explained; an expired or revoked credential turns the connection `needs_reauth` with
//! its reason instead of being served.

use std::path::Path;

use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::views::{Connection, Event, Page};
use crate::common::{TestApp, expect, refused};

const DAY: i64 = 86_400;

/// The simulator's clock (Grantry's moves with it in tests).
async fn now(app: &TestApp) -> i64 {
    app.sim_post("/_sim/clock/advance", json!({"seconds": 0}))
        .await["now"]
        .as_i64()
        .unwrap()
}

fn rfc3339(unix: i64) -> String {
    grantry_core::clock::rfc3339(grantry_core::clock::Timestamp::from_unix(unix))
}

/// Alice makes an API token with these scopes; answers its id and secret.
async fn api_token(app: &TestApp, scopes: &str, expires_at: i64) -> (String, String) {
    let made = app
        .sim_post(
            "/_sim/api-tokens",
            json!({"user": "alice", "scopes": scopes, "expires_at": expires_at}),
        )
        .await;
    (
        made["id"].as_str().unwrap().to_owned(),
        made["token"].as_str().unwrap().to_owned(),
    )
}

async fn access_token(app: &TestApp, body: Value) -> (String, String) {
    let made = app.sim_post("/_sim/access-tokens", body).await;
    (
        made["id"].as_str().unwrap().to_owned(),
        made["token"].as_str().unwrap().to_owned(),
    )
}

async fn store(app: &TestApp, profile: &str, credential: Value) -> (StatusCode, Value) {
    let body = json!({"profile": profile, "end_user_id": "backup-job", "credential": credential});
    app.app(Method::POST, "/v1/connections", Some(body)).await
}

/// [`store`], which must succeed: the connection.
async fn stored(app: &TestApp, profile: &str, credential: Value) -> Connection {
    expect(store(app, profile, credential).await, StatusCode::CREATED)
}

async fn proxied(
    app: &TestApp,
    connection: &str,
    path: &str,
) -> (StatusCode, reqwest::header::HeaderMap) {
    let response = app
        .http
        .get(format!("{}/v1/proxy/{connection}/{path}", app.base))
        .bearer_auth(&app.app_key)
        .send()
        .await
        .unwrap();
    (response.status(), response.headers().clone())
}

async fn events(app: &TestApp, kind: &str) -> Vec<Event> {
    app.events(&format!("kind={kind}")).await.items
}

/// The profile a backup job needs: read the account, write repositories.
async fn backups(app: &TestApp) -> String {
    app.cloud_profile(
        "Backups",
        &["account.read", "repositories.write"],
        &["repository:write"],
    )
    .await
}

/// git with Grantry as the credential helper for the simulator's host, and nothing else.
struct Git {
    dir: tempfile::TempDir,
    global: std::path::PathBuf,
    key: String,
}

impl Git {
    fn new(app: &TestApp, connection: &str) -> Git {
        let dir = tempfile::tempdir().unwrap();
        let helper = format!(
            "!{} git-credential --connection {connection} --server {}",
            crate::common::process::BINARY,
            app.base
        );
        let config = format!(
            "[credential \"{}\"]\n\thelper =\n\thelper = {}\n",
            app.sim.url(),
            helper.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let global = dir.path().join("gitconfig");
        std::fs::write(&global, config).unwrap();
        Git {
            dir,
            global,
            key: app.app_key.clone(),
        }
    }

    async fn run(&self, dir: &Path, args: &[&str]) -> (bool, String) {
        crate::common::git(dir, &self.global, &self.key, args).await
    }

    /// Clones `remote`, commits a file and pushes it back.
    async fn clone_and_push(&self, remote: &str, name: &str) {
        let (ok, log) = self.run(self.dir.path(), &["clone", remote, name]).await;
        assert!(ok, "clone {remote}: {log}");
        let work = self.dir.path().join(name);
        std::fs::write(work.join(format!("{name}.txt")), "kept\n").unwrap();
        let file = format!("{name}.txt");
        for step in [vec!["add", file.as_str()], vec!["commit", "-m", "Back up"]] {
            let (ok, log) = self.run(&work, &step).await;
            assert!(ok, "{step:?}: {log}");
        }
        let (ok, log) = self.run(&work, &["push", "origin", "main"]).await;
        assert!(ok, "push to {remote}: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_token_is_read_proxied_cloned_and_pushed_with() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = backups(&app).await;
    let expires_at = now(&app).await + 30 * DAY;
    let scopes = "read:user:bitbucket read:repository:bitbucket write:repository:bitbucket";
    let (_, token) = api_token(&app, scopes, expires_at).await;

    let credential = json!({"type": "api_token", "email": "alice@example.com", "token": token,
                            "expires_at": rfc3339(expires_at)});
    let connection = stored(&app, &profile, credential).await;
    assert_eq!(connection.status, "active", "{connection:?}");
    assert_eq!(
        connection.account.username.as_deref(),
        Some("alice"),
        "Bitbucket said whose token it is: {connection:?}"
    );
    assert_eq!(connection.expires_at, Some(rfc3339(expires_at)));
    let id = connection.id.as_str();

    let read = app.read_token(id).await;
    assert_eq!(read.token_type, "basic");
    assert_eq!(read.username.as_deref(), Some("alice@example.com"));

    let (status, _) = proxied(&app, id, "2.0/repositories/acme/widget").await;
    assert_eq!(status, StatusCode::OK);

    let git = Git::new(&app, id);
    let remote = format!("{}/acme/widget.git", app.sim.url());
    git.clone_and_push(&remote, "api-token").await;
}

#[tokio::test]
async fn an_api_token_is_checked_before_it_is_stored_and_a_missing_scope_is_explained() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = backups(&app).await;
    let expires_at = now(&app).await + 30 * DAY;

    let credential =
        json!({"type": "api_token", "email": "alice@example.com", "token": "ATATT-made-up"});
    let (status, problem) = refused(store(&app, &profile, credential).await);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem:?}");
    assert_eq!(problem.field.as_deref(), Some("token"));
    assert!(
        problem.detail.contains("refused this API token"),
        "{problem:?}"
    );

    let (_, reader) = api_token(
        &app,
        "read:user:bitbucket read:repository:bitbucket",
        expires_at,
    )
    .await;
    let credential = json!({"type": "api_token", "email": "alice@example.com", "token": reader});
    let connection = stored(&app, &profile, credential).await;
    assert_eq!(connection.status, "insufficient_scopes", "{connection:?}");
    let reason = connection.status_reason.as_deref().unwrap();
    assert!(
        reason.contains("write:repository:bitbucket") && !reason.contains("read:repository"),
        "names exactly what the token lacks, in API token words: {reason}"
    );

    // API tokens are Bitbucket Cloud's.
    let dc = app.dc_profile("DC", &["REPO_READ"], &["REPO_READ"]).await;
    let credential = json!({"type": "api_token", "email": "alice@example.com", "token": reader});
    let (status, problem) = refused(store(&app, &dc, credential).await);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem:?}");
    assert!(problem.detail.contains("HTTP access token"), "{problem:?}");
}

#[tokio::test]
async fn a_new_api_token_for_the_same_account_replaces_the_old_one() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = backups(&app).await;
    let expires_at = now(&app).await + 30 * DAY;
    // Without `read:user:bitbucket` Bitbucket does not say whose token it is: it is stored
    // under its e-mail, as tokens stored before Grantry asked were.
    let (_, anonymous) = api_token(&app, "read:repository:bitbucket", expires_at).await;
    let credential = json!({"type": "api_token", "email": "alice@example.com", "token": anonymous});
    let first = stored(&app, &profile, credential).await;
    assert_eq!(first.account.username.as_deref(), Some("alice@example.com"));

    let (_, named) = api_token(
        &app,
        "read:user:bitbucket read:repository:bitbucket",
        expires_at,
    )
    .await;
    let credential = json!({"type": "api_token", "email": "alice@example.com", "token": named});
    let second = stored(&app, &profile, credential).await;
    assert_eq!(
        second.id, first.id,
        "the same connection, its token replaced"
    );
    assert_eq!(second.account.username.as_deref(), Some("alice"));
    let listed: Page<Connection> = app.app_get("/v1/connections").await;
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test]
async fn a_revoked_api_token_turns_needs_reauth_with_its_reason() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = backups(&app).await;
    let expires_at = now(&app).await + 30 * DAY;
    let scopes = "read:user:bitbucket read:repository:bitbucket write:repository:bitbucket";
    let (sim_id, token) = api_token(&app, scopes, expires_at).await;
    let credential = json!({"type": "api_token", "email": "alice@example.com", "token": token});
    let connection = stored(&app, &profile, credential).await;
    let id = connection.id.as_str();
    assert_eq!(app.token(id).await.0, StatusCode::OK);

    app.sim_post(&format!("/_sim/credentials/{sim_id}/revoke"), json!({}))
        .await;
    let (status, _) = proxied(&app, id, "2.0/repositories/acme/widget").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "Bitbucket's refusal comes back as it was"
    );

    let connection = app.connection(id).await;
    assert_eq!(connection.status, "needs_reauth", "{connection:?}");
    let reason = connection.status_reason.as_deref().unwrap();
    assert!(
        reason.contains("refused the API token") && reason.contains("revoked"),
        "{reason}"
    );
    let (status, problem) = app.token_refused(id).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a dead credential is not served: {problem:?}"
    );
    assert_eq!(problem.code, "needs-reauth");
    assert_eq!(events(&app, "connection.needs_reauth").await.len(), 1);
}

#[tokio::test]
async fn an_api_token_revoked_while_only_token_reads_use_it_is_found_by_a_check() {
    let app = TestApp::with(Mode::Rotating, |config| config.refresh.enabled = true).await;
    let profile = backups(&app).await;
    let expires_at = now(&app).await + 30 * DAY;
    let (first_id, first) = api_token(&app, "read:user:bitbucket", expires_at).await;
    let (second_id, second) = api_token(&app, "read:user:bitbucket", expires_at).await;
    let mut connections = Vec::new();
    for (end_user, token) in [("nightly", first), ("hourly", second)] {
        let body = json!({"profile": profile, "end_user_id": end_user, "credential":
                          {"type": "api_token", "email": "alice@example.com", "token": token}});
        let answer = app.app(Method::POST, "/v1/connections", Some(body)).await;
        connections.push(expect::<Connection>(answer, StatusCode::CREATED).id);
    }
    for sim_id in [first_id, second_id] {
        app.sim_post(&format!("/_sim/credentials/{sim_id}/revoke"), json!({}))
            .await;
    }

    // A refresh asked for through the API (or the console, or the CLI) checks it at once.
    let (status, problem) = refused(
        app.app(
            Method::POST,
            &format!("/v1/connections/{}/refresh", connections[0]),
            None,
        )
        .await,
    );
    assert_eq!(status, StatusCode::CONFLICT, "{problem:?}");
    assert_eq!(problem.code, "needs-reauth");
    assert_eq!(app.connection(&connections[0]).await.status, "needs_reauth");

    // Nobody asks about the other: the refresher checks every API token every six hours.
    assert_eq!(
        app.connection(&connections[1]).await.status,
        "insufficient_scopes",
        "not dead yet (the token only reads the account, as Bitbucket told)"
    );
    app.advance(6 * 3600 + 1).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let connection = app.connection(&connections[1]).await;
        if connection.status == "needs_reauth" {
            let reason = connection.status_reason.as_deref().unwrap();
            assert!(reason.contains("refused the API token"), "{reason}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never checked: {connection:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_expired_api_token_is_never_served() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = backups(&app).await;
    let expires_at = now(&app).await + 2 * DAY;
    let (_, token) = api_token(&app, "read:user:bitbucket", expires_at).await;
    let credential = json!({"type": "api_token", "email": "alice@example.com", "token": token,
                            "expires_at": rfc3339(expires_at)});
    let connection = stored(&app, &profile, credential).await;
    let id = connection.id.as_str();
    assert_eq!(app.token(id).await.0, StatusCode::OK);

    app.advance(2 * DAY + 1).await;
    let (status, problem) = app.token(id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let connection = app.connection(id).await;
    assert_eq!(connection.status, "needs_reauth");
    let reason = connection.status_reason.as_deref().unwrap();
    assert!(reason.contains("API token expired at"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_access_token_is_read_proxied_cloned_and_pushed_with_until_revoked() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = backups(&app).await;
    let expires_at = now(&app).await + 30 * DAY;
    let (sim_id, token) = access_token(
        &app,
        json!({"workspace": "acme", "repository": "widget", "scopes": "repository:write",
               "name": "Backup job", "expires_at": expires_at}),
    )
    .await;
    let credential =
        json!({"type": "access_token", "token": token, "expires_at": rfc3339(expires_at)});
    let connection = stored(&app, &profile, credential).await;
    let id = connection.id;

    let read = app.read_token(&id).await;
    assert_eq!(read.token_type, "bearer");

    let (status, headers) = proxied(&app, &id, "2.0/repositories/acme/widget").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["x-ratelimit-limit"], "1000",
        "the access token's own budget reaches the application"
    );
    assert!(headers.contains_key("x-ratelimit-nearlimit"));

    let git = Git::new(&app, &id);
    let remote = format!("{}/acme/widget.git", app.sim.url());
    git.clone_and_push(&remote, "access-token").await;

    app.sim_post(&format!("/_sim/credentials/{sim_id}/revoke"), json!({}))
        .await;
    let (status, _) = proxied(&app, &id, "2.0/repositories/acme/widget").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let connection = app.connection(&id).await;
    assert_eq!(connection.status, "needs_reauth", "{connection:?}");
    let reason = connection.status_reason.as_deref().unwrap();
    assert!(
        reason.contains("refused the access token on a proxied call"),
        "{reason}"
    );
    assert_eq!(app.token(&id).await.0, StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_access_token_refused_outside_its_repositories_is_not_taken_as_dead() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = backups(&app).await;
    // Bitbucket answers a live access token 401 where access tokens are not supported.
    let (_, token) = access_token(
        &app,
        json!({"workspace": "acme", "repository": "widget", "scopes": "account repository"}),
    )
    .await;
    let credential = json!({"type": "access_token", "token": token});
    let connection = stored(&app, &profile, credential).await;
    let id = connection.id.as_str();
    let (status, _) = proxied(&app, id, "2.0/user").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.connection(id).await.status, "active");
    let (status, _) = proxied(&app, id, "2.0/repositories/acme/widget").await;
    assert_eq!(status, StatusCode::OK, "still served");
}

#[tokio::test]
async fn an_access_token_is_warned_about_ahead_of_its_expiry_then_marked_at_it() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = backups(&app).await;
    let expires_at = now(&app).await + 10 * DAY;
    let (_, token) = access_token(
        &app,
        json!({"workspace": "acme", "scopes": "repository", "expires_at": expires_at}),
    )
    .await;
    let credential =
        json!({"type": "access_token", "token": token, "expires_at": rfc3339(expires_at)});
    let connection = stored(&app, &profile, credential).await;
    let id = connection.id.as_str();

    app.advance(4 * DAY).await;
    let warned = app.grantry.warn_expiring_credentials().await.unwrap();
    assert_eq!(warned, 1, "seven days ahead, once");
    let warning = &events(&app, "connection.credential_expiring").await[0];
    assert!(
        warning
            .detail
            .contains("the access token expires in 6 day(s)"),
        "{warning:?}"
    );
    assert_eq!(
        app.token(id).await.0,
        StatusCode::OK,
        "served until it expires"
    );

    app.advance(6 * DAY + 1).await;
    let (status, problem) = app.token(id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let reason = app.connection(id).await.status_reason;
    assert!(
        reason
            .as_deref()
            .unwrap()
            .contains("access token expired at"),
        "{reason:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_center_http_access_token_works_through_the_proxy_and_git() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.dc_profile("DC", &["REPO_WRITE"], &["REPO_WRITE"]).await;
    let (_, token) = access_token(
        &app,
        json!({"dc_project": "PRJ", "permission": "REPO_WRITE", "name": "CI"}),
    )
    .await;
    let credential = json!({"type": "access_token", "token": token});
    let connection = stored(&app, &profile, credential).await;
    let id = connection.id.as_str();

    let (status, _) = proxied(&app, id, "rest/api/latest/projects/PRJ/repos/api").await;
    assert_eq!(status, StatusCode::OK);
    let git = Git::new(&app, id);
    let remote = format!("{}/dc/scm/prj/api.git", app.sim.url());
    git.clone_and_push(&remote, "dc-token").await;
}
