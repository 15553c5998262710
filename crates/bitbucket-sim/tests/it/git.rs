//! Git over HTTPS with a real `git`: clone and push with a token, refusals without one or with
//! too few scopes.

use std::path::Path;

use crate::common::TestSim;
use bitbucket_sim::Mode;
use tokio::process::Command;

pub(crate) async fn git(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .await
        .expect("git runs");
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), text)
}

async fn token(sim: &TestSim, permissions: &[&str]) -> String {
    let client = sim.consumer(permissions, false).await;
    sim.cloud_connect(&client).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn remote(sim: &TestSim, token: Option<&str>, repo: &str) -> String {
    let host = sim.url.trim_start_matches("http://");
    match token {
        Some(token) => format!("http://x-token-auth:{token}@{host}/acme/{repo}.git"),
        None => format!("http://{host}/acme/{repo}.git"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_and_push_with_a_token() {
    let sim = TestSim::start(Mode::Rotating).await;
    let token = token(&sim, &["repositories.write"]).await;
    let dir = tempfile::tempdir().unwrap();

    let (ok, log) = git(
        dir.path(),
        &["clone", &remote(&sim, Some(&token), "widget"), "work"],
    )
    .await;
    assert!(ok, "clone failed: {log}");
    let work = dir.path().join("work");
    assert!(
        work.join("README.md").exists(),
        "the first commit came with the clone"
    );

    std::fs::write(work.join("change.txt"), "hello\n").unwrap();
    assert!(git(&work, &["checkout", "-b", "feature"]).await.0);
    assert!(git(&work, &["add", "change.txt"]).await.0);
    assert!(git(&work, &["commit", "-m", "A change"]).await.0);
    let (ok, log) = git(&work, &["push", "origin", "feature"]).await;
    assert!(ok, "push failed: {log}");

    let pr =
        serde_json::json!({"title": "From the test", "source": {"branch": {"name": "feature"}}});
    let pr_token = self::token(&sim, &["pull_requests.write"]).await;
    let response = sim
        .http
        .post(format!(
            "{}/2.0/repositories/acme/widget/pullrequests",
            sim.url
        ))
        .bearer_auth(&pr_token)
        .json(&pr)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        reqwest::StatusCode::CREATED,
        "the pushed branch is real"
    );
    let stats = sim.stats().await;
    assert_eq!(stats["counts"]["git"]["receive-pack"]["ok"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_without_a_token_and_with_too_few_scopes() {
    let sim = TestSim::start(Mode::Rotating).await;
    let dir = tempfile::tempdir().unwrap();

    let (ok, log) = git(
        dir.path(),
        &["clone", &remote(&sim, None, "widget"), "anonymous"],
    )
    .await;
    assert!(!ok, "a private repository needs credentials");
    assert!(
        log.contains("could not read Username") || log.contains("Authentication failed"),
        "{log}"
    );

    let (ok, log) = git(
        dir.path(),
        &["clone", &remote(&sim, None, "website"), "public"],
    )
    .await;
    assert!(ok, "a public repository clones anonymously: {log}");

    let account_only = token(&sim, &["account.read"]).await;
    let (ok, log) = git(
        dir.path(),
        &["clone", &remote(&sim, Some(&account_only), "widget"), "x"],
    )
    .await;
    assert!(!ok && log.contains("403"), "{log}");

    let read_only = token(&sim, &["repositories.read"]).await;
    let (ok, log) = git(
        dir.path(),
        &["clone", &remote(&sim, Some(&read_only), "widget"), "ro"],
    )
    .await;
    assert!(ok, "{log}");
    let work = dir.path().join("ro");
    std::fs::write(work.join("x.txt"), "x\n").unwrap();
    assert!(git(&work, &["add", "x.txt"]).await.0);
    assert!(git(&work, &["commit", "-m", "x"]).await.0);
    let (ok, log) = git(&work, &["push", "origin", "main"]).await;
    assert!(
        !ok && log.contains("403"),
        "a read-only token cannot push: {log}"
    );

    let (ok, log) = git(
        dir.path(),
        &["clone", &remote(&sim, Some("bogus"), "widget"), "bogus"],
    )
    .await;
    assert!(!ok && log.contains("Authentication failed"), "{log}");
}

/// Data Center reads the token as the Basic password whatever the user name.
fn dc_remote(sim: &TestSim, token: &str, project: &str, repo: &str) -> String {
    let host = sim.url.trim_start_matches("http://");
    format!("http://someone:{token}@{host}/dc/scm/{project}/{repo}.git")
}

async fn dc_token(sim: &TestSim, user: &str) -> String {
    use crate::common::{CALLBACK, location, query_param};
    let body =
        serde_json::json!({"name": "Git", "redirect_url": CALLBACK, "scopes": ["REPO_WRITE"]});
    let link = sim.post("/_sim/dc/links", body).await;
    let (id, secret) = (
        link["client_id"].as_str().unwrap(),
        link["client_secret"].as_str().unwrap(),
    );
    let query = [
        ("client_id", id),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
    ];
    let consented = sim
        .consent("/dc/rest/oauth2/latest/authorize", &query, user, "grant")
        .await;
    let code = query_param(&location(&consented), "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", id),
        ("client_secret", secret),
    ];
    let tokens: serde_json::Value = sim
        .http
        .post(format!("{}/dc/rest/oauth2/latest/token", sim.url))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_center_repositories_clone_and_push_under_scm() {
    let sim = TestSim::start(Mode::Rotating).await;
    let dir = tempfile::tempdir().unwrap();
    let carol = dc_token(&sim, "carol").await;

    let (ok, log) = git(
        dir.path(),
        &["clone", &dc_remote(&sim, &carol, "prj", "api"), "api"],
    )
    .await;
    assert!(ok, "carol may write PRJ: {log}");
    let work = dir.path().join("api");
    std::fs::write(work.join("x.txt"), "x\n").unwrap();
    assert!(git(&work, &["add", "x.txt"]).await.0);
    assert!(git(&work, &["commit", "-m", "x"]).await.0);
    let (ok, log) = git(&work, &["push", "origin", "main"]).await;
    assert!(ok, "push failed: {log}");

    let dave = dc_token(&sim, "dave").await;
    let (ok, log) = git(
        dir.path(),
        &["clone", &dc_remote(&sim, &dave, "prj", "api"), "no"],
    )
    .await;
    assert!(
        !ok && log.contains("403"),
        "dave has no permission on PRJ: {log}"
    );
    let (ok, log) = git(
        dir.path(),
        &["clone", &dc_remote(&sim, "wrong", "prj", "api"), "no"],
    )
    .await;
    assert!(!ok && log.contains("Authentication failed"), "{log}");
}
