//! `/v1/proxy`: an application calls Bitbucket's REST API through Grantry without ever holding
//! the token, and a token Bitbucket stopped honouring is refreshed once and the call repeated.

use crate::common::TestApp;
use crate::common::views::{Connection, Problem, Profile, decode};
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
        let problem: Problem = decode(&problem);
        assert!(problem.detail.contains("segment"), "{problem:?}");
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
    let first = app.read_token(&connection).await;

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
    let second = app.read_token(&connection).await;
    assert_ne!(second.access_token, first.access_token);

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

/// Sends `head` (a request's line and headers, no body) and reads the answer: status, headers
/// and body.
async fn headers_only(app: &TestApp, head: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
                .await
                .expect("an answer within 10 s")
                .unwrap_or(0);
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            });
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_stream_whole_with_their_length_and_head_keeps_it() {
    let app = TestApp::start(Mode::Rotating).await;
    let connection = connection(&app).await;
    let size: usize = 40 * 1024 * 1024;
    let files = json!({"big.bin": {"size": size}});
    app.sim_post(
        "/_sim/repositories/acme/widget/commits",
        json!({"branch": "main", "files": files}),
    )
    .await;
    let url = format!(
        "{}/v1/proxy/{connection}/2.0/repositories/acme/widget/src/main/big.bin",
        app.base
    );

    let mut response = app
        .http
        .get(&url)
        .bearer_auth(&app.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-length"],
        size.to_string().as_str()
    );
    let mut received = 0;
    let mut first_line = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        if first_line.len() < 64 {
            first_line.extend_from_slice(&chunk[..chunk.len().min(64)]);
        }
        received += chunk.len();
    }
    assert_eq!(received, size, "over the old 32 MiB cap, every byte");
    assert!(first_line.starts_with(b"0123456789abcdef"));

    let head = app
        .http
        .head(&url)
        .bearer_auth(&app.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-length"],
        size.to_string().as_str(),
        "HEAD answers the real length, not 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_stream_up_to_the_limit_then_get_a_problem() {
    let app = TestApp::with(Mode::Rotating, |config| {
        config.http.proxy_body_limit_mib = 4
    })
    .await;
    let connection = connection(&app).await;
    app.sim_post(
        "/_sim/repositories/acme/widget/commits",
        json!({"branch": "feature", "files": {"f.txt": "f\n"}}),
    )
    .await;
    let url = format!(
        "{}/v1/proxy/{connection}/2.0/repositories/acme/widget/pullrequests",
        app.base
    );

    // 2 MiB: more than is kept for a repeat, so it streams to Bitbucket.
    let description = "d".repeat(2 * 1024 * 1024);
    let body = json!({"title": "Big", "description": description, "source": {"branch": {"name": "feature"}}});
    let response = app
        .http
        .post(&url)
        .bearer_auth(&app.app_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        created["description"].as_str().map(str::len),
        Some(description.len())
    );

    // Over the limit, declared up front: refused before a byte of the body is read. (The
    // request goes out headers first, as a client waiting for `100 Continue` sends it; a client
    // pushing 5 MiB regardless may see the connection close before it reads the answer.)
    let (status, head, body) = headers_only(
        &app,
        &format!(
            "POST /v1/proxy/{connection}/2.0/repositories/acme/widget/pullrequests HTTP/1.1\r\n\
             Host: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            app.app_key,
            5 * 1024 * 1024
        ),
    )
    .await;
    assert_eq!(status, 413, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    let problem: Problem = decode(&serde_json::from_str(&body).unwrap());
    assert!(problem.detail.contains("4194304 bytes"), "{problem:?}");
    assert_eq!(
        problem.error.as_ref().map(|e| e.message.as_str()),
        Some(problem.detail.as_str()),
        "Cloud clients read error.message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grantrys_refusals_read_as_bitbucket_errors_to_clients() {
    let app = TestApp::start(Mode::Rotating).await;
    let profile = app
        .cloud_profile("Revoked", &["account.read"], &["account"])
        .await;
    let connection = app.connect(&profile, "u").await;
    let consumer = app.grantry.find_profile(&profile).await.unwrap().client_id;
    app.sim_post(
        &format!("/_sim/users/alice/authorizations/{consumer}/revoke"),
        json!({}),
    )
    .await;
    app.advance(7200).await;

    // A client that asks for plain JSON (npm `bitbucket`, requests) gets it, with Bitbucket's
    // fields beside the problem's.
    let response = app
        .http
        .get(format!("{}/v1/proxy/{connection}/2.0/user", app.base))
        .bearer_auth(&app.app_key)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        response.headers()["content-type"],
        "application/json;charset=UTF-8"
    );
    let body: Problem = response.json().await.unwrap();
    assert_eq!(body.kind, "urn:grantry:problem:needs-reauth");
    let message = &body.error.as_ref().unwrap().message;
    assert!(message.contains("reconnect"), "{body:?}");
    assert_eq!(
        &body.errors.as_ref().unwrap()[0].message,
        message,
        "Data Center clients read errors[]"
    );

    let (status, headers, body) = through(
        &app,
        Method::GET,
        "con_00000000000000000000000000/user",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );
    let problem: Problem = decode(&body);
    assert!(
        problem.error.unwrap().message.contains("connection"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_may_come_as_a_basic_password_and_never_travels_upstream() {
    let app = TestApp::start(Mode::Rotating).await;
    let connection = connection(&app).await;
    let url = format!("{}/v1/proxy/{connection}/2.0/user", app.base);
    for (user, password) in [
        ("x-token-auth", app.app_key.as_str()),
        (app.app_key.as_str(), ""),
    ] {
        let response = app
            .http
            .get(&url)
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "Basic {user}:…");
    }
    let response = app
        .http
        .get(&url)
        .basic_auth("someone", Some("gry_wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Had the key reached the simulator, it would have answered 401 for an unknown token.
    assert_eq!(
        app.sim_stats().await["counts"]["rest"]["cloud"]["401"],
        Value::Null
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_and_links_point_back_through_the_proxy() {
    let app = TestApp::start(Mode::Rotating).await;
    let connection = connection(&app).await;
    app.sim_post(
        "/_sim/repositories/acme/widget/commits",
        json!({"branch": "feature", "files": {"f.txt": "f\n"}}),
    )
    .await;
    let proxy = format!("{}/v1/proxy/{connection}/2.0/", app.base);
    let pr = json!({"title": "T", "source": {"branch": {"name": "feature"}}});
    let (status, _, created) = through(
        &app,
        Method::POST,
        &format!("{connection}/2.0/repositories/acme/widget/pullrequests"),
        Some(pr),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    for link in ["self", "diff", "commits"] {
        let href = created["links"][link]["href"].as_str().unwrap();
        assert!(href.starts_with(&proxy), "{link}: {href}");
    }
    assert!(
        !created["links"]["html"]["href"]
            .as_str()
            .unwrap()
            .starts_with(&app.base),
        "web links stay Bitbucket's"
    );
    let (status, headers, _) = through(
        &app,
        Method::GET,
        &format!("{connection}/2.0/repositories/acme/widget/pullrequests/1/diff"),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FOUND,
        "redirects come back, not followed"
    );
    let location = headers["location"].to_str().unwrap();
    assert!(
        location.starts_with(&proxy) && location.contains("%0D"),
        "{location}"
    );
    let diff = app
        .http
        .get(location)
        .bearer_auth(&app.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(diff.status(), StatusCode::OK);
    assert!(diff.text().await.unwrap().contains("+f"));
}

/// Grantry asks Bitbucket for identity encoding, but an intermediary may compress anyway: a
/// gzipped JSON answer still has its links pointed back through the proxy and reaches the client
/// plain, while a gzipped file passes as it came, header and bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_gzipped_anyway_still_have_their_links_rewritten() {
    let app = TestApp::start(Mode::Rotating).await;
    let connection = connection(&app).await;
    app.sim_post(
        "/_sim/repositories/acme/widget/commits",
        json!({"branch": "main", "files": {"notes.txt": "plain words\n"}}),
    )
    .await;
    app.sim_fault("rest", json!({"gzip": true})).await;
    let proxy = format!("{}/v1/proxy/{connection}/2.0/", app.base);

    let (status, headers, repository) = through(
        &app,
        Method::GET,
        &format!("{connection}/2.0/repositories/acme/widget"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{repository}");
    assert!(
        headers.get("content-encoding").is_none(),
        "sent on plain: {headers:?}"
    );
    let href = repository["links"]["self"]["href"].as_str().unwrap();
    assert!(href.starts_with(&proxy), "{href}");

    let file = app
        .http
        .get(format!(
            "{proxy}repositories/acme/widget/src/main/notes.txt"
        ))
        .bearer_auth(&app.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["content-encoding"], "gzip");
    let compressed = file.bytes().await.unwrap();
    let mut plain = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut plain,
    )
    .unwrap();
    assert_eq!(plain, "plain words\n");
}

/// Where the environment names an outbound proxy (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`),
/// proxied calls take it, as token calls do: the only way out may be through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_calls_take_the_outbound_proxy_the_environment_names() {
    use crate::common::process::{Nodes, Server, free_port};
    use std::sync::{Arc, Mutex};

    let world = "[[users]]\nusername = \"alice\"\n[[workspaces]]\nslug = \"acme\"\nmembers = [\"alice\"]\n\
                 [[repositories]]\nworkspace = \"acme\"\nslug = \"widget\"\n";
    let nodes = Nodes::new(world, false).await;
    // A forward proxy that notes each absolute URL it is asked for and fetches it.
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let forward = {
        let seen = seen.clone();
        move |request: axum::extract::Request| {
            let seen = seen.clone();
            async move {
                use axum::response::IntoResponse;
                let url = request.uri().to_string();
                seen.lock().unwrap().push(url.clone());
                let mut headers = request.headers().clone();
                for hop in [
                    "host",
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "proxy-connection",
                ] {
                    headers.remove(hop);
                }
                let method = request.method().clone();
                let body = axum::body::to_bytes(request.into_body(), usize::MAX)
                    .await
                    .unwrap();
                let direct = reqwest::Client::builder().no_proxy().build().unwrap();
                let answer = direct
                    .request(method, &url)
                    .headers(headers)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = answer.status();
                let mut headers = answer.headers().clone();
                for hop in ["content-length", "transfer-encoding", "connection"] {
                    headers.remove(hop);
                }
                let bytes = answer.bytes().await.unwrap();
                (status, headers, bytes).into_response()
            }
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, axum::Router::new().fallback(forward))
            .await
            .unwrap();
    });

    let port = free_port();
    let env = nodes.env(
        port,
        &[
            ("HTTP_PROXY", proxy_url.clone()),
            ("NO_PROXY", String::new()),
            ("no_proxy", String::new()),
        ],
    );
    let _grantry = Server::start(&env, nodes.data.path().join("grantry.log")).await;
    let base = format!("http://127.0.0.1:{port}");

    let sim = nodes.sim.url();
    let (_, consumer) = nodes
        .post(sim, "/_sim/consumers", json!({"workspace": "acme", "name": "c",
            "callback_url": format!("{base}/oauth/callback"), "permissions": ["repositories.read"]}))
        .await;
    let (_, profile) = nodes
        .post(
            &base,
            "/v1/profiles",
            json!({"name": "P", "provider": "bitbucket-cloud",
            "key": consumer["key"], "secret": consumer["secret"]}),
        )
        .await;
    let profile: Profile = serde_json::from_value(profile.clone())
        .unwrap_or_else(|e| panic!("{e}: {profile} (consumer {consumer})"));
    let (_, connection) = nodes
        .post(
            &base,
            "/v1/connections",
            json!({"profile": profile.id, "end_user_id": "u",
            "credential": {"type": "access_token", "token": "made-up-access-token"}}),
        )
        .await;
    let connection: Connection = decode(&connection);
    let id = &connection.id;

    let answer = nodes
        .http
        .get(format!("{base}/v1/proxy/{id}/2.0/repositories/acme/widget"))
        .bearer_auth(&nodes.key)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    assert!(
        status == StatusCode::OK
            || status == StatusCode::UNAUTHORIZED
            || status == StatusCode::NOT_FOUND,
        "Bitbucket's own answer came back: {status}"
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|url| url == &format!("{sim}/2.0/repositories/acme/widget")),
        "the proxied call went through the outbound proxy: {seen:?}"
    );
}
