//! The crash-safety argument, proven: a `grantry serve` process is killed after Bitbucket answered
//! a refresh but before the new tokens were written. Bitbucket has rotated the refresh token; the
//! database still holds the used one. A restarted process waits out the dead one's lease (seconds),
//! refreshes with the stored token — which Bitbucket still accepts inside its 10-minute grace
//! period — and the connection carries on, active.

use crate::common::process::{Server, environment, free_port, run};
use bitbucket_sim::{Mode, Seed, SimBuilder};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WORLD: &str = r#"
[settings]
auto_approve = "alice"
[[users]]
username = "alice"
[[workspaces]]
slug = "acme"
members = ["alice"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_bitbucket_answering_and_the_write_loses_nothing() {
    let sim = SimBuilder::new()
        .mode(Mode::Rotating)
        .seed(Seed::parse("w", WORLD).unwrap())
        .start()
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut env = environment(data.path(), port, sim.url());
    env.push(("GRANTRY_REFRESH__ENABLED".into(), "false".into()));
    env.push(("GRANTRY_REFRESH__LEASE_SECS".into(), "3".into()));
    env.push(("GRANTRY_OUTBOUND__TIMEOUT_SECS".into(), "2".into()));

    let (ok, key, err) = run(
        &env,
        &[
            "api-keys",
            "create",
            "--name",
            "crash-test",
            "--role",
            "admin",
            "--output",
            "json",
        ],
        None,
    )
    .await;
    assert!(ok, "{err}");
    let key: Value = serde_json::from_str(&key).unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
        .unwrap();
    let consumer: Value = http
        .post(format!("{}/_sim/consumers", sim.url()))
        .json(&json!({"workspace": "acme", "name": "c", "callback_url": format!("{base}/oauth/callback"), "permissions": ["account.read"]}))
        .send().await.unwrap().json().await.unwrap();

    let mut crashing = env.clone();
    crashing.push(("GRANTRY_FAILPOINTS".into(), "after-provider-refresh".into()));
    let mut server = Server::start(&crashing, data.path().join("first.log")).await;
    let profile = json!({"name": "P", "provider": "bitbucket-cloud", "key": consumer["key"], "secret": consumer["secret"]});
    let profile: Value = http
        .post(format!("{base}/v1/profiles"))
        .bearer_auth(&key)
        .json(&profile)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session: Value = http
        .post(format!("{base}/v1/connect-sessions"))
        .bearer_auth(&key)
        .json(&json!({"profile": profile["id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let landed = http
        .get(session["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let connection = landed
        .url()
        .query_pairs()
        .find(|(k, _)| k == "connection_id")
        .unwrap()
        .1
        .into_owned();
    let before: Value = http
        .get(format!("{base}/v1/connections/{connection}/token"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let refresh = format!("{base}/v1/connections/{connection}/refresh");
    let answer = http.post(&refresh).bearer_auth(&key).send().await;
    assert!(answer.is_err(), "the process died mid-request");
    assert!(
        server.wait_for_death().await,
        "killed by the failpoint's abort"
    );
    let stats: Value = http
        .get(format!("{}/_sim/stats", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["counts"]["token"]["refresh_token"]["ok"], 1,
        "Bitbucket answered and rotated the token"
    );

    let restarted = Server::start(&env, data.path().join("second.log")).await;
    let response = http.post(&refresh).bearer_auth(&key).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let after: Value = http
        .get(format!("{base}/v1/connections/{connection}/token"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(after["access_token"], before["access_token"]);
    assert_eq!(after["status"], "active");

    let stats: Value = http
        .get(format!("{}/_sim/stats", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reuse = stats["refresh_token_reuse"].as_array().unwrap();
    assert_eq!(
        reuse.len(),
        1,
        "the used token was presented once more: {stats}"
    );
    assert_eq!(
        reuse[0]["later_uses"][0]["accepted"], true,
        "inside the grace period"
    );
    assert_eq!(stats["counts"]["token"]["refresh_token"]["ok"], 2);
    restarted.stop().await;
}
