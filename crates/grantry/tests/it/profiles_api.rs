//! Profiles over the API: creating with guidance, validation naming the field, editing, deleting.

use crate::common::TestApp;
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
    assert_eq!(
        profile["callback_url"],
        format!("{}/oauth/callback", app.base)
    );
    assert_eq!(
        profile["required_scopes"],
        json!(["account", "repository", "pullrequest:write"]),
        "Grantry adds `account`, which it needs to know who connected"
    );
    assert_eq!(
        profile["setup"]["tick"],
        json!(["Account → Read", "Pull requests → Write"])
    );
    assert!(
        profile["setup"]["ticked"]
            .as_array()
            .unwrap()
            .contains(&json!("Repositories → Write"))
    );
    assert!(
        profile["setup"]["location"]
            .as_str()
            .unwrap()
            .contains("OAuth consumers > Add consumer")
    );
    assert!(
        !profile.to_string().contains("s3cret-value"),
        "the secret is never returned"
    );

    let (status, shown) = app.app(Method::GET, "/v1/profiles/Backups", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an app key may read profiles, by name too"
    );
    assert_eq!(shown["id"], profile["id"]);
    let (_, listed) = app.app(Method::GET, "/v1/profiles", None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains("s3cret-value"));
}

#[tokio::test]
async fn a_data_center_profile_needs_a_base_url_and_names_the_link_scopes() {
    let app = TestApp::start(Mode::Rotating).await;
    let body = json!({"name": "DC", "provider": "bitbucket-datacenter", "key": "id", "secret": "s",
                      "required_scopes": ["REPO_WRITE"]});
    let (status, problem) = app
        .admin(Method::POST, "/v1/profiles", Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "base_url");
    assert_eq!(problem["type"], "urn:grantry:problem:invalid-field");

    let mut body = body;
    body["base_url"] = json!("https://git.example.com/bitbucket/");
    let (status, profile) = app.admin(Method::POST, "/v1/profiles", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{profile}");
    assert_eq!(profile["base_url"], "https://git.example.com/bitbucket");
    assert_eq!(profile["setup"]["scopes"], json!(["REPO_WRITE"]));
    assert!(
        profile["setup"]["location"]
            .as_str()
            .unwrap()
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
        let (status, problem) = app.admin(Method::POST, "/v1/profiles", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["field"], field);
        assert!(
            problem["detail"].as_str().unwrap().contains(needle),
            "{problem}"
        );
    }
    let (status, problem) = app
        .admin(
            Method::POST,
            "/v1/profiles",
            Some(json!({"name": "x", "provider": "gitlab"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("provider")
            || problem["detail"].as_str().unwrap().contains("gitlab")
    );
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
    let (status, problem) = app
        .admin(Method::POST, "/v1/profiles", Some(cloud_body("One")))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("`One` already exists")
    );
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

    let (status, edited) = app
        .admin(
            Method::PATCH,
            &format!("/v1/profiles/{profile}"),
            Some(json!({"description": "changed", "key": "another-key"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(
        (edited["description"].as_str(), edited["key"].as_str()),
        (Some("changed"), Some("another-key"))
    );
    assert_eq!(
        app.connection(&connection).await["id"],
        connection.as_str(),
        "connections stay"
    );

    let (status, problem) = app
        .admin(
            Method::PATCH,
            &format!("/v1/profiles/{profile}"),
            Some(json!({"provider": "bitbucket-datacenter"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("create a new profile"),
        "{problem}"
    );
    let (status, problem) = app
        .admin(
            Method::PATCH,
            &format!("/v1/profiles/{profile}"),
            Some(json!({"colour": "red"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{problem}"
    );
}

#[tokio::test]
async fn deleting_removes_connections_and_says_how_many() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("Doomed", &["account.read"], &[]).await;
    let connection = app.connect(&profile, "user-1").await;
    let (status, deleted) = app
        .admin(Method::DELETE, &format!("/v1/profiles/{profile}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["connections_deleted"], 1);
    assert_eq!(app.token(&connection).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.admin(Method::GET, &format!("/v1/profiles/{profile}"), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}
