//! The HTTP provider against the simulator: every grant, both token formats, Data Center with
//! PKCE, identity lookups, and how each kind of failure comes back.

use std::time::Duration;

use bitbucket_sim::{Mode, RunningSim, Seed, SimBuilder};
use grantry_core::catalog::{CloudHosts, Endpoints, FailureClass, ProviderKind};
use grantry_core::provider::classify;
use grantry_core::provider::{Presented, ProviderClient, ProviderFailure, ProviderTarget};
use grantry_provider::{HttpProvider, Outbound};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

const CALLBACK: &str = "http://127.0.0.1:9/oauth/callback";
const WORLD: &str = r#"
[settings]
auto_approve = "alice"
dc_auto_approve = "carol"
[[users]]
username = "alice"
display_name = "Alice"
[[workspaces]]
slug = "acme"
members = ["alice"]
[[dc.users]]
username = "carol"
display_name = "Carol"
[[dc.projects]]
key = "PRJ"
"#;

struct Setup {
    sim: RunningSim,
    http: reqwest::Client,
    endpoints: Endpoints,
    provider: HttpProvider,
}

async fn setup(mode: Mode) -> Setup {
    let sim = SimBuilder::new()
        .mode(mode)
        .seed(Seed::parse("world", WORLD).unwrap())
        .start()
        .await
        .unwrap();
    let base = Url::parse(sim.url()).unwrap();
    let hosts = CloudHosts {
        web: base.clone(),
        api: base,
    };
    let outbound = Outbound {
        timeout: Duration::from_secs(2),
        ..Outbound::default()
    };
    Setup {
        endpoints: Endpoints::of(ProviderKind::BitbucketCloud, &hosts, None).unwrap(),
        provider: HttpProvider::new(&outbound).unwrap(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        sim,
    }
}

impl Setup {
    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.sim.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}");
        response.json().await.unwrap()
    }

    async fn consumer(&self, private: bool) -> (String, SecretString) {
        let body = json!({"workspace": "acme", "name": "App", "callback_url": CALLBACK, "private": private,
                          "permissions": ["account.read", "repositories.read"]});
        let consumer = self.post("/_sim/consumers", body).await;
        (
            consumer["key"].as_str().unwrap().into(),
            SecretString::from(consumer["secret"].as_str().unwrap().to_owned()),
        )
    }

    async fn code(&self, authorize: &Url, extra: &[(&str, &str)]) -> String {
        let mut url = authorize.clone();
        url.query_pairs_mut().extend_pairs(extra);
        let response = self.http.get(url).send().await.unwrap();
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        Url::parse(&location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned()
    }

    async fn fault(&self, group: &str, spec: Value) {
        let response = self
            .http
            .put(format!("{}/_sim/faults/{group}", self.sim.url()))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
}

fn target<'a>(
    kind: ProviderKind,
    endpoints: &'a Endpoints,
    id: &'a str,
    secret: &'a SecretString,
    scopes: &'a [String],
) -> ProviderTarget<'a> {
    ProviderTarget {
        spec: kind.spec(),
        endpoints,
        client_id: id,
        client_secret: secret,
        redirect_uri: CALLBACK,
        scopes,
    }
}

#[tokio::test]
async fn cloud_code_refresh_and_identity_in_2026_mode() {
    let s = setup(Mode::Rotating).await;
    let (key, secret) = s.consumer(false).await;
    let t = target(
        ProviderKind::BitbucketCloud,
        &s.endpoints,
        &key,
        &secret,
        &[],
    );
    let code = s
        .code(
            &s.endpoints.authorize,
            &[
                ("client_id", &key),
                ("response_type", "code"),
                ("redirect_uri", CALLBACK),
            ],
        )
        .await;

    let first = s.provider.exchange_code(&t, &code, None).await.unwrap();
    assert_eq!(first.expires_in, Some(7200));
    assert_eq!(
        first.scopes.as_deref().unwrap(),
        ["account", "email", "repository"]
    );
    assert!(first.access_token.expose_secret().len() > 2500);
    let refresh = first.refresh_token.unwrap();

    let second = s.provider.refresh(&t, &refresh).await.unwrap();
    let rotated = second.refresh_token.unwrap();
    assert_ne!(
        rotated.expose_secret(),
        refresh.expose_secret(),
        "2026 mode rotates"
    );

    let who = s
        .provider
        .identity(&t, Presented::Bearer(&second.access_token))
        .await
        .unwrap();
    assert_eq!(
        (who.username.as_str(), who.display_name.as_str()),
        ("alice", "Alice")
    );
    assert!(who.account_id.starts_with('{'));
    assert_eq!(who.scopes.unwrap(), ["account", "email", "repository"]);
}

#[tokio::test]
async fn legacy_scopes_and_client_credentials() {
    let s = setup(Mode::Legacy).await;
    let (key, secret) = s.consumer(true).await;
    let t = target(
        ProviderKind::BitbucketCloud,
        &s.endpoints,
        &key,
        &secret,
        &[],
    );
    let grant = s.provider.client_credentials(&t).await.unwrap();
    assert_eq!(
        grant.scopes.as_deref().unwrap(),
        ["account", "email", "repository"],
        "read from `scopes`"
    );
    assert!(
        grant.refresh_token.is_some(),
        "legacy client credentials come with a refresh token"
    );
}

#[tokio::test]
async fn failures_come_back_classifiable() {
    let s = setup(Mode::Rotating).await;
    let (key, secret) = s.consumer(false).await;
    let cloud = ProviderKind::BitbucketCloud.spec();
    let t = target(
        ProviderKind::BitbucketCloud,
        &s.endpoints,
        &key,
        &secret,
        &[],
    );
    let dead = SecretString::from("not-a-refresh-token".to_owned());

    let refused = s.provider.refresh(&t, &dead).await.unwrap_err();
    assert_eq!(
        refused,
        ProviderFailure::OAuth {
            status: 400,
            error: "invalid_request".into(),
            description: Some("Invalid refresh_token".into())
        }
    );
    assert_eq!(classify(cloud, &refused), FailureClass::Reauth);

    let wrong = SecretString::from("wrong".to_owned());
    let bad_client = target(
        ProviderKind::BitbucketCloud,
        &s.endpoints,
        &key,
        &wrong,
        &[],
    );
    let refused = s.provider.refresh(&bad_client, &dead).await.unwrap_err();
    assert_eq!(
        classify(cloud, &refused),
        FailureClass::ProfileMisconfigured,
        "{refused}"
    );

    s.fault("token", json!({"rate_limit_rate": 1.0, "retry_after": 42}))
        .await;
    let limited = s.provider.refresh(&t, &dead).await.unwrap_err();
    assert_eq!(
        limited,
        ProviderFailure::Http {
            status: 429,
            retry_after: Some(42)
        }
    );

    s.fault("token", json!({"outage": true})).await;
    assert_eq!(
        classify(cloud, &s.provider.refresh(&t, &dead).await.unwrap_err()),
        FailureClass::Transient
    );

    s.fault("token", json!({"drop_rate": 1.0})).await;
    let dropped = s.provider.refresh(&t, &dead).await.unwrap_err();
    assert!(
        matches!(dropped, ProviderFailure::Network { timeout: false, .. }),
        "{dropped:?}"
    );

    s.fault("token", json!({"latency_ms": 3000})).await;
    let slow = s.provider.refresh(&t, &dead).await.unwrap_err();
    assert!(
        matches!(slow, ProviderFailure::Network { timeout: true, .. }),
        "{slow:?}"
    );
}

#[tokio::test]
async fn data_center_with_pkce_and_the_header_identity() {
    let s = setup(Mode::Rotating).await;
    let link = s
        .post(
            "/_sim/dc/links",
            json!({"name": "Grantry", "redirect_url": CALLBACK, "scopes": ["REPO_WRITE"]}),
        )
        .await;
    let (id, secret) = (
        link["client_id"].as_str().unwrap(),
        SecretString::from(link["client_secret"].as_str().unwrap().to_owned()),
    );
    let base = Url::parse(&format!("{}/dc", s.sim.url())).unwrap();
    let endpoints = Endpoints::of(
        ProviderKind::BitbucketDatacenter,
        &CloudHosts::default(),
        Some(&base),
    )
    .unwrap();
    let scopes = vec!["REPO_READ".to_owned()];
    let t = target(
        ProviderKind::BitbucketDatacenter,
        &endpoints,
        id,
        &secret,
        &scopes,
    );
    let verifier = "verifier-verifier-verifier-verifier-verifier-0";
    let challenge = grantry_crypto::pkce_challenge(verifier);
    let query = [
        ("client_id", id),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "REPO_READ"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    let code = s.code(&endpoints.authorize, &query).await;

    let grant = s
        .provider
        .exchange_code(&t, &code, Some(verifier))
        .await
        .unwrap();
    assert_eq!(grant.scopes.as_deref().unwrap(), ["REPO_READ"]);
    let refreshed = s
        .provider
        .refresh(&t, grant.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
    assert!(
        refreshed.refresh_token.is_some(),
        "redirect_uri went along on the refresh grant"
    );

    let who = s
        .provider
        .identity(&t, Presented::Bearer(&refreshed.access_token))
        .await
        .unwrap();
    assert_eq!(who.username, "carol");
    assert_eq!(who.display_name, "Carol");
    let probe = s
        .provider
        .probe(&t, Presented::Bearer(&refreshed.access_token))
        .await
        .unwrap();
    assert_eq!(probe.status, 200);
    assert!(probe.body.contains("\"slug\":\"carol\""), "{}", probe.body);
}
