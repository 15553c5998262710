//! Connecting accounts: the browser's trip through Grantry and the simulator, and every way it
//! can go wrong without storing anything.

use crate::common::views::{Connection, Page};
use crate::common::{TestApp, expect, query, refused};
use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde_json::json;

const RETURN: &str = "https://app.example.com/done?state_of_app=7";

#[tokio::test]
async fn a_cloud_account_connects_and_lands_back_with_its_connection() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app
        .cloud_profile(
            "Backups",
            &["account.read", "repositories.read"],
            &["repository"],
        )
        .await;
    let link = app
        .session(json!({"profile": profile, "end_user_id": "user-42", "return_url": RETURN}))
        .await;
    assert!(link.starts_with(&format!("{}/connect/", app.base)));

    let (landed, _) = app.browse(&link).await;
    assert_eq!(landed.host_str(), Some("app.example.com"));
    assert_eq!(
        query(&landed, "state_of_app").as_deref(),
        Some("7"),
        "the application's own parameters survive"
    );
    assert!(
        query(&landed, "connection_id").is_none(),
        "not saved before the application confirms"
    );
    let confirmed: Connection = expect(app.confirm(&landed, Some("user-42")).await, StatusCode::OK);
    assert_eq!(confirmed.status, "active");
    let connection = confirmed.id;

    let view = app.connection(&connection).await;
    assert_eq!(view.account.username.as_deref(), Some("alice"));
    assert_eq!(view.end_user_id.as_deref(), Some("user-42"));
    assert_eq!(view.credential, "oauth2");
    assert_eq!(view.granted_scopes, ["account", "email", "repository"]);

    let token = app.read_token(&connection).await;
    assert_eq!(token.token_type, "bearer");
    assert!(token.access_token.len() > 2500);
    assert_eq!(
        token.authorization,
        format!("Bearer {}", token.access_token)
    );
    assert_eq!(token.expires_in, Some(7200));
    assert_eq!(token.account.display_name.as_deref(), Some("Alice Liddell"));
}

#[tokio::test]
async fn connecting_the_same_account_again_updates_its_end_users_connection() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let first = app.connect(&profile, "user-1").await;
    let again = app.connect(&profile, "user-1").await;
    assert_eq!(
        first, again,
        "the same end user's account: the same connection"
    );
    let other = app.connect(&profile, "user-2").await;
    assert_ne!(first, other, "another end user's: a connection of its own");
    let list: Page<Connection> = app
        .app_get(&format!("/v1/connections?profile={profile}"))
        .await;
    let owners: Vec<&str> = list
        .items
        .iter()
        .map(|c| c.end_user_id.as_deref().unwrap())
        .collect();
    assert_eq!(owners.len(), 2);
    assert!(owners.contains(&"user-1") && owners.contains(&"user-2"));
}

#[tokio::test]
async fn denied_consent_returns_access_denied_and_stores_nothing() {
    let app = TestApp::start(Mode::Rotating).await;
    app.manual_consent().await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let link = app
        .session(json!({"profile": profile, "return_url": RETURN}))
        .await;
    let response = app.http.get(&link).send().await.unwrap();
    let authorize = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&format!("{}/site/oauth2/authorize?", app.sim.url())));

    let form: Vec<(String, String)> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let mut form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    form.extend([
        ("username", "alice"),
        ("password", "alice-pw"),
        ("decision", "deny"),
    ]);
    let denied = app
        .http
        .post(format!("{}/site/oauth2/authorize", app.sim.url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    let callback = denied.headers()["location"].to_str().unwrap().to_owned();
    let (landed, _) = app.browse(&callback).await;
    assert_eq!(landed.host_str(), Some("app.example.com"));
    assert_eq!(query(&landed, "error").as_deref(), Some("access_denied"));
    assert!(query(&landed, "connection_id").is_none());
    let list: Page<Connection> = app.app_get("/v1/connections").await;
    assert!(list.items.is_empty(), "{list:?}");
}

#[tokio::test]
async fn a_replayed_or_unknown_state_gets_an_error_page_and_nothing_stored() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let link = app.session(json!({"profile": profile})).await;
    let callback = app.until_callback(&link).await;

    let first = app.http.get(callback.clone()).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert_eq!(first.headers()["referrer-policy"], "no-referrer");
    let replay = app.http.get(callback.clone()).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(replay.text().await.unwrap().contains("already used"));

    let mut forged = callback.clone();
    forged.set_query(Some("code=abc&state=made-up"));
    let unknown = app.http.get(forged).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("does not belong to any connect session")
    );
    let bare = app
        .http
        .get(format!("{}/oauth/callback", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::BAD_REQUEST);

    let list: Page<Connection> = app.app_get("/v1/connections").await;
    assert_eq!(list.items.len(), 1, "only the first callback connected");
}

#[tokio::test]
async fn links_are_single_use_and_expire() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;

    let link = app.session(json!({"profile": profile})).await;
    assert_eq!(
        app.http.get(&link).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    let again = app.http.get(&link).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.unwrap().contains("already used"));

    let stale = app.session(json!({"profile": profile})).await;
    app.advance(601).await;
    let expired = app.http.get(&stale).send().await.unwrap();
    assert_eq!(expired.status(), StatusCode::GONE);
    assert!(expired.text().await.unwrap().contains("expired"));

    let slow = app.session(json!({"profile": profile})).await;
    let callback = app.until_callback(&slow).await;
    app.advance(601).await;
    assert_eq!(
        app.http.get(callback).send().await.unwrap().status(),
        StatusCode::GONE,
        "a session can expire mid-flow"
    );

    let unknown = app
        .http
        .get(format!("{}/connect/nonsense", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn missing_scopes_are_reported_in_words_an_admin_can_act_on() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app
        .cloud_profile(
            "Reviews",
            &["account.read", "repositories.read"],
            &["pullrequest:write"],
        )
        .await;
    // Without a return URL, the outcome is in the landing URL.
    let link = app.session(json!({"profile": profile})).await;
    let (landed, _) = app.browse(&link).await;
    assert_eq!(
        query(&landed, "status").as_deref(),
        Some("insufficient_scopes")
    );
    assert_eq!(
        query(&landed, "error").as_deref(),
        Some("insufficient_scopes")
    );
    assert_eq!(
        query(&landed, "missing_scopes").as_deref(),
        Some("pullrequest:write")
    );
    // With one, in the confirmation's answer.
    let link = app
        .session(json!({"profile": profile, "end_user_id": "u", "return_url": RETURN}))
        .await;
    let (landed, _) = app.browse(&link).await;
    let confirmed: Connection = expect(app.confirm(&landed, Some("u")).await, StatusCode::OK);
    assert_eq!(
        confirmed.missing_scopes.as_deref(),
        Some(&["pullrequest:write".to_owned()][..])
    );

    let connection = app.connection(&confirmed.id).await;
    assert_eq!(connection.status, "insufficient_scopes");
    let reason = connection.status_reason.unwrap();
    assert!(
        reason.contains("tick Pull requests → Write on the OAuth consumer"),
        "{reason}"
    );
}

#[tokio::test]
async fn return_urls_must_be_allowed() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let body = json!({"profile": profile, "return_url": "https://evil.example.net/steal"});
    let (status, problem) = refused(
        app.app(Method::POST, "/v1/connect-sessions", Some(body))
            .await,
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem.field.as_deref(), Some("return_url"));
    let body = json!({"profile": "nope"});
    assert_eq!(
        app.app(Method::POST, "/v1/connect-sessions", Some(body))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn data_center_connects_with_pkce_and_the_link_scopes() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.dc_profile("DC", &["REPO_WRITE"], &["REPO_READ"]).await;
    let link = app.session(json!({"profile": profile})).await;
    let authorize = app.http.get(&link).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let authorize = url::Url::parse(&authorize).unwrap();
    assert_eq!(
        query(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(query(&authorize, "scope").as_deref(), Some("REPO_READ"));

    let connection = app.connect(&profile, "dc-user").await;
    let view = app.connection(&connection).await;
    assert_eq!(
        (view.account.username.as_deref(), view.status.as_str()),
        (Some("carol"), "active")
    );
    let token = app.read_token(&connection).await;
    assert_eq!(token.expires_in, Some(3600));
}

#[tokio::test]
async fn a_link_missing_scopes_flags_the_data_center_profile() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.dc_profile("DC", &["REPO_READ"], &["REPO_ADMIN"]).await;
    let link = app
        .session(json!({"profile": profile, "return_url": RETURN}))
        .await;
    let (landed, _) = app.browse(&link).await;
    assert_eq!(query(&landed, "error").as_deref(), Some("invalid_scope"));
    let shown = app.profile(&profile).await;
    assert!(
        shown
            .problem
            .as_ref()
            .unwrap()
            .message
            .contains("invalid_scope"),
        "{shown:?}"
    );
}

#[tokio::test]
async fn legacy_bitbucket_connects_too() {
    let app = TestApp::start(Mode::Legacy).await;
    let profile = app
        .cloud_profile(
            "Legacy",
            &["account.read", "repositories.read"],
            &["repository"],
        )
        .await;
    let connection = app.connect(&profile, "u").await;
    assert_eq!(
        app.connection(&connection).await.granted_scopes,
        ["account", "email", "repository"]
    );
}

/// Two connect links opened in one browser (two tabs): finishing the first must not end the
/// second. The callback once cleared every connect cookie the browser sent, so the second tab's
/// flow came back without its cookie and was refused as another browser's.
#[tokio::test]
async fn two_flows_in_one_browser_both_complete() {
    let app = TestApp::start(Mode::Rotating).await;
    let first_profile = app.cloud_profile("First", &["account.read"], &[]).await;
    let second_profile = app.cloud_profile("Second", &["account.read"], &[]).await;
    let first = app
        .session(json!({"profile": first_profile, "end_user_id": "user-1", "return_url": RETURN}))
        .await;
    let second = app
        .session(json!({"profile": second_profile, "end_user_id": "user-1", "return_url": RETURN}))
        .await;
    // Both tabs reach Bitbucket's consent before either comes back.
    let first_callback = app.until_callback(&first).await;
    let second_callback = app.until_callback(&second).await;
    for callback in [first_callback, second_callback] {
        let (landed, page) = app.browse(callback.as_str()).await;
        assert!(
            page.is_none(),
            "the flow ended on a Grantry page instead of the application: {landed} {:?}",
            page.map(|p| p.status())
        );
        let _: Connection = expect(app.confirm(&landed, Some("user-1")).await, StatusCode::OK);
    }
}
