//! Running the real `grantry` binary as a child process, for tests that kill it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BINARY: &str = env!("CARGO_BIN_EXE_grantry");

/// Environment for a `grantry` process in front of `simulator`, keeping its data in `data_dir`.
pub fn environment(data_dir: &Path, port: u16, simulator: &str) -> Vec<(String, String)> {
    vec![
        ("GRANTRY_DATA_DIR".into(), data_dir.display().to_string()),
        ("GRANTRY_LISTEN".into(), format!("127.0.0.1:{port}")),
        (
            "GRANTRY_PUBLIC_URL".into(),
            format!("http://127.0.0.1:{port}"),
        ),
        (
            "GRANTRY_BITBUCKET_CLOUD__WEB_URL".into(),
            simulator.to_owned(),
        ),
        (
            "GRANTRY_BITBUCKET_CLOUD__API_URL".into(),
            simulator.to_owned(),
        ),
        ("GRANTRY_LOG__LEVEL".into(), "info".into()),
    ]
}

/// Runs a `grantry` command to completion; answers (success, stdout, stderr).
pub async fn run(
    env: &[(String, String)],
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .envs(env.iter().cloned())
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("grantry runs");
    if let Some(mut input) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .await
            .unwrap();
    }
    let output = child.wait_with_output().await.unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A `grantry serve` process; killed when dropped.
pub struct Server {
    pub child: Child,
}

impl Server {
    /// Starts `grantry serve` and waits until it listens; its stderr goes to `log`.
    pub async fn start(env: &[(String, String)], log: PathBuf) -> Server {
        let mut command = Command::new(BINARY);
        command.arg("serve");
        Server::spawn(command, env, log).await
    }

    /// Starts `grantry serve` with at most `files` open files (soft and hard limit).
    pub async fn start_with_file_limit(
        env: &[(String, String)],
        log: PathBuf,
        files: u32,
    ) -> Server {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {files} && exec \"$0\" serve"))
            .arg(BINARY);
        Server::spawn(command, env, log).await
    }

    async fn spawn(mut command: Command, env: &[(String, String)], log: PathBuf) -> Server {
        let file = std::fs::File::create(&log).unwrap();
        let mut child = command
            .envs(env.iter().cloned())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("grantry serve starts");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut copy = std::io::BufWriter::new(file);
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                use std::io::Write;
                let _ = writeln!(copy, "{line}");
                if line.contains("grantry listening on") {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(ready, Ok(true)),
            "grantry serve did not start; see {}",
            log.display()
        );
        tokio::spawn(async move {
            use std::io::Write;
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = writeln!(copy, "{line}");
                let _ = copy.flush();
            }
        });
        Server { child }
    }

    /// Waits for the process to end by itself; answers whether it died of a signal (e.g. abort).
    pub async fn wait_for_death(&mut self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the process ended")
            .unwrap();
        status.signal().is_some()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A free local port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `grantry serve` processes in front of one simulator, sharing one data directory (SQLite) or
/// one throwaway PostgreSQL database, one master key, and an admin API key the CLI made.
pub struct Nodes {
    pub sim: bitbucket_sim::RunningSim,
    pub data: tempfile::TempDir,
    pub database: Option<grantry_store_postgres::testing::TestDatabase>,
    pub master_key: String,
    pub key: String,
    pub http: reqwest::Client,
}

impl Nodes {
    /// The simulator (rotating refresh tokens) seeded with `world`, and the shared storage.
    pub async fn new(world: &str, postgres: bool) -> Nodes {
        let sim = bitbucket_sim::SimBuilder::new()
            .mode(bitbucket_sim::Mode::Rotating)
            .seed(bitbucket_sim::Seed::parse("world", world).unwrap())
            .start()
            .await
            .unwrap();
        let database = if postgres {
            Some(grantry_store_postgres::testing::TestDatabase::create().await)
        } else {
            None
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(10))
            .cookie_store(true)
            .build()
            .unwrap();
        let master_key = grantry_crypto::MasterKey::generate().unwrap();
        let mut nodes = Nodes {
            sim,
            data: tempfile::tempdir().unwrap(),
            database,
            master_key: master_key.to_base64().as_str().to_owned(),
            key: String::new(),
            http,
        };
        let args = [
            "api-keys", "create", "--name", "t", "--role", "admin", "--output", "json",
        ];
        let (ok, out, err) = run(&nodes.env(free_port(), &[]), &args, None).await;
        assert!(ok, "{err}");
        let key: super::views::ApiKey = serde_json::from_str(&out).unwrap();
        nodes.key = key.key.unwrap();
        nodes
    }

    /// A node's environment on `port`, with these settings (`GRANTRY_…` variables) added.
    pub fn env(&self, port: u16, settings: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env = environment(self.data.path(), port, self.sim.url());
        env.push(("GRANTRY_MASTER_KEY".into(), self.master_key.clone()));
        if let Some(database) = &self.database {
            env.push(("GRANTRY_DATABASE_URL".into(), database.url()));
        }
        env.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        env
    }

    /// A POST with the admin key; answers the status and the JSON body (null when none).
    pub async fn post(
        &self,
        base: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self
            .http
            .post(format!("{base}{path}"))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or_default())
    }
}
