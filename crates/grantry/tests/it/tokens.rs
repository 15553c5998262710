//! Token reads and refresh: ahead of expiry, exactly once under concurrency, through rotation,
//! revocation, outages, rate limits and a refused client.

use std::time::{Duration, Instant};

use crate::common::views::{Connection, Page, Profile, Token};
use crate::common::{TestApp, expect, query, refused};
use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn cloud_connection(app: &TestApp) -> (String, String) {
    let profile = app
        .cloud_profile("P", &["account.read", "repositories.read"], &["repository"])
        .await;
    let connection = app.connect(&profile, "user-1").await;
    (profile, connection)
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_once_before_it_is_served() {
    let app = TestApp::start(Mode::Rotating).await;
    let (_, connection) = cloud_connection(&app).await;
    let first = app.read_token(&connection).await;

    app.advance(7200 - 400).await;
    assert_eq!(
        app.read_token(&connection).await.access_token,
        first.access_token,
        "still fresh: no refresh"
    );
    assert_eq!(app.refreshes_seen().await, 0);

    app.advance(200).await;
    let second = app.read_token(&connection).await;
    assert_ne!(
        second.access_token, first.access_token,
        "within the 5-minute margin: refreshed first"
    );
    assert_eq!(second.expires_in, Some(7200));
    let third = app.read_token(&connection).await;
    assert_eq!(third.access_token, second.access_token);
    assert_eq!(app.refreshes_seen().await, 1);
}

#[tokio::test]
async fn concurrent_reads_of_an_expired_connection_cause_exactly_one_refresh() {
    let app = TestApp::start(Mode::Rotating).await;
    let (_, connection) = cloud_connection(&app).await;
    app.advance(8000).await;
    let answers = futures_util::future::join_all((0..200).map(|_| app.token(&connection))).await;
    let tokens: std::collections::BTreeSet<String> = answers
        .into_iter()
        .map(|answer| expect::<Token>(answer, StatusCode::OK).access_token)
        .collect();
    assert_eq!(tokens.len(), 1, "every reader got the one new token");
    assert_eq!(app.refreshes_seen().await, 1);
    assert_eq!(app.sim_stats().await["refresh_token_reuse"], json!([]));
}

#[tokio::test]
async fn rotating_refresh_tokens_are_never_presented_twice() {
    let app = TestApp::start(Mode::Rotating).await;
    let (_, connection) = cloud_connection(&app).await;
    for _ in 0..4 {
        app.advance(7200).await;
        assert_eq!(app.token(&connection).await.0, StatusCode::OK);
    }
    assert_eq!(app.refreshes_seen().await, 4);
    assert_eq!(
        app.sim_stats().await["refresh_token_reuse"],
        json!([]),
        "each refresh used the newest token"
    );
}

#[tokio::test]
async fn legacy_refresh_keeps_its_refresh_token() {
    let app = TestApp::start(Mode::Legacy).await;
    let (_, connection) = cloud_connection(&app).await;
    for _ in 0..3 {
        app.advance(7200).await;
        assert_eq!(app.token(&connection).await.0, StatusCode::OK);
    }
    assert_eq!(app.refreshes_seen().await, 3);
}

#[tokio::test]
async fn data_center_refreshes_with_its_redirect_uri() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.dc_profile("DC", &["REPO_READ"], &["REPO_READ"]).await;
    let connection = app.connect(&profile, "u").await;
    app.advance(3600).await;
    let (status, token) = app.token(&connection).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(app.refreshes_seen().await, 1);
}

#[tokio::test]
async fn a_revoked_grant_needs_reauth_and_a_reconnect_keeps_the_id() {
    let app = TestApp::start(Mode::Rotating).await;
    let (profile, connection) = cloud_connection(&app).await;
    let consumer = app.grantry.find_profile(&profile).await.unwrap().client_id;
    app.sim_post(
        &format!("/_sim/users/alice/authorizations/{consumer}/revoke"),
        json!({}),
    )
    .await;
    app.advance(7200).await;

    let (status, problem) = app.token_refused(&connection).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem:?}");
    assert_eq!(problem.kind, "urn:grantry:problem:needs-reauth");
    assert_eq!(problem.connection_id.as_deref(), Some(connection.as_str()));
    assert!(
        problem
            .reason
            .as_deref()
            .unwrap()
            .contains("Invalid refresh_token"),
        "{problem:?}"
    );
    assert_eq!(app.connection(&connection).await.status, "needs_reauth");
    assert_eq!(
        app.token(&connection).await.0,
        StatusCode::CONFLICT,
        "and stays so without calling Bitbucket"
    );
    assert_eq!(
        app.sim_stats().await["counts"]["token"]["refresh_token"]["invalid_request"],
        1
    );

    let link = app
        .session(json!({"profile": profile, "connection_id": connection}))
        .await;
    let (landed, _) = app.browse(&link).await;
    assert_eq!(
        query(&landed, "connection_id").as_deref(),
        Some(connection.as_str())
    );
    assert_eq!(app.connection(&connection).await.status, "active");
    assert_eq!(app.token(&connection).await.0, StatusCode::OK);

    let events = app.events(&format!("connection={connection}")).await;
    let mut kinds: Vec<&str> = events.items.iter().map(|e| e.kind.as_str()).collect();
    // The reconnect writes two events in one transaction, in the same millisecond: their order
    // between themselves is not the listing's to promise.
    kinds[..2].sort_unstable();
    assert_eq!(
        kinds,
        [
            "connection.reconnected",
            "connection.recovered",
            "connection.needs_reauth",
            "connection.created"
        ]
    );
}

#[tokio::test]
async fn an_outage_serves_the_valid_token_backs_off_and_recovers() {
    let app = TestApp::start(Mode::Rotating).await;
    let (_, connection) = cloud_connection(&app).await;
    let before = app.read_token(&connection).await;
    app.advance(7200 - 200).await;
    app.sim_fault("token", json!({"outage": true})).await;

    for _ in 0..10 {
        let (status, token) = app.token(&connection).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a still-valid token is served while Bitbucket is down"
        );
        let token: Token = expect((status, token), StatusCode::OK);
        assert_eq!(token.access_token, before.access_token);
    }
    let attempts = app.sim_stats().await["counts"]["fault"]["token"]["503"]
        .as_u64()
        .unwrap();
    assert_eq!(attempts, 1, "backing off: ten reads, one call to Bitbucket");
    let view = app.connection(&connection).await;
    assert_eq!(view.status, "failing", "failing, never marked dead");

    app.advance(300).await;
    let (status, problem) = app.token_refused(&connection).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem:?}");
    assert_eq!(problem.kind, "urn:grantry:problem:provider-unavailable");

    app.sim_clear_faults().await;
    app.advance(700).await;
    let (status, after) = app.token(&connection).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(app.connection(&connection).await.status, "active");
    let events = app.events("kind=connection.").await;
    let kinds: Vec<&str> = events.items.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "connection.recovered",
            "connection.failing",
            "connection.created"
        ]
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let app = TestApp::start(Mode::Rotating).await;
    let (_, connection) = cloud_connection(&app).await;
    app.advance(7300).await;
    app.sim_fault("token", json!({"rate_limit_rate": 1.0, "retry_after": 120}))
        .await;
    let (status, problem) = app.token_refused(&connection).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(problem.detail.contains("429"), "{problem:?}");
    app.sim_clear_faults().await;
    app.advance(60).await;
    assert_eq!(
        app.token(&connection).await.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "not before Retry-After"
    );
    assert_eq!(app.refreshes_seen().await, 0);
    app.advance(61).await;
    assert_eq!(app.token(&connection).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_refused_client_flags_the_profile_until_fixed() {
    let app = TestApp::start(Mode::Rotating).await;
    let (profile, connection) = cloud_connection(&app).await;
    let real = app.grantry.find_profile(&profile).await.unwrap();
    let path = format!("/v1/profiles/{profile}");
    app.admin(Method::PATCH, &path, Some(json!({"secret": "wrong"})))
        .await;
    app.advance(7200 - 100).await;

    assert_eq!(
        app.token(&connection).await.0,
        StatusCode::OK,
        "the still-valid token is served"
    );
    let shown = app.profile(&profile).await;
    let message = shown.problem.unwrap().message;
    assert!(message.contains("unauthorized_client"), "{message}");
    app.advance(200).await;
    let (status, problem) = app.token_refused(&connection).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{problem:?}");
    assert_eq!(problem.kind, "urn:grantry:problem:profile-misconfigured");

    let original = app.sim_consumer(&real.client_id).await;
    app.admin(
        Method::PATCH,
        &path,
        Some(json!({"secret": original["secret"]})),
    )
    .await;
    let (status, _) = app
        .app(
            Method::POST,
            &format!("/v1/connections/{connection}/refresh"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let shown = app.profile(&profile).await;
    assert!(
        shown.problem.is_none(),
        "fixing the secret clears the problem: {shown:?}"
    );
}

#[tokio::test]
async fn force_refresh_renews_now_and_checks_static_credentials() {
    let app = TestApp::start(Mode::Rotating).await;
    let (profile, connection) = cloud_connection(&app).await;
    let before = app.read_token(&connection).await;
    let (status, view) = app
        .app(
            Method::POST,
            &format!("/v1/connections/{connection}/refresh"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_ne!(
        app.read_token(&connection).await.access_token,
        before.access_token
    );
    assert_eq!(app.refreshes_seen().await, 1);

    let body = json!({"profile": profile, "credential": {"type": "access_token", "token": "repo-access-token"}});
    let answer = app.app(Method::POST, "/v1/connections", Some(body)).await;
    let stored: Connection = expect(answer, StatusCode::CREATED);
    let path = format!("/v1/connections/{}/refresh", stored.id);
    let (status, checked) = app.app(Method::POST, &path, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a static credential is checked instead of renewed: {checked}"
    );
    assert_eq!(app.refreshes_seen().await, 1, "nothing was renewed");
}

#[tokio::test]
async fn client_credentials_are_granted_again_before_expiry() {
    let app = TestApp::start(Mode::Rotating).await;
    let (key, secret) = app
        .consumer(&["account.read", "repositories.read"], true)
        .await;
    let body = json!({"name": "Private", "provider": "bitbucket-cloud", "key": key, "secret": secret, "private": true});
    let answer = app.admin(Method::POST, "/v1/profiles", Some(body)).await;
    let profile: Profile = expect(answer, StatusCode::CREATED);
    let body = json!({"profile": profile.id, "credential": {"type": "client_credentials"}});
    let answer = app.app(Method::POST, "/v1/connections", Some(body)).await;
    let connection: Connection = expect(answer, StatusCode::CREATED);
    assert_eq!(connection.credential, "client_credentials");
    assert_eq!(
        connection.account.username.as_deref(),
        Some("alice"),
        "the consumer's owner"
    );
    let id = connection.id.as_str();

    app.advance(7200).await;
    assert_eq!(app.token(id).await.0, StatusCode::OK);
    let counts = &app.sim_stats().await["counts"]["token"];
    assert_eq!(counts["client_credentials"]["ok"], 2);
    assert!(
        counts["refresh_token"].is_null(),
        "no refresh token is involved"
    );

    let public = app.cloud_profile("Public", &["account.read"], &[]).await;
    let body = json!({"profile": public, "credential": {"type": "client_credentials"}});
    let (status, problem) = refused(app.app(Method::POST, "/v1/connections", Some(body)).await);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problem.detail.contains("private"), "{problem:?}");
}

#[tokio::test]
async fn stored_credentials_come_back_ready_to_use() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let made = app
        .sim_post(
            "/_sim/api-tokens",
            json!({"user": "alice", "scopes": "read:user:bitbucket"}),
        )
        .await;
    let secret = made["token"].as_str().unwrap();
    let body = json!({"profile": profile, "end_user_id": "svc",
                      "credential": {"type": "api_token", "email": "alice@example.com", "token": secret}});
    let answer = app.app(Method::POST, "/v1/connections", Some(body)).await;
    let connection: Connection = expect(answer, StatusCode::CREATED);
    let token = app.read_token(&connection.id).await;
    assert_eq!(token.token_type, "basic");
    assert_eq!(token.username.as_deref(), Some("alice@example.com"));
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("alice@example.com:{secret}"));
    assert_eq!(token.authorization, format!("Basic {basic}"));
    assert!(token.expires_at.is_none());

    let body = json!({"profile": profile, "credential": {"type": "api_token", "email": "not-an-email", "token": "t"}});
    let (status, problem) = refused(app.app(Method::POST, "/v1/connections", Some(body)).await);
    assert_eq!(
        (status, problem.field.as_deref()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("email"))
    );
    let body = json!({"profile": profile, "credential": {"type": "password", "token": "t"}});
    assert_eq!(
        app.app(Method::POST, "/v1/connections", Some(body)).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn listings_filter_and_page_with_a_cursor() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    for n in 0..5 {
        let body = json!({"profile": profile, "end_user_id": if n < 2 { "team-a" } else { "team-b" },
                          "credential": {"type": "access_token", "token": format!("token-{n}")}});
        assert_eq!(
            app.app(Method::POST, "/v1/connections", Some(body)).await.0,
            StatusCode::CREATED
        );
    }
    let first: Page<Connection> = app.app_get("/v1/connections?limit=2").await;
    let cursor = first.next_cursor.unwrap();
    let second: Page<Connection> = app
        .app_get(&format!("/v1/connections?limit=2&cursor={cursor}"))
        .await;
    let third: Page<Connection> = app
        .app_get(&format!(
            "/v1/connections?limit=2&cursor={}",
            second.next_cursor.unwrap()
        ))
        .await;
    assert_eq!(third.items.len(), 1);
    assert!(third.next_cursor.is_none());
    let team: Page<Connection> = app
        .app_get("/v1/connections?end_user_id=team-a&status=active")
        .await;
    assert_eq!(team.items.len(), 2);
    let (status, problem) = app
        .app(Method::GET, "/v1/connections?status=dead", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(
        app.app(Method::GET, "/v1/connections?limit=0", None)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_background_refresher_renews_ahead_of_expiry() {
    let app = TestApp::with(Mode::Rotating, |config| config.refresh.enabled = true).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let mut connections = Vec::new();
    for _ in 0..5 {
        let body = json!({"profile": profile, "end_user_id": "u"});
        let link = app.session(body).await;
        let (landed, _) = app.browse(&link).await;
        connections.push(query(&landed, "connection_id").unwrap());
    }
    connections.dedup();
    app.advance(7200 - 599).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.refreshes_seen().await < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.refreshes_seen().await,
        1,
        "one account, one connection, renewed in the background"
    );
    let token = app.read_token(&connections[0]).await;
    // The old token had 599 s left; a renewed one has its full two hours, less the second or so
    // the test took.
    let left = token.expires_in.unwrap();
    assert!(
        (7190..=7200).contains(&left),
        "the read found it already renewed: {left} s left"
    );
    assert_eq!(app.refreshes_seen().await, 1);
}

#[tokio::test]
async fn deleting_a_connection_removes_its_tokens() {
    let app = TestApp::start(Mode::Rotating).await;
    let (_, connection) = cloud_connection(&app).await;
    assert_eq!(app.token(&connection).await.0, StatusCode::OK);
    assert_eq!(
        app.app(
            Method::DELETE,
            &format!("/v1/connections/{connection}"),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (status, problem) = app.token(&connection).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the cached token went too: {problem}"
    );
    assert_eq!(
        app.app(
            Method::DELETE,
            &format!("/v1/connections/{connection}"),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

/// Times in requests are RFC 3339, as in every answer (with any offset); unix seconds stay
/// accepted. A time that is neither is refused with a problem naming the field.
#[tokio::test]
async fn a_stored_access_tokens_expiry_is_given_as_rfc_3339() {
    let app = TestApp::start(Mode::Rotating).await;
    let (profile, _) = cloud_connection(&app).await;
    let create = |end_user: &str, expires_at: serde_json::Value| {
        json!({"profile": profile, "end_user_id": end_user,
               "credential": {"type": "access_token", "token": format!("token-{end_user}"), "expires_at": expires_at}})
    };
    for (end_user, given) in [
        ("utc", json!("2030-06-01T00:00:00Z")),
        ("offset", json!("2030-06-01T02:00:00+02:00")),
        ("fraction", json!("2030-06-01T00:00:00.250Z")),
        ("unix", json!(1_906_502_400)),
    ] {
        let (status, made) = app
            .app(
                Method::POST,
                "/v1/connections",
                Some(create(end_user, given)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{end_user}: {made}");
        let made: Connection = expect((status, made), StatusCode::CREATED);
        let token = app.read_token(&made.id).await;
        assert_eq!(
            token.expires_at.as_deref(),
            Some("2030-06-01T00:00:00Z"),
            "{end_user}"
        );
    }
    for given in [json!("next tuesday"), json!("2030-06-01"), json!(true)] {
        let (status, problem) = refused(
            app.app(
                Method::POST,
                "/v1/connections",
                Some(create("bad", given.clone())),
            )
            .await,
        );
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{given}: {problem:?}"
        );
        let detail = problem.detail;
        assert!(
            detail.contains("expires_at") && detail.contains("RFC 3339"),
            "{detail}"
        );
    }
}
