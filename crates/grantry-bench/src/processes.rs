//! The benchmarks' processes: the simulator and Grantry each run as a hidden subcommand of this
//! binary in a process of its own (so nothing else needs building and the load never shares a
//! process with the server it measures), and what the benchmarks read of them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bitbucket_sim::{Mode, Seed, SimBuilder};
use grantry::config::Config;
use grantry::runtime::{self, Schema};
use grantry_core::Actor;
use grantry_core::clock::{Clock, ManualClock, SystemClock};
use grantry_core::store::Role;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

pub const CONSUMER_KEY: &str = "BenchConsumerKey000000000000000";
pub const CONSUMER_SECRET: &str =
    "BenchConsumerSecret00000000000000000000000000000000000000000000000000000000";

/// The simulator's world for the benchmarks: alice, auto-approved, one repository, one consumer,
/// and `users` more users (`user0`, `user1`, … with password `pw`) who consent through the form.
pub fn seed(callback: &str, users: usize, token_ttl: u64, token_length: Option<usize>) -> String {
    let length = token_length.map_or(String::new(), |l| format!("access_token_length = {l}\n"));
    let mut seed = format!(
        r#"[settings]
auto_approve = "alice"
access_token_ttl = {token_ttl}
{length}[[users]]
username = "alice"
[[workspaces]]
slug = "acme"
members = ["alice"]
[[repositories]]
workspace = "acme"
slug = "widget"
[[consumers]]
workspace = "acme"
name = "bench"
callback_url = "{callback}"
permissions = ["account.read", "repositories.read"]
key = "{CONSUMER_KEY}"
secret = "{CONSUMER_SECRET}"
"#
    );
    for n in 0..users {
        seed.push_str(&format!(
            "[[users]]\nusername = \"user{n}\"\npassword = \"pw\"\n"
        ));
    }
    seed
}

/// How the simulator is started (`serve-simulator`).
#[derive(Debug, Clone, clap::Args)]
pub struct SimulatorArgs {
    #[arg(long)]
    pub listen: SocketAddr,
    #[arg(long)]
    pub callback: String,
    /// Users besides alice, who consent through the form.
    #[arg(long, default_value_t = 0)]
    pub users: usize,
    /// Cloud access token lifetime, in seconds (Bitbucket's: 2 hours).
    #[arg(long, default_value_t = 7200)]
    pub token_ttl: u64,
    /// Cloud access token length (the simulator's default: Bitbucket's 2026 length).
    #[arg(long)]
    pub token_length: Option<usize>,
}

/// `serve-simulator`: the simulator alone, until killed; prints `ready` once listening.
pub async fn serve_simulator(args: SimulatorArgs) -> anyhow::Result<()> {
    let seed = Seed::parse(
        "bench",
        &seed(
            &args.callback,
            args.users,
            args.token_ttl,
            args.token_length,
        ),
    )?;
    let sim = SimBuilder::new()
        .mode(Mode::Rotating)
        .seed(seed)
        .listen(args.listen)
        .start()
        .await?;
    println!("ready {}", sim.url());
    std::future::pending::<()>().await;
    Ok(())
}

/// How Grantry is started (`serve-grantry`).
#[derive(Debug, Clone, clap::Args)]
pub struct GrantryArgs {
    #[arg(long)]
    pub listen: SocketAddr,
    #[arg(long)]
    pub simulator: url::Url,
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The master key (base64); a new one when absent. Pass the same one to restart on the
    /// same data.
    #[arg(long)]
    pub master_key: Option<String>,
    #[arg(long)]
    pub trust_forwarded_for: bool,
    /// A console admin `admin` with this password.
    #[arg(long)]
    pub admin_password: Option<String>,
    /// The refresher renews this long before expiry (Grantry's default: 600).
    #[arg(long)]
    pub refresh_lead_secs: Option<u64>,
    /// Refreshes per second per profile, at most (Grantry's default: 50).
    #[arg(long)]
    pub per_profile_per_second: Option<u32>,
    /// Refreshes in flight at once (Grantry's default: 16).
    #[arg(long)]
    pub refresh_concurrency: Option<usize>,
    /// How often the refresher looks for due connections (Grantry's default: 2000).
    #[arg(long)]
    pub refresh_interval_ms: Option<u64>,
    /// Runs without the background refresher.
    #[arg(long)]
    pub no_refresher: bool,
    /// Runs without delivering webhooks (messages still queue up).
    #[arg(long)]
    pub no_webhooks: bool,
    /// Webhook deliveries started per second at most (Grantry's default: 2000; 0: no limit).
    #[arg(long)]
    pub webhooks_per_second: Option<u32>,
    /// A PostgreSQL database (several nodes share it); SQLite in the data directory when absent.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Where browsers reach Grantry (another node's address behind one load balancer); this
    /// node's own address when absent.
    #[arg(long)]
    pub public_url: Option<url::Url>,
    /// Grantry's clock runs ahead only when told: each line `advance SECONDS` on standard input
    /// moves it, answered by `advanced` on standard output (benchmarks of expiry, which cannot
    /// wait two hours for tokens to age).
    #[arg(long)]
    pub manual_clock: bool,
}

/// `serve-grantry`: Grantry alone in front of the simulator, as `grantry serve` runs it; prints
/// an admin API key once listening.
pub async fn serve_grantry(args: GrantryArgs) -> anyhow::Result<()> {
    let mut config = Config::against_simulator(args.listen, args.data_dir, &args.simulator)?;
    if let Some(key) = args.master_key {
        config.master_key = Some(secrecy::SecretString::from(key));
    }
    if let Some(url) = args.database_url {
        config.database_url = Some(secrecy::SecretString::from(url));
    }
    if let Some(url) = args.public_url {
        config.public_url = url;
    }
    // Logging as `grantry serve` does by default (its request spans cost CPU on every request);
    // the log goes to a file `Server` keeps (see `Server::start`).
    grantry::logging::init(&config.log);
    config.http.trust_forwarded_for = args.trust_forwarded_for;
    let refresh = &mut config.refresh;
    if let Some(lead) = args.refresh_lead_secs {
        refresh.lead = Duration::from_secs(lead);
    }
    if let Some(limit) = args.per_profile_per_second {
        refresh.per_profile_per_second = limit;
    }
    if let Some(concurrency) = args.refresh_concurrency {
        refresh.concurrency = concurrency;
    }
    if let Some(interval) = args.refresh_interval_ms {
        refresh.interval = Duration::from_millis(interval);
    }
    refresh.enabled = !args.no_refresher;
    config.webhooks.enabled = !args.no_webhooks;
    if let Some(limit) = args.webhooks_per_second {
        config.webhooks.per_second = limit;
    }
    let clock: Arc<dyn Clock> = if args.manual_clock {
        let clock = Arc::new(ManualClock::default());
        let orders = clock.clone();
        std::thread::spawn(move || obey_clock_orders(orders));
        clock
    } else {
        Arc::new(SystemClock)
    };
    let runtime = runtime::open_with_clock(&config, Schema::Migrate, clock).await?;
    let key = runtime
        .grantry
        .create_api_key("bench", Role::Admin, &Actor::Cli)
        .await?;
    if let Some(password) = args.admin_password {
        let password = secrecy::SecretString::from(password);
        runtime
            .grantry
            .create_admin("admin", &password, &Actor::Cli)
            .await?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("key {}", key.secret.expose_secret());
    grantry::serve::run(runtime, listener, &config, std::future::pending()).await
}

/// `--manual-clock`: moves the clock as standard input says, acknowledging each move (on a
/// thread of its own: standard input is read blocking).
fn obey_clock_orders(clock: Arc<ManualClock>) {
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { return };
        if let Some(seconds) = line.strip_prefix("advance ").and_then(|s| s.parse().ok()) {
            clock.advance(seconds);
            println!("advanced");
        }
    }
}

/// A server process of this binary, killed when dropped. What it writes to standard error (its
/// log) goes to a file, so it does not mix with the benchmark's figures; its warnings and errors
/// are shown when it is dropped.
pub struct Server {
    child: Child,
    log: tempfile::NamedTempFile,
    /// What it printed first.
    pub said: String,
    /// `advanced` lines, each the answer to an `advance` order (`--manual-clock`).
    advanced: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl Server {
    pub async fn start(args: &[&str]) -> anyhow::Result<Server> {
        let log = tempfile::Builder::new()
            .prefix("grantry-bench-")
            .suffix(".log")
            .tempfile()?;
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log.reopen()?)
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let said = match tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await {
            Ok(Ok(Some(said))) => said,
            Ok(Ok(None) | Err(_)) => bail!("`{}` exited:\n{}", args[0], tail(&log)),
            Err(_) => bail!(
                "`{}` did not start within a minute:\n{}",
                args[0],
                tail(&log)
            ),
        };
        // The rest is Grantry's start-up banner, not this benchmark's output, and the answers to
        // clock orders.
        let (answers, advanced) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "advanced" {
                    let _ = answers.send(());
                }
            }
        });
        Ok(Server {
            child,
            log,
            said,
            advanced,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    /// Moves the clock of a server started with `--manual-clock`; returns once it has moved.
    pub async fn advance(&mut self, seconds: i64) -> anyhow::Result<()> {
        let stdin = self.child.stdin.as_mut().context("stdin")?;
        stdin
            .write_all(format!("advance {seconds}\n").as_bytes())
            .await?;
        stdin.flush().await?;
        tokio::time::timeout(Duration::from_secs(10), self.advanced.recv())
            .await
            .context("the server did not move its clock (started without --manual-clock?)")?
            .context("the server exited")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Read line by line: a flood benchmark logs a refusal per request, hundreds of megabytes.
        let Ok(file) = std::fs::File::open(self.log.path()) else {
            return;
        };
        let (mut seen, mut last) = (0usize, std::collections::VecDeque::new());
        for line in std::io::BufRead::lines(std::io::BufReader::new(file)).map_while(Result::ok) {
            if line.contains("WARN") || line.contains("ERROR") {
                seen += 1;
                if last.len() == 10 {
                    last.pop_front();
                }
                last.push_back(line);
            }
        }
        if seen > 0 {
            eprintln!(
                "(server {}: {seen} warnings and errors logged; the last ones)",
                self.pid()
            );
            for line in last {
                eprintln!("  {line}");
            }
        }
    }
}

/// The last lines of a server's log, for an error that says why it did not start (a log that
/// short-lived is small).
fn tail(log: &tempfile::NamedTempFile) -> String {
    let text = std::fs::read_to_string(log.path()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The simulator and Grantry, each in its own process, with alice connected.
pub struct Stack {
    /// Kept so the simulator runs as long as the stack.
    _sim: Server,
    pub sim_url: String,
    pub grantry: Server,
    /// How `grantry` was started, to start it again on the same data.
    grantry_args: Vec<String>,
    pub base: String,
    /// An admin API key.
    pub key: String,
    pub connection: String,
    pub http: reqwest::Client,
    pub data: tempfile::TempDir,
}

/// How the stack is started.
#[derive(Default)]
pub struct Options {
    pub trust_forwarded_for: bool,
    /// A console admin `admin` with this password.
    pub admin_password: Option<String>,
    /// Simulator users besides alice (`user0`, … with password `pw`).
    pub users: usize,
    /// The simulator's access token lifetime in seconds (its default when absent).
    pub token_ttl: Option<u64>,
    /// The simulator's access token length (its default when absent).
    pub token_length: Option<usize>,
    /// More `serve-grantry` flags, e.g. `("--refresh-lead-secs", "600")`; a flag without a value
    /// has an empty one.
    pub grantry_flags: Vec<(&'static str, String)>,
    /// Grantry's clock moves only with [`Stack::advance`] (besides the real time passing).
    pub manual_clock: bool,
}

impl Stack {
    pub async fn start(options: Options) -> anyhow::Result<Stack> {
        let data = tempfile::tempdir()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .pool_max_idle_per_host(256)
            .build()?;
        let grantry_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let callback = format!("http://{grantry_addr}/oauth/callback");
        let sim_addr = format!("127.0.0.1:{}", free_port()?);
        let users = options.users.to_string();
        let mut sim_args = vec![
            "serve-simulator",
            "--listen",
            &sim_addr,
            "--callback",
            &callback,
            "--users",
            &users,
        ];
        let ttl = options.token_ttl.map(|ttl| ttl.to_string());
        if let Some(ttl) = &ttl {
            sim_args.extend(["--token-ttl", ttl]);
        }
        let length = options.token_length.map(|length| length.to_string());
        if let Some(length) = &length {
            sim_args.extend(["--token-length", length]);
        }
        let sim = Server::start(&sim_args).await?;
        let sim_url = sim
            .said
            .strip_prefix("ready ")
            .context("the simulator's address")?
            .to_owned();
        let master_key = grantry_crypto::MasterKey::generate()?.to_base64();
        let mut args = vec![
            "serve-grantry".to_owned(),
            "--listen".to_owned(),
            grantry_addr.to_string(),
            "--simulator".to_owned(),
            sim_url.clone(),
            "--data-dir".to_owned(),
            data.path().join("grantry").display().to_string(),
            "--master-key".to_owned(),
            master_key.as_str().to_owned(),
        ];
        if options.trust_forwarded_for {
            args.push("--trust-forwarded-for".to_owned());
        }
        if let Some(password) = &options.admin_password {
            args.extend(["--admin-password".to_owned(), password.clone()]);
        }
        if options.manual_clock {
            args.push("--manual-clock".to_owned());
        }
        push_flags(&mut args, &options.grantry_flags);
        let grantry = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
        let key = grantry
            .said
            .strip_prefix("key ")
            .context("Grantry's key")?
            .to_owned();
        let base = format!("http://{grantry_addr}");
        let connection = connect(&http, &base, &key).await?;
        Ok(Stack {
            _sim: sim,
            sim_url,
            grantry,
            grantry_args: args,
            base,
            key,
            connection,
            http,
            data,
        })
    }

    /// Kills Grantry (SIGKILL) and starts it again on the same data, with the flags it started
    /// with and these; returns
    /// once it prints its key (its store is open and it is about to listen).
    pub async fn restart_grantry(
        &mut self,
        flags: &[(&'static str, String)],
    ) -> anyhow::Result<()> {
        self.grantry.child.kill().await?;
        let mut args = self.grantry_args.clone();
        push_flags(&mut args, flags);
        self.grantry = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
        self.key = self
            .grantry
            .said
            .strip_prefix("key ")
            .context("Grantry's key")?
            .to_owned();
        Ok(())
    }

    /// Another Grantry node on the same database (PostgreSQL), listening at `listen`, with the
    /// first node's address as its public URL (as behind one load balancer), and more flags.
    pub async fn another_node(
        &self,
        n: usize,
        flags: &[(&'static str, String)],
    ) -> anyhow::Result<(Server, String)> {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let data_dir = self.data.path().join(format!("node{n}"));
        let mut args = self.grantry_args.clone();
        for (flag, value) in [
            ("--listen", listen.to_string()),
            ("--data-dir", data_dir.display().to_string()),
        ] {
            let at = args.iter().position(|a| a == flag).context(flag)?;
            args[at + 1] = value;
        }
        push_flags(&mut args, &[("--public-url", self.base.clone())]);
        push_flags(&mut args, flags);
        let server = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
        Ok((server, format!("http://{listen}")))
    }

    /// A Grantry metric's value (the first sample whose line starts with `name`).
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        self.metric_at(&self.base, name).await
    }

    /// The same, from the node at `base`.
    pub async fn metric_at(&self, base: &str, name: &str) -> anyhow::Result<f64> {
        let text = self
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit_once(' ')?.1.parse().ok())
            .unwrap_or(0.0))
    }
}

impl Stack {
    /// The bench profile's id.
    pub async fn profile_id(&self) -> anyhow::Result<String> {
        let profiles: Value = self
            .http
            .get(format!("{}/v1/profiles", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?
            .json()
            .await?;
        Ok(profiles["items"][0]["id"]
            .as_str()
            .context("the bench profile")?
            .to_owned())
    }

    /// `user{n}` connects through the consent form (a browser's redirects, followed by hand).
    pub async fn connect_user(&self, profile: &str, n: usize) -> anyhow::Result<String> {
        // A client of its own: the flow is bound to the browser by a cookie.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()?;
        let session: Value = http
            .post(format!("{}/v1/connect-sessions", self.base))
            .bearer_auth(&self.key)
            .json(&json!({"profile": profile, "end_user_id": format!("wave-{n}")}))
            .send()
            .await?
            .json()
            .await?;
        let link = session["url"].as_str().context("a connect link")?;
        let authorize = location(http.get(link).send().await?)?;
        let mut form: Vec<(String, String)> = url::Url::parse(&authorize)?
            .query_pairs()
            .into_owned()
            .collect();
        form.extend([
            ("username".into(), format!("user{n}")),
            ("password".into(), "pw".into()),
            ("decision".into(), "grant".into()),
        ]);
        let consent = http
            .post(format!("{}/site/oauth2/authorize", self.sim_url))
            .form(&form)
            .send()
            .await?;
        let callback = location(consent)?;
        let landed = url::Url::parse(&location(http.get(callback).send().await?)?)?;
        landed
            .query_pairs()
            .find(|(name, _)| name == "connection_id")
            .map(|(_, id)| id.into_owned())
            .with_context(|| format!("user{n} did not connect: {landed}"))
    }

    /// Moves Grantry's clock (started with `Options::manual_clock`) and the simulator's forward
    /// together. A restarted Grantry starts again from the real time.
    pub async fn advance(&mut self, seconds: i64) -> anyhow::Result<()> {
        self.grantry.advance(seconds).await?;
        let moved = self
            .http
            .post(format!("{}/_sim/clock/advance", self.sim_url))
            .json(&json!({"seconds": seconds}))
            .send()
            .await?;
        anyhow::ensure!(
            moved.status().is_success(),
            "the simulator's clock: {}",
            moved.status()
        );
        Ok(())
    }

    /// The simulator's counters (`/_sim/stats`).
    pub async fn sim_stats(&self) -> anyhow::Result<Value> {
        sim_stats(&self.http, &self.sim_url).await
    }
}

/// The counters of the simulator at `sim` (`/_sim/stats`).
pub async fn sim_stats(http: &reqwest::Client, sim: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(format!("{sim}/_sim/stats"))
        .send()
        .await?
        .json()
        .await?)
}

/// Refreshes the simulator has granted so far.
pub async fn refreshes(http: &reqwest::Client, sim: &str) -> anyhow::Result<u64> {
    let stats = sim_stats(http, sim).await?;
    Ok(stats["counts"]["token"]["refresh_token"]["ok"]
        .as_u64()
        .unwrap_or(0))
}

fn location(response: reqwest::Response) -> anyhow::Result<String> {
    let status = response.status();
    Ok(response
        .headers()
        .get("location")
        .with_context(|| format!("expected a redirect, got {status}"))?
        .to_str()?
        .to_owned())
}

fn push_flags(args: &mut Vec<String>, flags: &[(&'static str, String)]) {
    for (flag, value) in flags {
        args.push((*flag).to_owned());
        if !value.is_empty() {
            args.push(value.clone());
        }
    }
}

/// CPU time used so far by processes, in clock ticks (utime + stime from `/proc/{pid}/stat`).
pub fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // The fields after the command name, which is in parentheses and may hold spaces.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// A process and its children (nginx's master and workers).
pub fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let parent = std::fs::read_to_string(format!("/proc/{child}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .parse::<u32>()
                    .ok()
            });
        if parent == Some(pid) {
            pids.push(child);
        }
    }
    pids
}

pub fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Connects alice through the real flow (the simulator approves her at once).
pub async fn connect(http: &reqwest::Client, base: &str, key: &str) -> anyhow::Result<String> {
    let profile: Value = http
        .post(format!("{base}/v1/profiles"))
        .bearer_auth(key)
        .json(&json!({"name": "bench", "provider": "bitbucket-cloud", "key": CONSUMER_KEY, "secret": CONSUMER_SECRET}))
        .send()
        .await?
        .json()
        .await?;
    let profile = profile["id"].as_str().context("a profile")?;
    let session: Value = http
        .post(format!("{base}/v1/connect-sessions"))
        .bearer_auth(key)
        .json(&json!({"profile": profile}))
        .send()
        .await?
        .json()
        .await?;
    let mut next = session["url"]
        .as_str()
        .context("a connect link")?
        .to_owned();
    for _ in 0..6 {
        let response = http.get(&next).send().await?;
        let Some(location) = response.headers().get("location") else {
            break;
        };
        next = location.to_str()?.to_owned();
        if let Some((_, id)) = url::Url::parse(&next)?
            .query_pairs()
            .find(|(name, _)| name == "connection_id")
        {
            return Ok(id.into_owned());
        }
    }
    bail!("the connect flow ended without a connection at {next}")
}
