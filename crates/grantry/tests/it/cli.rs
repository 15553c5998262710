//! The `grantry` command line, run as a user would: profiles, connections, tokens, API keys,
//! master key rotation while a server runs, and a second server refused on one SQLite file.

use crate::common::process::{Server, environment, free_port, run};
use bitbucket_sim::{Mode, RunningSim, Seed, SimBuilder};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::common::views::cli::{
    KeysRetired, KeysRotated, KeysStatus, Link, PasswordChanged, Revoked,
};
use crate::common::views::{
    Admin, ApiKey, Connection, Delivery, Event, Profile, ProfileDeleted, TestAnswer, TestQueued,
    Webhook,
};

const WORLD: &str = r#"
[settings]
auto_approve = "alice"
[[users]]
username = "alice"
[[workspaces]]
slug = "acme"
members = ["alice"]
[[repositories]]
workspace = "acme"
slug = "widget"
"#;

/// A simulator in rotation mode holding `WORLD`, and the environment of a `grantry` in front of
/// it with a data directory and port of its own.
async fn set_up() -> (RunningSim, tempfile::TempDir, u16, Vec<(String, String)>) {
    let sim = SimBuilder::new()
        .mode(Mode::Rotating)
        .seed(Seed::parse("w", WORLD).unwrap())
        .start()
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = environment(data.path(), port, sim.url());
    (sim, data, port, env)
}

/// A consumer ticking `permissions` at the simulator, registered with `grantry profiles create`
/// as "Backups" requiring `scope`; answers what the command printed.
async fn backups_profile(
    sim: &RunningSim,
    port: u16,
    env: &[(String, String)],
    permissions: &[&str],
    scope: &str,
) -> Profile {
    let callback = format!("http://127.0.0.1:{port}/oauth/callback");
    let consumer = sim_post(
        sim,
        "/_sim/consumers",
        json!({"workspace": "acme", "name": "backups", "callback_url": callback, "permissions": permissions}),
    )
    .await;
    let args = [
        "profiles",
        "create",
        "--name",
        "Backups",
        "--provider",
        "bitbucket-cloud",
        "--key",
        consumer["key"].as_str().unwrap(),
        "--scope",
        scope,
    ];
    let secret = format!("{}\n", consumer["secret"].as_str().unwrap());
    json_of(env, &args, Some(&secret)).await
}

/// A request to the simulator's control API; answers its JSON.
async fn sim_post(sim: &RunningSim, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", sim.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

/// Runs `grantry {args} --output json`, which must succeed; what it printed, decoded.
async fn json_of<T: DeserializeOwned>(
    env: &[(String, String)],
    args: &[&str],
    stdin: Option<&str>,
) -> T {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let (ok, out, err) = run(env, &all, stdin).await;
    assert!(ok, "grantry {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "grantry {args:?} did not print a {} ({e}): {out}",
            std::any::type_name::<T>()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_can_do_everything_from_the_command_line() {
    let (sim, data, port, env) = set_up().await;
    let http = reqwest::Client::new();
    let permissions = ["account.read", "repositories.read"];
    let profile = backups_profile(&sim, port, &env, &permissions, "repository").await;
    assert_eq!(
        profile.setup.tick,
        ["Account → Read", "Repositories → Read"]
    );
    let (ok, text, _) = run(&env, &["profiles", "show", "Backups"], None).await;
    assert!(
        ok && text.contains("Under Permissions, tick: Account → Read, Repositories → Read."),
        "{text}"
    );
    let (ok, _, err) = run(&env, &["profiles", "delete", "Backups"], None).await;
    assert!(
        !ok && err.contains("--yes"),
        "deleting asks for confirmation: {err}"
    );

    let server = Server::start(&env, data.path().join("serve.log")).await;
    let link: Link = json_of(&env, &["connect", "Backups", "--end-user", "u1"], None).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(10))
        .cookie_store(true)
        .build()
        .unwrap();
    let landed = browser.get(&link.url).send().await.unwrap();
    assert!(landed.url().path().ends_with("/connect/complete"));
    assert!(landed.text().await.unwrap().contains("Connected"));

    let listed: Vec<Connection> =
        json_of(&env, &["connections", "list", "--profile", "Backups"], None).await;
    let connection = listed[0].id.clone();
    assert_eq!(listed[0].account.username.as_deref(), Some("alice"));
    let (ok, token, _) = run(&env, &["token", &connection], None).await;
    assert!(ok && token.trim().len() > 2500, "a bare token for scripts");
    let (ok, header, _) = run(&env, &["token", &connection, "--header"], None).await;
    assert!(ok && header.starts_with("Bearer "));
    let tested: TestAnswer = json_of(&env, &["connections", "test", &connection], None).await;
    assert_eq!(tested.status, 200);

    let before: KeysStatus = json_of(&env, &["keys", "status"], None).await;
    let rotated: KeysRotated = json_of(&env, &["keys", "rotate"], None).await;
    assert!(rotated.resealed >= 3, "{rotated:?}");
    assert_eq!(rotated.left_under_older_keys, 0);
    assert_ne!(before.primary, rotated.primary);
    let key: ApiKey = json_of(
        &env,
        &["api-keys", "create", "--name", "app", "--role", "app"],
        None,
    )
    .await;
    let served = http
        .get(format!(
            "http://127.0.0.1:{port}/v1/connections/{connection}/token"
        ))
        .bearer_auth(key.key.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        served.status(),
        200,
        "the running server opens values re-sealed under the new key"
    );
    let events: Vec<Event> = json_of(&env, &["events", "--kind", "keys.rotated"], None).await;
    assert_eq!(events.len(), 1);

    let retired: KeysRetired = json_of(&env, &["keys", "retire"], None).await;
    assert_eq!(retired.removed, [before.primary], "{retired:?}");
    assert_eq!(retired.kept, [rotated.primary]);
    let key_file = std::fs::read_to_string(data.path().join("master.key")).unwrap();
    assert_eq!(
        key_file.lines().filter(|l| !l.starts_with('#')).count(),
        1,
        "only the primary is left in the file"
    );
    let refreshed: Connection = json_of(&env, &["connections", "refresh", &connection], None).await;
    assert_eq!(
        refreshed.status, "active",
        "values still open: {refreshed:?}"
    );
    let again: KeysRetired = json_of(&env, &["keys", "retire"], None).await;
    assert!(again.removed.is_empty(), "nothing left to retire");

    let second = crate::common::process::environment(data.path(), free_port(), sim.url());
    let (ok, _, err) = run(&second, &["serve"], None).await;
    assert!(
        !ok && err.contains("is already using the SQLite database"),
        "{err}"
    );

    let revoked: Revoked = json_of(&env, &["api-keys", "revoke", &key.id], None).await;
    assert_eq!(revoked.revoked, key.id);
    // An access token made in Bitbucket, stored with its expiry; a mistyped expiry is named.
    let made = sim_post(
        &sim,
        "/_sim/access-tokens",
        json!({"workspace": "acme", "scopes": "repository"}),
    )
    .await;
    let token = format!("{}\n", made["token"].as_str().unwrap());
    let add = |expiry: &'static str| {
        [
            "connections",
            "add",
            "--profile",
            "Backups",
            "--end-user",
            "ci",
            "--access-token",
            "--expires-at",
            expiry,
        ]
    };
    let (ok, _, err) = run(&env, &add("soon"), Some(&token)).await;
    assert!(!ok && err.contains("--expires-at"), "{err}");
    let stored: Connection = json_of(&env, &add("2030-01-01T00:00:00Z"), Some(&token)).await;
    assert_eq!(stored.credential, "access_token");
    assert_eq!(stored.expires_at.as_deref(), Some("2030-01-01T00:00:00Z"));

    let deleted: ProfileDeleted =
        json_of(&env, &["profiles", "delete", "Backups", "--yes"], None).await;
    assert_eq!(deleted.connections_deleted, 2);
    server.stop().await;
}

#[tokio::test]
async fn configuration_mistakes_are_named() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("grantry.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1\"\n[refresh]\nmargin = 5\n").unwrap();
    let (ok, _, err) = run(&[], &["--config", file.to_str().unwrap(), "config"], None).await;
    assert!(!ok && err.contains("margin"), "{err}");

    let env = vec![
        (
            "GRANTRY_DATA_DIR".to_owned(),
            data.path().display().to_string(),
        ),
        (
            "GRANTRY_DATABASE_URL".to_owned(),
            "postgres://grantry:hunter2@db.example/grantry".to_owned(),
        ),
    ];
    let (ok, out, err) = run(&env, &["config"], None).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("postgres://grantry:***@db.example/grantry") && !out.contains("hunter2"),
        "{out}"
    );

    let (ok, out, _) = run(&[], &["--help"], None).await;
    assert!(ok && out.contains("connection broker") && out.contains("api-keys"));
    let (ok, _, err) = run(&env, &["token", "con_nope"], None).await;
    assert!(!ok && err.contains("error:"), "{err}");
}

/// Signs in to the console over HTTP; the session cookie, or None when refused.
async fn console_sign_in(base: &str, username: &str, password: &str) -> Option<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http
        .post(format!("{base}/ui/login"))
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .unwrap();
    let cookie = answer.headers().get("set-cookie")?.to_str().unwrap();
    Some(cookie.split(';').next().unwrap().to_owned())
}

/// Where the console sends a request carrying `cookie`: the page itself (200) or the sign-in.
async fn console_page(base: &str, cookie: &str) -> reqwest::StatusCode {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    http.get(format!("{base}/ui/profiles"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_admins_change_passwords_and_leave_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = environment(data.path(), port, "http://127.0.0.1:9");
    let base = format!("http://127.0.0.1:{port}");
    let (first, second) = ("correct horse battery", "staple the battery again");
    for name in ["alice", "bob"] {
        let _: Admin = json_of(
            &env,
            &["admin", "create", "--username", name],
            Some(&format!("{first}\n")),
        )
        .await;
    }
    let server = Server::start(&env, data.path().join("serve.log")).await;
    let bob = console_sign_in(&base, "bob", first)
        .await
        .expect("signed in");
    assert_eq!(console_page(&base, &bob).await, reqwest::StatusCode::OK);

    let (ok, _, err) = run(
        &env,
        &["admin", "password", "--username", "bob"],
        Some("short\n"),
    )
    .await;
    assert!(!ok && err.contains("password"), "{err}");
    let changed: PasswordChanged = json_of(
        &env,
        &["admin", "password", "--username", "bob"],
        Some(&format!("{second}\n")),
    )
    .await;
    assert!(changed.sessions_ended);
    assert_eq!(
        console_page(&base, &bob).await,
        reqwest::StatusCode::SEE_OTHER,
        "the old session ended with the old password"
    );
    assert_eq!(console_sign_in(&base, "bob", first).await, None);
    let bob = console_sign_in(&base, "bob", second)
        .await
        .expect("the new password works");

    json_of::<Value>(&env, &["admin", "remove", "--username", "bob"], None).await;
    assert_eq!(
        console_page(&base, &bob).await,
        reqwest::StatusCode::SEE_OTHER,
        "a removed admin is signed out at once"
    );
    assert_eq!(console_sign_in(&base, "bob", second).await, None);
    // Raw: the point is also what is not printed.
    let admins: Value = json_of(&env, &["admin", "list"], None).await;
    let listed: Vec<Admin> = crate::common::views::decode(&admins);
    assert_eq!(
        listed
            .iter()
            .map(|a| a.username.as_str())
            .collect::<Vec<_>>(),
        ["alice"]
    );
    assert!(
        admins[0].get("password_hash").is_none(),
        "no hash is printed"
    );

    let (ok, _, err) = run(&env, &["admin", "remove", "--username", "alice"], None).await;
    assert!(!ok && err.contains("only admin"), "{err}");
    let (ok, _, err) = run(&env, &["admin", "remove", "--username", "carol"], None).await;
    assert!(!ok && err.contains("admin `carol`"), "{err}");

    let events: Vec<Event> = json_of(&env, &["events", "--kind", "admin."], None).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "admin.sign_in_failed",
            "admin.removed",
            "admin.sign_in_failed",
            "admin.password_changed",
            "admin.created",
            "admin.created"
        ],
        "newest first"
    );
    server.stop().await;
}

/// Runs `git` with no user or system configuration, the helper given, and `env` added.
async fn git(
    dir: &std::path::Path,
    helper: &str,
    env: &[(String, String)],
    args: &[&str],
) -> (bool, String) {
    let mut command = crate::common::backup_git(dir, std::path::Path::new("/dev/null"));
    command
        .arg("-c")
        .arg(format!("credential.helper={helper}"))
        .args(args)
        .envs(env.iter().cloned());
    crate::common::run_git(command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clones_and_pushes_with_tokens_from_the_credential_helper() {
    let (sim, data, port, env) = set_up().await;
    let permissions = ["account.read", "repositories.write"];
    backups_profile(&sim, port, &env, &permissions, "repository:write").await;
    let server = Server::start(&env, data.path().join("serve.log")).await;
    let link: Link = json_of(&env, &["connect", "Backups", "--end-user", "u1"], None).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let landed = browser.get(&link.url).send().await.unwrap();
    assert!(landed.url().path().ends_with("/connect/complete"));
    let listed: Vec<Connection> =
        json_of(&env, &["connections", "list", "--profile", "Backups"], None).await;
    let connection = listed[0].id.clone();
    let key: ApiKey = json_of(
        &env,
        &[
            "api-keys",
            "create",
            "--name",
            "backup-job",
            "--role",
            "app",
        ],
        None,
    )
    .await;
    let key = key.key.unwrap();

    let remote = format!("{}/acme/widget.git", sim.url());
    let work = tempfile::tempdir().unwrap();
    let binary = crate::common::process::BINARY;
    let from_server = format!(
        "!{binary} git-credential --connection {connection} --server http://127.0.0.1:{port}"
    );
    let with_key = vec![("GRANTRY_API_KEY".to_owned(), key.clone())];
    let (ok, log) = git(
        work.path(),
        &from_server,
        &with_key,
        &["clone", &remote, "a"],
    )
    .await;
    assert!(ok, "clone with a token from the server: {log}");
    let clone = work.path().join("a");
    assert!(clone.join("README.md").exists());
    std::fs::write(clone.join("backup.txt"), "kept\n").unwrap();
    for step in [
        vec!["checkout", "-b", "backup"],
        vec!["add", "backup.txt"],
        vec!["commit", "-m", "Backed up"],
    ] {
        assert!(git(&clone, &from_server, &with_key, &step).await.0);
    }
    let (ok, log) = git(
        &clone,
        &from_server,
        &with_key,
        &["push", "origin", "backup"],
    )
    .await;
    assert!(ok, "push with a token from the server: {log}");

    let (ok, _) = git(
        work.path(),
        &from_server,
        &[],
        &["clone", &remote, "no-key"],
    )
    .await;
    assert!(
        !ok,
        "without an API key the helper gives git nothing, and the clone fails"
    );

    // Without --server the helper reads the local database, like `grantry token`.
    // (with the client's GRANTRY_API_KEY still exported: the configuration must not trip on it).
    let local = format!("!{binary} git-credential --connection {connection}");
    let exported: Vec<_> = env.iter().chain(&with_key).cloned().collect();
    let (ok, log) = git(work.path(), &local, &exported, &["clone", &remote, "b"]).await;
    assert!(ok, "clone with a token from the local database: {log}");
    assert!(work.path().join("b").join("README.md").exists());

    // Refusals name their cause, and git sees no token.
    let helper = |args: Vec<String>, extra: Vec<(String, String)>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(
            &extra,
            &args,
            Some("protocol=http\nhost=bitbucket.example.com\n\n"),
        )
        .await
    };
    let get = |server: &str| {
        vec![
            "git-credential".to_owned(),
            "--connection".to_owned(),
            connection.clone(),
            "--server".to_owned(),
            server.to_owned(),
            "get".to_owned(),
        ]
    };
    let server_url = format!("http://127.0.0.1:{port}");
    let (ok, out, err) = helper(get(&server_url), with_key.clone()).await;
    assert!(!ok && out.is_empty() && err.contains("only https"), "{err}");
    let (ok, out, err) = run(
        &[("GRANTRY_API_KEY".to_owned(), "gry_wrong".to_owned())],
        &get(&server_url)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        Some("protocol=https\nhost=bitbucket.org\n\n"),
    )
    .await;
    assert!(!ok && out.is_empty() && err.contains("401"), "{err}");
    let (ok, out, _) = run(
        &with_key,
        &[
            "git-credential",
            "--connection",
            &connection,
            "--server",
            &server_url,
            "erase",
        ],
        Some("protocol=https\nhost=bitbucket.org\n\n"),
    )
    .await;
    assert!(ok && out.is_empty(), "erase leaves Grantry's token alone");
    let (ok, out, _) = run(
        &with_key,
        &get(&server_url)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        Some("protocol=https\nhost=bitbucket.org\n\n"),
    )
    .await;
    assert!(
        ok && out.starts_with("username=x-token-auth\npassword=")
            && out.contains("password_expiry_utc="),
        "{out}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_managed_from_the_command_line() {
    let (_sim, _data, _port, env) = set_up().await;
    let url = "http://127.0.0.1:9/hooks";
    let added: Webhook = json_of(
        &env,
        &[
            "webhooks",
            "add",
            "--url",
            url,
            "--kind",
            "connection.needs_reauth",
        ],
        None,
    )
    .await;
    let id = added.id.clone();
    assert!(added.secret.as_deref().unwrap().starts_with("whsec_"));
    assert_eq!(added.kinds, ["connection.needs_reauth"]);

    // Raw: the point is also what is not printed.
    let listed: Value = json_of(&env, &["webhooks", "list"], None).await;
    assert_eq!(
        crate::common::views::decode::<Vec<Webhook>>(&listed)[0].id,
        id
    );
    assert!(listed[0].get("secret").is_none(), "shown once only");
    let rotated: Webhook = json_of(&env, &["webhooks", "rotate-secret", &id], None).await;
    assert_ne!(rotated.secret, added.secret);
    let test: TestQueued = json_of(&env, &["webhooks", "test", &id], None).await;
    let deliveries: Vec<Delivery> = json_of(&env, &["webhooks", "deliveries", &id], None).await;
    assert_eq!(deliveries[0].event_id, test.event_id);
    assert_eq!(
        deliveries[0].state, "pending",
        "nothing serves, so nothing delivered"
    );
    let disabled: Webhook = json_of(
        &env,
        &["webhooks", "enable", &id, "--enabled", "false"],
        None,
    )
    .await;
    assert!(!disabled.enabled);

    let (ok, _, err) = run(&env, &["webhooks", "add", "--url", "ftp://x/"], None).await;
    assert!(!ok && err.contains("url"), "{err}");
    let (ok, _, _) = run(&env, &["webhooks", "remove", &id], None).await;
    assert!(ok);
    assert!(
        json_of::<Vec<Webhook>>(&env, &["webhooks", "list"], None)
            .await
            .is_empty()
    );
}

/// The README's first command, as a new user runs it (without waiting for Ctrl-C): every step
/// of the flow goes through, the connect flow included (its cookie binding and all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_the_whole_flow_offline() {
    let (ok, out, err) = run(&[], &["demo", "--port", "0", "--no-wait"], None).await;
    assert!(ok, "the demo failed: {err}\n{out}");
    assert!(
        out.contains("the browser came back to /connect/complete?connection_id=con_"),
        "{out}"
    );
    assert!(out.contains("bearer for alice"), "a token read: {out}");
    assert!(
        out.contains("1 refresh grant(s) and 0 refresh token(s) used twice"),
        "{out}"
    );
}
