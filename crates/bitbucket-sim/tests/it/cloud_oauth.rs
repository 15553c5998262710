//! Cloud OAuth over real HTTP: redirect rules, consent, codes, the token endpoint's bodies, client
//! authentication, rotation with grace, client credentials and revocation.

use crate::common::{CALLBACK, Client, TestSim, keys, location, query_param};
use bitbucket_sim::Mode;
use reqwest::StatusCode;
use serde_json::{Value, json};

const READ: &[&str] = &["account.read", "repositories.read"];

fn authorize_url(sim: &TestSim, client: &Client, extra: &str) -> String {
    format!(
        "{}/site/oauth2/authorize?client_id={}&response_type=code{extra}",
        sim.url, client.id
    )
}

#[tokio::test]
async fn redirect_uri_is_a_prefix_match_and_a_mismatch_is_a_page_not_a_redirect() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(READ, false).await;

    let deeper = format!("{CALLBACK}/deeper?x=1");
    let code_query = [
        ("client_id", client.id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", deeper.as_str()),
    ];
    let response = sim
        .consent("/site/oauth2/authorize", &code_query, "alice", "grant")
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let target = location(&response);
    assert!(target.starts_with(&format!("{deeper}&code=")), "{target}");

    let elsewhere = authorize_url(&sim, &client, "&redirect_uri=https://evil.example.com/cb");
    let response = sim.http.get(elsewhere).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    let page = response.text().await.unwrap();
    assert!(page.contains("Invalid redirect_uri"), "{page}");
    assert!(page.contains("This integration is misconfigured. Contact the vendor for assistance."));

    let default = [("client_id", client.id.as_str()), ("response_type", "code")];
    let response = sim
        .consent("/site/oauth2/authorize", &default, "alice", "grant")
        .await;
    assert!(location(&response).starts_with(&format!("{CALLBACK}?code=")));
}

#[tokio::test]
async fn the_consent_page_names_the_consumer_and_its_permissions() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(&["pull_requests.write"], false).await;
    let page = sim
        .http
        .get(authorize_url(&sim, &client, "&state=s"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Test app"));
    for permission in [
        "Pull requests: Write",
        "Repositories: Write",
        "Repositories: Read",
    ] {
        assert!(
            page.contains(permission),
            "{permission} missing from the page"
        );
    }
    assert!(
        page.contains("name=\"password\""),
        "a sign-in form when not signed in"
    );
}

#[tokio::test]
async fn deny_returns_access_denied_and_the_state_untouched() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(READ, false).await;
    let state = "a b/c?d=e&f";
    let query = [
        ("client_id", client.id.as_str()),
        ("response_type", "code"),
        ("state", state),
    ];

    let denied = sim
        .consent("/site/oauth2/authorize", &query, "alice", "deny")
        .await;
    let target = location(&denied);
    assert_eq!(
        query_param(&target, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&target, "state").as_deref(), Some(state));

    let granted = sim
        .consent("/site/oauth2/authorize", &query, "alice", "grant")
        .await;
    assert_eq!(
        query_param(&location(&granted), "state").as_deref(),
        Some(state)
    );
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_and_a_session_skips_it() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(READ, false).await;
    let form = [
        ("client_id", client.id.as_str()),
        ("response_type", "code"),
        ("username", "alice"),
        ("password", "wrong"),
        ("decision", "grant"),
    ];
    let url = format!("{}/site/oauth2/authorize", sim.url);
    let response = sim.http.post(&url).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Incorrect username or password.")
    );

    let signed_in = sim
        .consent("/site/oauth2/authorize", &form[..2], "alice", "grant")
        .await;
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"));
    let session = cookie.split(';').next().unwrap();
    let again = sim
        .http
        .post(&url)
        .header("cookie", session)
        .form(&[
            ("client_id", client.id.as_str()),
            ("response_type", "code"),
            ("decision", "grant"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::FOUND,
        "no password needed with a session"
    );
}

#[tokio::test]
async fn auto_approve_grants_without_a_page() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(READ, false).await;
    let (status, _) = sim
        .control(
            reqwest::Method::PATCH,
            "/_sim/settings",
            json!({"auto_approve": "alice"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let response = sim
        .http
        .get(authorize_url(&sim, &client, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(query_param(&location(&response), "code").is_some());
}

#[tokio::test]
async fn codes_work_once_and_expire() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(READ, false).await;
    let invalid =
        r#"{"error_description": "The specified code is not valid.", "error": "invalid_grant"}"#;

    let code = sim.cloud_code(&client, &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    assert_eq!(sim.cloud_token(&client, &form).await.0, StatusCode::OK);
    assert_eq!(
        sim.cloud_token(&client, &form).await,
        (StatusCode::BAD_REQUEST, invalid.into())
    );

    let late = sim.cloud_code(&client, &[]).await;
    sim.advance(301).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", late.as_str()),
    ];
    assert_eq!(
        sim.cloud_token(&client, &form).await,
        (StatusCode::BAD_REQUEST, invalid.into())
    );
}

#[tokio::test]
async fn the_2026_token_body_has_bitbuckets_fields_in_order() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim
        .consumer(&["account.read", "repositories.write"], false)
        .await;
    let code = sim.cloud_code(&client, &[("state", "mine")]).await;
    let (status, raw) = sim
        .cloud_token(
            &client,
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        raw.starts_with(r#"{"access_token": ""#),
        "Python-style spacing: {}",
        &raw[..40]
    );
    let body: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        keys(&body),
        [
            "access_token",
            "scope",
            "expires_in",
            "refresh_token",
            "token_type",
            "state"
        ]
    );
    assert_eq!(body["scope"], "account email repository repository:write");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(
        body["state"], "authorization_code",
        "state names the grant type"
    );
    assert!(body["access_token"].as_str().unwrap().len() > 2500);
}

#[tokio::test]
async fn the_legacy_body_says_scopes_and_keeps_one_refresh_token() {
    let sim = TestSim::start(Mode::Legacy).await;
    let client = sim.consumer(READ, false).await;
    let first = sim.cloud_connect(&client).await;
    assert_eq!(
        keys(&first),
        [
            "access_token",
            "scopes",
            "expires_in",
            "refresh_token",
            "token_type",
            "state"
        ]
    );
    assert_eq!(first["scopes"], "account email repository");
    let refresh = first["refresh_token"].as_str().unwrap();
    for _ in 0..3 {
        let (status, raw) = sim
            .cloud_token(
                &client,
                &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let body: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(
            body["refresh_token"], refresh,
            "legacy refresh tokens never change"
        );
        assert_eq!(body["state"], "refresh_token");
    }
    sim.advance(400 * 86_400).await;
    let (status, _) = sim
        .cloud_token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "legacy refresh tokens never expire");
}

#[tokio::test]
async fn rotation_gives_a_new_token_and_the_used_one_lives_ten_minutes() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(READ, false).await;
    let first = sim.cloud_connect(&client).await;
    let used = first["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let (sim, client) = (&sim, &client);
        async move {
            sim.cloud_token(
                client,
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };

    let (status, raw) = refresh(used.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let second: Value = serde_json::from_str(&raw).unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["state"], "refresh_token");
    assert_eq!(sim.stats().await["refresh_token_reuse"], json!([]));

    sim.advance(599).await;
    assert_eq!(
        refresh(used.clone()).await.0,
        StatusCode::OK,
        "still inside the grace period"
    );
    sim.advance(2).await;
    let refused = r#"{"error_description": "Invalid refresh_token", "error": "invalid_request"}"#;
    assert_eq!(
        refresh(used).await,
        (StatusCode::BAD_REQUEST, refused.to_owned())
    );

    let stats = sim.stats().await;
    let reuse = &stats["refresh_token_reuse"];
    assert_eq!(reuse.as_array().unwrap().len(), 1, "{stats}");
    assert_eq!(reuse[0]["later_uses"][0]["accepted"], true);
    assert_eq!(reuse[0]["later_uses"][1]["accepted"], false);
    assert_eq!(stats["counts"]["token"]["refresh_token"]["ok"], 2);
    assert_eq!(
        stats["counts"]["token"]["refresh_token"]["invalid_request"],
        1
    );

    let newest = second["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(newest).await.0, StatusCode::OK, "the chain goes on");
}

#[tokio::test]
async fn an_unused_refresh_token_dies_after_ninety_days() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(READ, false).await;
    let young = sim.cloud_connect(&client).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let old = sim.cloud_connect(&client).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.advance(89 * 86_400).await;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", young.as_str()),
    ];
    assert_eq!(sim.cloud_token(&client, &form).await.0, StatusCode::OK);
    sim.advance(2 * 86_400).await;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", old.as_str()),
    ];
    assert_eq!(
        sim.cloud_token(&client, &form).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn client_authentication_basic_form_missing_and_wrong() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(READ, true).await;
    let url = format!("{}/site/oauth2/access_token", sim.url);
    let post = |form: Vec<(&'static str, String)>| sim.http.post(&url).form(&form).send();

    let in_form = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", client.id.clone()),
        ("client_secret", client.secret.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(in_form.status(), StatusCode::OK);

    let anonymous = post(vec![("grant_type", "client_credentials".into())])
        .await
        .unwrap();
    assert_eq!(
        anonymous.text().await.unwrap(),
        r#"{"error_description": "Requests must be authenticated using OAuth client credentials", "error": "unauthorized_client"}"#
    );
    let no_secret = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", client.id.clone()),
    ]);
    let wrong = Client {
        id: client.id.clone(),
        secret: "nope".into(),
    };
    let bad = r#"{"error_description": "Invalid OAuth client credentials", "error": "unauthorized_client"}"#;
    assert_eq!(no_secret.await.unwrap().text().await.unwrap(), bad);
    assert_eq!(
        sim.cloud_token(&wrong, &[("grant_type", "client_credentials")])
            .await,
        (StatusCode::BAD_REQUEST, bad.to_owned())
    );
}

#[tokio::test]
async fn json_bodies_and_unknown_grants_are_refused_as_bitbucket_does() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(READ, false).await;
    let response = sim
        .http
        .post(format!("{}/site/oauth2/access_token", sim.url))
        .basic_auth(&client.id, Some(&client.secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"error_description": "Unsupported grant type: None", "error": "invalid_grant"}"#
    );
    let (_, body) = sim
        .cloud_token(&client, &[("grant_type", "password")])
        .await;
    assert!(body.contains("Unsupported grant type: password"), "{body}");
}

#[tokio::test]
async fn client_credentials_need_a_private_consumer_and_give_no_refresh_token_in_2026() {
    let sim = TestSim::start(Mode::Rotating).await;
    let public = sim.consumer(READ, false).await;
    let (status, body) = sim
        .cloud_token(&public, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        r#"{"error_description": "Cannot use client_credentials with a consumer marked as \"public\". Calls for auto generated consumers should use urn:bitbucket:oauth2:jwt instead.", "error": "invalid_grant"}"#
    );

    let private = sim.consumer(READ, true).await;
    let (status, body) = sim
        .cloud_token(&private, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        keys(&body),
        ["access_token", "scope", "expires_in", "token_type", "state"]
    );
    assert_eq!(body["state"], "client_credentials");
    let (status, _, user) = sim
        .cloud_get("/user", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        user["username"], "alice",
        "the token acts as the consumer's owner"
    );

    let legacy = TestSim::start(Mode::Legacy).await;
    let private = legacy.consumer(READ, true).await;
    let (_, body) = legacy
        .cloud_token(&private, &[("grant_type", "client_credentials")])
        .await;
    assert!(
        body.contains("\"refresh_token\": "),
        "legacy issues one: {body}"
    );
}

#[tokio::test]
async fn a_consumer_without_callback_cannot_run_the_code_flow() {
    let sim = TestSim::start(Mode::Rotating).await;
    let consumer = sim
        .post(
            "/_sim/consumers",
            json!({"workspace": "acme", "name": "No callback", "permissions": ["account.read"]}),
        )
        .await;
    let client = Client {
        id: consumer["key"].as_str().unwrap().into(),
        secret: consumer["secret"].as_str().unwrap().into(),
    };
    assert_eq!(client.id.len(), 32, "2026 consumer keys have 32 characters");
    assert!(
        client.secret.len() >= 70,
        "2026 secrets have about 76 characters"
    );
    let (status, body) = sim
        .cloud_token(
            &client,
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        r#"{"error_description": "No callback uri defined for the OAuth client.", "error": "invalid_request"}"#
    );
    let page = sim
        .http
        .get(authorize_url(&sim, &client, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn revoking_the_authorization_kills_access_and_refresh_tokens() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(READ, false).await;
    let tokens = sim.cloud_connect(&client).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(sim.cloud_get("/user", access).await.0, StatusCode::OK);

    let revoked = sim
        .post(
            &format!("/_sim/users/alice/authorizations/{}/revoke", client.id),
            json!({}),
        )
        .await;
    assert_eq!(revoked["revoked_grants"], 1);
    let (status, _, body) = sim.cloud_get("/user", access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"]["message"],
        "Token is invalid, expired, or not supported for this endpoint."
    );
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = sim
        .cloud_token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Invalid refresh_token"));
}

#[tokio::test]
async fn implicit_grant_puts_the_token_in_the_fragment() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(READ, false).await;
    let query = [
        ("client_id", client.id.as_str()),
        ("response_type", "token"),
        ("state", "s1"),
    ];
    let response = sim
        .consent("/site/oauth2/authorize", &query, "alice", "grant")
        .await;
    let target = location(&response);
    let fragment = target.split_once('#').expect("a fragment").1;
    assert!(fragment.contains("access_token=") && fragment.contains("token_type=bearer"));
    assert!(fragment.contains("state=s1") && !fragment.contains("refresh_token"));
}
