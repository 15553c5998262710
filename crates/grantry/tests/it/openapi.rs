//! The OpenAPI document: served without a key, equal to `docs/openapi.json` (so an API change
//! shows in review; `UPDATE_OPENAPI=1` rewrites the file), and true to the server: every `/v1`
//! route is in it, and real answers match the schemas it gives them.

use bitbucket_sim::Mode;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

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
        ("/v1/connect-sessions/{session}/confirm", &["post"]),
        ("/v1/connections", &["get", "post"]),
        ("/v1/connections/{connection}", &["get", "delete"]),
        ("/v1/connections/{connection}/token", &["get"]),
        ("/v1/connections/{connection}/refresh", &["post"]),
        ("/v1/connections/{connection}/test", &["post"]),
        ("/v1/api-keys", &["get", "post"]),
        ("/v1/api-keys/{key}", &["delete"]),
        ("/v1/events", &["get"]),
        ("/v1/webhooks", &["get", "post"]),
        ("/v1/webhooks/{webhook}", &["get", "patch", "delete"]),
        ("/v1/webhooks/{webhook}/rotate-secret", &["post"]),
        ("/v1/webhooks/{webhook}/test", &["post"]),
        ("/v1/webhooks/{webhook}/deliveries", &["get"]),
        (
            "/v1/webhooks/{webhook}/deliveries/{event}/redeliver",
            &["post"],
        ),
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

/// Schemathesis, which nobody here wrote, tries every operation with data generated from the
/// document (and data that breaks it) against a live Grantry with the simulator behind it:
/// no server error, no answer the document does not describe, no status it does not list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_the_document_does_not_say() {
    // The fuzzer makes webhook endpoints with made-up URLs: nothing is delivered to them, so
    // the test reaches no host but this machine.
    let app = TestApp::with(Mode::Rotating, |config| config.webhooks.enabled = false).await;
    // Something to find: a profile and a connection, so not every id is unknown.
    let profile = app.cloud_profile("Backups", &["account.read"], &[]).await;
    let connection = app.connect(&profile, "someone").await;
    let everything_else = schemathesis(
        &app,
        &connection,
        &["--exclude-operation-id", "deleteConnection"],
    )
    .await;
    // Deleting takes an id that does not exist, so the connection above stays for the rest.
    let unknown = "con_00000000000000000000000000";
    let deleting = schemathesis(
        &app,
        unknown,
        &[
            "--include-operation-id",
            "deleteConnection",
            "--phases",
            "examples,coverage,fuzzing",
        ],
    )
    .await;
    for (run, summary) in [
        ("all but deleteConnection", everything_else),
        ("deleteConnection", deleting),
    ] {
        eprintln!("schemathesis, {run}: {summary}");
    }
}

/// Runs schemathesis with `interop/schemathesis.toml`; answers its summary line, or fails
/// with its report.
async fn schemathesis(app: &TestApp, connection: &str, filter: &[&str]) -> String {
    let interop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop");
    let program = interop.join(".venv/bin/schemathesis");
    assert!(
        program.exists(),
        "{} is missing: run interop/install (./scripts/test does)",
        program.display()
    );
    let document = format!("{}/v1/openapi.json", app.base);
    let key = format!("Authorization: Bearer {}", app.admin_key);
    let mut args = vec![
        "--config-file",
        "schemathesis.toml",
        "run",
        document.as_str(),
        "--header",
        key.as_str(),
        "--max-examples",
        "25",
        "--seed",
        "20261207",
        "--no-color",
    ];
    args.extend_from_slice(filter);
    let output = tokio::process::Command::new(&program)
        .current_dir(&interop)
        .env("GRANTRY_CONNECTION", connection)
        .args(&args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if std::env::var_os("SHOW_SCHEMATHESIS").is_some() {
        eprintln!("{stdout}");
    }
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let cases = lines
        .iter()
        .position(|line| line.starts_with("Test cases:"))
        .and_then(|at| lines.get(at + 1))
        .map_or("", |line| line.trim());
    let summary = lines
        .iter()
        .rev()
        .find(|line| line.contains(" in ") && line.starts_with('='))
        .map_or("", |line| line.trim_matches(|c| c == '=' || c == ' '));
    format!("{cases}; {summary}")
}

/// A client generated from the document by published generators (openapi-typescript for the
/// types, openapi-fetch for the calls; pinned in interop/package-lock.json), its script checked
/// by `tsc` against those types, then run: it creates a profile and a connect session, lets a
/// browser finish the flow, confirms the connection and reads its token. A wrong document fails
/// the type check or the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_generated_from_the_document_connects_an_account_and_reads_its_token() {
    let app = TestApp::start(Mode::Rotating).await;
    let (key, secret) = app
        .consumer(&["account.read", "repositories.read"], false)
        .await;
    let interop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop");
    let dir = interop.join("generated-client");
    let bin = |name: &str| {
        let path = interop.join("node_modules/.bin").join(name);
        assert!(
            path.exists(),
            "{} is missing: run interop/install (./scripts/test does)",
            path.display()
        );
        path
    };
    let run = |program: std::path::PathBuf, args: Vec<String>| {
        let dir = dir.clone();
        async move {
            let output = tokio::process::Command::new(&program)
                .args(&args)
                .current_dir(&dir)
                .kill_on_drop(true)
                .output()
                .await
                .expect("runs");
            assert!(
                output.status.success(),
                "{program:?} {args:?} failed:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    };
    let document = format!("{}/v1/openapi.json", app.base);
    run(
        bin("openapi-typescript"),
        vec![document, "-o".into(), "api.d.ts".into()],
    )
    .await;
    run(bin("tsc"), vec!["-p".into(), ".".into()]).await;

    let output = tokio::process::Command::new("node")
        .arg("out/client.js")
        .current_dir(&dir)
        .env("GRANTRY_URL", &app.base)
        .env("GRANTRY_ADMIN_KEY", &app.admin_key)
        .env(
            "CONSUMER",
            json!({"key": key, "secret": secret}).to_string(),
        )
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the generated client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("no JSON from the client: {stdout}"));
    assert_eq!(seen["status"], "active", "{seen}");
    assert_eq!(seen["token_type"], "bearer");
    assert_eq!(seen["account"], "alice");
    assert!(seen["token_length"].as_u64().unwrap() > 2000, "{seen}");
    assert_eq!(seen["missing"], json!({"status": 404, "code": "not-found"}));
}
