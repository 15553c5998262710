//! Data Center OAuth and REST over real HTTP: PKCE right and wrong, scope validation against the
//! link, redirect_uri on both grants, code lifetime, rotation, X-AUSERNAME and permission caps.

use crate::common::{CALLBACK, Client, TestSim, location, query_param};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bitbucket_sim::Mode;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const AUTHORIZE: &str = "/dc/rest/oauth2/latest/authorize";
const VERIFIER: &str = "a-verifier-that-is-long-enough-to-be-valid-0123456789";

async fn link(sim: &TestSim, scopes: &[&str]) -> Client {
    let body = json!({"name": "Grantry", "redirect_url": CALLBACK, "scopes": scopes});
    let link = sim.post("/_sim/dc/links", body).await;
    Client {
        id: link["client_id"].as_str().unwrap().into(),
        secret: link["client_secret"].as_str().unwrap().into(),
    }
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Authorizes as `user` and returns the code.
async fn code(sim: &TestSim, client: &Client, user: &str, extra: &[(&str, &str)]) -> String {
    let mut query = vec![
        ("client_id", client.id.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
    ];
    query.extend_from_slice(extra);
    let response = sim.consent(AUTHORIZE, &query, user, "grant").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    query_param(&location(&response), "code").expect("a code")
}

async fn token(sim: &TestSim, client: &Client, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = form.to_vec();
    form.extend([
        ("client_id", client.id.as_str()),
        ("client_secret", client.secret.as_str()),
    ]);
    let response = sim
        .http
        .post(format!("{}/dc/rest/oauth2/latest/token", sim.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn exchange(
    sim: &TestSim,
    client: &Client,
    code: &str,
    verifier: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    token(sim, client, &form).await
}

#[tokio::test]
async fn pkce_s256_and_plain_are_checked() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = link(&sim, &["REPO_READ"]).await;
    let s256 = challenge(VERIFIER);
    let pkce = [
        ("code_challenge", s256.as_str()),
        ("code_challenge_method", "S256"),
    ];

    let right = code(&sim, &client, "carol", &pkce).await;
    let (status, body) = exchange(&sim, &client, &right, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "REPO_READ");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["token_type"], "bearer");
    assert!(body["refresh_token"].is_string());

    let wrong = code(&sim, &client, "carol", &pkce).await;
    let (status, body) = exchange(
        &sim,
        &client,
        &wrong,
        Some("another-verifier-that-is-also-long-enough-0000"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    let missing = code(&sim, &client, "carol", &pkce).await;
    let (status, body) = exchange(&sim, &client, &missing, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    let plain = [
        ("code_challenge", VERIFIER),
        ("code_challenge_method", "plain"),
    ];
    let plain_code = code(&sim, &client, "carol", &plain).await;
    assert_eq!(
        exchange(&sim, &client, &plain_code, Some(VERIFIER)).await.0,
        StatusCode::OK
    );

    let bad_method = format!(
        "{}{AUTHORIZE}?client_id={}&redirect_uri={CALLBACK}&response_type=code&code_challenge={s256}&code_challenge_method=S512",
        sim.url, client.id
    );
    let response = sim.http.get(bad_method).send().await.unwrap();
    assert_eq!(
        query_param(&location(&response), "error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn scopes_beyond_the_link_are_refused_with_bitbuckets_wording() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = link(&sim, &["REPO_WRITE"]).await;
    let url = |scope: &str| {
        format!(
            "{}{AUTHORIZE}?client_id={}&redirect_uri={CALLBACK}&response_type=code&state=s&scope={scope}",
            sim.url, client.id
        )
    };
    let response = sim.http.get(url("REPO_ADMIN")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let target = location(&response);
    assert_eq!(
        query_param(&target, "error").as_deref(),
        Some("invalid_scope")
    );
    assert_eq!(
        query_param(&target, "error_description").as_deref(),
        Some(
            "The scope used in the request [REPO_ADMIN] is not valid for client scope [REPO_WRITE]"
        )
    );
    assert_eq!(query_param(&target, "state").as_deref(), Some("s"));

    let narrower = code(&sim, &client, "carol", &[("scope", "REPO_READ")]).await;
    let (_, body) = exchange(&sim, &client, &narrower, None).await;
    assert_eq!(body["scope"], "REPO_READ", "a narrower request is honoured");
}

#[tokio::test]
async fn redirect_uri_must_match_on_authorize_code_and_refresh() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = link(&sim, &["REPO_READ"]).await;
    let wrong = format!(
        "{}{AUTHORIZE}?client_id={}&redirect_uri=https://app.example.com/oauth/callback/x&response_type=code",
        sim.url, client.id
    );
    let response = sim.http.get(wrong).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "exact match, not a prefix"
    );
    assert!(response.headers().get("location").is_none());

    let code = code(&sim, &client, "carol", &[]).await;
    let (status, _) = token(
        &sim,
        &client,
        &[("grant_type", "authorization_code"), ("code", &code)],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "redirect_uri is required on the exchange"
    );

    let code = self::code(&sim, &client, "carol", &[]).await;
    let (_, tokens) = exchange(&sim, &client, &code, None).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, _) = token(
        &sim,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "and on the refresh grant");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("redirect_uri", CALLBACK),
    ];
    let (status, rotated) = token(&sim, &client, &form).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(
        rotated["refresh_token"], tokens["refresh_token"],
        "refresh tokens rotate"
    );
}

#[tokio::test]
async fn codes_live_ten_seconds() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = link(&sim, &["REPO_READ"]).await;
    let code = code(&sim, &client, "carol", &[]).await;
    sim.advance(11).await;
    let (status, body) = exchange(&sim, &client, &code, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn bad_client_credentials_are_refused() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = link(&sim, &["REPO_READ"]).await;
    let wrong = Client {
        id: client.id.clone(),
        secret: "wrong".into(),
    };
    let (status, body) = token(
        &sim,
        &wrong,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

async fn dc_get(sim: &TestSim, path: &str, token: &str) -> (StatusCode, Option<String>, Value) {
    let response = sim
        .http
        .get(format!("{}/dc/rest/api/latest{path}", sim.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let user = response
        .headers()
        .get("x-ausername")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), user, response.json().await.unwrap())
}

#[tokio::test]
async fn rest_names_the_user_and_caps_by_scope_and_permission() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = link(&sim, &["REPO_WRITE"]).await;
    let code = code(&sim, &client, "carol", &[]).await;
    let (_, tokens) = exchange(&sim, &client, &code, None).await;
    let token = tokens["access_token"].as_str().unwrap();

    let (status, user, _) = dc_get(&sim, "/application-properties", token).await;
    assert_eq!(
        (status, user.as_deref()),
        (StatusCode::NOT_FOUND, Some("carol"))
    );
    let (_, _, me) = dc_get(&sim, "/users/carol", token).await;
    assert_eq!(me["slug"], "carol");

    let (_, _, projects) = dc_get(&sim, "/projects", token).await;
    let keys: Vec<_> = projects["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].clone())
        .collect();
    assert_eq!(keys, [json!("PRJ")], "carol has no permission on SECRET");
    let (status, _, repos) = dc_get(&sim, "/projects/PRJ/repos", token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(repos["values"][0]["slug"], "api");
    assert_eq!(repos["isLastPage"], true);
    let (status, _, _) = dc_get(&sim, "/projects/SECRET/repos", token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let code = self::code(&sim, &client, "dave", &[]).await;
    let (_, tokens) = exchange(&sim, &client, &code, None).await;
    let (_, user, projects) =
        dc_get(&sim, "/projects", tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(user.as_deref(), Some("dave"));
    assert_eq!(
        projects["size"], 0,
        "a token never exceeds what its user may do"
    );

    let public_only = link(&sim, &["PUBLIC_REPOS"]).await;
    let code = self::code(&sim, &public_only, "carol", &[]).await;
    let (_, tokens) = exchange(&sim, &public_only, &code, None).await;
    let (_, _, projects) =
        dc_get(&sim, "/projects", tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        projects["size"], 0,
        "PUBLIC_REPOS cannot see private repositories"
    );

    let (status, user, _) = dc_get(&sim, "/projects", "not-a-token").await;
    assert_eq!((status, user), (StatusCode::UNAUTHORIZED, None));
}

#[tokio::test]
async fn rest_roots_and_versions_page_with_next_page_start() {
    let sim = TestSim::start(Mode::Rotating).await;
    for slug in ["app", "docs", "tools"] {
        sim.post(
            "/_sim/dc/repositories",
            json!({"project": "PRJ", "slug": slug}),
        )
        .await;
    }
    let client = link(&sim, &["REPO_WRITE"]).await;
    let code = code(&sim, &client, "carol", &[]).await;
    let (_, tokens) = exchange(&sim, &client, &code, None).await;
    let token = tokens["access_token"].as_str().unwrap();
    let get = |path: String| {
        let request = sim
            .http
            .get(format!("{}/dc/rest{path}", sim.url))
            .bearer_auth(token);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };

    let mut slugs = Vec::new();
    let mut start = 0;
    loop {
        let (status, page) =
            get(format!("/api/1.0/projects/PRJ/repos?limit=3&start={start}")).await;
        assert_eq!(status, StatusCode::OK);
        slugs.extend(
            page["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["slug"].clone()),
        );
        if page["isLastPage"] == true {
            assert!(page.get("nextPageStart").is_none());
            break;
        }
        start = page["nextPageStart"].as_u64().unwrap();
    }
    assert_eq!(
        slugs,
        [json!("api"), json!("app"), json!("docs"), json!("tools")]
    );
    let (status, repo) = get("/api/latest/projects/PRJ/repos/docs".into()).await;
    assert_eq!(
        (status, repo["slug"].as_str()),
        (StatusCode::OK, Some("docs"))
    );
    let (status, _) = get("/api/2.0/projects".into()).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "only `latest` and `1.0` exist"
    );

    let commit = "a".repeat(40);
    let status = json!({"state": "SUCCESSFUL", "key": "ci", "url": "https://ci.example.com/1"});
    let posted = sim
        .http
        .post(format!(
            "{}/dc/rest/build-status/1.0/commits/{commit}",
            sim.url
        ))
        .bearer_auth(token)
        .json(&status)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::NO_CONTENT);
    let (_, statuses) = get(format!("/build-status/1.0/commits/{commit}")).await;
    assert_eq!(statuses["values"][0]["state"], "SUCCESSFUL");
    let refused = sim
        .http
        .post(format!(
            "{}/dc/rest/build-status/1.0/commits/{commit}",
            sim.url
        ))
        .bearer_auth(token)
        .json(&json!({"state": "GREEN", "key": "ci", "url": "u"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("state")
    );
}
