//! The console's sign-in form against people trying passwords: throttled per user name and per
//! address, audited, never able to lock the real admin out for long from elsewhere; and against
//! floods, which must neither exhaust memory nor stop token reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bitbucket_sim::Mode;
use grantry_core::Actor;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::process::{Server, environment, free_port, run};
use crate::common::views::{ApiKey, Profile, Session};

const PASSWORD: &str = "correct horse battery staple";

/// A sign-in attempt from `address` (the app trusts `X-Forwarded-For` in these tests).
async fn sign_in(
    app: &TestApp,
    username: &str,
    password: &str,
    address: &str,
) -> (u16, Option<String>) {
    let response = app
        .http
        .post(format!("{}/ui/login", app.base))
        .header("x-forwarded-for", address)
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .unwrap();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), retry)
}

#[tokio::test]
async fn wrong_passwords_are_throttled_by_name_and_address_and_audited() {
    let app = TestApp::with(Mode::Rotating, |c| c.http.trust_forwarded_for = true).await;
    let password = SecretString::from(PASSWORD);
    app.grantry
        .create_admin("admin", &password, &Actor::Cli)
        .await
        .unwrap();
    let attacker = "203.0.113.9";
    let admin = "198.51.100.7";

    for n in 0..5 {
        let (status, _) = sign_in(&app, "admin", &format!("guess-{n}"), attacker).await;
        assert_eq!(status, 401, "attempt {n}");
    }
    let (status, retry) = sign_in(&app, "admin", PASSWORD, attacker).await;
    assert_eq!(
        status, 429,
        "locked after five failures, even with the right password"
    );
    assert!(retry.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));

    // Keep failing, waiting out each lock: the address's lock doubles well past the name's cap.
    let mut n = 0;
    loop {
        let (status, retry) = sign_in(&app, "admin", &format!("again-{n}"), attacker).await;
        n += 1;
        if status == 429 {
            let wait: i64 = retry.unwrap().parse().unwrap();
            if wait > 120 {
                break;
            }
            app.advance(wait).await;
        } else {
            assert_eq!(status, 401);
        }
        assert!(n < 100, "the lock keeps growing");
    }
    // The real admin, from another address, waits at most a minute and gets in.
    let (status, retry) = sign_in(&app, "admin", PASSWORD, admin).await;
    if status == 429 {
        let wait: i64 = retry.unwrap().parse().unwrap();
        assert!(
            wait <= 60,
            "a user name is never locked for more than a minute: {wait}"
        );
        app.advance(wait + 1).await;
        let (status, _) = sign_in(&app, "admin", PASSWORD, admin).await;
        assert_eq!(status, 303, "signed in");
    } else {
        assert_eq!(status, 303, "signed in");
    }
    let (status, retry) = sign_in(&app, "admin", PASSWORD, attacker).await;
    assert_eq!(status, 429, "the attacker's address is still locked");
    assert!(retry.unwrap().parse::<u64>().unwrap() > 60);

    let events = app
        .events("kind=admin.sign_in_failed&limit=200")
        .await
        .items;
    assert!(events.len() >= 11, "{}", events.len());
    let detail = &events[0].detail;
    assert!(
        detail.contains("`admin`") && detail.contains(attacker),
        "name and address: {detail}"
    );
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// The review's flood, spread over many addresses so throttling does not stop it first: 64
/// clients sending wrong passwords as fast as they can for 10 s. Memory stays bounded (password
/// work runs in a fixed number of reused 19 MiB slots; the rest are refused at once) and token
/// reads keep being served. `grantry-bench sign-in-flood` runs the same for 60 s and prints it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_flood_keeps_memory_bounded_and_tokens_served() {
    let sim = bitbucket_sim::SimBuilder::new()
        .seed(bitbucket_sim::Seed::parse("w", "[settings]\nauto_approve = \"alice\"\n[[users]]\nusername = \"alice\"\n[[workspaces]]\nslug = \"acme\"\nmembers = [\"alice\"]\n").unwrap())
        .start()
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut env = environment(data.path(), port, sim.url());
    env.push(("GRANTRY_HTTP__TRUST_FORWARDED_FOR".into(), "true".into()));
    env.push(("GRANTRY_LOG__LEVEL".into(), "error".into()));
    let args = [
        "api-keys", "create", "--name", "k", "--role", "admin", "--output", "json",
    ];
    let (ok, key, err) = run(&env, &args, None).await;
    assert!(ok, "{err}");
    let key = serde_json::from_str::<ApiKey>(&key).unwrap().key.unwrap();
    let (ok, _, err) = run(
        &env,
        &["admin", "create", "--username", "admin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert!(ok, "{err}");
    let server = Server::start(&env, data.path().join("serve.log")).await;
    let pid = server.child.id().unwrap();

    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let consumer: Value = http
        .post(format!("{}/_sim/consumers", sim.url()))
        .json(&json!({"workspace": "acme", "name": "c", "callback_url": format!("{base}/oauth/callback"), "permissions": ["account.read"]}))
        .send().await.unwrap().json().await.unwrap();
    let profile: Profile = http
        .post(format!("{base}/v1/profiles"))
        .bearer_auth(&key)
        .json(&json!({"name": "P", "provider": "bitbucket-cloud", "key": consumer["key"], "secret": consumer["secret"]}))
        .send().await.unwrap().json().await.unwrap();
    let session: Session = http
        .post(format!("{base}/v1/connect-sessions"))
        .bearer_auth(&key)
        .json(&json!({"profile": profile.id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let landed = http.get(&session.url).send().await.unwrap();
    let connection = landed
        .url()
        .query_pairs()
        .find(|(k, _)| k == "connection_id")
        .unwrap()
        .1
        .into_owned();
    let before = rss_kib(pid, "VmRSS:");

    let deadline = Instant::now() + Duration::from_secs(10);
    let (attempts, refused_fast) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut flood = Vec::new();
    for client in 0..64u32 {
        let (base, attempts, refused_fast) = (base.clone(), attempts.clone(), refused_fast.clone());
        flood.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0u32;
            while Instant::now() < deadline {
                n += 1;
                let address = format!("10.{}.{}.{}", client, n / 250 % 250, n % 250);
                let answer = http
                    .post(format!("{base}/ui/login"))
                    .header("x-forwarded-for", address)
                    .form(&[
                        ("username", format!("user{n}")),
                        ("password", format!("wrong{n}")),
                    ])
                    .send()
                    .await;
                attempts.fetch_add(1, Ordering::Relaxed);
                if answer.is_ok_and(|a| a.status() == StatusCode::SERVICE_UNAVAILABLE) {
                    refused_fast.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let (mut reads, mut peak) = (0u64, before);
    while Instant::now() < deadline {
        let read = http
            .get(format!("{base}/v1/connections/{connection}/token"))
            .bearer_auth(&key)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        assert_eq!(
            read.status(),
            StatusCode::OK,
            "token reads keep being served"
        );
        reads += 1;
        peak = peak.max(rss_kib(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for client in flood {
        client.await.unwrap();
    }
    let high_water = rss_kib(pid, "VmHWM:");
    eprintln!(
        "sign-in flood: {} attempts ({} refused at once), {reads} token reads served; RSS {} MiB before, peak {} MiB",
        attempts.load(Ordering::Relaxed),
        refused_fast.load(Ordering::Relaxed),
        before / 1024,
        high_water / 1024
    );
    assert!(
        high_water < 100 * 1024,
        "RSS high-water mark {high_water} KiB"
    );
    assert!(reads > 50, "{reads} token reads in 10 s");
    server.stop().await;
}
