//! `grantry demo`: the whole flow, offline. Starts the Bitbucket simulator and a Grantry server in
//! this process, does what an admin and an application would do (over Grantry's real HTTP API),
//! and prints what to try next.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use bitbucket_sim::{Mode, Seed, SimBuilder};
use grantry_core::Actor;
use grantry_core::store::Role;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::cli::DemoArgs;
use crate::config::Config;
use crate::runtime::{self, Schema};
use crate::serve;

const WORLD: &str = r#"
[settings]
auto_approve = "alice"

[[users]]
username = "alice"
display_name = "Alice Liddell"
email = "alice@example.com"
password = "alice"

[[workspaces]]
slug = "acme"
name = "Acme"
members = ["alice"]

[[repositories]]
workspace = "acme"
slug = "widget"
description = "A private repository with one commit."
"#;

async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await {
        Ok(listener) => Ok(listener),
        Err(_) if port != 0 => {
            eprintln!("(port {port} is taken; using a free one)");
            Ok(TcpListener::bind("127.0.0.1:0").await?)
        }
        Err(error) => Err(error.into()),
    }
}

/// Calls Grantry's API; fails with the problem's text if the answer is not a success.
async fn api(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut request = http.request(method, &url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("calling {url}"))?;
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{url} answered {status}: {}", value["detail"]);
    }
    Ok(value)
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// The strings of a JSON array, joined.
fn words(value: &Value, separator: &str) -> String {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(separator)
        })
        .unwrap_or_default()
}

fn step(n: u32, text: &str) {
    println!("\n{n}. {text}");
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mode = Mode::parse(&args.mode).map_err(anyhow::Error::msg)?;
    let sim = SimBuilder::new()
        .mode(mode)
        .seed(Seed::parse("demo world", WORLD)?)
        .start()
        .await?;
    let listener = bind(args.port).await?;
    let address = listener.local_addr()?;
    let data = tempfile::Builder::new().prefix("grantry-demo-").tempdir()?;
    let config = Config::against_simulator(address, data.path().to_owned(), &sim.url().parse()?)?;
    let runtime = runtime::open(&config, Schema::Migrate).await?;
    let grantry = runtime.grantry.clone();
    let console_password = grantry_crypto::random_token(12);
    let console_secret = secrecy::SecretString::from(console_password.clone());
    grantry
        .create_admin("admin", &console_secret, &Actor::Cli)
        .await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server_config = config.clone();
    let server = tokio::spawn(async move {
        serve::run(runtime, listener, &server_config, async {
            let _ = stopped.await;
        })
        .await
    });

    println!("Grantry demo: everything below runs offline, on this machine.");
    println!(
        "  Bitbucket simulator  {} (Cloud, {mode} token format)",
        sim.url()
    );
    println!("  Grantry              {}", config.base_url());

    let admin = grantry
        .create_api_key("demo-admin", Role::Admin, &Actor::Cli)
        .await?;
    let app = grantry
        .create_api_key("demo-app", Role::App, &Actor::Cli)
        .await?;
    let (admin_key, app_key) = (
        admin.secret.expose_secret().to_owned(),
        app.secret.expose_secret().to_owned(),
    );
    let http = reqwest::Client::new();
    let base = config.base_url();
    let callback = format!("{base}/oauth/callback");

    step(
        1,
        "An admin adds an OAuth consumer in Bitbucket (Workspace settings > Apps and features > OAuth consumers),",
    );
    println!(
        "   with Grantry's callback URL {callback}, ticking Account Read, Repositories Write and Pull requests Read."
    );
    let consumer = json!({"workspace": "acme", "name": "Grantry demo", "callback_url": callback,
                          "permissions": ["account.read", "repositories.write", "pull_requests.read"]});
    let consumer: Value = http
        .post(format!("{}/_sim/consumers", sim.url()))
        .json(&consumer)
        .send()
        .await?
        .json()
        .await?;

    step(
        2,
        "The admin registers it in Grantry as a profile (POST /v1/profiles):",
    );
    let profile = json!({"name": "Demo backups", "description": "Backs up Acme's repositories",
        "provider": "bitbucket-cloud", "key": consumer["key"], "secret": consumer["secret"],
        "required_scopes": ["repository:write", "pullrequest"]});
    let profile = api(
        &http,
        reqwest::Method::POST,
        format!("{base}/v1/profiles"),
        &admin_key,
        Some(profile),
    )
    .await?;
    println!(
        "   profile {} \"{}\"; Grantry asks for these boxes: {}",
        text(&profile["id"]),
        text(&profile["name"]),
        words(&profile["setup"]["tick"], ", ")
    );

    step(
        3,
        "The application asks for a connect link for its user `user-42` (POST /v1/connect-sessions),",
    );
    println!(
        "   and the user's browser follows it: Grantry → Bitbucket consent (auto-approved as alice) → Grantry's callback."
    );
    let session = api(
        &http,
        reqwest::Method::POST,
        format!("{base}/v1/connect-sessions"),
        &app_key,
        Some(json!({"profile": "Demo backups", "end_user_id": "user-42"})),
    )
    .await?;
    // A browser keeps the cookie the connect link gives it: the callback wants it back.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(10))
        .cookie_store(true)
        .build()?;
    let landed = browser
        .get(session["url"].as_str().unwrap_or_default())
        .send()
        .await?;
    let final_url = landed.url().clone();
    let connection = final_url
        .query_pairs()
        .find(|(k, _)| k == "connection_id")
        .map(|(_, v)| v.into_owned())
        .with_context(|| format!("the connect flow ended at {final_url} without a connection"))?;
    println!(
        "   the browser came back to {}{}",
        final_url.path(),
        final_url
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    );

    step(
        4,
        "The application gets a valid token with one request (GET /v1/connections/{id}/token):",
    );
    let token = api(
        &http,
        reqwest::Method::GET,
        format!("{base}/v1/connections/{connection}/token"),
        &app_key,
        None,
    )
    .await?;
    let access = token["access_token"].as_str().unwrap_or_default();
    println!(
        "   {} for {} — {}… ({} characters), expires in {} s, scopes: {}",
        text(&token["token_type"]),
        text(&token["account"]["username"]),
        &access[..access.len().min(12)],
        access.len(),
        token["expires_in"],
        words(&token["scopes"], " ")
    );

    step(
        5,
        "Grantry refreshes (here on request; normally ahead of expiry) and Bitbucket rotates the refresh token:",
    );
    api(
        &http,
        reqwest::Method::POST,
        format!("{base}/v1/connections/{connection}/refresh"),
        &app_key,
        None,
    )
    .await?;
    let stats: Value = http
        .get(format!("{}/_sim/stats", sim.url()))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "   the simulator counted {} refresh grant(s) and {} refresh token(s) used twice",
        stats["counts"]["token"]["refresh_token"]["ok"],
        stats["refresh_token_reuse"].as_array().map_or(0, Vec::len)
    );

    println!("\nTry it yourself (in another terminal):");
    println!(
        "  curl -s -H 'Authorization: Bearer {app_key}' {base}/v1/connections/{connection}/token"
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {app_key}' {base}/v1/proxy/{connection}/repositories/acme   # Bitbucket's API, Grantry holding the token"
    );
    println!("  curl -s -H 'Authorization: Bearer {app_key}' {base}/v1/connections");
    println!("  curl -s -H 'Authorization: Bearer {admin_key}' {base}/v1/events");
    println!("  curl -s {base}/metrics");
    println!(
        "\nThe web console: {base}/ui/ — sign in as `admin` with password `{console_password}`."
    );
    println!(
        "(On the simulator's consent page, sign in as alice / alice.) Its control API: {}/_sim/",
        sim.url()
    );

    if !args.no_wait {
        println!(
            "\nServing until Ctrl-C. Nothing is kept: the data lives in a temporary directory."
        );
        serve::shutdown_signal().await;
    }
    let _ = stop.send(());
    server.await??;
    sim.stop().await;
    Ok(())
}
