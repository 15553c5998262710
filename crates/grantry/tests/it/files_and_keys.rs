//! What a server does with its files and keys at start: a data directory only its owner can
//! read, the master keys the database needs or a refusal naming them, passwords kept out of
//! what it prints, and a data directory deleted under it noticed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::common::process::{Server, environment, free_port, run};
use crate::common::views::cli::KeysStatus;
use crate::common::views::{ApiKey, Problem};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn env_in(data: &Path) -> Vec<(String, String)> {
    environment(data, free_port(), "http://127.0.0.1:9")
}

/// A server started on a data directory that does not exist yet, and what it leaves there.
#[tokio::test]
async fn the_data_directory_is_the_owners_alone() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("fresh/grantry");
    let env = env_in(&data);
    let server = Server::start(&env, root.path().join("first.log")).await;
    server.stop().await;
    assert_eq!(mode(&data), 0o700, "the directory");
    for file in [
        "grantry.db",
        "grantry.db-wal",
        "grantry.db-shm",
        "master.key",
        "grantry.db.lock",
    ] {
        let path = data.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    assert!(data.join("grantry.db").exists());

    // Left open by an older version or by hand: tightened at the next start, with a warning.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        data.join("grantry.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (ok, _, err) = run(&env, &["profiles", "list"], None).await;
    assert!(ok, "{err}");
    assert!(err.contains("was readable by other users"), "{err}");
    assert_eq!(
        (mode(&data), mode(&data.join("grantry.db"))),
        (0o700, 0o600)
    );
}

#[tokio::test]
async fn a_missing_or_wrong_master_key_is_refused_at_start() {
    let data = tempfile::tempdir().unwrap();
    let env = env_in(data.path());
    let (ok, _, err) = run(
        &env,
        &["api-keys", "create", "--name", "k", "--role", "app"],
        None,
    )
    .await;
    assert!(ok, "{err}");
    // Something sealed: a profile's secret.
    let args = [
        "profiles",
        "create",
        "--name",
        "P",
        "--provider",
        "bitbucket-cloud",
        "--key",
        "k",
        "--scope",
        "repository",
    ];
    let (ok, _, err) = run(&env, &args, Some("s3cret-value\n")).await;
    assert!(ok, "{err}");
    let (ok, status, _) = run(&env, &["keys", "status", "--output", "json"], None).await;
    assert!(ok);
    let status: KeysStatus = serde_json::from_str(&status).unwrap();
    let used = status.primary;

    // Another valid key: refused, naming the key the database needs.
    let other = grantry_crypto::MasterKey::generate().unwrap();
    let mut wrong = env.clone();
    wrong.push((
        "GRANTRY_MASTER_KEY".into(),
        other.to_base64().as_str().to_owned(),
    ));
    for command in [&["serve"][..], &["profiles", "list"]] {
        let (ok, _, err) = run(&wrong, command, None).await;
        assert!(!ok, "{command:?} started with the wrong key");
        assert!(
            err.contains(&used) && err.contains("does not have"),
            "{err}"
        );
    }

    // The key file deleted: refused, and no new key file made.
    std::fs::remove_file(data.path().join("master.key")).unwrap();
    let (ok, _, err) = run(&env, &["serve"], None).await;
    assert!(!ok);
    assert!(err.contains("restore the key file"), "{err}");
    assert!(!data.path().join("master.key").exists());
}

#[tokio::test]
async fn database_passwords_are_never_printed() {
    let data = tempfile::tempdir().unwrap();
    let mut env = env_in(data.path());
    env.push((
        "GRANTRY_DATABASE_URL".into(),
        "postgres://grantry:pw-in-userinfo@127.0.0.1:1/g?password=hunter2&sslpassword=tls-secret"
            .into(),
    ));
    let (ok, out, err) = run(&env, &["config"], None).await;
    assert!(ok, "{err}");
    let (_, _, refused) = run(&env, &["serve"], None).await;
    assert!(refused.contains("sslpassword"), "{refused}");
    let mut without_tls_password = env.clone();
    without_tls_password.push((
        "GRANTRY_DATABASE_URL".into(),
        "postgres://grantry:pw-in-userinfo@127.0.0.1:1/g?password=hunter2".into(),
    ));
    let (_, _, failed) = run(&without_tls_password, &["serve"], None).await;
    for text in [&out, &err, &refused, &failed] {
        for secret in ["pw-in-userinfo", "hunter2", "tls-secret"] {
            assert!(!text.contains(secret), "{secret} printed: {text}");
        }
    }
    assert!(out.contains("password=***"), "{out}");
    assert!(failed.contains("cannot connect"), "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_deleted_under_the_server_is_noticed() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let port = free_port();
    let env = environment(&data, port, "http://127.0.0.1:9");
    let args = [
        "api-keys", "create", "--name", "k", "--role", "admin", "--output", "json",
    ];
    let (ok, key, err) = run(&env, &args, None).await;
    assert!(ok, "{err}");
    let key: ApiKey = serde_json::from_str(&key).unwrap();
    let key = key.key.unwrap();
    let server = Server::start(&env, root.path().join("serve.log")).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    std::fs::remove_dir_all(&data).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready without its database");
    let write = http
        .post(format!("{base}/v1/api-keys"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"name": "after", "role": "app"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        write.status(),
        503,
        "writes refused, not answered 201 into a deleted file"
    );
    let problem: Problem = write.json().await.unwrap();
    assert_eq!(problem.code, "database-unavailable");
    server.stop().await;
}
