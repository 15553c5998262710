//! A database that stops taking writes (files made immutable, a full disk) must not cost a
//! rotated refresh token: Bitbucket has already retired the old one. The result is kept in
//! memory and served, written when the database takes writes again, and meanwhile the node says
//! it is not ready, logs an error and counts it.

use std::path::Path;
use std::process::Command;

use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};

use crate::common::views::Connection;
use crate::common::{TestApp, expect, refused};

/// Runs a command that needs root: directly as root, else through `sudo -n`.
fn as_root(program: &str, args: &[&str]) {
    let root = std::env::var("USER").is_ok_and(|u| u == "root")
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut command = if root {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("-n").arg(program);
        sudo
    };
    let done = command.args(args).status().unwrap();
    assert!(
        done.success(),
        "{program} {args:?} (needs root or password-less sudo)"
    );
}

/// `chattr +i` (or `-i`) on the SQLite database and its WAL and shared-memory files.
fn immutable(dir: &Path, on: bool) {
    for name in ["grantry.db", "grantry.db-wal", "grantry.db-shm"] {
        let path = dir.join(name);
        if path.exists() {
            as_root(
                "chattr",
                &[if on { "+i" } else { "-i" }, &path.display().to_string()],
            );
        }
    }
}

/// Lifts the immutable flag even when the test fails, so the directory can be removed.
struct Writable<'a>(&'a Path);

impl Drop for Writable<'_> {
    fn drop(&mut self) {
        immutable(self.0, false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_the_database_cannot_take_is_kept_served_and_written_later() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app
        .cloud_profile("P", &["account.read"], &["account"])
        .await;
    let connection = app.connect(&profile, "u").await;
    let before = app.read_token(&connection).await;
    let dir = app.dir.path().to_owned();

    immutable(&dir, true);
    let _restore = Writable(&dir);
    let (status, answer) = refused(
        app.app(
            Method::POST,
            &format!("/v1/connections/{connection}/refresh"),
            None,
        )
        .await,
    );
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the refresh cannot be reported saved: {answer:?}"
    );
    assert_eq!(answer.code, "refresh-not-saved", "{answer:?}");
    assert_eq!(app.refreshes_seen().await, 1, "Bitbucket rotated the token");
    let kept = app.read_token(&connection).await;
    assert_ne!(
        kept.access_token, before.access_token,
        "the new token is served"
    );
    let (status, _) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready while it waits"
    );
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("grantry_pending_token_writes 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("grantry_token_write_failures_total 0"),
        "{metrics}"
    );

    immutable(&dir, false);
    let mut written = false;
    for _ in 0..50 {
        if app.grantry.pending_write_count() == 0 {
            written = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(written, "written once the files took writes again");
    let (status, _) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);

    // Past Bitbucket's grace for the retired token: the stored one is the new one, and works.
    app.advance(700).await;
    let refreshed: Connection = expect(
        app.app(
            Method::POST,
            &format!("/v1/connections/{connection}/refresh"),
            None,
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(refreshed.status, "active");
    let stats = app.sim_stats().await;
    assert!(
        stats["refresh_token_reuse"].as_array().unwrap().is_empty(),
        "no refresh token was ever presented twice: {stats}"
    );
}

/// A small file system of the test's own, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().display().to_string();
        as_root(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", &at],
        );
        SmallDisk(dir)
    }

    /// Fills what is left with one file; answers it (remove it to make room again).
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        as_root("umount", &["-l", &self.0.path().display().to_string()]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_keeps_the_refresh_too() {
    let disk = SmallDisk::mount("4m");
    let data = disk.0.path().to_owned();
    let app = TestApp::with(Mode::Rotating, |config| config.data_dir = data).await;
    let profile = app
        .cloud_profile("P", &["account.read"], &["account"])
        .await;
    let connection = app.connect(&profile, "u").await;
    let before = app.read_token(&connection).await;

    let filler = disk.fill();
    let refresh = format!("/v1/connections/{connection}/refresh");
    let (status, answer) = refused(app.app(Method::POST, &refresh, None).await);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
    assert_eq!(answer.code, "refresh-not-saved", "{answer:?}");
    let kept = app.read_token(&connection).await;
    assert_ne!(kept.access_token, before.access_token);
    assert_eq!(app.grantry.pending_write_count(), 1);

    std::fs::remove_file(filler).unwrap();
    for _ in 0..50 {
        if app.grantry.pending_write_count() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.grantry.pending_write_count(),
        0,
        "written once there was room"
    );
    app.advance(700).await;
    let (status, refreshed) = app.app(Method::POST, &refresh, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the stored refresh token is the new one: {refreshed}"
    );
    drop(app);
}
