//! Profiles over the API: creating with guidance, validation naming the field, editing, deleting.

use crate::common::views::{Page, Profile, ProfileDeleted, decode};
use crate::common::{TestApp, expect, refused};
use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn cloud_body(name: &str) -> Value {
    json!({"name": name, "description": "Nightly backups", "provider": "bitbucket-cloud", "key": "k3y",
           "secret": "s3cret-value", "required_scopes": ["repository", "pullrequest:write"]})
}

#[tokio::test]
async fn a_cloud_profile_comes_with_its_callback_url_and_the_boxes_to_tick() {
    let app = TestApp::start(Mode::Rotating).await;
    let (status, profile) = app
        .admin(Method::POST, "/v1/profiles", Some(cloud_body("Backups")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{profile}");
    // The raw answer, for the secret's absence; the view for the rest.
    let raw = profile;
    let profile: Profile = decode(&raw);
    assert_eq!(profile.callback_url, format!("{}/oauth/callback", app.base));
    assert_eq!(
        profile.required_scopes,
        ["account", "repository", "pullrequest:write"],
        "Grantry adds `account`, which it needs to know who connected"
    );
    assert_eq!(
        profile.setup.tick,
        ["Account → Read", "Pull requests → Write"]
    );
    assert!(
        profile
            .setup
            .ticked
            .iter()
            .any(|t| t == "Repositories → Write")
    );
    assert!(
        profile
            .setup
            .location
            .contains("OAuth consumers > Add consumer")
    );
    assert!(
        !raw.to_string().contains("s3cret-value"),
        "the secret is never returned"
    );

    let (status, shown) = app.app(Method::GET, "/v1/profiles/Backups", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an app key may read profiles, by name too"
    );
    assert_eq!(decode::<Profile>(&shown).id, profile.id);
    let (_, listed) = app.app(Method::GET, "/v1/profiles", None).await;
    assert_eq!(decode::<Page<Profile>>(&listed).items.len(), 1);
    assert!(!listed.to_string().contains("s3cret-value"));
}

#[tokio::test]
async fn a_data_center_profile_needs_a_base_url_and_names_the_link_scopes() {
    let app = TestApp::start(Mode::Rotating).await;
    let body = json!({"name": "DC", "provider": "bitbucket-datacenter", "key": "id", "secret": "s",
                      "required_scopes": ["REPO_WRITE"]});
    let (status, problem) = refused(
        app.admin(Method::POST, "/v1/profiles", Some(body.clone()))
            .await,
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem.field.as_deref(), Some("base_url"));
    assert_eq!(problem.kind, "urn:grantry:problem:invalid-field");

    let mut body = body;
    body["base_url"] = json!("https://git.example.com/bitbucket/");
    let answer = app.admin(Method::POST, "/v1/profiles", Some(body)).await;
    let profile: Profile = expect(answer, StatusCode::CREATED);
    assert_eq!(
        profile.base_url.as_deref(),
        Some("https://git.example.com/bitbucket")
    );
    assert_eq!(profile.setup.scopes, ["REPO_WRITE"]);
    assert!(
        profile
            .setup
            .location
            .contains("External application > Incoming")
    );
}

#[tokio::test]
async fn bad_fields_are_named() {
    let app = TestApp::start(Mode::Rotating).await;
    let cases = [
        (
            json!({"required_scopes": ["repo"]}),
            "required_scopes",
            "`repo`",
        ),
        (
            json!({"required_scopes": ["project:write"]}),
            "required_scopes",
            "project:admin",
        ),
        (json!({"name": "  "}), "name", "needs a name"),
        (json!({"secret": ""}), "secret", "required"),
        (json!({"key": "two words"}), "key", "no spaces"),
        (
            json!({"base_url": "https://x.example"}),
            "base_url",
            "fixed hosts",
        ),
        (
            json!({"allowed_return_urls": ["ftp://x"]}),
            "allowed_return_urls",
            "http(s)",
        ),
    ];
    for (change, field, needle) in cases {
        let mut body = cloud_body("Bad");
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        let (status, problem) = refused(app.admin(Method::POST, "/v1/profiles", Some(body)).await);
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem:?}");
        assert_eq!(problem.field.as_deref(), Some(field));
        assert!(problem.detail.contains(needle), "{problem:?}");
    }
    let (status, problem) = refused(
        app.admin(
            Method::POST,
            "/v1/profiles",
            Some(json!({"name": "x", "provider": "gitlab"})),
        )
        .await,
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem:?}");
    assert!(problem.detail.contains("provider") || problem.detail.contains("gitlab"));
}

#[tokio::test]
async fn names_are_unique() {
    let app = TestApp::start(Mode::Rotating).await;
    assert_eq!(
        app.admin(Method::POST, "/v1/profiles", Some(cloud_body("One")))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, problem) = refused(
        app.admin(Method::POST, "/v1/profiles", Some(cloud_body("One")))
            .await,
    );
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(problem.detail.contains("`One` already exists"));
}

#[tokio::test]
async fn editing_keeps_connections_and_refuses_a_new_application() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app
        .cloud_profile(
            "Editable",
            &["account.read", "repositories.read"],
            &["repository"],
        )
        .await;
    let connection = app.connect(&profile, "user-1").await;

    let edited: Profile = expect(
        app.admin(
            Method::PATCH,
            &format!("/v1/profiles/{profile}"),
            Some(json!({"description": "changed", "key": "another-key"})),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(
        (edited.description.as_str(), edited.key.as_str()),
        ("changed", "another-key")
    );
    assert_eq!(
        app.connection(&connection).await.id,
        connection,
        "connections stay"
    );

    let (status, problem) = refused(
        app.admin(
            Method::PATCH,
            &format!("/v1/profiles/{profile}"),
            Some(json!({"provider": "bitbucket-datacenter"})),
        )
        .await,
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem.detail.contains("create a new profile"),
        "{problem:?}"
    );
    let (status, problem) = refused(
        app.admin(
            Method::PATCH,
            &format!("/v1/profiles/{profile}"),
            Some(json!({"colour": "red"})),
        )
        .await,
    );
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    assert!(
        problem.detail.contains("unknown field `colour`"),
        "{problem:?}"
    );
}

#[tokio::test]
async fn deleting_removes_connections_and_says_how_many() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("Doomed", &["account.read"], &[]).await;
    let connection = app.connect(&profile, "user-1").await;
    let deleted: ProfileDeleted = expect(
        app.admin(Method::DELETE, &format!("/v1/profiles/{profile}"), None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(deleted.connections_deleted, 1);
    assert_eq!(app.token(&connection).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.admin(Method::GET, &format!("/v1/profiles/{profile}"), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}
