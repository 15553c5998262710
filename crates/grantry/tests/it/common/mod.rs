//! `TestApp`: the real router from a real `Config` on port 0, a fresh SQLite store per test, the
//! Bitbucket simulator as the provider, and a clock moved forward together with the simulator's.
//! Logs are shown only with `TEST_LOG=1`.

pub mod process;
pub mod throwaway_postgres;
pub mod views;
pub mod webdriver;

use std::sync::Arc;

use bitbucket_sim::{Mode, RunningSim, Seed, SimBuilder};
use grantry::config::Config;
use grantry::runtime::{self, Schema};
use grantry_core::clock::ManualClock;
use grantry_core::store::Role;
use grantry_core::{Actor, Grantry};
use grantry_store_postgres::testing::TestDatabase;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use views::{Connection, Event, Page, Problem, Profile, Session, Token, decode};

pub const WORLD: &str = r#"
[settings]
auto_approve = "alice"
dc_auto_approve = "carol"

[[users]]
username = "alice"
display_name = "Alice Liddell"
password = "alice-pw"

[[users]]
username = "bob"
display_name = "Bob Builder"
password = "bob-pw"

[[workspaces]]
slug = "acme"
members = ["alice", "bob"]

[[repositories]]
workspace = "acme"
slug = "widget"

[[dc.users]]
username = "carol"
display_name = "Carol Danvers"

[[dc.projects]]
key = "PRJ"

[[dc.repositories]]
project = "PRJ"
slug = "api"

[[dc.permissions]]
user = "carol"
project = "PRJ"
permission = "PROJECT_WRITE"
"#;

pub fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_test_writer()
            .try_init();
    }
}

pub struct TestApp {
    pub sim: Arc<RunningSim>,
    pub grantry: Arc<Grantry>,
    pub clock: Arc<ManualClock>,
    pub config: Config,
    pub base: String,
    pub admin_key: String,
    pub app_key: String,
    /// The test's browser and API client: keeps cookies, does not follow redirects.
    pub http: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    /// The PostgreSQL database, when the test runs on one (kept until every node is gone).
    pub postgres: Option<Arc<TestDatabase>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn start(mode: Mode) -> TestApp {
        TestApp::with(mode, |_| {}).await
    }

    /// Starts with the background refresher off (tests that want it turn it on) and lets a test
    /// adjust the configuration first.
    pub async fn with(mode: Mode, tweak: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::begin(mode, None, tweak).await
    }

    /// As [`TestApp::with`], on a PostgreSQL database of the test's own.
    pub async fn on_postgres(mode: Mode, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let database = TestDatabase::create().await;
        TestApp::begin(mode, Some(Arc::new(database)), tweak).await
    }

    async fn begin(
        mode: Mode,
        postgres: Option<Arc<TestDatabase>>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        init_logging();
        let sim = SimBuilder::new()
            .mode(mode)
            .seed(Seed::parse("test world", WORLD).unwrap())
            .start()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut config =
            Config::against_simulator(address, dir.path().to_owned(), &sim.url().parse().unwrap())
                .unwrap();
        config.refresh.enabled = false;
        config.refresh.interval = std::time::Duration::from_millis(100);
        if let Some(database) = &postgres {
            config.database_url = Some(database.url().into());
        }
        tweak(&mut config);
        let clock = Arc::new(ManualClock::default());
        let runtime = runtime::open_with_clock(&config, Schema::Migrate, clock.clone())
            .await
            .unwrap();
        let grantry = runtime.grantry.clone();
        let admin = grantry
            .create_api_key("tests-admin", Role::Admin, &Actor::Cli)
            .await
            .unwrap();
        let app = grantry
            .create_api_key("tests-app", Role::App, &Actor::Cli)
            .await
            .unwrap();
        let keys = (
            admin.secret.expose_secret().to_owned(),
            app.secret.expose_secret().to_owned(),
        );
        let shared = Shared {
            sim: Arc::new(sim),
            dir: Arc::new(dir),
            postgres,
            clock,
            keys,
        };
        TestApp::serve(runtime, listener, config, shared)
    }

    /// Another node on the same PostgreSQL database, simulator, master key and clock.
    pub async fn another_node(&self) -> TestApp {
        assert!(
            self.postgres.is_some(),
            "only nodes on PostgreSQL share a database"
        );
        TestApp::node(self.config.clone(), self.shared()).await
    }

    /// What another node would share with this one.
    pub fn shared(&self) -> Shared {
        Shared {
            sim: self.sim.clone(),
            dir: self.dir.clone(),
            postgres: self.postgres.clone(),
            clock: self.clock.clone(),
            keys: (self.admin_key.clone(), self.app_key.clone()),
        }
    }

    /// A node from `config` (moved to a port of its own) on an existing database.
    pub async fn node(mut config: Config, shared: Shared) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        config.listen = address;
        config.public_url = format!("http://{address}").parse().unwrap();
        let runtime = runtime::open_with_clock(&config, Schema::Expect, shared.clock.clone())
            .await
            .unwrap();
        TestApp::serve(runtime, listener, config, shared)
    }

    fn serve(
        runtime: runtime::Runtime,
        listener: tokio::net::TcpListener,
        config: Config,
        shared: Shared,
    ) -> TestApp {
        let grantry = runtime.grantry.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server_config = config.clone();
        let server = tokio::spawn(async move {
            grantry::serve::run(runtime, listener, &server_config, async {
                let _ = stopped.await;
            })
            .await
        });
        TestApp {
            base: config.base_url(),
            admin_key: shared.keys.0,
            app_key: shared.keys.1,
            http: browser(),
            sim: shared.sim,
            grantry,
            clock: shared.clock,
            config,
            dir: shared.dir,
            postgres: shared.postgres,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops the server, letting refreshes in flight finish; hands back the data directory.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        self.dir
    }

    /// Moves Grantry's clock and the simulator's forward together.
    pub async fn advance(&self, seconds: i64) {
        self.clock.advance(seconds);
        self.sim_post("/_sim/clock/advance", json!({ "seconds": seconds }))
            .await;
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(method, path, Some(&self.admin_key.clone()), body)
            .await
    }

    pub async fn app(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(method, path, Some(&self.app_key.clone()), body)
            .await
    }

    /// `GET path` with the app key, which must answer 200: its body, decoded.
    pub async fn app_get<T: DeserializeOwned>(&self, path: &str) -> T {
        expect(self.app(Method::GET, path, None).await, StatusCode::OK)
    }

    /// `GET path` with the admin key, which must answer 200: its body, decoded.
    pub async fn admin_get<T: DeserializeOwned>(&self, path: &str) -> T {
        expect(self.admin(Method::GET, path, None).await, StatusCode::OK)
    }

    /// The simulator's record of an OAuth consumer (its real secret, among others).
    pub async fn sim_consumer(&self, key: &str) -> Value {
        let url = format!("{}/_sim/consumers/{key}", self.sim.url());
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn sim_post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.sim.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    pub async fn sim_fault(&self, group: &str, spec: Value) {
        let url = format!("{}/_sim/faults/{group}", self.sim.url());
        let response = self.http.put(url).json(&spec).send().await.unwrap();
        assert!(response.status().is_success());
    }

    pub async fn sim_clear_faults(&self) {
        self.http
            .delete(format!("{}/_sim/faults", self.sim.url()))
            .send()
            .await
            .unwrap();
    }

    pub async fn sim_stats(&self) -> Value {
        self.http
            .get(format!("{}/_sim/stats", self.sim.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Refresh grants the simulator answered successfully.
    pub async fn refreshes_seen(&self) -> u64 {
        let stats = self.sim_stats().await;
        stats["counts"]["token"]["refresh_token"]["ok"]
            .as_u64()
            .unwrap_or(0)
            + stats["counts"]["dc_token"]["refresh_token"]["ok"]
                .as_u64()
                .unwrap_or(0)
    }

    /// An OAuth consumer in the simulator, made the way Bitbucket's form makes it.
    pub async fn consumer(&self, permissions: &[&str], private: bool) -> (String, String) {
        let body = json!({"workspace": "acme", "name": "Grantry test", "callback_url": format!("{}/oauth/callback", self.base),
                          "private": private, "permissions": permissions});
        let consumer = self.sim_post("/_sim/consumers", body).await;
        (
            consumer["key"].as_str().unwrap().to_owned(),
            consumer["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// A consumer and a Cloud profile requiring `scopes`; answers the profile id.
    pub async fn cloud_profile(&self, name: &str, permissions: &[&str], scopes: &[&str]) -> String {
        let (key, secret) = self.consumer(permissions, false).await;
        let body = json!({"name": name, "provider": "bitbucket-cloud", "key": key, "secret": secret,
                          "required_scopes": scopes, "allowed_return_urls": ["https://app.example.com/done"]});
        let answer = self.admin(Method::POST, "/v1/profiles", Some(body)).await;
        expect::<Profile>(answer, StatusCode::CREATED).id
    }

    /// A Cloud profile made through the API at `base` (when the public URL is not reachable);
    /// answers its id.
    pub async fn cloud_profile_at(&self, base: &str, name: &str) -> String {
        let (key, secret) = self.consumer(&["account.read"], false).await;
        let body =
            json!({"name": name, "provider": "bitbucket-cloud", "key": key, "secret": secret});
        let response = self
            .http
            .post(format!("{base}/v1/profiles"))
            .bearer_auth(&self.admin_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let profile: Value = response.json().await.unwrap();
        decode::<Profile>(&profile).id
    }

    /// A Data Center link and profile; answers the profile id.
    pub async fn dc_profile(&self, name: &str, link_scopes: &[&str], scopes: &[&str]) -> String {
        let link = json!({"name": "Grantry", "redirect_url": format!("{}/oauth/callback", self.base), "scopes": link_scopes});
        let link = self.sim_post("/_sim/dc/links", link).await;
        let body = json!({"name": name, "provider": "bitbucket-datacenter", "key": link["client_id"],
                          "secret": link["client_secret"], "base_url": format!("{}/dc", self.sim.url()),
                          "required_scopes": scopes, "allowed_return_urls": ["https://app.example.com/done"]});
        let answer = self.admin(Method::POST, "/v1/profiles", Some(body)).await;
        expect::<Profile>(answer, StatusCode::CREATED).id
    }

    /// A connect session's link.
    pub async fn session(&self, body: Value) -> String {
        self.connect_session(body).await.url
    }

    /// A connect session.
    pub async fn connect_session(&self, body: Value) -> Session {
        let answer = self
            .app(Method::POST, "/v1/connect-sessions", Some(body))
            .await;
        expect(answer, StatusCode::CREATED)
    }

    /// Follows redirects from `url` like a browser, stopping at the first address off this
    /// machine (an application's return URL) without fetching it. Answers the last URL and, when
    /// it was fetched, its response.
    pub async fn browse(&self, url: &str) -> (Url, Option<reqwest::Response>) {
        browse_in(&self.http, url).await
    }

    /// The application's backend confirms the connection its user's browser came back with.
    pub async fn confirm(&self, landed: &Url, end_user: Option<&str>) -> (StatusCode, Value) {
        let session = query(landed, "connect_session_id")
            .unwrap_or_else(|| panic!("no connect session in {landed}"));
        let code = query(landed, "verification_code").unwrap_or_default();
        let body = json!({"end_user_id": end_user, "verification_code": code});
        let path = format!("/v1/connect-sessions/{session}/confirm");
        self.app(Method::POST, &path, Some(body)).await
    }

    /// Follows redirects until the simulator sends the browser back to Grantry's callback;
    /// answers that callback URL without visiting it.
    pub async fn until_callback(&self, url: &str) -> Url {
        until_callback_in(&self.http, url).await
    }

    /// Connects an account (auto-approved by the simulator) and answers the connection id.
    pub async fn connect(&self, profile: &str, end_user: &str) -> String {
        let link = self
            .session(json!({"profile": profile, "end_user_id": end_user}))
            .await;
        let (landed, _) = self.browse(&link).await;
        query(&landed, "connection_id").unwrap_or_else(|| panic!("no connection in {landed}"))
    }

    /// Turns the simulator's auto-approval off (consent is then given or refused by form).
    pub async fn manual_consent(&self) {
        let url = format!("{}/_sim/settings", self.sim.url());
        let body = json!({"auto_approve": null, "dc_auto_approve": null});
        assert!(
            self.http
                .patch(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
    }

    pub async fn token(&self, connection: &str) -> (StatusCode, Value) {
        self.app(
            Method::GET,
            &format!("/v1/connections/{connection}/token"),
            None,
        )
        .await
    }

    /// A token read that must succeed.
    pub async fn read_token(&self, connection: &str) -> Token {
        expect(self.token(connection).await, StatusCode::OK)
    }

    /// A token read that must be refused: its status and problem.
    pub async fn token_refused(&self, connection: &str) -> (StatusCode, Problem) {
        refused(self.token(connection).await)
    }

    pub async fn connection(&self, connection: &str) -> Connection {
        let answer = self
            .app(Method::GET, &format!("/v1/connections/{connection}"), None)
            .await;
        expect(answer, StatusCode::OK)
    }

    /// A profile, by id or name.
    pub async fn profile(&self, profile: &str) -> Profile {
        self.admin_get(&format!("/v1/profiles/{profile}")).await
    }

    /// A page of the audit trail; `query` is what follows `?`.
    pub async fn events(&self, query: &str) -> Page<Event> {
        self.admin_get(&format!("/v1/events?{query}")).await
    }
}

/// The body of an answer that must have the status `want` (the body is shown when it has not),
/// decoded into `T`.
pub fn expect<T: DeserializeOwned>((status, body): (StatusCode, Value), want: StatusCode) -> T {
    assert_eq!(status, want, "{body}");
    decode(&body)
}

/// An answer that must be a refusal: its status and problem.
pub fn refused((status, body): (StatusCode, Value)) -> (StatusCode, Problem) {
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status}: {body}"
    );
    (status, decode(&body))
}

/// A client that acts as a browser: keeps its own cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// What the nodes of one test share.
pub struct Shared {
    pub sim: Arc<RunningSim>,
    /// The data directory, with the master key file.
    pub dir: Arc<tempfile::TempDir>,
    pub postgres: Option<Arc<TestDatabase>>,
    pub clock: Arc<ManualClock>,
    /// The admin and app API keys.
    pub keys: (String, String),
}

pub fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// [`TestApp::browse`] in a browser of the caller's.
pub async fn browse_in(browser: &reqwest::Client, url: &str) -> (Url, Option<reqwest::Response>) {
    let mut url = Url::parse(url).unwrap();
    for _ in 0..10 {
        if !matches!(url.host_str(), Some("127.0.0.1" | "localhost")) {
            return (url, None);
        }
        let response = browser.get(url.clone()).send().await.unwrap();
        match response.headers().get("location") {
            Some(next) if response.status().is_redirection() => {
                url = url.join(next.to_str().unwrap()).unwrap()
            }
            _ => return (url, Some(response)),
        }
    }
    panic!("too many redirects");
}

/// [`TestApp::until_callback`] in a browser of the caller's.
pub async fn until_callback_in(browser: &reqwest::Client, url: &str) -> Url {
    let mut url = Url::parse(url).unwrap();
    for _ in 0..10 {
        if url.path() == "/oauth/callback" {
            return url;
        }
        let response = browser.get(url.clone()).send().await.unwrap();
        let next = response
            .headers()
            .get("location")
            .unwrap_or_else(|| panic!("{url} did not redirect"));
        url = url.join(next.to_str().unwrap()).unwrap();
    }
    panic!("never reached the callback");
}

/// git with a global configuration file of its own, as a backup job's machine would have.
pub async fn git(
    dir: &std::path::Path,
    global: &std::path::Path,
    key: &str,
    args: &[&str],
) -> (bool, String) {
    let mut command = backup_git(dir, global);
    command.args(args).env("GRANTRY_API_KEY", key);
    run_git(command).await
}

/// `git` in `dir` as a backup job runs it: the global configuration `global`, none of the
/// system's, no prompts, a fixed author.
pub fn backup_git(dir: &std::path::Path, global: &std::path::Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", global)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Backup")
        .env("GIT_AUTHOR_EMAIL", "backup@example.com")
        .env("GIT_COMMITTER_NAME", "Backup")
        .env("GIT_COMMITTER_EMAIL", "backup@example.com");
    command
}

/// Runs a git command; answers whether it succeeded and what it said on stderr.
pub async fn run_git(mut command: tokio::process::Command) -> (bool, String) {
    let output = command.output().await.expect("git runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
