//! The OpenAPI document: served without a key, equal to `docs/openapi.json` (so an API change
//! shows in review; `UPDATE_OPENAPI=1` rewrites the file), and true to the server: every `/v1`
//! route is in it, and real answers match the schemas it gives them.

use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::TestApp;

const KEPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

#[tokio::test]
async fn the_served_document_is_the_one_in_the_repository() {
    let app = TestApp::start(Mode::Rotating).await;
    let response = app
        .http
        .get(format!("{}/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "no key needed");
    let served = response.text().await.unwrap();
    let document: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(KEPT, &served).unwrap();
    }
    let kept = std::fs::read_to_string(KEPT).unwrap_or_default();
    assert!(
        kept == served,
        "docs/openapi.json differs from the document the server serves: run `UPDATE_OPENAPI=1 cargo nextest run -p grantry openapi` and review the change"
    );
}

#[tokio::test]
async fn every_v1_operation_is_documented() {
    let app = TestApp::start(Mode::Rotating).await;
    let (_, document) = app.call(Method::GET, "/v1/openapi.json", None, None).await;
    let paths = document["paths"].as_object().unwrap();
    // The routes the API serves (api/mod.rs), each with its methods.
    let routes = [
        ("/v1/profiles", &["get", "post"][..]),
        ("/v1/profiles/{profile}", &["get", "patch", "delete"]),
        ("/v1/connect-sessions", &["post"]),
        ("/v1/connect-sessions/{id}/confirm", &["post"]),
        ("/v1/connections", &["get", "post"]),
        ("/v1/connections/{id}", &["get", "delete"]),
        ("/v1/connections/{id}/token", &["get"]),
        ("/v1/connections/{id}/refresh", &["post"]),
        ("/v1/connections/{id}/test", &["post"]),
        ("/v1/api-keys", &["get", "post"]),
        ("/v1/api-keys/{id}", &["delete"]),
        ("/v1/events", &["get"]),
        ("/v1/webhooks", &["get", "post"]),
        ("/v1/webhooks/{id}", &["get", "patch", "delete"]),
        ("/v1/webhooks/{id}/rotate-secret", &["post"]),
        ("/v1/webhooks/{id}/test", &["post"]),
        ("/v1/webhooks/{id}/deliveries", &["get"]),
        ("/v1/webhooks/{id}/deliveries/{event}/redeliver", &["post"]),
        (
            "/v1/proxy/{connection}/{path}",
            &["get", "head", "post", "put", "patch", "delete"],
        ),
        ("/v1/openapi.json", &["get"]),
    ];
    for (path, methods) in routes {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is missing"));
        for method in methods {
            assert!(item.get(method).is_some(), "{method} {path} is missing");
        }
    }
    assert_eq!(
        paths.len(),
        routes.len(),
        "no path the server does not serve"
    );
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
}
