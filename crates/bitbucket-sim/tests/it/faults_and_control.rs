//! Faults switched while running, the control API's refusals, and seed files.

use crate::common::TestSim;
use bitbucket_sim::{Mode, Seed};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn rate_limits_errors_outages_and_dropped_connections() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(&["account.read"], false).await;
    let token = sim.cloud_connect(&client).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let set = |group: &'static str, spec: serde_json::Value| {
        let sim = &sim;
        async move {
            let (status, body) = sim
                .control(Method::PUT, &format!("/_sim/faults/{group}"), spec)
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };

    set("rest", json!({"rate_limit_rate": 1.0, "retry_after": 17})).await;
    let response = sim
        .http
        .get(format!("{}/2.0/user", sim.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "17");
    assert_eq!(
        response.text().await.unwrap(),
        "Rate limit for this resource has been exceeded."
    );

    set("token", json!({"error_rate": 1.0})).await;
    let (status, _) = sim
        .cloud_token(&client, &[("grant_type", "client_credentials")])
        .await;
    assert!(
        status == StatusCode::INTERNAL_SERVER_ERROR || status == StatusCode::SERVICE_UNAVAILABLE
    );
    let (status, _, _) = sim.cloud_get("/user", &token).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "groups are independent"
    );

    set("token", json!({"outage": true})).await;
    assert_eq!(
        sim.cloud_token(&client, &[("grant_type", "client_credentials")])
            .await
            .0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    set("rest", json!({"drop_rate": 1.0})).await;
    let dropped = sim
        .http
        .get(format!("{}/2.0/user", sim.url))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(dropped.is_err(), "the connection closes without an answer");

    set("rest", json!({"latency_ms": 150})).await;
    let started = std::time::Instant::now();
    assert_eq!(sim.cloud_get("/user", &token).await.0, StatusCode::OK);
    assert!(started.elapsed().as_millis() >= 150);

    let (status, _) = sim
        .control(Method::DELETE, "/_sim/faults", json!(null))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let stats = sim.stats().await;
    assert_eq!(stats["counts"]["fault"]["rest"]["429"], 2);
    // A client may retry a GET once on a dropped pooled connection, so at least one.
    assert!(stats["counts"]["fault"]["rest"]["dropped"].as_u64() >= Some(1));
    let token_faults = &stats["counts"]["fault"]["token"];
    let total =
        token_faults["500"].as_u64().unwrap_or(0) + token_faults["503"].as_u64().unwrap_or(0);
    assert_eq!(
        total, 2,
        "one injected error and one outage answer: {token_faults}"
    );
}

#[tokio::test]
async fn bad_control_requests_get_a_4xx_naming_the_problem() {
    let sim = TestSim::start(Mode::Rotating).await;
    let cases = [
        (
            Method::PUT,
            "/_sim/faults/rest",
            json!({"error_rate": 2.0}),
            StatusCode::BAD_REQUEST,
            "error_rate",
        ),
        (
            Method::PUT,
            "/_sim/faults/dns",
            json!({}),
            StatusCode::NOT_FOUND,
            "unknown fault group",
        ),
        (
            Method::PUT,
            "/_sim/faults/rest",
            json!({"eror_rate": 0.1}),
            StatusCode::BAD_REQUEST,
            "eror_rate",
        ),
        (
            Method::POST,
            "/_sim/consumers",
            json!({"workspace": "acme", "name": "x", "permissions": ["repos.read"]}),
            StatusCode::BAD_REQUEST,
            "repos.read",
        ),
        (
            Method::POST,
            "/_sim/consumers",
            json!({"workspace": "nope", "name": "x"}),
            StatusCode::NOT_FOUND,
            "workspace `nope`",
        ),
        (
            Method::POST,
            "/_sim/consumers",
            json!({"workspace": "acme", "name": "x", "callback_url": "not a url"}),
            StatusCode::BAD_REQUEST,
            "callback_url",
        ),
        (
            Method::POST,
            "/_sim/users",
            json!({"username": "alice"}),
            StatusCode::CONFLICT,
            "already exists",
        ),
        (
            Method::POST,
            "/_sim/users",
            json!({"username": "Bad Name"}),
            StatusCode::BAD_REQUEST,
            "username",
        ),
        (
            Method::POST,
            "/_sim/clock/advance",
            json!({"seconds": -5}),
            StatusCode::BAD_REQUEST,
            "forward",
        ),
        (
            Method::PATCH,
            "/_sim/settings",
            json!({"mode": "legacy"}),
            StatusCode::BAD_REQUEST,
            "mode",
        ),
        (
            Method::PATCH,
            "/_sim/settings",
            json!({"code_ttl": 0}),
            StatusCode::BAD_REQUEST,
            "code lifetimes",
        ),
        (
            Method::POST,
            "/_sim/dc/links",
            json!({"name": "x", "redirect_url": "https://a.example", "scopes": ["REPO_EVERYTHING"]}),
            StatusCode::BAD_REQUEST,
            "REPO_EVERYTHING",
        ),
        (
            Method::POST,
            "/_sim/dc/permissions",
            json!({"user": "carol", "project": "PRJ", "permission": "REPO_READ"}),
            StatusCode::BAD_REQUEST,
            "PROJECT_READ",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let (got, answer) = sim.control(method.clone(), path, body.clone()).await;
        assert_eq!(got, status, "{method} {path} {body}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{path}: `{message}` should mention `{needle}`"
        );
    }
    let not_json = sim
        .http
        .post(format!("{}/_sim/users", sim.url))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn editing_a_consumer_changes_what_new_grants_get() {
    let sim = TestSim::start(Mode::Rotating).await;
    let client = sim.consumer(&["account.read"], false).await;
    let path = format!("/_sim/consumers/{}", client.id);
    let (status, edited) = sim
        .control(
            Method::PATCH,
            &path,
            json!({"permissions": ["account.read", "pull_requests.read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    let tokens = sim.cloud_connect(&client).await;
    assert_eq!(tokens["scope"], "account email repository pullrequest");
}

#[test]
fn a_malformed_seed_is_refused_naming_the_field() {
    let typo = "[[users]]\nusername = \"a\"\npasword = \"x\"\n";
    let error = Seed::parse("world.toml", typo).unwrap_err().to_string();
    assert!(
        error.contains("pasword") && error.contains("world.toml"),
        "{error}"
    );

    let bad_setting = "[settings]\nmode = \"2025\"\n";
    let error = Seed::parse("world.toml", bad_setting)
        .unwrap_err()
        .to_string();
    assert!(error.contains("mode") || error.contains("2025"), "{error}");

    let zero = "[settings]\naccess_token_ttl = 0\n";
    let error = Seed::parse("world.toml", zero).unwrap_err().to_string();
    assert!(error.contains("settings"), "{error}");
}

#[tokio::test]
async fn a_seed_with_a_bad_entry_names_the_entry_and_field() {
    let seed = Seed::parse(
        "world.toml",
        "[[users]]\nusername = \"a\"\n[[workspaces]]\nslug = \"w\"\nmembers = [\"a\"]\n\
         [[consumers]]\nworkspace = \"w\"\nname = \"c\"\npermissions = [\"account.reed\"]\n",
    )
    .unwrap();
    let error = bitbucket_sim::SimBuilder::new()
        .seed(seed)
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("consumers[0].permissions") && error.contains("account.reed"),
        "{error}"
    );
}

#[tokio::test]
async fn the_shipped_example_world_loads() {
    let text = include_str!("../../seeds/world.toml");
    let seed = Seed::parse("seeds/world.toml", text).unwrap();
    let running = bitbucket_sim::SimBuilder::new()
        .seed(seed)
        .start()
        .await
        .unwrap();
    assert!(
        running
            .sim
            .world
            .consumer("DemoConsumerKey00000000000000000")
            .is_some()
    );
}

#[tokio::test]
async fn statistics_name_every_caller_by_its_user_agent() {
    let sim = TestSim::start(Mode::Rotating).await;
    for agent in ["grantry/0.1.0", "grantry/0.1.0", "python-requests/2.32.3"] {
        sim.http
            .get(format!("{}/2.0/user", sim.url))
            .header("user-agent", agent)
            .send()
            .await
            .unwrap();
    }
    sim.http
        .get(format!("{}/_sim/world", sim.url))
        .send()
        .await
        .unwrap();
    let stats = sim.stats().await;
    assert_eq!(
        stats["user_agents"],
        json!({"grantry": 2, "python-requests": 1}),
        "control calls are not counted"
    );
    sim.control(Method::DELETE, "/_sim/stats", json!({})).await;
    assert_eq!(sim.stats().await["user_agents"], json!({}));
}
