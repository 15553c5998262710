//! A Grantry server in front of the simulator, in this process, on its own runtime threads, with
//! a clock the benchmark can move forward together with the simulator's.

use std::sync::Arc;

use anyhow::Context;
use bitbucket_sim::{Mode, RunningSim, Seed, SimBuilder};
use grantry::config::Config;
use grantry::runtime::{self, Schema};
use grantry_core::clock::{Clock, ManualClock, SystemClock};
use grantry_core::store::Role;
use grantry_core::{Actor, Grantry};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

pub struct Bench {
    pub sim: RunningSim,
    pub grantry: Arc<Grantry>,
    pub clock: Option<Arc<ManualClock>>,
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
    _server: std::thread::JoinHandle<()>,
    _data: tempfile::TempDir,
}

/// How the server under test is set up.
pub struct Setup {
    pub manual_clock: bool,
    pub refresher: bool,
    pub users: usize,
}

impl Bench {
    pub async fn start(setup: Setup) -> anyhow::Result<Bench> {
        let mut world =
            String::from("[settings]\nauto_approve = \"alice\"\n[[users]]\nusername = \"alice\"\n");
        world.push_str("[[workspaces]]\nslug = \"acme\"\nmembers = [\"alice\"]\n");
        for n in 0..setup.users {
            world.push_str(&format!(
                "[[users]]\nusername = \"user{n}\"\npassword = \"pw\"\n"
            ));
        }
        let sim = SimBuilder::new()
            .mode(Mode::Rotating)
            .seed(Seed::parse("bench", &world)?)
            .start()
            .await?;
        let data = tempfile::tempdir()?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let mut config =
            Config::against_simulator(address, data.path().to_owned(), &sim.url().parse()?)?;
        config.refresh.enabled = setup.refresher;
        config.refresh.interval = std::time::Duration::from_millis(200);
        config.log.level = "warn".into();
        let manual = setup.manual_clock.then(|| Arc::new(ManualClock::default()));
        let clock: Arc<dyn Clock> = match &manual {
            Some(clock) => clock.clone(),
            None => Arc::new(SystemClock),
        };
        let runtime = runtime::open_with_clock(&config, Schema::Migrate, clock).await?;
        let grantry = runtime.grantry.clone();
        let key = grantry
            .create_api_key("bench", Role::Admin, &Actor::Cli)
            .await?
            .secret
            .expose_secret()
            .to_owned();
        let server = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                listener.set_nonblocking(true).expect("nonblocking");
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ =
                    grantry::serve::run(runtime, listener, &config, std::future::pending()).await;
            });
        });
        Ok(Bench {
            base: format!("http://{address}"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(2048)
                .cookie_store(true)
                .build()?,
            sim,
            grantry,
            clock: manual,
            key,
            _server: server,
            _data: data,
        })
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{path}: {status} {value}");
        Ok(value)
    }

    pub async fn sim(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        Ok(self
            .http
            .post(format!("{}{path}", self.sim.url()))
            .json(&body)
            .send()
            .await?
            .json()
            .await?)
    }

    pub async fn stats(&self) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}/_sim/stats", self.sim.url()))
            .send()
            .await?
            .json()
            .await?)
    }

    /// A consumer and a Cloud profile for it; answers the profile id.
    pub async fn profile(&self) -> anyhow::Result<String> {
        let consumer = self
            .sim(
                "/_sim/consumers",
                json!({"workspace": "acme", "name": "bench", "callback_url": format!("{}/oauth/callback", self.base),
                       "permissions": ["account.read", "repositories.read"]}),
            )
            .await?;
        let profile = self
            .api(
                reqwest::Method::POST,
                "/v1/profiles",
                Some(json!({"name": "bench", "provider": "bitbucket-cloud", "key": consumer["key"], "secret": consumer["secret"]})),
            )
            .await?;
        Ok(profile["id"].as_str().context("profile id")?.to_owned())
    }

    /// Connects an account through the real flow, signing in on the consent form as `user`
    /// (or auto-approved as alice when `user` is `None`). Answers the connection id.
    pub async fn connect(&self, profile: &str, user: Option<&str>) -> anyhow::Result<String> {
        // A browser of its own: the simulator's sign-in and Grantry's flow cookie belong to one
        // user's browser; flows sharing a cookie jar would all sign in as whoever came first.
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()?;
        let session = self
            .api(
                reqwest::Method::POST,
                "/v1/connect-sessions",
                Some(json!({"profile": profile})),
            )
            .await?;
        let mut next = self.location(
            browser
                .get(session["url"].as_str().context("url")?)
                .send()
                .await?,
        )?;
        if let Some(user) = user {
            let query: Vec<(String, String)> =
                url::Url::parse(&next)?.query_pairs().into_owned().collect();
            let mut form: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            form.extend([
                ("username", user),
                ("password", "pw"),
                ("decision", "grant"),
            ]);
            let url = format!("{}/site/oauth2/authorize", self.sim.url());
            next = self.location(browser.post(url).form(&form).send().await?)?;
        } else {
            next = self.location(browser.get(&next).send().await?)?;
        }
        let landed = self.location(browser.get(&next).send().await?)?;
        let landed = url::Url::parse(&landed)?;
        let id = landed
            .query_pairs()
            .find(|(k, _)| k == "connection_id")
            .context("connected")?
            .1
            .into_owned();
        Ok(id)
    }

    fn location(&self, response: reqwest::Response) -> anyhow::Result<String> {
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .with_context(|| format!("no redirect ({status})"))?;
        Ok(location.to_str()?.to_owned())
    }

    /// Moves Grantry's and the simulator's clocks forward together.
    pub async fn advance(&self, seconds: i64) -> anyhow::Result<()> {
        self.clock
            .as_ref()
            .context("this benchmark has a real clock")?
            .advance(seconds);
        self.sim("/_sim/clock/advance", json!({"seconds": seconds}))
            .await?;
        Ok(())
    }
}
