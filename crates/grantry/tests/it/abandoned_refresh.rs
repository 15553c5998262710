//! A node that dies in the middle of a refresh, whatever started it, must not cost the user their
//! connection. Bitbucket has rotated the refresh token; the database still holds the used one,
//! which Bitbucket accepts only within its grace period (here shortened to 60 s, with tokens
//! living 2 hours, so the ordinary schedule is far too late). Another node already running
//! beside it (PostgreSQL) or the restarted one (SQLite) must present the used token again, by
//! itself, within the grace.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::common::expect;
use crate::common::process::{Nodes, Server, free_port};
use crate::common::views::{self, Profile, Session, Token};

const WORLD: &str = r#"
[settings]
auto_approve = "alice"
refresh_grace = 60
[[users]]
username = "alice"
[[workspaces]]
slug = "acme"
members = ["alice"]
"#;

/// What sets the refresh off on the node that dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// `POST /v1/connections/{id}/refresh`.
    Forced,
    /// A proxied call whose token Bitbucket refuses.
    Proxied,
    /// The background refresher finds the connection due.
    Background,
    /// A token read finds the token inside the refresh margin.
    ReadInMargin,
}

/// The nodes, and what these tests do with them.
struct Cluster(Nodes);

impl std::ops::Deref for Cluster {
    type Target = Nodes;

    fn deref(&self) -> &Nodes {
        &self.0
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Cluster {
    async fn start(postgres: bool) -> Cluster {
        Cluster(Nodes::new(WORLD, postgres).await)
    }

    /// A node's environment: short leases, a quick refresher when `refresher` is on.
    fn node_env(
        &self,
        port: u16,
        failpoint: Option<&str>,
        refresher: bool,
    ) -> Vec<(String, String)> {
        let mut settings = vec![
            ("GRANTRY_REFRESH__LEASE_SECS", "3".into()),
            ("GRANTRY_OUTBOUND__TIMEOUT_SECS", "2".into()),
            ("GRANTRY_REFRESH__INTERVAL_MS", "200".into()),
            ("GRANTRY_REFRESH__ENABLED", refresher.to_string()),
        ];
        if let Some(failpoint) = failpoint {
            settings.push(("GRANTRY_FAILPOINTS", failpoint.to_owned()));
        }
        self.env(port, &settings)
    }

    /// Runs one statement on the database, as an operator's tool would.
    async fn sql(&self, statement: &str) {
        match &self.database {
            Some(database) => {
                let mut db = sqlx::PgConnection::connect(&database.url()).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                    .execute(&mut db)
                    .await
                    .unwrap();
            }
            None => {
                let url = format!("sqlite://{}", self.data.path().join("grantry.db").display());
                let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                    .execute(&mut db)
                    .await
                    .unwrap();
            }
        }
    }

    /// A profile and a connected account, through the real consent flow; answers the connection.
    async fn connect(&self, base: &str) -> String {
        let consumer: Value = self
            .http
            .post(format!("{}/_sim/consumers", self.sim.url()))
            .json(&json!({"workspace": "acme", "name": "c", "callback_url": format!("{base}/oauth/callback"),
                          "permissions": ["account.read"]}))
            .send().await.unwrap().json().await.unwrap();
        let profile = json!({"name": "P", "provider": "bitbucket-cloud", "key": consumer["key"], "secret": consumer["secret"]});
        let profile: Profile = expect(
            self.post(base, "/v1/profiles", profile).await,
            StatusCode::CREATED,
        );
        let session: Session = expect(
            self.post(base, "/v1/connect-sessions", json!({"profile": profile.id}))
                .await,
            StatusCode::CREATED,
        );
        let landed = self.http.get(&session.url).send().await.unwrap();
        landed
            .url()
            .query_pairs()
            .find(|(k, _)| k == "connection_id")
            .unwrap_or_else(|| panic!("not connected: {}", landed.url()))
            .1
            .into_owned()
    }

    async fn sim_stats(&self) -> Value {
        self.http
            .get(format!("{}/_sim/stats", self.sim.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn sim_post(&self, path: &str, body: Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.sim.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}");
    }
}

/// Sets a refresh off on a node that dies right after Bitbucket answered it.
async fn die_mid_refresh(cluster: &Cluster, start: Start) -> String {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = cluster.node_env(
        port,
        Some("after-provider-refresh"),
        start == Start::Background,
    );
    let mut victim = Server::start(&env, cluster.data.path().join("victim.log")).await;
    let connection = cluster.connect(&base).await;
    let id = format!("'{connection}'");
    let get = |path: String| {
        cluster
            .http
            .get(format!("{base}{path}"))
            .bearer_auth(&cluster.key)
    };
    let answer = match start {
        Start::Forced => {
            cluster
                .http
                .post(format!("{base}/v1/connections/{connection}/refresh"))
                .bearer_auth(&cluster.key)
                .send()
                .await
        }
        Start::Proxied => {
            // Issued two minutes ago, and Bitbucket now refuses it.
            let sql = format!(
                "UPDATE connections SET refreshed_at = {} WHERE id = {id}",
                now() - 120
            );
            cluster.sql(&sql).await;
            cluster
                .sim_post("/_sim/clock/advance", json!({"seconds": 7201}))
                .await;
            get(format!("/v1/proxy/{connection}/user")).send().await
        }
        Start::Background => {
            let sql = format!(
                "UPDATE connections SET next_refresh_at = {} WHERE id = {id}",
                now() - 1
            );
            cluster.sql(&sql).await;
            assert!(
                victim.wait_for_death().await,
                "the refresher hit the failpoint"
            );
            return connection;
        }
        Start::ReadInMargin => {
            // A two-hour token with two minutes left, as the database tells it.
            let (issued, expires) = (now() - 7080, now() + 120);
            let sql = format!(
                "UPDATE connections SET refreshed_at = {issued}, expires_at = {expires} WHERE id = {id}"
            );
            cluster.sql(&sql).await;
            get(format!("/v1/connections/{connection}/token"))
                .send()
                .await
        }
    };
    assert!(answer.is_err(), "the node died mid-request");
    assert!(victim.wait_for_death().await, "killed by the failpoint");
    connection
}

/// The used refresh token's presentations after its first, once the simulator has seen one.
async fn wait_for_reuse(cluster: &Cluster, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let stats = cluster.sim_stats().await;
        let reuse = &stats["refresh_token_reuse"];
        if reuse.as_array().is_some_and(|r| !r.is_empty()) {
            return Some(stats);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

async fn survives(postgres: bool, start: Start) {
    let cluster = Cluster::start(postgres).await;
    // On PostgreSQL the other node already runs beside the one that dies, its refresher on (but
    // for a background refresh, whose claim either node could win, it starts after). On SQLite
    // the node that died is started again.
    let beside = postgres && start != Start::Background;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = cluster.node_env(port, None, true);
    let log = cluster.data.path().join("survivor.log");
    let mut running = None;
    if beside {
        running = Some(Server::start(&env, log.clone()).await);
    }
    let connection = die_mid_refresh(&cluster, start).await;
    let stats = cluster.sim_stats().await;
    assert_eq!(
        stats["counts"]["token"]["refresh_token"]["ok"], 1,
        "Bitbucket answered and rotated the refresh token: {stats}"
    );

    // The other node, or the restarted one, left to itself.
    let survivor = match running {
        Some(survivor) => survivor,
        None => Server::start(&env, log).await,
    };
    let stats = wait_for_reuse(&cluster, Duration::from_secs(45))
        .await
        .unwrap_or_else(|| {
            panic!(
                "{start:?}: nobody presented the used refresh token again within the grace period"
            )
        });
    let reuse = stats["refresh_token_reuse"].as_array().unwrap();
    assert_eq!(reuse.len(), 1, "{stats}");
    let uses = reuse[0]["later_uses"].as_array().unwrap();
    assert!(
        uses.iter().all(|u| u["accepted"] == true),
        "no refresh token refused: {stats}"
    );
    let waited = uses[0]["at"].as_i64().unwrap() - reuse[0]["first_used"].as_i64().unwrap();
    assert!(
        waited < 60,
        "presented again {waited} s after the first use"
    );
    let store = if postgres { "PostgreSQL" } else { "SQLite" };
    eprintln!(
        "{start:?} on {store}: the used refresh token presented again {waited} s after its first use, accepted"
    );
    let refused: u64 = stats["counts"]["token"]["refresh_token"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(outcome, _)| *outcome != "ok")
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(refused, 0, "{stats}");

    let shown: views::Connection = cluster
        .http
        .get(format!("{base}/v1/connections/{connection}"))
        .bearer_auth(&cluster.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown.status, "active", "{shown:?}");
    let token: Token = cluster
        .http
        .get(format!("{base}/v1/connections/{connection}/token"))
        .bearer_auth(&cluster.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user = cluster
        .http
        .get(format!("{}/2.0/user", cluster.sim.url()))
        .bearer_auth(&token.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), StatusCode::OK, "the token served works");
    survivor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_forced_refresh() {
    survives(false, Start::Forced).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_proxied_refresh() {
    survives(false, Start::Proxied).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_background_refresh() {
    survives(false, Start::Background).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_inside_the_margin() {
    survives(false, Start::ReadInMargin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_forced_refresh() {
    survives(true, Start::Forced).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_proxied_refresh() {
    survives(true, Start::Proxied).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_background_refresh() {
    survives(true, Start::Background).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_inside_the_margin() {
    survives(true, Start::ReadInMargin).await;
}
