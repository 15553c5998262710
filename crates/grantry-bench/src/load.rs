//! Load from outside the server's process: `wrk` (from Debian, installed when missing) and what
//! it reports, and CPU time read from `/proc`.

use std::path::Path;

use anyhow::{Context, ensure};
use tokio::process::Command;

/// Installs Debian packages whose programs are missing.
pub fn ensure_programs(programs: &[(&str, &str)]) -> anyhow::Result<()> {
    let found = |program: &str| {
        ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]
            .iter()
            .any(|dir| Path::new(dir).join(program).exists())
    };
    let missing: Vec<&str> = programs
        .iter()
        .filter(|(program, _)| !found(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {} from Debian", missing.join(", "));
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let mut command = if root {
            std::process::Command::new(args[0])
        } else {
            let mut sudo = std::process::Command::new("sudo");
            sudo.arg(args[0]);
            sudo
        };
        let status = command
            .args(&args[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?;
        ensure!(status.success(), "{} failed", args.join(" "));
        Ok(())
    };
    run(&["apt-get", "update", "-qq"])?;
    let mut install = vec!["apt-get", "install", "-y", "-qq"];
    install.extend(&missing);
    run(&install)
}

/// What one `wrk` run measured.
#[derive(Debug)]
pub struct Load {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

fn milliseconds(text: &str) -> Option<f64> {
    let number = |suffix: &str| text.strip_suffix(suffix)?.parse::<f64>().ok();
    number("us")
        .map(|v| v / 1000.0)
        .or_else(|| number("ms"))
        .or_else(|| number("s").map(|v| v * 1000.0))
}

/// Runs wrk against `url` with `connections` connections for `seconds`.
pub async fn wrk(
    url: &str,
    header: Option<&str>,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<Load> {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(header) = header {
        command.args(["-H", header]);
    }
    let output = command.arg(url).output().await.context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(output.status.success(), "wrk failed: {text}");
    let field = |label: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(label).map(|rest| rest.trim().to_owned()))
    };
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses:"))
        .and_then(|l| l.rsplit(':').next()?.trim().parse().ok())
        .unwrap_or(0);
    Ok(Load {
        requests_per_second: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .context("no Requests/sec in wrk's output")?,
        p50_ms: field("50%")
            .and_then(|v| milliseconds(&v))
            .context("no p50")?,
        p99_ms: field("99%")
            .and_then(|v| milliseconds(&v))
            .context("no p99")?,
        errors,
    })
}

/// The kernel's clock tick, in which `/proc/{pid}/stat` counts CPU time.
pub fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
