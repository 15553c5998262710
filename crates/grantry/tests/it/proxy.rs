//! `/v1/proxy`: an application calls Bitbucket's REST API through Grantry without ever holding
//! the token, and a token Bitbucket stopped honouring is refreshed once and the call repeated.

use crate::common::TestApp;
use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn connection(app: &TestApp) -> String {
    let profile = app
        .cloud_profile(
            "P",
            &["account.read", "pull_requests.write"],
            &["account", "pullrequest:write"],
        )
        .await;
    app.connect(&profile, "user-1").await
}

/// A proxied call with the app key: (status, headers, body as JSON or text).
async fn through(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = app
        .http
        .request(method, format!("{}/v1/proxy/{path}", app.base))
        .bearer_auth(&app.app_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_call_bitbucket_without_holding_the_token() {
    let app = TestApp::start(Mode::Rotating).await;
    let connection = connection(&app).await;

    let (status, headers, user) =
        through(&app, Method::GET, &format!("{connection}/user"), None).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["username"], "alice");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(
        headers["x-oauth-scopes"]
            .to_str()
            .unwrap()
            .contains("pullrequest:write"),
        "Bitbucket's scope headers come back"
    );

    let (status, _, page) = through(
        &app,
        Method::GET,
        &format!("{connection}/repositories/acme?pagelen=1"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["pagelen"], 1, "the query string travels");

    // The body travels too: Bitbucket read it and named the missing branch.
    let pr = json!({"title": "Nightly", "source": {"branch": {"name": "no-such-branch"}}});
    let (status, _, refused) = through(
        &app,
        Method::POST,
        &format!("{connection}/repositories/acme/widget/pullrequests"),
        Some(pr),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.to_string().contains("no-such-branch"), "{refused}");

    // Bitbucket's refusals pass through as they are.
    let (status, _, _) = through(
        &app,
        Method::GET,
        &format!("{connection}/repositories/acme/no-such-repo"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // (HTTP clients drop plain `..` segments themselves; encoded slashes survive them.)
    for bad in ["..%2F..%2Fadmin", "user%2F..%2F..%2Fx", "a//b"] {
        let (status, _, problem) =
            through(&app, Method::GET, &format!("{connection}/{bad}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("segment"),
            "{problem}"
        );
    }
    let (status, _, problem) =
        through(&app, Method::TRACE, &format!("{connection}/user"), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{problem}");
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/v1/proxy/{connection}/user"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an API key is needed");
    let (status, _, problem) = through(&app, Method::GET, "con_nothere/user", None).await;
    assert!(status.is_client_error(), "{problem}");
    assert_eq!(app.refreshes_seen().await, 0, "nothing needed a refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_refreshed_once_and_the_call_repeated() {
    let app = TestApp::start(Mode::Rotating).await;
    let connection = connection(&app).await;
    let (_, first) = app.token(&connection).await;

    // Bitbucket's clock passes the token's expiry while Grantry's still thinks it fresh (a token
    // revoked early looks the same to Grantry).
    app.clock.advance(120);
    app.sim_post("/_sim/clock/advance", json!({"seconds": 7300}))
        .await;
    let (status, _, user) = through(&app, Method::GET, &format!("{connection}/user"), None).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["username"], "alice");
    assert_eq!(
        app.refreshes_seen().await,
        1,
        "one refresh, then the call again"
    );
    let (_, second) = app.token(&connection).await;
    assert_ne!(second["access_token"], first["access_token"]);

    // A token refused just after its refresh is not refreshed again: the 401 comes back.
    app.sim_post("/_sim/clock/advance", json!({"seconds": 7300}))
        .await;
    let (status, _, _) = through(&app, Method::GET, &format!("{connection}/user"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.refreshes_seen().await, 1, "no refresh storm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_center_calls_go_below_its_rest_base() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.dc_profile("DC", &["REPO_READ"], &["REPO_READ"]).await;
    let connection = app.connect(&profile, "u").await;
    let (status, _, projects) =
        through(&app, Method::GET, &format!("{connection}/projects"), None).await;
    assert_eq!(status, StatusCode::OK, "{projects}");
    assert!(
        projects["values"].as_array().is_some_and(|v| !v.is_empty()),
        "the user's projects, from {{base}}/rest/api/latest/projects: {projects}"
    );
}

/// Sends a request line exactly as written (as `curl --path-as-is` would): HTTP clients
/// normalize dot segments themselves, attackers do not. Answers the status and the body.
async fn as_written(app: &TestApp, method: &str, target: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
        app.app_key
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer[9..12].parse().unwrap();
    (status, answer)
}

/// The review's bypass: a control character inside dots passed the dot-segment check, the URL
/// parser then dropped it and resolved `..`, and the call reached the simulator's control API
/// with the connection's token (on Data Center, one level above the REST base).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spelling_of_dot_segments_leaves_the_rest_api() {
    let app = TestApp::start(Mode::Rotating).await;
    let cloud = connection(&app).await;
    let profile = app.dc_profile("DC", &["REPO_READ"], &["REPO_READ"]).await;
    let dc = app.connect(&profile, "u").await;
    let escapes = [
        ".%09./.%09./_sim/world",
        ".%0a./.%0a./_sim/world",
        ".%0D./.%0d./_sim/world",
        "%09../%09../_sim/world",
        "..%09/..%09/_sim/world",
        "%2e%2e/%2e%2e/_sim/world",
        ".%2e/.%2E/_sim/world",
        "../../_sim/world",
        "./../../_sim/world",
        "..%5C..%5C_sim/world",
        "a%2F..%2F..%2F..%2F_sim%2Fworld",
        "2.0/../_sim/world",
        "rest/../_sim/world",
    ];
    for connection in [&cloud, &dc] {
        for path in escapes {
            for method in ["GET", "POST", "DELETE"] {
                let target = format!("/v1/proxy/{connection}/{path}");
                let (status, answer) = as_written(&app, method, &target).await;
                assert_eq!(status, 400, "{method} {path}: {answer}");
                assert!(answer.contains("application/problem+json"), "{answer}");
                assert!(
                    !answer.contains("consumers"),
                    "{method} {path} reached the simulator's control API: {answer}"
                );
            }
        }
    }
}
