//! Three `grantry serve` processes on one PostgreSQL database in front of one simulator in 2026
//! rotation mode. 2,000 connections are made within seconds of each other, so their tokens all
//! come due together; 200 clients read tokens through all three nodes while the nodes renew them,
//! and one node is killed with SIGKILL in the middle of that and restarted.
//!
//! What must hold: no read fails on the nodes that stay up, every token handed out works at the
//! simulator, every connection is renewed before its token expires and ends active, and no
//! refresh token is refused. A refresh token can be presented twice only when the killed node
//! had already asked Bitbucket and died before writing the answer: another node then retries
//! with the stored, used token, which Bitbucket accepts inside its grace period (the crash-safety
//! argument in ARCHITECTURE.md). The test counts those and bounds them by what the dead node
//! could have had in flight.
//!
//! It runs in real time (about two minutes): the nodes' clocks cannot be moved from outside.
//! `.config/nextest.toml` gives it the machine to itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::process::{Server, environment, free_port, run};
use crate::common::views::{ApiKey, Connection, Page, Profile, Session, Token};
use bitbucket_sim::{Mode, Seed, Settings, SimBuilder};
use futures_util::StreamExt;
use grantry_store_postgres::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CONNECTIONS: usize = 2_000;
const READERS: usize = 200;
/// Access token lifetime at the simulator. Grantry renews a quarter of it (plus up to half as
/// much jitter) ahead of expiry: here 37 to 55 s ahead.
const TOKEN_TTL: u64 = 150;
/// Refreshes each node runs at once: the most a killed node can leave half done.
const CONCURRENCY: u64 = 16;
const NODES: usize = 3;
/// The node that is killed.
const VICTIM: usize = 2;

struct Node {
    port: u16,
    env: Vec<(String, String)>,
    server: Option<Server>,
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    /// Reads that failed on a node that was up.
    failed: AtomicU64,
    /// Reads refused because the victim was down or restarting.
    victim_down: AtomicU64,
    checked_at_simulator: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_renew_2000_connections_while_one_is_killed() {
    let mut world = String::from("[[workspaces]]\nslug = \"acme\"\nmembers = [\"user0\"]\n");
    for n in 0..CONNECTIONS {
        world.push_str(&format!(
            "[[users]]\nusername = \"user{n}\"\npassword = \"pw\"\n"
        ));
    }
    let sim = SimBuilder::new()
        .settings(Settings {
            mode: Mode::Rotating,
            access_token_ttl: TOKEN_TTL,
            ..Settings::default()
        })
        .seed(Seed::parse("cluster", &world).unwrap())
        .start()
        .await
        .unwrap();
    let database = TestDatabase::create().await;
    let data = tempfile::tempdir().unwrap();
    let master_key = grantry_crypto::MasterKey::generate().unwrap().to_base64();
    let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
    // One public URL for all, as behind a load balancer: node 0's.
    let public = format!("http://127.0.0.1:{}", ports[0]);
    let mut nodes: Vec<Node> = ports
        .iter()
        .enumerate()
        .map(|(n, &port)| {
            let dir = data.path().join(format!("node{n}"));
            std::fs::create_dir_all(&dir).unwrap();
            let mut env = environment(&dir, port, sim.url());
            env.retain(|(name, _)| name != "GRANTRY_PUBLIC_URL");
            env.extend(
                [
                    ("GRANTRY_PUBLIC_URL", public.clone()),
                    ("GRANTRY_DATABASE_URL", database.url()),
                    ("GRANTRY_MASTER_KEY", master_key.as_str().to_owned()),
                    ("GRANTRY_REFRESH__MARGIN_SECS", "10".into()),
                    ("GRANTRY_REFRESH__LEAD_SECS", "600".into()),
                    ("GRANTRY_REFRESH__LEASE_SECS", "8".into()),
                    ("GRANTRY_REFRESH__CONCURRENCY", CONCURRENCY.to_string()),
                    ("GRANTRY_REFRESH__INTERVAL_MS", "200".into()),
                    ("GRANTRY_OUTBOUND__TIMEOUT_SECS", "3".into()),
                    ("GRANTRY_LOG__LEVEL", "warn".into()),
                ]
                .map(|(k, v)| (k.to_owned(), v)),
            );
            Node {
                port,
                env,
                server: None,
            }
        })
        .collect();

    let (ok, key, err) = run(
        &nodes[0].env,
        &[
            "api-keys", "create", "--name", "cluster", "--role", "admin", "--output", "json",
        ],
        None,
    )
    .await;
    assert!(ok, "{err}");
    let key: ApiKey = serde_json::from_str(&key).unwrap();
    let key = key.key.unwrap();
    for (n, node) in nodes.iter_mut().enumerate() {
        let log = data.path().join(format!("node{n}.log"));
        node.server = Some(Server::start(&node.env, log).await);
    }
    // A request that never ends fails, saying so, rather than hanging the test.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(512)
        .cookie_store(true)
        .build()
        .unwrap();

    let consumer: Value = http
        .post(format!("{}/_sim/consumers", sim.url()))
        .json(&json!({"workspace": "acme", "name": "cluster", "callback_url": format!("{public}/oauth/callback"),
                      "permissions": ["account.read"]}))
        .send().await.unwrap().json().await.unwrap();
    let profile: Value = http
        .post(format!("{public}/v1/profiles"))
        .bearer_auth(&key)
        .json(&json!({"name": "cluster", "provider": "bitbucket-cloud", "key": consumer["key"], "secret": consumer["secret"]}))
        .send().await.unwrap().json().await.unwrap();
    let profile = serde_json::from_value::<Profile>(profile.clone())
        .unwrap_or_else(|e| panic!("no profile ({e}): {profile} (consumer {consumer})"))
        .id;

    let started = Instant::now();
    let connector = Connector {
        http: &http,
        node: &public,
        sim: sim.url(),
        key: &key,
        profile: &profile,
    };
    let connections: Vec<String> = futures_util::stream::iter(0..CONNECTIONS)
        .map(|n| connector.connect(n))
        .buffer_unordered(32)
        .collect()
        .await;
    let made_in = started.elapsed();
    eprintln!(
        "{CONNECTIONS} connections made in {:.1} s",
        made_in.as_secs_f64()
    );
    let first_expiry = Instant::now() + Duration::from_secs(TOKEN_TTL) - made_in;
    let first = connection_states(&http, &public, &key).await;
    assert_eq!(first.len(), CONNECTIONS);
    let connections = Arc::new(connections);

    let tally = Arc::new(Tally::default());
    let victim_up = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let bases: Arc<Vec<String>> = Arc::new(
        nodes
            .iter()
            .map(|n| format!("http://127.0.0.1:{}", n.port))
            .collect(),
    );
    let mut readers = tokio::task::JoinSet::new();
    for reader in 0..READERS {
        let reading = Reader {
            http: http.clone(),
            sim: sim.url().to_owned(),
            key: key.clone(),
            node: reader % NODES,
            bases: bases.clone(),
            connections: connections.clone(),
            tally: tally.clone(),
            victim_up: victim_up.clone(),
            stop: stop.clone(),
        };
        readers.spawn(reading.run(reader));
    }

    // Kill the victim once the renewal wave is well under way, then bring it back.
    let refreshed = || async { refreshes(&http, sim.url()).await };
    let deadline = first_expiry;
    while refreshed().await < CONNECTIONS as u64 / 4 {
        assert!(Instant::now() < deadline, "the renewal wave never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wave_started = Instant::now();
    victim_up.store(false, Ordering::SeqCst);
    let mut victim = nodes[VICTIM].server.take().unwrap();
    victim.child.kill().await.unwrap();
    let killed_at = refreshed().await;
    eprintln!("killed node {VICTIM} with SIGKILL after {killed_at} refreshes");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = data.path().join(format!("node{VICTIM}-restarted.log"));
    nodes[VICTIM].server = Some(Server::start(&nodes[VICTIM].env, log).await);
    victim_up.store(true, Ordering::SeqCst);
    eprintln!("node {VICTIM} restarted");

    // Wait for every connection to carry a renewed token.
    let renewed_by = loop {
        let done = renewed(&first, &connection_states(&http, &public, &key).await);
        if done == CONNECTIONS {
            break Instant::now();
        }
        assert!(
            Instant::now() < first_expiry,
            "{done} of {CONNECTIONS} renewed before the first tokens expired"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("every connection renewed; stopping the readers");
    // Keep reading a little past the wave, then stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    while readers.join_next().await.is_some() {}
    eprintln!("readers stopped");

    let last = connection_states(&http, &public, &key).await;
    let active = last
        .values()
        .filter(|(_, status)| status == "active")
        .count();
    let stats: Value = http
        .get(format!("{}/_sim/stats", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reuses = stats["refresh_token_reuse"].as_array().unwrap().clone();
    let refused: Vec<&Value> = reuses
        .iter()
        .filter(|r| {
            r["later_uses"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["accepted"] == false)
        })
        .collect();
    let reads = tally.ok.load(Ordering::Relaxed);
    eprintln!(
        "renewal wave: {} refreshes at the simulator; all {CONNECTIONS} renewed {:.1} s after the kill, \
         {:.0} s before the first token would have expired",
        refreshed().await,
        (renewed_by - wave_started).as_secs_f64(),
        (first_expiry - renewed_by).as_secs_f64()
    );
    eprintln!(
        "reads: {reads} served, {} failed on live nodes, {} refused while node {VICTIM} was down, \
         {} tokens checked at the simulator",
        tally.failed.load(Ordering::Relaxed),
        tally.victim_down.load(Ordering::Relaxed),
        tally.checked_at_simulator.load(Ordering::Relaxed)
    );
    eprintln!(
        "refresh tokens presented twice: {} (accepted in the grace period), refused: {}",
        reuses.len() - refused.len(),
        refused.len()
    );

    assert_eq!(
        tally.failed.load(Ordering::Relaxed),
        0,
        "no read fails on a node that is up"
    );
    assert!(reads > 10_000, "the readers read ({reads})");
    assert_eq!(renewed(&first, &last), CONNECTIONS);
    assert_eq!(active, CONNECTIONS, "every connection ends active");
    assert!(
        refused.is_empty(),
        "no refresh token was refused: {refused:?}"
    );
    assert!(
        reuses.len() as u64 <= CONCURRENCY,
        "only refreshes the killed node had in flight were retried with a used token: {}",
        reuses.len()
    );
    for node in &mut nodes {
        if let Some(server) = node.server.take() {
            server.stop().await;
        }
    }
    // A node that hears nothing from the change feed for a second stops trusting its caches; under
    // this load that should stay rare, and the figure shows whether it did.
    let feed_losses: usize = std::fs::read_dir(data.path())
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.unwrap().path()).ok())
        .map(|log| log.matches("lost the change feed").count())
        .sum();
    eprintln!("change feed lost (caches bypassed until it was back): {feed_losses} time(s)");
}

/// Refresh grants the simulator answered.
async fn refreshes(http: &reqwest::Client, sim: &str) -> u64 {
    let stats: Value = http
        .get(format!("{sim}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["counts"]["token"]["refresh_token"]["ok"]
        .as_u64()
        .unwrap_or(0)
}

/// Every connection's `expires_at` (fixed-width RFC 3339, so later is greater) and status.
async fn connection_states(
    http: &reqwest::Client,
    node: &str,
    key: &str,
) -> HashMap<String, (String, String)> {
    let mut states = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{node}/v1/connections?limit=200");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Page<Connection> = http
            .get(url)
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for connection in page.items {
            let state = (connection.expires_at.unwrap(), connection.status);
            states.insert(connection.id, state);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    states
}

/// How many connections hold a later token than they did at first.
fn renewed(
    first: &HashMap<String, (String, String)>,
    now: &HashMap<String, (String, String)>,
) -> usize {
    first
        .iter()
        .filter(|(id, (expires, _))| now.get(*id).is_some_and(|(later, _)| later > expires))
        .count()
}

/// Makes connections through the consent flow, each for its own simulator user.
struct Connector<'a> {
    http: &'a reqwest::Client,
    node: &'a str,
    sim: &'a str,
    key: &'a str,
    profile: &'a str,
}

impl Connector<'_> {
    async fn connect(&self, n: usize) -> String {
        let session: Session = self
            .http
            .post(format!("{}/v1/connect-sessions", self.node))
            .bearer_auth(self.key)
            .json(&json!({"profile": self.profile, "end_user_id": format!("user{n}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let authorize = self.location(self.http.get(&session.url)).await;
        let mut form: Vec<(String, String)> = url::Url::parse(&authorize)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        form.extend([
            ("username".into(), format!("user{n}")),
            ("password".into(), "pw".into()),
            ("decision".into(), "grant".into()),
        ]);
        let consent = self
            .http
            .post(format!("{}/site/oauth2/authorize", self.sim))
            .form(&form);
        let callback = self.location(consent).await;
        let landed = self.location(self.http.get(callback)).await;
        url::Url::parse(&landed)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "connection_id")
            .unwrap_or_else(|| panic!("user{n} did not connect: {landed}"))
            .1
            .into_owned()
    }

    async fn location(&self, request: reqwest::RequestBuilder) -> String {
        let response = request.send().await.unwrap();
        let status = response.status();
        match response.headers().get("location") {
            Some(location) => location.to_str().unwrap().to_owned(),
            None => panic!(
                "expected a redirect, got {status}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
}

/// One client reading tokens from one node, checking every twentieth at the simulator.
struct Reader {
    http: reqwest::Client,
    sim: String,
    key: String,
    node: usize,
    bases: Arc<Vec<String>>,
    connections: Arc<Vec<String>>,
    tally: Arc<Tally>,
    victim_up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    async fn run(self, seed: usize) {
        let mut n = seed as u64;
        let mut reads = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            reads += 1;
            // A different connection each time (a linear congruential sequence's high bits).
            n = n
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let connection = &self.connections[(n >> 33) as usize % self.connections.len()];
            let up = self.node != VICTIM || self.victim_up.load(Ordering::SeqCst);
            let url = format!(
                "{}/v1/connections/{connection}/token",
                self.bases[self.node]
            );
            let read = self.http.get(url).bearer_auth(&self.key).send().await;
            let token = match read {
                Ok(response) if response.status() == StatusCode::OK => {
                    let body: Option<Token> = response.json().await.ok();
                    body.map(|token| token.access_token)
                }
                Ok(response) => {
                    if self.node != VICTIM {
                        eprintln!("node {}: {connection}: {}", self.node, response.status());
                    }
                    None
                }
                Err(error) => {
                    if self.node != VICTIM {
                        eprintln!("node {}: {connection}: {error}", self.node);
                    }
                    None
                }
            };
            match token {
                Some(token) => {
                    self.tally.ok.fetch_add(1, Ordering::Relaxed);
                    if reads.is_multiple_of(20) {
                        self.check_at_simulator(&token).await;
                    }
                }
                // The victim, killed or not listening yet: expected, counted apart.
                None if self.node == VICTIM && (!up || !self.victim_up.load(Ordering::SeqCst)) => {
                    self.tally.victim_down.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                None => {
                    self.tally.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The token works at Bitbucket: it is live, not one retired by a later refresh.
    async fn check_at_simulator(&self, token: &str) {
        let response = self
            .http
            .get(format!("{}/2.0/user", self.sim))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            self.tally
                .checked_at_simulator
                .fetch_add(1, Ordering::Relaxed);
        } else {
            eprintln!(
                "node {}: a token handed out was refused: {}",
                self.node,
                response.status()
            );
            self.tally.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
