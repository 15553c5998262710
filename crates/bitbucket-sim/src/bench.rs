//! `bitbucket-sim bench`: refresh grants per second at the token endpoint.
//!
//! Starts the simulator as a separate process (unless `--url` names one), connects one grant per
//! client, then has every client refresh in a loop, each presenting the refresh token it was last
//! given, exactly as a broker does in 2026 mode. Prints throughput, latency percentiles and what
//! the simulator counted, including refresh tokens presented twice (which must be none).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::Mode;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrent clients, each with its own grant.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// How long to measure.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// A running simulator to measure instead of starting one.
    #[arg(long)]
    pub url: Option<String>,
    /// Mode of the simulator started for the run.
    #[arg(long, value_parser = Mode::parse, default_value = "2026")]
    pub mode: Mode,
}

#[derive(Deserialize)]
struct Tokens {
    refresh_token: String,
}

/// Starts `bitbucket-sim serve` on a free port and waits for its URL.
async fn spawn_simulator(mode: Mode) -> anyhow::Result<(tokio::process::Child, String)> {
    let exe = std::env::current_exe().context("cannot find the bitbucket-sim executable")?;
    let mut child = tokio::process::Command::new(exe)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--mode",
            &mode.to_string(),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the simulator")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.strip_prefix("bitbucket-sim listening on ") {
            let url = rest.split(' ').next().unwrap_or_default().to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok((child, url));
        }
    }
    bail!("the simulator exited before listening")
}

async fn post_json(http: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<Value> {
    let response = http.post(url).json(&body).send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{url}: {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// Creates a user, a workspace and a consumer, and turns on auto-approval.
async fn prepare(http: &reqwest::Client, url: &str) -> anyhow::Result<(String, String)> {
    let suffix = crate::util::alnum(6).to_lowercase();
    let user = format!("bench-{suffix}");
    post_json(
        http,
        &format!("{url}/_sim/users"),
        json!({"username": user}),
    )
    .await?;
    let workspace = json!({"slug": user, "members": [user]});
    post_json(http, &format!("{url}/_sim/workspaces"), workspace).await?;
    let consumer = json!({
        "workspace": user, "name": "bench", "callback_url": "http://127.0.0.1/callback",
        "permissions": ["account.read", "repositories.read"],
    });
    let consumer = post_json(http, &format!("{url}/_sim/consumers"), consumer).await?;
    let response = http
        .patch(format!("{url}/_sim/settings"))
        .json(&json!({"auto_approve": user}))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("cannot turn on auto-approval: {}", response.text().await?);
    }
    let key = consumer["key"].as_str().unwrap_or_default().to_owned();
    let secret = consumer["secret"].as_str().unwrap_or_default().to_owned();
    Ok((key, secret))
}

/// Runs the authorization code flow once and returns the refresh token.
async fn connect(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    secret: &str,
) -> anyhow::Result<String> {
    let authorize = format!("{url}/site/oauth2/authorize?client_id={key}&response_type=code");
    let response = http.get(authorize).send().await?;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("authorize did not redirect")?;
    let code = url::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code in the redirect")?;
    let tokens: Tokens = http
        .post(format!("{url}/site/oauth2/access_token"))
        .basic_auth(key, Some(secret))
        .form(&[("grant_type", "authorization_code"), ("code", &code)])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(tokens.refresh_token)
}

struct ClientResult {
    latencies_us: Vec<u32>,
    failures: u64,
}

async fn refresh_loop(
    http: reqwest::Client,
    endpoint: String,
    (key, secret): (String, String),
    mut refresh_token: String,
    deadline: Instant,
) -> ClientResult {
    let mut result = ClientResult {
        latencies_us: Vec::with_capacity(100_000),
        failures: 0,
    };
    while Instant::now() < deadline {
        let started = Instant::now();
        let answer = http
            .post(&endpoint)
            .basic_auth(&key, Some(&secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
            ])
            .send()
            .await;
        let parsed = match answer {
            Ok(response) if response.status().is_success() => response.json::<Tokens>().await.ok(),
            _ => None,
        };
        match parsed {
            Some(tokens) => {
                refresh_token = tokens.refresh_token;
                let micros = started.elapsed().as_micros();
                result
                    .latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            None => result.failures += 1,
        }
    }
    result
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.clients == 0 || args.seconds == 0 {
        bail!("--clients and --seconds must be at least 1");
    }
    let (_child, url) = match &args.url {
        Some(url) => (None, url.trim_end_matches('/').to_owned()),
        None => {
            let (child, url) = spawn_simulator(args.mode).await?;
            (Some(child), url)
        }
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let credentials = prepare(&http, &url).await?;
    let mut grants = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        grants.push(connect(&http, &url, &credentials.0, &credentials.1).await?);
    }
    let _ = http.delete(format!("{url}/_sim/stats")).send().await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let endpoint = format!("{url}/site/oauth2/access_token");
    let tasks: Vec<_> = grants
        .into_iter()
        .map(|token| {
            let task = refresh_loop(
                http.clone(),
                endpoint.clone(),
                credentials.clone(),
                token,
                deadline,
            );
            tokio::spawn(task)
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let result = task.await?;
        latencies.extend(result.latencies_us);
        failures += result.failures;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let stats: Value = http
        .get(format!("{url}/_sim/stats"))
        .send()
        .await?
        .json()
        .await?;
    report(&args, &url, elapsed, &latencies, failures, &stats);
    Ok(())
}

fn report(
    args: &BenchArgs,
    url: &str,
    elapsed: f64,
    latencies: &[u32],
    failures: u64,
    stats: &Value,
) {
    let where_ = if args.url.is_some() {
        "given"
    } else {
        "separate process"
    };
    println!(
        "token endpoint benchmark: {} clients, {:.1} s, simulator at {url} ({where_})",
        args.clients, elapsed
    );
    println!("refresh grants: {} ok, {failures} failed", latencies.len());
    println!(
        "throughput:     {:.0} per second",
        latencies.len() as f64 / elapsed
    );
    println!(
        "latency:        p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile(latencies, 0.50),
        percentile(latencies, 0.90),
        percentile(latencies, 0.99),
        percentile(latencies, 1.0)
    );
    let counted = &stats["counts"]["token"]["refresh_token"]["ok"];
    let reused = stats["refresh_token_reuse"].as_array().map_or(0, Vec::len);
    println!(
        "simulator:      {counted} refresh grants counted, {reused} refresh tokens presented twice"
    );
}
