//! API keys and roles, bad input of every kind (a clear 4xx, never a 500), and sealed values that
//! refuse to open anywhere but where they were sealed.

use crate::common::views::{ApiKey, Connection, Problem, Session, decode};
use crate::common::{TestApp, expect, refused};
use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn every_v1_route_needs_a_valid_key_and_the_right_role() {
    let app = TestApp::start(Mode::Rotating).await;
    let routes = [
        (Method::GET, "/v1/profiles"),
        (Method::POST, "/v1/profiles"),
        (Method::POST, "/v1/connect-sessions"),
        (Method::GET, "/v1/connections"),
        (
            Method::GET,
            "/v1/connections/con_00000000000000000000000000/token",
        ),
        (Method::GET, "/v1/api-keys"),
        (Method::GET, "/v1/events"),
        (Method::GET, "/v1/webhooks"),
        (
            Method::POST,
            "/v1/webhooks/wh_00000000000000000000000000/test",
        ),
    ];
    for (method, path) in &routes {
        let (status, problem) =
            refused(app.call(method.clone(), path, None, Some(json!({}))).await);
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(problem.kind, "urn:grantry:problem:unauthorized");
        let (status, _) = app
            .call(
                method.clone(),
                path,
                Some("gry_not-a-real-key"),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a wrong key"
        );
    }
    let response = app
        .http
        .get(format!("{}/v1/profiles", app.base))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"grantry\""
    );

    for (method, path, body) in [
        (Method::POST, "/v1/profiles", json!({})),
        (Method::PATCH, "/v1/profiles/x", json!({})),
        (Method::DELETE, "/v1/profiles/x", json!(null)),
        (
            Method::POST,
            "/v1/api-keys",
            json!({"name": "x", "role": "admin"}),
        ),
        (Method::GET, "/v1/api-keys", json!(null)),
        (Method::GET, "/v1/events", json!(null)),
        (Method::GET, "/v1/webhooks", json!(null)),
        (Method::POST, "/v1/webhooks", json!({"url": "http://x/"})),
        (
            Method::POST,
            "/v1/webhooks/wh_00000000000000000000000000/rotate-secret",
            json!(null),
        ),
        (
            Method::GET,
            "/v1/webhooks/wh_00000000000000000000000000/deliveries",
            json!(null),
        ),
    ] {
        let (status, problem) = refused(app.app(method.clone(), path, Some(body)).await);
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "app key on {method} {path}: {problem:?}"
        );
        assert_eq!(problem.kind, "urn:grantry:problem:forbidden");
    }
}

#[tokio::test]
async fn api_keys_are_shown_once_and_revocation_bites_at_once() {
    let app = TestApp::start(Mode::Rotating).await;
    let created: ApiKey = expect(
        app.admin(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "ci", "role": "app"})),
        )
        .await,
        StatusCode::CREATED,
    );
    let key = created.key.clone().unwrap();
    assert!(key.starts_with("gry_"));
    assert_eq!(
        app.call(Method::GET, "/v1/connections", Some(&key), None)
            .await
            .0,
        StatusCode::OK
    );

    let (_, listed) = app.admin(Method::GET, "/v1/api-keys", None).await;
    assert!(
        !listed.to_string().contains(&key),
        "listings never show keys"
    );
    let id = &created.id;
    assert_eq!(
        app.admin(Method::DELETE, &format!("/v1/api-keys/{id}"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(Method::GET, "/v1/connections", Some(&key), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.admin(Method::DELETE, &format!("/v1/api-keys/{id}"), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, problem) = app
        .admin(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "x", "role": "owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
}

/// Method, path, content type, body, expected status, words the problem's detail must contain.
type Case = (
    Method,
    &'static str,
    &'static str,
    Vec<u8>,
    StatusCode,
    &'static str,
);

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, String, String) {
    let response = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(&app.admin_key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

#[tokio::test]
async fn bad_input_gets_a_4xx_that_names_the_problem() {
    let app = TestApp::start(Mode::Rotating).await;
    let json_type = "application/json";
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/v1/profiles",
            json_type,
            b"{".to_vec(),
            StatusCode::BAD_REQUEST,
            "EOF",
        ),
        (
            Method::POST,
            "/v1/profiles",
            json_type,
            b"[]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Failed to deserialize",
        ),
        (
            Method::POST,
            "/v1/profiles",
            "text/plain",
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
        ),
        (
            Method::POST,
            "/v1/profiles",
            json_type,
            vec![b' '; 200 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "length limit",
        ),
        (
            Method::POST,
            "/v1/connect-sessions",
            json_type,
            br#"{"profile":"x","sneaky":1}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `sneaky`",
        ),
        (
            Method::POST,
            "/v1/connect-sessions",
            json_type,
            br#"{"profile":"x","connection_id":"nope"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "not a valid connection id",
        ),
        (
            Method::GET,
            "/v1/connections/con_!!/token",
            json_type,
            vec![],
            StatusCode::BAD_REQUEST,
            "not a valid connection id",
        ),
        (
            Method::GET,
            "/v1/connections/prf_00000000000000000000000000",
            json_type,
            vec![],
            StatusCode::BAD_REQUEST,
            "not a valid connection id",
        ),
        (
            Method::GET,
            "/v1/connections?limit=abc",
            json_type,
            vec![],
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            Method::GET,
            "/v1/connections?bogus=1",
            json_type,
            vec![],
            StatusCode::BAD_REQUEST,
            "bogus",
        ),
        (
            Method::DELETE,
            "/v1/api-keys/key_x",
            json_type,
            vec![],
            StatusCode::BAD_REQUEST,
            "API key id",
        ),
        (
            Method::GET,
            "/v2/anything",
            json_type,
            vec![],
            StatusCode::NOT_FOUND,
            "/v1",
        ),
        (
            Method::PUT,
            "/v1/profiles",
            json_type,
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
        ),
        (
            Method::POST,
            "/v1/profiles",
            json_type,
            "{\"name\": \"\u{0}\"}".as_bytes().to_vec(),
            StatusCode::BAD_REQUEST,
            "control character",
        ),
        (
            Method::POST,
            "/v1/profiles",
            json_type,
            br#"{"name": "\u0000"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing field `provider`",
        ),
    ];
    for (method, path, content_type, body, expected, needle) in cases {
        let (status, kind, text) = raw(&app, method.clone(), path, content_type, body).await;
        assert_eq!(status, expected, "{method} {path}: {text}");
        assert_eq!(kind, "application/problem+json", "{method} {path}");
        let problem: Problem = decode(&serde_json::from_str(&text).unwrap());
        assert!(problem.kind.starts_with("urn:grantry:problem:"));
        assert!(
            problem.detail.contains(needle),
            "{method} {path}: `{}` lacks `{needle}`",
            problem.detail
        );
    }
}

#[tokio::test]
async fn no_input_makes_the_server_answer_500() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let weird = [
        "",
        "null",
        "0",
        "\"x\"",
        "{\"name\":1e999}",
        "{\"profile\":{}}",
        "{\"profile\":\"\u{202e}\"}",
        "{\"credential\":{\"type\":\"api_token\"}}",
        "{\"required_scopes\":[null]}",
        "{\"private\":\"yes\"}",
    ];
    let paths = [
        "/v1/profiles",
        "/v1/connect-sessions",
        "/v1/connections",
        "/v1/api-keys",
        &format!("/v1/profiles/{profile}"),
    ];
    for path in paths {
        for body in weird {
            for method in [Method::POST, Method::PATCH] {
                let (status, _, text) = raw(
                    &app,
                    method.clone(),
                    path,
                    "application/json",
                    body.as_bytes().to_vec(),
                )
                .await;
                assert!(
                    status.as_u16() < 500,
                    "{method} {path} {body}: {status} {text}"
                );
            }
        }
    }
    for path in [
        "/connect/%00",
        "/connect/../../etc",
        "/oauth/callback?state=%FF%FE",
        "/oauth/callback?error=<script>&state=x",
        "/connect/complete?error=<script>alert(1)</script>",
    ] {
        let response = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().as_u16() < 500,
            "{path}: {}",
            response.status()
        );
        assert!(
            !response.text().await.unwrap().contains("<script>"),
            "{path} echoes markup unescaped"
        );
    }
}

#[tokio::test]
async fn a_sealed_value_moved_to_another_row_does_not_open() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let mut ids = Vec::new();
    for token in ["first-token", "second-token"] {
        let body =
            json!({"profile": profile, "credential": {"type": "access_token", "token": token}});
        let answer = app.app(Method::POST, "/v1/connections", Some(body)).await;
        ids.push(expect::<Connection>(answer, StatusCode::CREATED).id);
    }
    let db = app.dir.path().join("grantry.db");
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        db.display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE connections SET access_token = (SELECT access_token FROM connections WHERE id = $1) WHERE id = $2")
        .bind(&ids[0])
        .bind(&ids[1])
        .execute(&mut conn)
        .await
        .unwrap();
    app.grantry.forget_everything();

    // Raw as well: the point is also that nothing in the body names the cause.
    let (status, body) = app.token(&ids[1]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        decode::<Problem>(&body).kind,
        "urn:grantry:problem:internal"
    );
    assert!(
        !body.to_string().contains("token"),
        "a generic body: {body}"
    );
    assert_eq!(app.read_token(&ids[0]).await.access_token, "first-token");
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_without_a_key() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let connection = app.connect(&profile, "u").await;
    app.token(&connection).await;
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        app.call(Method::GET, "/readyz", None, None).await.0,
        StatusCode::OK
    );
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("grantry_connections{status=\"active\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("grantry_token_reads_total{outcome=\"cache\"}"));
    assert!(metrics.contains("grantry_provider_request_duration_seconds_count"));
}

/// Behind HTTPS every cookie Grantry sets is `Secure`, derived from `public_url` alone.
#[tokio::test]
async fn cookies_are_secure_when_the_public_url_is_https() {
    let app = TestApp::with(Mode::Rotating, |c| {
        c.public_url = "https://grantry.example.com".parse().unwrap()
    })
    .await;
    let password = secrecy::SecretString::from("correct horse battery staple");
    app.grantry
        .create_admin("admin", &password, &grantry_core::Actor::Cli)
        .await
        .unwrap();
    let direct = format!("http://{}", app.config.listen);
    let signed_in = app
        .http
        .post(format!("{direct}/ui/login"))
        .form(&[
            ("username", "admin"),
            ("password", "correct horse battery staple"),
        ])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");

    let profile = app.cloud_profile_at(&direct, "P").await;
    let body = json!({"profile": profile});
    let session: Session = app
        .http
        .post(format!("{direct}/v1/connect-sessions"))
        .bearer_auth(&app.app_key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = session.url.replace("https://grantry.example.com", &direct);
    let opened = app.http.get(link).send().await.unwrap();
    let cookie = opened.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

/// `/connect/complete` shows only messages for codes it knows: never text from its URL.
#[tokio::test]
async fn the_landing_page_never_repeats_its_url() {
    let app = TestApp::start(Mode::Rotating).await;
    for error in ["Call+0800+123+456+to+restore+your+account", "access_denied"] {
        let page = app
            .http
            .get(format!(
                "{}/connect/complete?error={error}&connection_id=evil",
                app.base
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!page.contains("0800") && !page.contains("evil"), "{page}");
        assert!(page.contains("Not connected"), "{page}");
    }
}

/// Errors from the layers around handlers are problem+json too: a body over the limit on the
/// proxy and the console, and a request that runs past the timeout.
#[tokio::test]
async fn limits_and_timeouts_answer_problems() {
    let app = TestApp::with(Mode::Rotating, |c| {
        c.http.request_timeout_secs = 1;
        c.http.proxy_body_limit_mib = 1;
        c.outbound.idle_timeout_secs = 1;
    })
    .await;
    let profile = app.cloud_profile("P", &["account.read"], &[]).await;
    let connection = app.connect(&profile, "u").await;
    let big = vec![b'x'; 2 * 1024 * 1024];
    for path in [
        format!("/v1/proxy/{connection}/user"),
        "/ui/login".to_owned(),
    ] {
        let response = app
            .http
            .post(format!("{}{path}", app.base))
            .bearer_auth(&app.app_key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: Problem = response.json().await.unwrap();
        assert_eq!(problem.code, "too-large", "{path}");
    }
    app.sim_fault("rest", json!({"latency_ms": 3000})).await;
    let response = app
        .http
        .post(format!("{}/v1/connections/{connection}/test", app.base))
        .bearer_auth(&app.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Problem = response.json().await.unwrap();
    assert_eq!(problem.code, "timeout");

    // The proxy streams, so it has no request timeout; an answer that stops coming is cut after
    // the idle timeout, and the application reads why.
    let response = app
        .http
        .get(format!("{}/v1/proxy/{connection}/user", app.base))
        .bearer_auth(&app.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let problem: Problem = response.json().await.unwrap();
    assert_eq!(problem.code, "provider-unavailable", "{problem:?}");
    assert!(
        problem.error.is_some(),
        "Bitbucket's error shape too: {problem:?}"
    );
}
