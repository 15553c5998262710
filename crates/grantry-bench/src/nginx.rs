//! nginx from Debian, as a process of its own beside Grantry: the proxy bench's `proxy_pass` and
//! the token-read bench's static files. The configuration keeps everything (pid, logs, temporary
//! files) in a directory of the bench's own.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// nginx's master process; stopped (with its workers, which outlive a killed master) when
/// dropped.
pub struct Nginx(Child);

impl Nginx {
    pub fn pid(&self) -> u32 {
        self.0.id().unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            // Time for the master to stop its workers before this process goes.
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Starts nginx on `127.0.0.1:port` with `http_block` inside its `http { }` (a `server` block,
/// perhaps an `upstream`), and returns once it listens.
pub async fn start(dir: &Path, port: u16, http_block: &str) -> anyhow::Result<Nginx> {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let user = if root { "user root;" } else { "" };
    let d = dir.display();
    let conf = format!(
        r#"{user}
worker_processes auto;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
{http_block}
}}
"#
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let child = Command::new("nginx")
        .stdin(Stdio::null())
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .spawn()
        .context("starting nginx")?;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(Nginx(child));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nginx did not listen; see {d}/nginx-error.log")
}
