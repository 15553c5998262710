//! PostgreSQL stopped under load, then started again, with a Grantry node in front of it that is
//! never restarted. While the database is down, fresh cached tokens keep being served (and proxied
//! calls made with them), requests
//! that need the database answer 503 with Retry-After, and `/readyz` fails. A refresh Bitbucket
//! answered after the database went away is kept in memory and written when it is back: nothing
//! Bitbucket returned is lost.
//!
//! The test runs its own throwaway PostgreSQL cluster (`initdb` on a free port), since it must
//! stop it; `.config/nextest.toml` gives it the machine to itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::TestApp;
use crate::common::throwaway_postgres::ThrowawayPostgres;
use crate::common::views::{Problem, Token, decode};
use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A connection of its own profile (the simulator approves alice at once).
async fn connection(app: &TestApp, name: &str) -> String {
    let profile = app.cloud_profile(name, &["account.read"], &[]).await;
    app.connect(&profile, name).await
}

/// `GET /2.0/user` through the proxy.
async fn proxied_user(app: &TestApp, connection: &str) -> StatusCode {
    let url = format!("{}/v1/proxy/{connection}/2.0/user", app.base);
    let response = app
        .http
        .get(url)
        .bearer_auth(&app.app_key)
        .send()
        .await
        .unwrap();
    response.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_started_under_load_loses_nothing() {
    let postgres = ThrowawayPostgres::create(&[]);
    let url = postgres.url();
    let app = Arc::new(
        TestApp::with(Mode::Rotating, |config| {
            config.database_url = Some(url.into());
            config.outbound.timeout_secs = 10;
        })
        .await,
    );
    // Three connections whose tokens will be inside the refresh margin (300 s) when the database
    // stops: one to be refreshed during the outage, one never read before, one cached.
    let refreshing = connection(&app, "refreshing").await;
    let unread = connection(&app, "unread").await;
    let aging = connection(&app, "aging").await;
    app.grantry.forget_everything();
    let aging_token = app.read_token(&aging).await.access_token;
    app.advance(7200 - 200).await;
    // And one with a fresh token, which clients read throughout, through two nodes.
    let fresh = connection(&app, "fresh").await;
    let fresh_token = app.read_token(&fresh).await.access_token;
    let second = Arc::new(TestApp::node(app.config.clone(), app.shared()).await);
    assert_eq!(second.read_token(&fresh).await.access_token, fresh_token);
    assert_eq!(proxied_user(&app, &fresh).await, StatusCode::OK);

    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut readers = tokio::task::JoinSet::new();
    for n in 0..20 {
        let node = if n % 2 == 0 { &app } else { &second };
        let (app, stop, fresh) = (node.clone(), stop.clone(), fresh.clone());
        let (served, failed) = (served.clone(), failed.clone());
        readers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = app.token(&fresh).await;
                if status == StatusCode::OK && serde_json::from_value::<Token>(body.clone()).is_ok()
                {
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    eprintln!("a cached read failed: {status} {body}");
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }

    // A read that refreshes is waiting on Bitbucket (slowed to 2 s) when PostgreSQL stops.
    app.sim_fault("token", json!({"latency_ms": 2000})).await;
    let read = {
        let (app, id) = (app.clone(), refreshing.clone());
        tokio::spawn(async move { app.token(&id).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped_at = Instant::now();
    postgres.stop();
    eprintln!("PostgreSQL stopped");
    let (status, body) = read.await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "Bitbucket's answer is handed out: {body}"
    );
    let token: Token = decode(&body);
    let kept = token.access_token;
    assert!(token.expires_in.unwrap() > 7000, "a new token: {body}");
    assert_eq!(
        app.grantry.pending_write_count(),
        1,
        "and kept for the database"
    );
    app.sim_clear_faults().await;

    // During the outage: tokens in memory are served, the rest is a quick 503.
    assert_eq!(app.read_token(&refreshing).await.access_token, kept);
    assert_eq!(
        app.read_token(&aging).await.access_token,
        aging_token,
        "a cached token inside the margin, still valid, beats a 503"
    );
    let asked = Instant::now();
    let response = app
        .http
        .get(format!("{}/v1/connections/{unread}/token", app.base))
        .bearer_auth(&app.app_key)
        .send()
        .await
        .unwrap();
    let took = asked.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let problem: Problem = response.json().await.unwrap();
    assert_eq!(problem.code, "database-unavailable", "{problem:?}");
    eprintln!(
        "a read that needs the database: 503 after {} ms",
        took.as_millis()
    );
    let body = json!({"name": "S", "provider": "bitbucket-cloud", "key": "k", "secret": "s"});
    let (status, _) = app.admin(Method::POST, "/v1/profiles", Some(body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let ready = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.read_token(&fresh).await.access_token, fresh_token);
    assert_eq!(
        proxied_user(&app, &fresh).await,
        StatusCode::OK,
        "a proxied call needs no database once the token and profile are in memory"
    );

    postgres.start();
    eprintln!(
        "PostgreSQL started again after {:.1} s",
        stopped_at.elapsed().as_secs_f64()
    );
    let back = Instant::now();
    loop {
        let mut ready = app.grantry.pending_write_count() == 0;
        for node in [&app, &second] {
            let answer = node
                .http
                .get(format!("{}/readyz", node.base))
                .send()
                .await
                .unwrap();
            ready &= answer.status() == StatusCode::OK;
        }
        if ready {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(20), "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "both nodes ready again, the kept refresh written, {} ms after PostgreSQL started",
        back.elapsed().as_millis()
    );
    let (status, body) = second.token(&unread).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    stop.store(true, Ordering::Relaxed);
    while readers.join_next().await.is_some() {}
    eprintln!(
        "reads of the fresh token: {} served, {} failed",
        served.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "fresh tokens were served throughout"
    );

    // The database holds what Bitbucket answered during the outage: the new access token, and
    // the new refresh token, which the next refresh presents (not the one it replaced).
    app.grantry.forget_everything();
    assert_eq!(app.read_token(&refreshing).await.access_token, kept);
    let (status, body) = app
        .app(
            Method::POST,
            &format!("/v1/connections/{refreshing}/refresh"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reuse = app.sim_stats().await["refresh_token_reuse"].clone();
    assert_eq!(reuse, json!([]), "no refresh token was presented twice");
}
