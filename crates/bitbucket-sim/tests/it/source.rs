//! What git holds, read through Cloud REST as published clients read it: `src` listings and raw
//! files (paths percent-encoded, HEAD with the real length), commits, pull request diffs through
//! Bitbucket's 302 to the canonical spec URL, diffstat, and the workspace links clients follow.

use crate::common::TestSim;
use bitbucket_sim::Mode;
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

async fn token(sim: &TestSim, permissions: &[&str]) -> String {
    let client = sim.consumer(permissions, false).await;
    sim.cloud_connect(&client).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn commit(sim: &TestSim, branch: &str, files: Value) -> String {
    let body = json!({"branch": branch, "message": format!("Work on {branch}"), "files": files});
    let made = sim
        .post("/_sim/repositories/acme/widget/commits", body)
        .await;
    made["hash"].as_str().unwrap().to_owned()
}

async fn get(sim: &TestSim, url: &str, token: &str) -> reqwest::Response {
    let url = if url.starts_with("http") {
        url.to_owned()
    } else {
        format!("{}/2.0{url}", sim.url)
    };
    sim.http.get(url).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn directories_list_and_files_stream_with_their_length() {
    let sim = TestSim::start(Mode::Rotating).await;
    let token = token(&sim, &["repositories.read"]).await;
    let head = commit(
        &sim,
        "main",
        json!({"docs/guide.md": "# Guide\n", "data/big.bin": {"size": 3_000_000}}),
    )
    .await;

    let root = get(&sim, "/repositories/acme/widget/src", &token).await;
    assert_eq!(root.status(), StatusCode::FOUND);
    let listing_url = root.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        listing_url.ends_with(&format!("/src/{head}/")),
        "{listing_url}"
    );
    let listing: Value = get(&sim, &listing_url, &token).await.json().await.unwrap();
    let entries: Vec<(&str, &str)> = listing["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        [
            ("commit_file", "README.md"),
            ("commit_directory", "data"),
            ("commit_directory", "docs")
        ]
    );

    // npm `bitbucket` sends the file path with `/` encoded; Bitbucket reads it as a path.
    let file = get(
        &sim,
        "/repositories/acme/widget/src/main/docs%2Fguide.md",
        &token,
    )
    .await;
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()[header::CONTENT_TYPE], "text/plain");
    assert_eq!(file.text().await.unwrap(), "# Guide\n");

    let big = get(
        &sim,
        "/repositories/acme/widget/src/main/data/big.bin",
        &token,
    )
    .await;
    assert_eq!(big.headers()[header::CONTENT_LENGTH], "3000000");
    assert_eq!(big.bytes().await.unwrap().len(), 3_000_000);

    let head_only = sim
        .http
        .head(format!(
            "{}/2.0/repositories/acme/widget/src/main/data/big.bin",
            sim.url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(head_only.status(), StatusCode::OK);
    assert_eq!(head_only.headers()[header::CONTENT_LENGTH], "3000000");
    assert!(head_only.bytes().await.unwrap().is_empty());

    let meta: Value = get(
        &sim,
        "/repositories/acme/widget/src/main/docs/guide.md?format=meta",
        &token,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (meta["type"].as_str(), meta["size"].as_u64()),
        (Some("commit_file"), Some(8))
    );

    let missing = get(
        &sim,
        "/repositories/acme/widget/src/main/nothing.txt",
        &token,
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["type"], "error");
}

#[tokio::test]
async fn pull_request_diffs_redirect_to_the_canonical_spec() {
    let sim = TestSim::start(Mode::Rotating).await;
    let token = token(&sim, &["pull_requests.write", "repositories.read"]).await;
    let feature = commit(&sim, "feature", json!({"feature.txt": "new line\n"})).await;
    let created = sim
        .http
        .post(format!(
            "{}/2.0/repositories/acme/widget/pullrequests",
            sim.url
        ))
        .bearer_auth(&token)
        .json(&json!({"title": "Feature", "source": {"branch": {"name": "feature"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let pr: Value = created.json().await.unwrap();
    assert_eq!(pr["source"]["commit"]["hash"], &feature[..12]);

    let one: Value = get(&sim, "/repositories/acme/widget/pullrequests/1", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (one["id"].as_u64(), one["title"].as_str()),
        (Some(1), Some("Feature"))
    );

    let redirect = get(
        &sim,
        "/repositories/acme/widget/pullrequests/1/diff",
        &token,
    )
    .await;
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let canonical = redirect.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        canonical.contains(&format!("/diff/acme/widget:{}%0D", &feature[..12]))
            && canonical.ends_with("?from_pullrequest_id=1&topic=true"),
        "{canonical}"
    );
    let diff = get(&sim, &canonical, &token).await.text().await.unwrap();
    assert!(
        diff.contains("+++ b/feature.txt") && diff.contains("+new line"),
        "{diff}"
    );
    let two_dot = get(&sim, "/repositories/acme/widget/diff/feature..main", &token).await;
    assert_eq!(
        two_dot.text().await.unwrap(),
        diff,
        "source..destination, from the merge base"
    );

    let redirect = get(
        &sim,
        "/repositories/acme/widget/pullrequests/1/diffstat",
        &token,
    )
    .await;
    let stat_url = redirect.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let stat: Value = get(&sim, &stat_url, &token).await.json().await.unwrap();
    assert_eq!(stat["values"][0]["status"], "added");
    assert_eq!(stat["values"][0]["new"]["path"], "feature.txt");
    assert_eq!(stat["values"][0]["lines_added"], 1);

    let commits: Value = get(
        &sim,
        "/repositories/acme/widget/pullrequests/1/commits",
        &token,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(commits["values"].as_array().unwrap().len(), 1);
    assert_eq!(commits["values"][0]["hash"], feature);
    assert_eq!(commits["values"][0]["message"], "Work on feature\n");

    let history: Value = get(&sim, "/repositories/acme/widget/commits/feature", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        history["values"].as_array().unwrap().len(),
        2,
        "the change and the first commit"
    );
    let single = get(
        &sim,
        &format!("/repositories/acme/widget/diff/{feature}"),
        &token,
    )
    .await;
    assert_eq!(
        single.text().await.unwrap(),
        diff,
        "one commit: against its parent"
    );
}

#[tokio::test]
async fn workspaces_carry_the_links_clients_follow() {
    let sim = TestSim::start(Mode::Rotating).await;
    let token = token(&sim, &["account.read", "pull_requests.read"]).await;

    let access: Value = get(&sim, "/user/workspaces", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(access["values"][0]["type"], "workspace_access");
    assert_eq!(access["values"][0]["workspace"]["slug"], "acme");

    let workspace: Value = get(&sim, "/workspaces/acme", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(workspace["type"], "workspace");
    let repositories = workspace["links"]["repositories"]["href"].as_str().unwrap();
    let listed: Value = get(&sim, repositories, &token).await.json().await.unwrap();
    assert_eq!(listed["size"], 2);
    let repo_self = listed["values"][0]["links"]["self"]["href"]
        .as_str()
        .unwrap();
    let repo: Value = get(&sim, repo_self, &token).await.json().await.unwrap();
    assert_eq!(repo["type"], "repository");
    let prs = repo["links"]["pullrequests"]["href"].as_str().unwrap();
    assert_eq!(get(&sim, prs, &token).await.status(), StatusCode::OK);

    let elsewhere = get(&sim, "/workspaces/nobody-here", &token).await;
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
}
