//! Webhooks, verified by a receiver that trusts only the published Standard Webhooks library
//! (`interop/webhook_receiver.py`, PyPI `standardwebhooks`): every kind produced by the scenario
//! that causes it, signatures and rotation, a receiver down then up, 429 with `Retry-After`, and
//! a node killed in the middle of a burst.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::views::{
    Connection, Deliveries, Event, MessageData, Page, Profile, Webhook, decode,
};
use crate::common::{TestApp, expect, refused};

fn interop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// A message the receiver accepted: Grantry's `type` and `data`, with what the receiver noted
/// (the `webhook-id` and how many signatures it carried).
#[derive(Debug, Deserialize)]
struct Accepted {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: MessageData,
    signatures: u32,
}

/// The Python receiver, on `port` (0: any).
struct Receiver {
    child: Child,
    port: u16,
    http: reqwest::Client,
}

impl Receiver {
    async fn start(port: u16) -> Receiver {
        let python = interop().join(".venv/bin/python");
        assert!(
            python.exists(),
            "run interop/install (./scripts/test does) to install standardwebhooks"
        );
        let mut child = Command::new(python)
            .arg(interop().join("webhook_receiver.py"))
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the receiver starts")
            .unwrap()
            .unwrap();
        let port = serde_json::from_str::<Value>(&first).unwrap()["listening"]
            .as_u64()
            .unwrap() as u16;
        Receiver {
            child,
            port,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/grantry", self.port)
    }

    async fn control(&self, control: Value) {
        let url = format!("http://127.0.0.1:{}/_control", self.port);
        let sent = self.http.post(url).json(&control).send().await.unwrap();
        assert!(sent.status().is_success());
    }

    async fn received(&self) -> Value {
        let url = format!("http://127.0.0.1:{}/_received", self.port);
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until `count` messages were accepted; answers them.
    async fn accepted(&self, count: usize) -> Vec<Accepted> {
        let started = Instant::now();
        loop {
            let received = self.received().await;
            let accepted = received["accepted"].as_array().unwrap();
            if accepted.len() >= count {
                return decode(&received["accepted"]);
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} of {count} messages arrived: {received}",
                accepted.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
    }
}

/// Grantry delivering quickly: a short poll and retries a second apart.
async fn app() -> TestApp {
    TestApp::with(Mode::Rotating, |c| {
        c.webhooks.interval = Duration::from_millis(50);
        c.webhooks.backoff_base = Duration::from_secs(1);
        c.webhooks.backoff_max = Duration::from_secs(2);
    })
    .await
}

/// Creates an endpoint for `url`; answers its id and secret.
async fn endpoint(app: &TestApp, body: Value) -> (String, String) {
    let created: Webhook = expect(
        app.admin(Method::POST, "/v1/webhooks", Some(body)).await,
        StatusCode::CREATED,
    );
    let secret = created.secret.unwrap();
    assert!(secret.starts_with("whsec_"));
    (created.id, secret)
}

fn kinds_of(messages: &[Accepted], connection: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.data.connection_id.as_deref() == Some(connection))
        .map(|m| m.kind.clone())
        .collect()
}

/// An endpoint as the API shows it.
async fn webhook(app: &TestApp, hook: &str) -> Webhook {
    app.admin_get(&format!("/v1/webhooks/{hook}")).await
}

/// Access-token connections, made without a browser.
async fn stored_connection(app: &TestApp, profile: &str, token: &str) -> String {
    let body = json!({"profile": profile, "credential": {"type": "access_token", "token": token}});
    let answer = app.app(Method::POST, "/v1/connections", Some(body)).await;
    expect::<Connection>(answer, StatusCode::CREATED).id
}

#[tokio::test]
async fn every_kind_arrives_signed_in_order_and_verified_by_the_published_library() {
    let app = app().await;
    let receiver = Receiver::start(0).await;
    let (hook, secret) = endpoint(&app, json!({"url": receiver.url(), "description": "all"})).await;
    receiver.control(json!({"secrets": [secret]})).await;
    let profile = app
        .cloud_profile("P", &["account.read", "repositories.read"], &["repository"])
        .await;
    let path = format!("/v1/profiles/{profile}");

    // Created, then the consumer's secret goes wrong: misconfigured and failing; fixed: both recover.
    let connection = app.connect(&profile, "user-1").await;
    let real = app.grantry.find_profile(&profile).await.unwrap();
    app.admin(Method::PATCH, &path, Some(json!({"secret": "wrong"})))
        .await;
    app.advance(7200 - 100).await;
    app.token(&connection).await;
    let consumer = app.sim_consumer(&real.client_id).await;
    app.admin(
        Method::PATCH,
        &path,
        Some(json!({"secret": consumer["secret"]})),
    )
    .await;
    let refresh = format!("/v1/connections/{connection}/refresh");
    assert_eq!(
        app.app(Method::POST, &refresh, None).await.0,
        StatusCode::OK
    );

    // The user revokes the grant: needs_reauth; they reconnect: reconnected and recovered.
    app.sim_post(
        &format!("/_sim/users/alice/authorizations/{}/revoke", real.client_id),
        json!({}),
    )
    .await;
    app.advance(7200).await;
    assert_eq!(app.token(&connection).await.0, StatusCode::CONFLICT);
    let link = app
        .session(json!({"profile": profile, "connection_id": connection}))
        .await;
    app.browse(&link).await;

    // A profile asking for more than the user grants: insufficient scopes at once.
    let wide = app
        .cloud_profile(
            "Wide",
            &["account.read", "repositories.read"],
            &["pullrequest:write"],
        )
        .await;
    let short = app.connect(&wide, "user-2").await;

    // Deleted, and a test message on request.
    let delete = format!("/v1/connections/{connection}");
    assert_eq!(
        app.admin(Method::DELETE, &delete, None).await.0,
        StatusCode::NO_CONTENT
    );
    let test = format!("/v1/webhooks/{hook}/test");
    assert_eq!(
        app.admin(Method::POST, &test, None).await.0,
        StatusCode::ACCEPTED
    );

    let messages = receiver.accepted(12).await;
    assert_eq!(
        kinds_of(&messages, &connection),
        [
            "connection.created",
            "connection.failing",
            "connection.recovered",
            "connection.needs_reauth",
            "connection.reconnected",
            "connection.recovered",
            "connection.deleted",
        ],
        "one connection's messages in the order things happened"
    );
    assert_eq!(
        kinds_of(&messages, &short),
        ["connection.created", "connection.insufficient_scopes"]
    );
    let profile_kinds: Vec<&str> = messages
        .iter()
        .filter(|m| m.kind.starts_with("profile."))
        .map(|m| m.kind.as_str())
        .collect();
    assert_eq!(
        profile_kinds,
        ["profile.misconfigured", "profile.recovered"]
    );
    assert!(messages.iter().any(|m| m.kind == "webhook.test"));

    let reauth = messages
        .iter()
        .find(|m| m.kind == "connection.needs_reauth")
        .unwrap();
    assert_eq!(reauth.data.status.as_deref(), Some("needs_reauth"));
    assert_eq!(reauth.data.end_user_id.as_deref(), Some("user-1"));
    assert_eq!(
        reauth.data.account.as_ref().unwrap().username.as_deref(),
        Some("alice")
    );
    assert!(
        reauth.data.reason.as_deref().unwrap().contains("reconnect"),
        "the reason in words: {reauth:?}"
    );
    // Every byte the receiver accepted, not only the members the view knows.
    let everything = receiver.received().await["accepted"].to_string();
    let access = app.read_token(&short).await.access_token;
    assert!(!everything.contains(&access), "never a token");
    assert!(!everything.contains("whsec_"), "never a secret");
    let received = receiver.received().await;
    assert_eq!(
        received["rejected"].as_array().unwrap().len(),
        0,
        "{received}"
    );

    // What the API shows of it.
    let deliveries: Deliveries = app
        .admin_get(&format!("/v1/webhooks/{hook}/deliveries?limit=5"))
        .await;
    let newest = &deliveries.items[0];
    assert_eq!(newest.state, "delivered", "{deliveries:?}");
    assert_eq!(newest.last_status, Some(204));
    assert_eq!(deliveries.items.len(), 5);
    assert!(deliveries.next_before.is_some());
    receiver.stop().await;
}

#[tokio::test]
async fn forged_stale_and_replayed_deliveries_are_caught_and_rotation_has_no_gap() {
    let app = app().await;
    let receiver = Receiver::start(0).await;
    let (hook, old) = endpoint(
        &app,
        json!({"url": receiver.url(), "kinds": ["webhook.test"]}),
    )
    .await;
    receiver.control(json!({"secrets": [old]})).await;

    // Forged (wrong secret) and stale (signed ten minutes ago): the library refuses both.
    let body = r#"{"type":"webhook.test","timestamp":"2026-11-29T00:00:00Z","data":{}}"#;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let forger = grantry_crypto::new_webhook_secret();
    for (secret, at, why) in [
        (forger.as_str(), now, "forged"),
        (old.as_str(), now - 600, "stale"),
    ] {
        let signature = grantry_crypto::webhook_signature(secret, "evt_forged", at, body).unwrap();
        let answer = receiver
            .http
            .post(receiver.url())
            .header("webhook-id", "evt_forged")
            .header("webhook-timestamp", at.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{why}");
    }

    // Rotation: for a day both secrets sign, so a receiver that knows either verifies.
    let rotate = format!("/v1/webhooks/{hook}/rotate-secret");
    let rotated: Webhook = expect(app.admin(Method::POST, &rotate, None).await, StatusCode::OK);
    let new = rotated.secret.unwrap();
    assert_ne!(new, old);
    assert!(rotated.previous_secret_until.is_some());
    let test = format!("/v1/webhooks/{hook}/test");
    app.admin(Method::POST, &test, None).await;
    let first = receiver.accepted(1).await;
    assert_eq!(first[0].signatures, 2, "old and new sign together");
    receiver.control(json!({"secrets": [new]})).await;
    app.admin(Method::POST, &test, None).await;
    receiver.accepted(2).await;
    // A day later only the new one signs.
    app.advance(24 * 3600 + 1).await;
    app.admin(Method::POST, &test, None).await;
    let third = receiver.accepted(3).await;
    assert_eq!(third[2].signatures, 1);

    // A replay (redelivered on request: the same webhook-id) is recognised as one.
    let id = first[0].id.as_str();
    let redeliver = format!("/v1/webhooks/{hook}/deliveries/{id}/redeliver");
    assert_eq!(
        app.admin(Method::POST, &redeliver, None).await.0,
        StatusCode::ACCEPTED
    );
    let started = Instant::now();
    loop {
        let received = receiver.received().await;
        if received["duplicates"].as_array().unwrap().len() == 1 {
            assert_eq!(received["duplicates"][0]["id"], id);
            assert_eq!(received["accepted"].as_array().unwrap().len(), 3);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{received}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rejected = receiver.received().await["rejected"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(rejected, 2, "only the two forgeries were refused");
    receiver.stop().await;
}

#[tokio::test]
async fn a_receiver_down_then_up_gets_everything_in_order_and_retry_after_is_honoured() {
    let app = app().await;
    let receiver = Receiver::start(0).await;
    let port = receiver.port;
    let (hook, secret) = endpoint(&app, json!({"url": receiver.url()})).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;

    // 429 with Retry-After: 2, then accepted: the retry waits the two seconds.
    receiver
        .control(json!({"secrets": [secret], "script": [{"status": 429, "retry_after": 2}]}))
        .await;
    let first = stored_connection(&app, &profile, "token-0").await;
    receiver.accepted(1).await;
    let requests = receiver.received().await["requests"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let gap = requests[1]["at"].as_f64().unwrap() - requests[0]["at"].as_f64().unwrap();
    assert!(
        gap >= 1.0,
        "Retry-After honoured: the retry came {gap:.2} s later"
    );

    // Down: connections come and go meanwhile.
    receiver.stop().await;
    let mut connections = vec![first];
    for n in 1..=4 {
        connections.push(stored_connection(&app, &profile, &format!("token-{n}")).await);
    }
    for connection in &connections[..3] {
        let path = format!("/v1/connections/{connection}");
        assert_eq!(
            app.admin(Method::DELETE, &path, None).await.0,
            StatusCode::NO_CONTENT
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let deliveries: Deliveries = app
        .admin_get(&format!("/v1/webhooks/{hook}/deliveries"))
        .await;
    let waiting = deliveries
        .items
        .iter()
        .filter(|d| d.state == "pending")
        .count();
    assert_eq!(waiting, 7, "{deliveries:?}");
    let shown = webhook(&app, &hook).await;
    assert!(shown.failing_since.is_some(), "{shown:?}");

    // Up again, on the same port: everything arrives, each connection's in order.
    let receiver = Receiver::start(port).await;
    receiver.control(json!({"secrets": [secret]})).await;
    let messages = receiver.accepted(7).await;
    for (n, connection) in connections.iter().enumerate() {
        let expected: &[&str] = if n == 0 {
            &["connection.deleted"]
        } else if n < 3 {
            &["connection.created", "connection.deleted"]
        } else {
            &["connection.created"]
        };
        assert_eq!(kinds_of(&messages, connection), expected, "{connection}");
    }
    let shown = webhook(&app, &hook).await;
    assert!(shown.failing_since.is_none(), "healthy again: {shown:?}");
    receiver.stop().await;
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_bad_input_is_named() {
    let app = app().await;
    let receiver = Receiver::start(0).await;
    let (hook, secret) = endpoint(&app, json!({"url": receiver.url()})).await;
    receiver
        .control(json!({"secrets": [secret], "script": [{"status": 410}]}))
        .await;
    app.admin(Method::POST, &format!("/v1/webhooks/{hook}/test"), None)
        .await;
    let started = Instant::now();
    loop {
        let shown = webhook(&app, &hook).await;
        if !shown.enabled {
            assert!(shown.disabled_reason.as_deref().unwrap().contains("410"));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{shown:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events: Page<Event> = app.events("kind=webhook.disabled").await;
    assert_eq!(events.items.len(), 1, "{events:?}");

    for (body, field) in [
        (json!({"url": "ftp://example.com/x"}), "url"),
        (json!({"url": "http://user:pw@example.com/x"}), "url"),
        (
            json!({"url": "http://example.com/x", "kinds": ["connection.exploded"]}),
            "kinds",
        ),
        (
            json!({"url": "http://example.com/x", "profiles": ["no-such-profile"]}),
            "profiles",
        ),
    ] {
        let (status, problem) = refused(app.admin(Method::POST, "/v1/webhooks", Some(body)).await);
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem:?}");
        assert!(problem.detail.contains(field), "{problem:?}");
    }
    let (status, _) = app.app(Method::GET, "/v1/webhooks", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "admins only");
    receiver.stop().await;
}

#[tokio::test]
async fn a_credential_nearing_its_end_is_announced_once() {
    let app = TestApp::with(Mode::Rotating, |c| {
        c.webhooks.interval = Duration::from_millis(50);
        c.webhooks.expiry_scan = Duration::from_millis(100);
    })
    .await;
    let receiver = Receiver::start(0).await;
    let kinds = json!(["connection.credential_expiring"]);
    let (_, secret) = endpoint(&app, json!({"url": receiver.url(), "kinds": kinds})).await;
    receiver.control(json!({"secrets": [secret]})).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let now = grantry_core::clock::Clock::now(&*app.clock);
    let ends = grantry_core::clock::rfc3339(now.plus_seconds(10 * 86_400));
    let body = json!({"profile": profile, "credential":
        {"type": "access_token", "token": "repo-token", "expires_at": ends}});
    let connection: Connection = expect(
        app.app(Method::POST, "/v1/connections", Some(body)).await,
        StatusCode::CREATED,
    );
    let id = connection.id.as_str();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let early = receiver.received().await;
    assert_eq!(
        early["accepted"].as_array().unwrap().len(),
        0,
        "ten days out: {early}"
    );

    app.advance(4 * 86_400).await;
    let warned = receiver.accepted(1).await;
    assert_eq!(warned[0].kind, "connection.credential_expiring");
    assert_eq!(warned[0].data.connection_id.as_deref(), Some(id));
    assert_eq!(warned[0].data.expires_at.as_deref(), Some(ends.as_str()));
    let reason = warned[0].data.reason.as_deref().unwrap();
    assert!(reason.contains("access token expires in 6 day"), "{reason}");

    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = receiver.received().await;
    assert_eq!(
        later["accepted"].as_array().unwrap().len(),
        1,
        "once: {later}"
    );
    receiver.stop().await;
}

/// Grantry processes (real binaries) delivering to one receiver, for killing.
mod killed {
    use super::*;
    use crate::common::process::{Nodes, Server, free_port};

    /// A node: quick polls, a short claim, a few deliveries at once.
    async fn start(nodes: &Nodes, name: &str) -> (Server, String) {
        let port = free_port();
        let settings = [
            ("GRANTRY_WEBHOOKS__INTERVAL_MS", "50".to_owned()),
            ("GRANTRY_WEBHOOKS__TIMEOUT_SECS", "2".into()),
            ("GRANTRY_WEBHOOKS__LEASE_SECS", "3".into()),
            ("GRANTRY_WEBHOOKS__CONCURRENCY", "4".into()),
            ("GRANTRY_REFRESH__ENABLED", "false".into()),
        ];
        let log = nodes.data.path().join(format!("{name}.log"));
        let server = Server::start(&nodes.env(port, &settings), log).await;
        (server, format!("http://127.0.0.1:{port}"))
    }

    /// A call with the admin key that must succeed; answers its JSON body, decoded.
    async fn call<T: DeserializeOwned>(
        nodes: &Nodes,
        method: Method,
        url: String,
        body: Option<Value>,
    ) -> T {
        let mut request = nodes.http.request(method, url).bearer_auth(&nodes.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{status}: {body}");
        decode(&body)
    }

    /// Connections made and deleted in a burst while the delivering node is killed: every message
    /// arrives, each connection's in order; duplicates carry the same `webhook-id`.
    async fn nothing_is_lost(postgres: bool) {
        let nodes = Nodes::new(crate::common::WORLD, postgres).await;
        let (victim, base) = start(&nodes, "victim").await;
        let survivor = if postgres {
            Some(start(&nodes, "survivor").await)
        } else {
            None
        };
        let receiver = Receiver::start(0).await;
        let hook: Webhook = call(
            &nodes,
            Method::POST,
            format!("{base}/v1/webhooks"),
            Some(json!({"url": receiver.url()})),
        )
        .await;
        // Slow answers keep attempts in flight when the node dies.
        receiver
            .control(json!({"secrets": [hook.secret], "delay_ms": 80}))
            .await;
        let consumer: Value = nodes
            .http
            .post(format!("{}/_sim/consumers", nodes.sim.url()))
            .json(&json!({"workspace": "acme", "name": "c", "callback_url": format!("{base}/oauth/callback"), "permissions": ["account.read"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let profile: Profile = call(
            &nodes,
                Method::POST,
                format!("{base}/v1/profiles"),
                Some(json!({"name": "P", "provider": "bitbucket-cloud", "key": consumer["key"], "secret": consumer["secret"]})),
            )
            .await;
        const CONNECTIONS: usize = 30;
        let mut ids = Vec::new();
        for n in 0..CONNECTIONS {
            let body = json!({"profile": profile.id, "credential": {"type": "access_token", "token": format!("t-{n}")}});
            let made: Connection = call(
                &nodes,
                Method::POST,
                format!("{base}/v1/connections"),
                Some(body),
            )
            .await;
            let id = made.id;
            call::<Value>(
                &nodes,
                Method::DELETE,
                format!("{base}/v1/connections/{id}"),
                None,
            )
            .await;
            ids.push(id);
        }
        receiver.accepted(8).await;
        let mut victim = victim;
        victim.child.start_kill().unwrap();
        assert!(victim.wait_for_death().await, "killed by a signal");
        let at_the_kill = receiver.received().await["accepted"]
            .as_array()
            .unwrap()
            .len();
        assert!(
            at_the_kill < 2 * CONNECTIONS,
            "killed mid-burst: {at_the_kill} arrived"
        );
        let survivor = match survivor {
            Some(running) => running,
            None => start(&nodes, "survivor").await,
        };

        let messages = receiver.accepted(2 * CONNECTIONS).await;
        for id in &ids {
            assert_eq!(
                kinds_of(&messages, id),
                ["connection.created", "connection.deleted"],
                "{id}"
            );
        }
        let received = receiver.received().await;
        let accepted: std::collections::HashSet<&str> = received["accepted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        let duplicates = received["duplicates"].as_array().unwrap();
        for duplicate in duplicates {
            assert!(accepted.contains(duplicate["id"].as_str().unwrap()));
        }
        eprintln!(
            "{} messages, {} duplicates after the kill, {} refused",
            accepted.len(),
            duplicates.len(),
            received["rejected"].as_array().unwrap().len()
        );
        assert_eq!(received["rejected"].as_array().unwrap().len(), 0);
        survivor.0.stop().await;
        receiver.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_node_killed_mid_burst_loses_nothing() {
        nothing_is_lost(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_node_killed_mid_burst_loses_nothing() {
        nothing_is_lost(true).await;
    }
}

#[tokio::test]
async fn an_endpoint_failing_for_days_is_disabled() {
    let app = app().await;
    // Nothing listens there: every attempt fails.
    let url = format!(
        "http://127.0.0.1:{}/hooks",
        crate::common::process::free_port()
    );
    let (hook, _) = endpoint(&app, json!({"url": url})).await;
    let test = format!("/v1/webhooks/{hook}/test");
    let show = format!("/v1/webhooks/{hook}");
    app.admin(Method::POST, &test, None).await;
    let started = Instant::now();
    loop {
        let shown: Webhook = app.admin_get(&show).await;
        if shown.failing_since.is_some() {
            assert!(shown.enabled, "a day of failures is not enough: {shown:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{shown:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    app.advance(3 * 86_400 + 60).await;
    let started = Instant::now();
    loop {
        let shown: Webhook = app.admin_get(&show).await;
        if !shown.enabled {
            let reason = shown.disabled_reason.as_deref().unwrap();
            assert!(reason.contains("failed for 3 days"), "{reason}");
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let deliveries = format!("/v1/webhooks/{hook}/deliveries");
            let (_, deliveries) = app.admin(Method::GET, &deliveries, None).await;
            panic!("not disabled: {shown:?}\n{deliveries}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events: Page<Event> = app.events("kind=webhook.disabled").await;
    assert_eq!(events.items.len(), 1, "{events:?}");
}
