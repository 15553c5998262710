//! `grantry-bench sign-in-flood`: the security review's attack on the console's sign-in, spread
//! over many user names and addresses so throttling does not stop it first (every attempt needs
//! password work, for unknown names too): `clients` loops sending wrong
//! passwords as fast as they can for `seconds`, from this process, at a Grantry in a process of
//! its own. Prints the attempts by answer (checked, throttled, refused as busy), Grantry's
//! resident memory, and the token reads served meanwhile with their slowest time.
//!
//! With `--guess`, the other attack: every client guesses the real admin's password from one
//! address. Then the admin signs in with the right password from another address, and the time
//! that took is printed: throttling must slow the guesser without locking the admin out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use reqwest::StatusCode;

use crate::processes::{Options, Stack, resident_kib};

const ADMIN_PASSWORD: &str = "a long and correct horse battery";

pub async fn run(clients: u32, seconds: u64, guess: bool) -> anyhow::Result<()> {
    let stack = Stack::start(Options {
        trust_forwarded_for: true,
        admin_password: Some(ADMIN_PASSWORD.to_owned()),
        ..Options::default()
    })
    .await?;
    let pid = stack.grantry.pid();
    let before = resident_kib(pid);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    // Answers by kind: checked and wrong (401), throttled (429), refused as busy (503).
    let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let mut flood = Vec::new();
    for client in 0..clients {
        let (base, counts) = (stack.base.clone(), counts.clone());
        flood.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0u32;
            while Instant::now() < deadline {
                n += 1;
                let (address, username) = if guess {
                    ("10.66.66.66".to_owned(), "admin".to_owned())
                } else {
                    let address = format!("10.{}.{}.{}", client % 250, n / 250 % 250, n % 250);
                    (address, format!("user{client}x{n}"))
                };
                let answer = http
                    .post(format!("{base}/ui/login"))
                    .header("x-forwarded-for", address)
                    .form(&[("username", username), ("password", format!("wrong{n}"))])
                    .send()
                    .await;
                let kind = match answer.map(|a| a.status()) {
                    Ok(StatusCode::UNAUTHORIZED) => 0,
                    Ok(StatusCode::TOO_MANY_REQUESTS) => 1,
                    Ok(StatusCode::SERVICE_UNAVAILABLE) => 2,
                    _ => 3,
                };
                counts[kind].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let url = format!("{}/v1/connections/{}/token", stack.base, stack.connection);
    let (mut reads, mut slowest, mut peak) = (0u64, Duration::ZERO, before);
    while Instant::now() < deadline {
        let asked = Instant::now();
        let read = stack.http.get(&url).bearer_auth(&stack.key).send().await?;
        ensure!(
            read.status().is_success(),
            "a token read failed: {}",
            read.status()
        );
        slowest = slowest.max(asked.elapsed());
        reads += 1;
        peak = peak.max(resident_kib(pid));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for client in flood {
        client.await?;
    }
    let [checked, throttled, busy, other] = [0, 1, 2, 3].map(|k| counts[k].load(Ordering::Relaxed));
    let attempts = checked + throttled + busy + other;
    if guess {
        println!(
            "sign-in guessing: {clients} clients, {seconds} s, wrong passwords for the admin `admin`, all from one address"
        );
    } else {
        println!(
            "sign-in flood: {clients} clients, {seconds} s, wrong passwords, a new user name and address each time"
        );
    }
    println!(
        "  {attempts} attempts ({:.0}/s): {checked} checked and refused, {throttled} throttled (429), {busy} refused as busy (503), {other} other",
        attempts as f64 / seconds as f64,
    );
    println!(
        "  Grantry's resident memory: {} MiB before, {} MiB at most",
        before / 1024,
        peak / 1024
    );
    println!(
        "  token reads meanwhile: {reads} served, slowest {:.1} ms",
        slowest.as_secs_f64() * 1000.0
    );
    if guess {
        let waited = admin_signs_in(&stack.http, &stack.base).await?;
        println!(
            "  the admin, right password, from another address: signed in after {:.1} s",
            waited.as_secs_f64()
        );
    }
    Ok(())
}

/// Signs the admin in from an address of its own, waiting as `Retry-After` says; answers how
/// long it took.
async fn admin_signs_in(http: &reqwest::Client, base: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let answer = http
            .post(format!("{base}/ui/login"))
            .header("x-forwarded-for", "192.0.2.10")
            .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
            .send()
            .await?;
        match answer.status() {
            StatusCode::SEE_OTHER => return Ok(started.elapsed()),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                let wait = answer
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                ensure!(
                    started.elapsed() < Duration::from_secs(600),
                    "the admin never got in"
                );
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            status => anyhow::bail!("the admin's sign-in answered {status}"),
        }
    }
}
