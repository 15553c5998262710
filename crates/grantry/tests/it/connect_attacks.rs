//! The outside review's attack on the connect flow, step by step, and what stops each step.
//!
//! An ordinary user of an application (the attacker, end user `mallory`) asks the application for
//! a connect link. Then either they open it and send the resulting Bitbucket authorize URL to a
//! victim, or they send the connect link itself. The victim (Bitbucket user `bob`, who uses the
//! same application as end user `bob-42`) authorizes. Before: bob's account was connected under
//! mallory's end-user id, and bob's existing connection moved to mallory.

use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde_json::json;
use url::Url;

use crate::common::views::{Connection, Event, Page, Session};
use crate::common::{TestApp, browse_in, browser, expect, query, refused, until_callback_in};

const RETURN: &str = "https://app.example.com/done";

/// Consent given at the simulator's page, signed in as `user`; answers where it sends back.
async fn consent(app: &TestApp, browser: &reqwest::Client, authorize: &str, user: &str) -> Url {
    let mut form: Vec<(String, String)> = Url::parse(authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    form.extend([
        ("username".to_owned(), user.to_owned()),
        ("password".to_owned(), format!("{user}-pw")),
        ("decision".to_owned(), "grant".to_owned()),
    ]);
    let granted = browser
        .post(format!("{}/site/oauth2/authorize", app.sim.url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    let next = granted.headers()["location"].to_str().unwrap();
    Url::parse(next).unwrap()
}

async fn connections(app: &TestApp) -> Vec<Connection> {
    let list: Page<Connection> = app.app_get("/v1/connections").await;
    list.items
}

async fn events(app: &TestApp, kind: &str) -> Vec<Event> {
    app.events(&format!("kind={kind}")).await.items
}

/// Bob connects his own account as end user `bob-42`, the legitimate way.
async fn bob_connects(app: &TestApp, profile: &str) -> String {
    let bob = browser();
    let link = app
        .session(json!({"profile": profile, "end_user_id": "bob-42", "return_url": RETURN}))
        .await;
    let authorize = bob.get(&link).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let callback = consent(app, &bob, &authorize, "bob").await;
    let (landed, _) = browse_in(&bob, callback.as_str()).await;
    let confirmed: Connection = expect(app.confirm(&landed, Some("bob-42")).await, StatusCode::OK);
    assert_eq!(confirmed.end_user_id.as_deref(), Some("bob-42"));
    confirmed.id
}

#[tokio::test]
async fn an_authorize_url_finished_in_another_browser_connects_nothing() {
    let app = TestApp::start(Mode::Rotating).await;
    app.manual_consent().await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let bobs = bob_connects(&app, &profile).await;

    // Mallory opens her own connect link, and sends the authorize URL it leads to, to Bob.
    let mallory = browser();
    let link = app
        .session(json!({"profile": profile, "end_user_id": "mallory", "return_url": RETURN}))
        .await;
    let opened = mallory.get(&link).send().await.unwrap();
    assert!(
        opened.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("HttpOnly; SameSite=Lax"),
        "the link binds the flow to Mallory's browser"
    );
    let authorize = opened.headers()["location"].to_str().unwrap().to_owned();

    // Bob, in his own browser, signs in at Bitbucket and grants it.
    let bob = browser();
    let callback = consent(&app, &bob, &authorize, "bob").await;
    let refused = bob.get(callback.clone()).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let page = refused.text().await.unwrap();
    assert!(page.contains("did not open the connect link"), "{page}");

    let all = connections(&app).await;
    assert_eq!(all.len(), 1, "only Bob's own connection: {all:?}");
    assert_eq!(all[0].id, bobs);
    assert_eq!(all[0].end_user_id.as_deref(), Some("bob-42"), "still Bob's");
    assert_eq!(events(&app, "connect.refused").await.len(), 1);
    // The session is spent: Mallory cannot reuse the callback in her own browser either.
    let replay = mallory.get(callback).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(connections(&app).await.len(), 1);
}

#[tokio::test]
async fn a_forwarded_connect_link_is_not_confirmed_for_another_end_user() {
    let app = TestApp::start(Mode::Rotating).await;
    app.manual_consent().await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let bobs = bob_connects(&app, &profile).await;

    // Mallory sends the connect link itself; Bob opens it and authorizes in his own browser.
    let link = app
        .session(json!({"profile": profile, "end_user_id": "mallory", "return_url": RETURN}))
        .await;
    let bob = browser();
    let authorize = bob.get(&link).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let callback = consent(&app, &bob, &authorize, "bob").await;
    let (landed, _) = browse_in(&bob, callback.as_str()).await;
    assert_eq!(landed.host_str(), Some("app.example.com"));
    assert!(
        query(&landed, "connection_id").is_none(),
        "nothing saved yet"
    );
    assert!(query(&landed, "verification_code").is_some());

    // The application sees Bob signed in, not Mallory: it confirms for Bob, and is refused.
    let (status, problem) = refused(app.confirm(&landed, Some("bob-42")).await);
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem:?}");
    assert_eq!(problem.code, "confirmation-refused");
    // A second try, now naming Mallory, finds nothing: a refusal spends the session.
    let (status, problem) = app.confirm(&landed, Some("mallory")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    let all = connections(&app).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        (all[0].id.as_str(), all[0].end_user_id.as_deref()),
        (bobs.as_str(), Some("bob-42"))
    );
    assert_eq!(events(&app, "connect.refused").await.len(), 1);
}

#[tokio::test]
async fn a_wrong_or_late_verification_code_connects_nothing() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    for late in [false, true] {
        let link = app
            .session(json!({"profile": profile, "end_user_id": "u-1", "return_url": RETURN}))
            .await;
        let (landed, _) = app.browse(&link).await;
        let session = query(&landed, "connect_session_id").unwrap();
        let path = format!("/v1/connect-sessions/{session}/confirm");
        let (status, problem) = if late {
            app.advance(601).await;
            app.confirm(&landed, Some("u-1")).await
        } else {
            let body = json!({"end_user_id": "u-1", "verification_code": "guessed"});
            app.app(Method::POST, &path, Some(body)).await
        };
        assert!(status.is_client_error(), "{problem}");
        let (status, _) = app.confirm(&landed, Some("u-1")).await;
        assert_eq!(status, StatusCode::CONFLICT, "spent");
    }
    assert!(connections(&app).await.is_empty());
}

#[tokio::test]
async fn the_same_account_for_another_end_user_is_a_connection_of_its_own() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    // Confirmation off: a careless application, or one that cannot confirm. The connection is
    // still never moved from one end user to another.
    let off = json!({"confirm_connections": false});
    let (status, _) = app
        .admin(Method::PATCH, &format!("/v1/profiles/{profile}"), Some(off))
        .await;
    assert_eq!(status, StatusCode::OK);
    let bobs = app.connect(&profile, "bob-42").await;
    let before = app.read_token(&bobs).await;
    let malloryss = app.connect(&profile, "mallory").await;
    assert_ne!(bobs, malloryss, "a connection of its own");

    let bob_now = app.connection(&bobs).await;
    assert_eq!(
        bob_now.end_user_id.as_deref(),
        Some("bob-42"),
        "never moved"
    );
    assert_eq!(bob_now.status, "active");
    let after = app.read_token(&bobs).await;
    assert_eq!(
        before.access_token, after.access_token,
        "Bob's connection untouched"
    );
    assert_eq!(events(&app, "connection.created").await.len(), 2);
    assert!(events(&app, "connection.reconnected").await.is_empty());

    // A reconnect keeps its end user: it cannot be asked for someone else.
    let body = json!({"profile": profile, "end_user_id": "mallory", "connection_id": bobs});
    let (status, problem) = refused(
        app.app(Method::POST, "/v1/connect-sessions", Some(body))
            .await,
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem:?}");
    assert_eq!(problem.field.as_deref(), Some("end_user_id"));
}

#[tokio::test]
async fn the_legitimate_flows_still_work() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    // With a return URL: confirmed by the application.
    let link = app
        .session(json!({"profile": profile, "end_user_id": "u-7", "return_url": RETURN}))
        .await;
    let (landed, _) = app.browse(&link).await;
    let confirmed: Connection = expect(app.confirm(&landed, Some("u-7")).await, StatusCode::OK);
    assert_eq!(confirmed.status, "active");
    assert_eq!(confirmed.missing_scopes, Some(vec![]));
    let connection = confirmed.id.as_str();
    assert_eq!(app.token(connection).await.0, StatusCode::OK);
    // A reconnect for the same end user keeps the id.
    let body = json!({"profile": profile, "connection_id": connection, "return_url": RETURN});
    let session: Session = app.connect_session(body).await;
    assert_eq!(
        session.end_user_id.as_deref(),
        Some("u-7"),
        "a reconnect keeps its end user"
    );
    let (landed, _) = app.browse(&session.url).await;
    let reconnected: Connection = expect(app.confirm(&landed, Some("u-7")).await, StatusCode::OK);
    assert_eq!(reconnected.id, connection);
    // Without a return URL: Grantry's own page, bound to the browser.
    let saved = app.connect(&profile, "u-8").await;
    assert_eq!(
        app.connection(&saved).await.end_user_id.as_deref(),
        Some("u-8")
    );
    // Data Center with PKCE, through the same binding and confirmation.
    let dc = app.dc_profile("DC", &["REPO_READ"], &["REPO_READ"]).await;
    let link = app
        .session(json!({"profile": dc, "end_user_id": "u-9", "return_url": RETURN}))
        .await;
    let callback = until_callback_in(&app.http, &link).await;
    let (landed, _) = app.browse(callback.as_str()).await;
    let dc_confirmed: Connection = expect(app.confirm(&landed, Some("u-9")).await, StatusCode::OK);
    assert_eq!(dc_confirmed.account.username.as_deref(), Some("carol"));
}
