//! Cloud REST over real HTTP: the scope check on every operation of the OpenAPI table, 401
//! bodies, the implemented resources, pagination and pull requests.

use crate::common::TestSim;
use bitbucket_facts::cloud::CHECKBOXES;
use bitbucket_facts::operations::OperationTable;
use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A concrete path for a template, e.g. `/repositories/acme/widget/pullrequests/1`.
fn concrete(template: &str) -> String {
    let mut path = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = open + rest[open..].find('}').unwrap();
        path.push_str(&rest[..open]);
        path.push_str(match &rest[open + 1..close] {
            "workspace" => "acme",
            "repo_slug" => "widget",
            _ => "1",
        });
        rest = &rest[close + 1..];
    }
    path + rest
}

async fn call(sim: &TestSim, method: &str, path: &str, token: Option<&str>) -> reqwest::Response {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = sim.http.request(method, format!("{}/2.0{path}", sim.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn every_operation_in_the_table_checks_the_tokens_scopes() {
    let sim = TestSim::start(Mode::Rotating).await;
    let account_only = sim.consumer(&["account.read"], false).await;
    let token = sim.cloud_connect(&account_only).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let granted = bitbucket_facts::cloud::parse_scopes("account email").unwrap();

    let mut denied = 0;
    for op in OperationTable::cloud().iter() {
        let response = call(&sim, &op.method, &concrete(&op.template), Some(&token)).await;
        let accepted = response
            .headers()
            .get("x-accepted-oauth-scopes")
            .map(|v| v.to_str().unwrap().to_owned());
        let expected_header = op.scopes.names().collect::<Vec<_>>().join(", ");
        assert_eq!(
            accepted.as_deref(),
            Some(expected_header.as_str()),
            "{} {}",
            op.method,
            op.template
        );
        if granted.satisfies(&op.scopes) {
            assert_ne!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{} {}",
                op.method,
                op.template
            );
            continue;
        }
        denied += 1;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{} {}",
            op.method,
            op.template
        );
        assert_eq!(response.headers()["x-oauth-scopes"], "account, email");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(
            body["error"]["message"],
            "Your credentials lack one or more required privilege scopes."
        );
        assert_eq!(
            body["error"]["detail"]["granted"],
            json!(["account", "email"])
        );
        assert_eq!(
            body["error"]["detail"]["required"],
            json!(op.scopes.to_vec())
        );
    }
    assert!(
        denied > 250,
        "most operations need more than account: {denied}"
    );
}

#[tokio::test]
async fn operations_not_implemented_answer_404_only_after_the_scope_check() {
    let sim = TestSim::start(Mode::Rotating).await;
    let everything: Vec<&str> = CHECKBOXES.iter().map(|b| b.key).collect();
    let all = sim.consumer(&everything, false).await;
    let token = sim.cloud_connect(&all).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = call(
        &sim,
        "GET",
        "/repositories/acme/widget/issues",
        Some(&token),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not implement")
    );

    let response = call(&sim, "GET", "/not/an/operation", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn missing_invalid_and_expired_tokens_get_401_with_bitbuckets_wording() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(&["account.read"], false).await;
    let token = sim.cloud_connect(&client).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let missing = call(&sim, "GET", "/user", None).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let invalid = call(&sim, "GET", "/user", Some("not-a-token")).await;
    assert_eq!(invalid.status(), StatusCode::UNAUTHORIZED);
    let body: Value = invalid.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "error": {"message": "Token is invalid, expired, or not supported for this endpoint."}})
    );
    sim.advance(7201).await;
    let (status, _, body) = sim.cloud_get("/user", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"]["message"],
        "Token is invalid, expired, or not supported for this endpoint."
    );

    let legacy = TestSim::start(Mode::Legacy).await;
    let client = legacy.consumer(&["account.read"], false).await;
    let token = legacy.cloud_connect(&client).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    legacy.advance(7201).await;
    let (_, _, body) = legacy.cloud_get("/user", &token).await;
    assert_eq!(
        body["error"]["message"],
        "Access token expired. Use your refresh token to obtain a new access token."
    );
}

#[tokio::test]
async fn only_legacy_mode_takes_the_token_from_the_query_string() {
    for (mode, expected) in [
        (Mode::Legacy, StatusCode::OK),
        (Mode::Rotating, StatusCode::UNAUTHORIZED),
    ] {
        let sim = TestSim::start(mode).await;
        let client = sim.consumer(&["account.read"], false).await;
        let token = sim.cloud_connect(&client).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let response = sim
            .http
            .get(format!("{}/2.0/user?access_token={token}", sim.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{mode:?}");
    }
}

#[tokio::test]
async fn user_emails_workspaces_and_repositories_in_bitbuckets_shapes() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim
        .consumer(&["account.read", "repositories.read"], false)
        .await;
    let token = sim.cloud_connect(&client).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let (_, _, user) = sim.cloud_get("/user", &token).await;
    assert_eq!(user["type"], "user");
    assert_eq!(user["display_name"], "Alice Liddell");
    assert!(user["uuid"].as_str().unwrap().starts_with('{'));
    assert!(user["account_id"].is_string());

    let (_, _, emails) = sim.cloud_get("/user/emails", &token).await;
    assert_eq!(emails["values"][0]["email"], "alice@example.com");
    assert_eq!(emails["values"][0]["is_primary"], true);

    let (_, _, workspaces) = sim.cloud_get("/workspaces", &token).await;
    assert_eq!(workspaces["size"], 1);
    assert_eq!(workspaces["values"][0]["slug"], "acme");

    let (_, _, repos) = sim.cloud_get("/repositories/acme?pagelen=1", &token).await;
    assert_eq!(repos["size"], 2);
    assert_eq!(repos["pagelen"], 1);
    assert_eq!(repos["values"].as_array().unwrap().len(), 1);
    let next = repos["next"].as_str().expect("a next link");
    let second: Value = sim
        .http
        .get(next)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["page"], 2);
    assert!(second.get("next").is_none());

    let (status, _, repo) = sim.cloud_get("/repositories/acme/widget", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(repo["full_name"], "acme/widget");
    assert_eq!(repo["is_private"], true);
    assert!(
        repo["links"]["clone"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with("/acme/widget.git")
    );

    let (status, _, body) = sim.cloud_get("/repositories/acme?pagelen=0", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pagelen")
    );
}

#[tokio::test]
async fn private_repositories_are_hidden_from_non_members() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(&["repositories.read"], false).await;
    let query = [("client_id", client.id.as_str()), ("response_type", "code")];
    let response = sim
        .consent("/site/oauth2/authorize", &query, "bob", "grant")
        .await;
    let code = crate::common::query_param(&crate::common::location(&response), "code").unwrap();
    let (_, body) = sim
        .cloud_token(
            &client,
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
    let token = serde_json::from_str::<Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let (_, _, repos) = sim.cloud_get("/repositories/acme", &token).await;
    assert_eq!(repos["size"], 1, "bob sees only the public repository");
    let (status, _, _) = sim.cloud_get("/repositories/acme/widget", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pull_requests_are_listed_and_created_with_field_errors() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(&["pull_requests.write"], false).await;
    let token = sim.cloud_connect(&client).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}/2.0/repositories/acme/widget/pullrequests", sim.url);

    let missing_title = sim
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"source": {"branch": {"name": "main"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing_title.status(), StatusCode::BAD_REQUEST);
    let body: Value = missing_title.json().await.unwrap();
    assert_eq!(
        body["error"]["fields"]["title"][0],
        "required key not provided"
    );

    let no_branch = json!({"title": "T", "source": {"branch": {"name": "nope"}}});
    let response = sim
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&no_branch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["fields"]["source"][0],
        "Branch not found: nope"
    );

    let not_json = sim
        .http
        .post(&url)
        .bearer_auth(&token)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);

    let (_, _, list) = sim
        .cloud_get("/repositories/acme/widget/pullrequests", &token)
        .await;
    assert_eq!(list["size"], 0);
}
