//! The harness for the simulator's tests: a simulator on a free port with a small seeded world,
//! and an ordinary HTTP client that does not follow redirects.

use bitbucket_sim::{Mode, RunningSim, Seed, SimBuilder};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const WORLD: &str = r#"
[[users]]
username = "alice"
display_name = "Alice Liddell"
email = "alice@example.com"
password = "alice-pw"

[[users]]
username = "bob"
password = "bob-pw"

[[workspaces]]
slug = "acme"
members = ["alice"]

[[repositories]]
workspace = "acme"
slug = "widget"

[[repositories]]
workspace = "acme"
slug = "website"
private = false

[[dc.users]]
username = "carol"
password = "carol-pw"

[[dc.users]]
username = "dave"
password = "dave-pw"

[[dc.projects]]
key = "PRJ"

[[dc.projects]]
key = "SECRET"

[[dc.repositories]]
project = "PRJ"
slug = "api"

[[dc.repositories]]
project = "SECRET"
slug = "vault"

[[dc.permissions]]
user = "carol"
project = "PRJ"
permission = "PROJECT_WRITE"
"#;

pub const CALLBACK: &str = "https://app.example.com/oauth/callback";

pub struct TestSim {
    /// Keeps the simulator serving for as long as the test holds this.
    _running: RunningSim,
    pub http: reqwest::Client,
    pub url: String,
}

/// A consumer's or link's credentials.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

impl TestSim {
    pub async fn start(mode: Mode) -> TestSim {
        let seed = Seed::parse("test world", WORLD).expect("the test world parses");
        let running = SimBuilder::new()
            .mode(mode)
            .seed(seed)
            .start()
            .await
            .expect("simulator starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = running.url().to_owned();
        TestSim {
            _running: running,
            http,
            url,
        }
    }

    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.control(reqwest::Method::POST, path, body).await;
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    /// A consumer in `acme` with the given boxes ticked.
    pub async fn consumer(&self, permissions: &[&str], private: bool) -> Client {
        let body = json!({
            "workspace": "acme", "name": "Test app", "description": "for tests",
            "callback_url": CALLBACK, "private": private, "permissions": permissions,
        });
        let consumer = self.post("/_sim/consumers", body).await;
        Client {
            id: consumer["key"].as_str().unwrap().to_owned(),
            secret: consumer["secret"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn advance(&self, seconds: i64) {
        self.post("/_sim/clock/advance", json!({ "seconds": seconds }))
            .await;
    }

    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/_sim/stats", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Posts the consent form as `user` (signing in) with `decision`; answers the redirect target.
    pub async fn consent(
        &self,
        path: &str,
        query: &[(&str, &str)],
        user: &str,
        decision: &str,
    ) -> reqwest::Response {
        let password = format!("{user}-pw");
        let mut form: Vec<(&str, &str)> = query.to_vec();
        form.extend([
            ("username", user),
            ("password", &password),
            ("decision", decision),
        ]);
        self.http
            .post(format!("{}{path}", self.url))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Runs Cloud's authorize step as alice and returns the code.
    pub async fn cloud_code(&self, client: &Client, extra: &[(&str, &str)]) -> String {
        let mut query = vec![("client_id", client.id.as_str()), ("response_type", "code")];
        query.extend_from_slice(extra);
        let response = self
            .consent("/site/oauth2/authorize", &query, "alice", "grant")
            .await;
        assert_eq!(response.status(), StatusCode::FOUND);
        query_param(&location(&response), "code").expect("a code in the redirect")
    }

    /// POSTs a form to Cloud's token endpoint with Basic client authentication.
    pub async fn cloud_token(
        &self,
        client: &Client,
        form: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let response = self
            .http
            .post(format!("{}/site/oauth2/access_token", self.url))
            .basic_auth(&client.id, Some(&client.secret))
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// A full Cloud authorization as alice; answers the token response.
    pub async fn cloud_connect(&self, client: &Client) -> Value {
        let code = self.cloud_code(client, &[]).await;
        let (status, body) = self
            .cloud_token(
                client,
                &[("grant_type", "authorization_code"), ("code", &code)],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub async fn cloud_get(
        &self,
        path: &str,
        token: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let response = self
            .http
            .get(format!("{}/2.0{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Keys of a JSON object, in order.
pub fn keys(value: &Value) -> Vec<String> {
    value.as_object().unwrap().keys().cloned().collect()
}
