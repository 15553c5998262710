//! A PostgreSQL cluster of a test's own (`initdb` on a free port), for tests that must stop the
//! database or configure it (TLS).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A PostgreSQL cluster of the test's own, run as the `postgres` user when the test runs as
/// root (PostgreSQL refuses to run as root). Stopped for good when dropped.
pub struct ThrowawayPostgres {
    dir: tempfile::TempDir,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    as_postgres: bool,
    /// More server settings, as `-c name=value` arguments.
    settings: String,
}

impl ThrowawayPostgres {
    /// Creates and starts a cluster; `settings` are `name=value` server settings.
    pub fn create(settings: &[&str]) -> ThrowawayPostgres {
        let mut cluster = ThrowawayPostgres::init();
        for setting in settings {
            cluster.set(setting);
        }
        cluster.start();
        cluster
    }

    /// Adds a `name=value` server setting, for the next start.
    pub fn set(&mut self, setting: &str) {
        self.settings.push_str(&format!(" -c {setting}"));
    }

    /// Creates a cluster without starting it.
    pub fn init() -> ThrowawayPostgres {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        let as_postgres = is_root();
        if as_postgres {
            // The postgres user must reach the data directory and write its log.
            run_ok(Command::new("chmod").arg("755").arg(dir.path()));
            run_ok(Command::new("chown").arg("postgres").arg(dir.path()));
        }
        let cluster = ThrowawayPostgres {
            port: free_port(),
            dir,
            data,
            log,
            as_postgres,
            settings: String::new(),
        };
        let initdb = pg_binary("initdb");
        let data = cluster.data.display().to_string();
        run_ok(&mut cluster.command(
            &initdb,
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        ));
        cluster
    }

    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.args(args);
        command
    }

    /// The directory the cluster may read (for certificates and keys).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Makes `path` the `postgres` user's (when the cluster runs as that user), mode 0600.
    pub fn hand_over(&self, path: &Path) {
        run_ok(Command::new("chmod").arg("600").arg(path));
        if self.as_postgres {
            run_ok(Command::new("chown").arg("postgres").arg(path));
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off{}",
            self.port,
            self.dir.path().display(),
            self.settings
        );
        let (data, log) = (
            self.data.display().to_string(),
            self.log.display().to_string(),
        );
        run_ok(&mut self.command(
            &pg_binary("pg_ctl"),
            &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
        ));
    }

    /// Stops the server the way an operator's restart does (`-m fast`: sessions are cut).
    pub fn stop(&self) {
        let data = self.data.display().to_string();
        run_ok(&mut self.command(
            &pg_binary("pg_ctl"),
            &["-D", &data, "-m", "fast", "-w", "stop"],
        ));
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = self
            .command(
                &pg_binary("pg_ctl"),
                &["-D", &data, "-m", "immediate", "-w", "stop"],
            )
            .output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PostgreSQL server program: on the PATH, else in Debian's /usr/lib/postgresql/<version>/bin.
fn pg_binary(name: &str) -> PathBuf {
    let on_path = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(path) = on_path {
        return path;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin").join(name))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .filter(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} not found: install PostgreSQL's server package"))
}

fn run_ok(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
