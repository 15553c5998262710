//! API tokens and access tokens: REST with Basic e-mail:token or Bearer, scopes checked per
//! operation, resources honoured, rate-limit headers, expiry, revocation, rotation, and git.

use crate::common::TestSim;
use crate::git::git;
use bitbucket_sim::Mode;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn api_token(sim: &TestSim, scopes: &str) -> (String, String) {
    let made = sim
        .post(
            "/_sim/api-tokens",
            json!({"user": "alice", "scopes": scopes}),
        )
        .await;
    assert_eq!(made["email"], "alice@example.com");
    (
        made["id"].as_str().unwrap().to_owned(),
        made["token"].as_str().unwrap().to_owned(),
    )
}

async fn access_token(sim: &TestSim, body: Value) -> (String, String) {
    let made = sim.post("/_sim/access-tokens", body).await;
    (
        made["id"].as_str().unwrap().to_owned(),
        made["token"].as_str().unwrap().to_owned(),
    )
}

async fn basic_get(sim: &TestSim, path: &str, user: &str, token: &str) -> (StatusCode, Value) {
    let response = sim
        .http
        .get(format!("{}/2.0{path}", sim.url))
        .basic_auth(user, Some(token))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_api_token_reads_with_basic_email_and_its_scopes_are_checked_per_operation() {
    let sim = TestSim::start(Mode::Rotating).await;
    let (_, token) = api_token(&sim, "read:user:bitbucket read:repository:bitbucket").await;

    let (status, user) = basic_get(&sim, "/user", "alice@example.com", &token).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["username"], "alice");
    let (status, repo) = basic_get(
        &sim,
        "/repositories/acme/widget",
        "alice@example.com",
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{repo}");

    // Pull requests need their own scope: no API token scope implies another.
    let (status, refused) = basic_get(
        &sim,
        "/repositories/acme/widget/pullrequests",
        "alice@example.com",
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused["error"]["detail"]["required"],
        json!(["read:pullrequest:bitbucket"])
    );

    // REST takes the e-mail, not the user name; Bearer with an API token is not supported.
    let (status, _) = basic_get(&sim, "/user", "alice", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = sim.cloud_get("/user", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_and_revoked_api_tokens_are_refused() {
    let sim = TestSim::start(Mode::Rotating).await;
    let now = sim.post("/_sim/clock/advance", json!({"seconds": 0})).await["now"]
        .as_i64()
        .unwrap();
    let made = sim
        .post(
            "/_sim/api-tokens",
            json!({"user": "alice", "scopes": "read:user:bitbucket", "expires_at": now + 60}),
        )
        .await;
    let short = made["token"].as_str().unwrap();
    let (_, other) = api_token(&sim, "read:user:bitbucket").await;

    assert_eq!(
        basic_get(&sim, "/user", "alice@example.com", short).await.0,
        StatusCode::OK
    );
    sim.advance(61).await;
    let (status, body) = basic_get(&sim, "/user", "alice@example.com", short).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"]["message"],
        "Token is invalid, expired, or not supported for this endpoint."
    );

    assert_eq!(
        basic_get(&sim, "/user", "alice@example.com", &other)
            .await
            .0,
        StatusCode::OK
    );
    let (id, revoked) = api_token(&sim, "read:user:bitbucket").await;
    let revoke = format!("/_sim/credentials/{id}/revoke");
    let (status, _) = sim
        .control(reqwest::Method::POST, &revoke, Value::Null)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        basic_get(&sim, "/user", "alice@example.com", &revoked)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Revoking one token leaves the others working.
    assert_eq!(
        basic_get(&sim, "/user", "alice@example.com", &other)
            .await
            .0,
        StatusCode::OK
    );

    // An API token lives at most a year.
    let (status, refused) = sim
        .control(
            reqwest::Method::POST,
            "/_sim/api-tokens",
            json!({"user": "alice", "scopes": "read:user:bitbucket", "expires_at": now + 400 * 86_400}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
}

#[tokio::test]
async fn a_repository_access_token_reaches_its_repository_only_within_its_hourly_budget() {
    let sim = TestSim::start(Mode::Rotating).await;
    sim.control(
        reqwest::Method::PATCH,
        "/_sim/settings",
        json!({"access_token_rate_limit": 5}),
    )
    .await;
    let (_, token) = access_token(
        &sim,
        json!({"workspace": "acme", "repository": "widget", "scopes": "repository pullrequest"}),
    )
    .await;
    let (_, other) = access_token(
        &sim,
        json!({"workspace": "acme", "repository": "website", "scopes": "repository"}),
    )
    .await;

    let (status, headers, repo) = sim.cloud_get("/repositories/acme/widget", &token).await;
    assert_eq!(status, StatusCode::OK, "{repo}");
    assert_eq!(headers["x-ratelimit-limit"], "5");
    assert_eq!(headers["x-ratelimit-resource"], "api/repositories");
    assert_eq!(headers["x-ratelimit-nearlimit"], "false");
    assert_eq!(headers["x-credential-type"], "repo_access_token");

    // A private repository of the same workspace is out of its reach, like a missing one;
    // public ones are anybody's to read.
    let (status, _, _) = sim.cloud_get("/repositories/acme/widget", &other).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = sim.cloud_get("/repositories/acme/website", &other).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, listed) = sim.cloud_get("/repositories/acme", &other).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = listed["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["slug"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["website"]);

    // An access token acts for a repository, not a user: no account scope to read /user with.
    let (status, _, refused) = sim.cloud_get("/user", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");

    // Calls three to five: the budget nears its end at four.
    let (_, headers, _) = sim.cloud_get("/repositories/acme/widget", &token).await;
    assert_eq!(headers["x-ratelimit-nearlimit"], "false");
    let (_, headers, _) = sim.cloud_get("/repositories/acme/widget", &token).await;
    assert_eq!(headers["x-ratelimit-nearlimit"], "true");
    let (status, _, _) = sim.cloud_get("/repositories/acme/widget", &token).await;
    assert_eq!(status, StatusCode::OK, "the fifth call of five");
    let (status, _, body) = sim.cloud_get("/repositories/acme/widget", &token).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        body["error"]["message"],
        "Rate limit for this resource has been exceeded."
    );
    sim.advance(3600).await;
    let (status, _, _) = sim.cloud_get("/repositories/acme/widget", &token).await;
    assert_eq!(status, StatusCode::OK, "a new hour, a new budget");
}

#[tokio::test]
async fn a_rotated_access_token_replaces_the_old_secret_unless_it_was_about_to_expire() {
    let sim = TestSim::start(Mode::Rotating).await;
    let now = sim.post("/_sim/clock/advance", json!({"seconds": 0})).await["now"]
        .as_i64()
        .unwrap();
    let (id, old) = access_token(&sim, json!({"workspace": "acme", "scopes": "repository"})).await;
    let rotated = sim
        .post(
            &format!("/_sim/access-tokens/{id}/rotate"),
            json!({"expires_at": now + 86_400}),
        )
        .await;
    let new = rotated["token"].as_str().unwrap();
    assert_eq!(
        sim.cloud_get("/repositories/acme/widget", new).await.0,
        StatusCode::OK
    );
    assert_eq!(
        sim.cloud_get("/repositories/acme/widget", &old).await.0,
        StatusCode::UNAUTHORIZED,
        "a token with long to live stops at rotation"
    );

    let (id, old) = access_token(
        &sim,
        json!({"workspace": "acme", "scopes": "repository", "expires_at": now + 600}),
    )
    .await;
    sim.post(&format!("/_sim/access-tokens/{id}/rotate"), json!({}))
        .await;
    assert_eq!(
        sim.cloud_get("/repositories/acme/widget", &old).await.0,
        StatusCode::OK,
        "a token expiring within 30 minutes lives out its time"
    );
    sim.advance(601).await;
    assert_eq!(
        sim.cloud_get("/repositories/acme/widget", &old).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_data_center_http_access_token_is_bearer_only_and_bound_to_its_project() {
    let sim = TestSim::start(Mode::Rotating).await;
    let (_, token) = access_token(
        &sim,
        json!({"dc_project": "PRJ", "permission": "REPO_READ"}),
    )
    .await;
    let get = |path: &str, basic: bool| {
        let request = sim
            .http
            .get(format!("{}/dc/rest/api/latest{path}", sim.url));
        let request = if basic {
            request.basic_auth("carol", Some(&token))
        } else {
            request.bearer_auth(&token)
        };
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(get("/projects/PRJ/repos/api", false).await, StatusCode::OK);
    assert_eq!(
        get("/projects/PRJ/repos/api", true).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get("/projects/SECRET/repos/vault", false).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get("/users/carol", false).await, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_takes_api_tokens_and_access_tokens_with_their_scopes() {
    let sim = TestSim::start(Mode::Rotating).await;
    let host = sim.url.trim_start_matches("http://").to_owned();
    let (_, reader) = api_token(&sim, "read:repository:bitbucket").await;
    let (_, writer) = api_token(&sim, "read:repository:bitbucket write:repository:bitbucket").await;
    let (_, access) = access_token(
        &sim,
        json!({"workspace": "acme", "repository": "widget", "scopes": "repository:write"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = |user: &str, token: &str| format!("http://{user}:{token}@{host}/acme/widget.git");

    let (ok, log) = git(
        dir.path(),
        &["clone", &url("x-bitbucket-api-token-auth", &reader), "a"],
    )
    .await;
    assert!(ok, "clone with an API token: {log}");
    let work = dir.path().join("a");
    std::fs::write(work.join("notes.txt"), "hello\n").unwrap();
    git(&work, &["add", "notes.txt"]).await;
    git(&work, &["commit", "-m", "notes"]).await;
    let (ok, log) = git(&work, &["push", "origin", "main"]).await;
    assert!(!ok, "a read-only API token cannot push");
    assert!(log.contains("403") || log.contains("scopes"), "{log}");

    let (ok, log) = git(&work, &["push", &url("alice", &writer), "main"]).await;
    assert!(ok, "push with the user name and a writing API token: {log}");

    let (ok, log) = git(dir.path(), &["clone", &url("x-token-auth", &access), "b"]).await;
    assert!(ok, "clone with a repository access token: {log}");
    assert!(dir.path().join("b/notes.txt").exists());
}

#[tokio::test]
async fn a_project_access_token_reaches_the_repositories_of_its_project() {
    let sim = TestSim::start(Mode::Rotating).await;
    sim.post(
        "/_sim/repositories",
        json!({"workspace": "acme", "slug": "infra", "project": "OPS"}),
    )
    .await;
    let (_, token) = access_token(
        &sim,
        json!({"workspace": "acme", "project": "OPS", "scopes": "repository"}),
    )
    .await;
    let (status, headers, _) = sim.cloud_get("/repositories/acme/infra", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-credential-type"], "project_access_token");
    let (status, _, _) = sim.cloud_get("/repositories/acme/widget", &token).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a private repository of no project of its"
    );
}
