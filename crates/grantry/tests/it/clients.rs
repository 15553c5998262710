//! Published clients nobody here wrote, pinned in `interop/` and installed by `interop/install`
//! (which `scripts/test` runs), driven through `/v1/proxy` with nothing changed but their base URL
//! and key: npm `bitbucket`, `atlassian-python-api` (Cloud and Data Center), the `bitbucket-mcp`
//! server over stdio, and real `git` asking `grantry git-credential` for a Data Center token.
//! Every one must reach only Grantry: the simulator counts its callers by `User-Agent`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{TestApp, git};
use bitbucket_sim::Mode;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::Command;

fn interop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// The installed clients, or a failure saying how to install them.
fn installed(relative: &str) -> PathBuf {
    let path = interop().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run interop/install (./scripts/test does) to install the pinned clients",
        path.display()
    );
    path
}

/// Runs a client script; answers the JSON object it prints.
async fn client(program: &Path, args: &[&str], env: &[(&str, String)]) -> Value {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(interop())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the client finishes within two minutes")
        .expect("the client runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "{program:?} {args:?} failed:\n{stderr}\n{stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|_| panic!("no JSON from {args:?}:\n{stdout}\n{stderr}"))
}

fn node() -> PathBuf {
    PathBuf::from("node")
}

fn python() -> PathBuf {
    installed(".venv/bin/python")
}

/// Alice's Cloud connection, and a world worth paging through: more workspaces, repositories
/// and pull requests than one default page holds, a file and a branch with a change.
async fn cloud_world(app: &TestApp) -> String {
    let profile = app
        .cloud_profile(
            "Clients",
            &["account.read", "pull_requests.write"],
            &["account", "pullrequest:write"],
        )
        .await;
    let connection = app.connect(&profile, "agent-1").await;
    for n in 1..=11 {
        let slug = format!("team-{n:02}");
        app.sim_post(
            "/_sim/workspaces",
            json!({"slug": slug, "members": ["alice"]}),
        )
        .await;
        let repo = json!({"workspace": "acme", "slug": format!("repo-{n:02}")});
        app.sim_post("/_sim/repositories", repo).await;
    }
    let files = json!({"docs/guide.md": "# Guide\n\nRead me through Grantry.\n"});
    app.sim_post(
        "/_sim/repositories/acme/widget/commits",
        json!({"branch": "main", "files": files}),
    )
    .await;
    let change = json!({"feature.txt": "a feature\n"});
    app.sim_post(
        "/_sim/repositories/acme/widget/commits",
        json!({"branch": "feature", "message": "Add a feature", "files": change}),
    )
    .await;
    connection
}

/// Clears the simulator's caller counts: what follows is the clients' doing.
async fn forget_callers(app: &TestApp) {
    let url = format!("{}/_sim/stats", app.sim.url());
    app.http.delete(url).send().await.unwrap();
}

/// Whoever called the simulator since `forget_callers`: only Grantry, or the test fails.
async fn only_grantry_called(app: &TestApp) {
    let stats = app.sim_stats().await;
    let callers: Vec<&String> = stats["user_agents"].as_object().unwrap().keys().collect();
    assert_eq!(
        callers,
        ["grantry"],
        "a client reached the upstream host itself: {stats}"
    );
}

async fn open_pull_request(app: &TestApp, connection: &str, title: &str) {
    let url = format!(
        "{}/v1/proxy/{connection}/2.0/repositories/acme/widget/pullrequests",
        app.base
    );
    let body = json!({"title": title, "source": {"branch": {"name": "feature"}}});
    let response = app
        .http
        .post(url)
        .bearer_auth(&app.app_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_bitbucket_pages_reads_and_writes_through_the_proxy() {
    let script = installed("npm-bitbucket.mjs");
    installed("node_modules/bitbucket/package.json");
    let app = TestApp::start(Mode::Rotating).await;
    let connection = cloud_world(&app).await;
    forget_callers(&app).await;
    let base = format!("{}/v1/proxy/{connection}/2.0", app.base);
    let env = [
        ("BASE_URL", base.clone()),
        ("TOKEN", app.app_key.clone()),
        ("WORKSPACE", "acme".to_owned()),
        ("REPO", "widget".to_owned()),
        (
            "BROKEN_BASE_URL",
            format!("{}/v1/proxy/con_00000000000000000000000000/2.0", app.base),
        ),
    ];
    let seen = client(&node(), &[script.to_str().unwrap()], &env).await;

    assert_eq!(seen["user"], "alice");
    assert_eq!(seen["pages"], 6, "12 repositories, two per page: {seen}");
    assert_eq!(seen["repositories"].as_array().unwrap().len(), 12);
    for next in seen["next_links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| !n.is_null())
    {
        assert!(
            next.as_str().unwrap().starts_with(&base),
            "next stays on Grantry: {next}"
        );
    }
    assert_eq!(seen["created"]["status"], 201);
    assert!(seen["created"]["self"].as_str().unwrap().starts_with(&base));
    assert_eq!(seen["pullrequests"], json!(["From npm bitbucket"]));
    assert_eq!(
        seen["file"], "# Guide\n\nRead me through Grantry.\n",
        "docs%2Fguide.md arrived whole"
    );
    let diff = seen["diff"].as_str().unwrap();
    assert!(
        diff.contains("+a feature"),
        "the diff, through Bitbucket's 302: {diff}"
    );
    assert!(seen["diff_url"].as_str().unwrap().contains("%0D"), "{seen}");
    assert_eq!(seen["broken"]["status"], 404);
    assert!(
        seen["broken"]["message"]
            .as_str()
            .unwrap()
            .contains("connection"),
        "the client shows Grantry's reason: {seen}"
    );
    only_grantry_called(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atlassian_python_api_follows_cloud_links_and_pages_through_the_proxy() {
    let script = installed("atlassian_client.py");
    let app = TestApp::start(Mode::Rotating).await;
    let connection = cloud_world(&app).await;
    for n in 1..=11 {
        open_pull_request(&app, &connection, &format!("Change {n}")).await;
    }
    forget_callers(&app).await;
    let base = format!("{}/v1/proxy/{connection}", app.base);
    let env = [
        ("BASE_URL", base.clone()),
        ("TOKEN", app.app_key.clone()),
        ("WORKSPACE", "acme".to_owned()),
        ("REPO", "widget".to_owned()),
    ];
    let seen = client(&python(), &[script.to_str().unwrap(), "cloud"], &env).await;

    assert_eq!(
        seen["workspaces"].as_array().unwrap().len(),
        12,
        "two pages of /user/workspaces: {seen}"
    );
    assert_eq!(
        seen["repositories"].as_array().unwrap().len(),
        12,
        "two pages: {seen}"
    );
    assert_eq!(
        seen["pullrequests"].as_array().unwrap().len(),
        11,
        "two pages: {seen}"
    );
    for link in [
        "workspace_repositories_url",
        "repository_url",
        "pullrequest_url",
    ] {
        assert!(
            seen[link].as_str().unwrap().starts_with(&base),
            "{link} is followed through Grantry: {seen}"
        );
    }
    assert_eq!(seen["pullrequest_commits"].as_array().unwrap().len(), 1);
    assert!(
        seen["pullrequest_diff"]
            .as_str()
            .unwrap()
            .contains("+a feature")
    );
    assert_eq!(seen["missing"]["status"], 404);
    assert!(
        seen["missing"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-workspace"),
        "{seen}"
    );
    only_grantry_called(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atlassian_python_api_pages_data_center_through_the_proxy() {
    let script = installed("atlassian_client.py");
    let app = TestApp::start(Mode::Rotating).await;
    app.sim_post("/_sim/dc/projects", json!({"key": "OPS"}))
        .await;
    app.sim_post(
        "/_sim/dc/repositories",
        json!({"project": "OPS", "slug": "runbooks"}),
    )
    .await;
    let grant = json!({"user": "carol", "project": "OPS", "permission": "PROJECT_READ"});
    app.sim_post("/_sim/dc/permissions", grant).await;
    for slug in ["app", "docs", "tools"] {
        app.sim_post(
            "/_sim/dc/repositories",
            json!({"project": "PRJ", "slug": slug}),
        )
        .await;
    }
    let profile = app.dc_profile("DC", &["REPO_READ"], &["REPO_READ"]).await;
    let connection = app.connect(&profile, "agent-1").await;
    forget_callers(&app).await;
    let env = [
        ("BASE_URL", format!("{}/v1/proxy/{connection}", app.base)),
        ("TOKEN", app.app_key.clone()),
    ];
    let seen = client(&python(), &[script.to_str().unwrap(), "dc"], &env).await;

    assert_eq!(
        seen["projects"],
        json!(["OPS", "PRJ"]),
        "one per page: {seen}"
    );
    assert_eq!(
        seen["repositories"],
        json!(["api", "app", "docs", "tools"]),
        "two per page"
    );
    assert_eq!(seen["missing"]["status"], 404);
    assert!(
        seen["missing"]["message"]
            .as_str()
            .unwrap()
            .contains("NOPE"),
        "{seen}"
    );
    only_grantry_called(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitbucket_mcp_lists_everything_and_opens_a_pull_request() {
    let script = installed("bitbucket-mcp.mjs");
    installed("node_modules/bitbucket-mcp/dist/index.js");
    let app = TestApp::start(Mode::Rotating).await;
    let connection = cloud_world(&app).await;
    forget_callers(&app).await;
    let log = tempfile::tempdir().unwrap();
    let env = [
        (
            "BASE_URL",
            format!("{}/v1/proxy/{connection}/2.0", app.base),
        ),
        ("TOKEN", app.app_key.clone()),
        ("WORKSPACE", "acme".to_owned()),
        ("REPO", "widget".to_owned()),
        ("LOG_FILE", log.path().join("mcp.log").display().to_string()),
    ];
    let seen = client(&node(), &[script.to_str().unwrap()], &env).await;

    let tools = seen["tools"].as_array().unwrap();
    assert!(
        tools.contains(&json!("listRepositories")) && tools.contains(&json!("createPullRequest"))
    );
    assert_eq!(
        seen["repositories"].as_array().map(Vec::len),
        Some(12),
        "`all: true` follows every next link: {seen}"
    );
    assert_eq!(seen["created"]["title"], "From bitbucket-mcp", "{seen}");
    only_grantry_called(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clones_and_pushes_data_center_with_tokens_from_grantry_and_stores_none() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app
        .dc_profile("DC git", &["REPO_WRITE"], &["REPO_WRITE"])
        .await;
    let connection = app.connect(&profile, "backup-job").await;
    let dir = tempfile::tempdir().unwrap();
    let stored = dir.path().join("git-credentials");
    let host = app.sim.url().to_owned();
    let helper = format!(
        "!{} git-credential --connection {connection} --server {}",
        crate::common::process::BINARY,
        app.base
    );
    // The machine already has git's `store` helper; the set-up README.md gives for Data Center.
    let config = |reset: bool| {
        let reset = if reset { "\thelper =\n" } else { "" };
        format!(
            "[credential]\n\thelper = store --file={}\n[credential \"{host}\"]\n{reset}\thelper = {}\n",
            stored.display(),
            helper.replace('\\', "\\\\").replace('"', "\\\""),
        )
    };
    let global = dir.path().join("gitconfig");
    std::fs::write(&global, config(true)).unwrap();
    let remote = format!("{host}/dc/scm/prj/api.git");

    let (ok, log) = git(
        dir.path(),
        &global,
        &app.app_key,
        &["clone", &remote, "api"],
    )
    .await;
    assert!(ok, "clone: {log}");
    let work = dir.path().join("api");
    std::fs::write(work.join("backup.txt"), "kept\n").unwrap();
    for step in [vec!["add", "backup.txt"], vec!["commit", "-m", "Back up"]] {
        assert!(git(&work, &global, &app.app_key, &step).await.0);
    }
    let (ok, log) = git(&work, &global, &app.app_key, &["push", "origin", "main"]).await;
    assert!(ok, "push: {log}");
    assert!(
        !stored.exists(),
        "the empty `helper =` line keeps git's store helper from saving the token"
    );

    // Without that line, git hands the token to every helper configured before Grantry's.
    std::fs::write(&global, config(false)).unwrap();
    let (ok, log) = git(
        dir.path(),
        &global,
        &app.app_key,
        &["clone", &remote, "again"],
    )
    .await;
    assert!(ok, "{log}");
    assert!(
        std::fs::read_to_string(&stored).is_ok_and(|saved| saved.contains("x-token-auth")),
        "the set-up without the reset line leaks the token to disk, which is why README.md has it"
    );
}
