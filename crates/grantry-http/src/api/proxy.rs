//! `/v1/proxy/{connection}/{path}`: the application's call, made to Bitbucket's REST API with the
//! connection's token, for applications that would rather not handle tokens at all. The path is
//! Bitbucket's own (`2.0/user`, `rest/api/1.0/projects`) or short, below the profile's REST base
//! (`user`, `projects`); the caller's API key (Bearer, or the Basic password for clients that
//! speak only Basic) never leaves Grantry. Bodies stream both ways.
//!
//! Grantry's own refusals (no such connection, `needs-reauth`, the provider unreachable, a body
//! too large) are problem+json that also carry Bitbucket's error shapes (`error.message` for
//! Cloud clients, `errors[].message` for Data Center ones), so a client library shows "reconnect
//! this account" rather than failing to parse; clients that accept only `application/json` get
//! the same body as `application/json`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use grantry_core::CoreError;
use grantry_core::ids::ConnectionId;
use grantry_core::proxy::{Answer, Body, FORWARDED_REQUEST_HEADERS, ProxyPath, ProxyRequest};

use crate::extract::Caller;
use crate::middleware::PassAsIs;
use crate::problem::Problem;
use crate::state::AppState;

/// The methods of Bitbucket's REST API; anything else (CONNECT, TRACE, …) stays here.
const PROXIED_METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Request bodies up to this size are kept whole, so the call can be repeated after a refresh.
const KEPT_FOR_A_REPEAT: u64 = 1024 * 1024;

/// The connection and the rest of the path, taken from the URI as sent (percent-encoding
/// included: Bitbucket reads `%2F` inside a segment as part of it) and checked to stay below the
/// REST API in every spelling.
pub struct ProxyTarget {
    connection: ConnectionId,
    path: ProxyPath,
}

impl FromRequestParts<AppState> for ProxyTarget {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &AppState,
    ) -> Result<Self, Problem> {
        // The method first: an unproxied one is refused whatever the path says.
        let method = &parts.method;
        if !PROXIED_METHODS.contains(method) {
            return Err(Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not proxied",
                format!("{method} is not proxied; use GET, HEAD, POST, PUT, PATCH or DELETE"),
            )
            .allow("GET, HEAD, POST, PUT, PATCH, DELETE"));
        }
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        let rest = uri.path().strip_prefix("/v1/proxy/").unwrap_or_default();
        let (connection, path) = rest.split_once('/').unwrap_or((rest, ""));
        Ok(ProxyTarget {
            connection: ConnectionId::parse(connection)?,
            path: ProxyPath::parse(path).map_err(|e| Problem::from(CoreError::from(e)))?,
        })
    }
}

/// Bitbucket's own error shapes beside the problem's fields, in the content type the client
/// asked for.
fn for_clients(problem: Problem, accept: Option<&HeaderValue>) -> Response {
    let message = problem.detail().to_owned();
    let problem = problem
        .with("error", serde_json::json!({"message": message}))
        .with("errors", serde_json::json!([{"message": message}]));
    let accept = accept.and_then(|v| v.to_str().ok()).unwrap_or("*/*");
    let wants_plain_json = accept.contains("application/json")
        && !accept.contains("problem+json")
        && !accept.contains("*/*");
    let mut response = problem.into_response();
    if wants_plain_json {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        );
    }
    response.extensions_mut().insert(PassAsIs);
    response
}

/// The request body: whole when small (it can be sent twice), else streamed; over the limit,
/// refused (up front when declared, else when the stream passes it).
fn body_of(request: Request, limit: u64, over: Arc<AtomicBool>) -> Result<Body, Problem> {
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let chunked = request.headers().contains_key(header::TRANSFER_ENCODING);
    if length.is_none() && !chunked {
        return Ok(Body::empty());
    }
    let mut seen = 0u64;
    let stream = request
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other)
        .map(move |chunk| {
            let chunk = chunk?;
            seen += chunk.len() as u64;
            if seen > limit {
                over.store(true, Ordering::Relaxed);
                return Err(std::io::Error::other("the request body is over the limit"));
            }
            Ok(chunk)
        });
    Ok(Body::Streaming {
        stream: Box::pin(stream),
        length,
    })
}

fn too_large(limit: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "Request too large",
        format!("The proxy takes request bodies of at most {limit} bytes."),
    )
}

/// Reads a small body whole, so that a refused token can be refreshed and the call repeated.
async fn keep_small(body: Body) -> Result<Body, std::io::Error> {
    match body {
        Body::Streaming {
            mut stream,
            length: Some(length),
        } if length <= KEPT_FOR_A_REPEAT => {
            let mut whole = Vec::with_capacity(length as usize);
            while let Some(chunk) = stream.next().await {
                whole.extend_from_slice(&chunk?);
            }
            Ok(Body::Whole(Bytes::from(whole)))
        }
        other => Ok(other),
    }
}

pub async fn proxy(
    State(state): State<AppState>,
    caller: Caller,
    target: Result<ProxyTarget, Problem>,
    request: Request,
) -> Response {
    // Only what a refusal's shape depends on, not a copy of every header on every call.
    let accept = request.headers().get(header::ACCEPT).cloned();
    // Refusals of the method or the path carry Bitbucket's error fields too.
    let target = match target {
        Ok(target) => target,
        Err(problem) => return for_clients(problem, accept.as_ref()),
    };
    match forward(&state, &caller, target, request).await {
        Ok(response) => response,
        Err(problem) => for_clients(problem, accept.as_ref()),
    }
}

async fn forward(
    state: &AppState,
    caller: &Caller,
    target: ProxyTarget,
    request: Request,
) -> Result<Response, Problem> {
    let method = request.method().clone();
    let query = request.uri().query().map(str::to_owned);
    // The allowed headers, as they came; values that are not text (obs-text) stay behind, as
    // they did when headers travelled as strings.
    let mut headers = HeaderMap::new();
    for (name, value) in request.headers() {
        if FORWARDED_REQUEST_HEADERS.contains(&name.as_str()) && value.to_str().is_ok() {
            headers.append(name.clone(), value.clone());
        }
    }
    let limit = state.http.proxy_body_limit;
    let over = Arc::new(AtomicBool::new(false));
    let body = body_of(request, limit, over.clone())?;
    let body = keep_small(body).await.map_err(|_| too_large(limit))?;
    let call = ProxyRequest {
        method: method.as_str().to_owned(),
        path: target.path,
        query,
        headers,
        body,
    };
    let answer = Box::pin(
        state
            .grantry
            .proxy(&target.connection, call, &caller.actor()),
    )
    .await;
    match answer {
        Ok(answer) => Ok(respond(answer)),
        Err(_) if over.load(Ordering::Relaxed) => Err(too_large(limit)),
        Err(error) => Err(error.into()),
    }
}

/// The provider's answer as it came (links rewritten by the core), marked so the problem layer
/// leaves its errors alone.
fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = match answer.body {
        Body::Whole(bytes) => axum::body::Body::from(bytes),
        Body::Streaming { stream, .. } => axum::body::Body::from_stream(stream),
    };
    let mut response = (status, body).into_response();
    let out = response.headers_mut();
    // `Content-Length` passes as Bitbucket sent it (the core drops it when it rewrites a body), so
    // downloads keep their size and HEAD answers their real length.
    for (name, value) in &answer.headers {
        out.append(name.clone(), value.clone());
    }
    response.extensions_mut().insert(PassAsIs);
    response
}

/// The proxy's operations as the OpenAPI document lists them: one per method, all served by
/// [`proxy`] (axum routes every method there). They are never called.
#[allow(dead_code)]
mod documented {
    use crate::api::responses::ProblemDoc;

    macro_rules! operation {
        ($method:ident, $summary:literal) => {
            #[doc = $summary]
            ///
            /// `{path}` is Bitbucket's own layout below its host (`2.0/repositories/acme` on
            /// Cloud; `rest/api/1.0/projects` or any REST root under `rest/` on Data Center) or
            /// short, below the REST base (`repositories/acme`). The query, the body and the
            /// headers `Accept`, `Content-Type`, `If-*`, `Range` and `X-Atlassian-Token` travel;
            /// Bitbucket's answer comes back as it is, with its links pointing back through the
            /// proxy. A 401 to an OAuth token makes Grantry refresh it and call once more; a 401
            /// to an API token or access token turns the connection `needs_reauth`.
            #[utoipa::path(
                $method,
                operation_id = concat!("proxy", stringify!($method)),
                path = "/v1/proxy/{connection}/{path}",
                tag = "proxy",
                security(("api_key" = []), ("api_key_basic" = [])),
                params(
                    ("connection" = String, Path, description = "The connection's id (`con_…`)",
                        pattern = "^con_[0-9a-hjkmnp-tv-z]{26}$"),
                    ("path" = String, Path, description = "Bitbucket's path, slashes included; no dot segments, control characters or backslashes, however encoded",
                        pattern = "^(?!\\.\\.?(/|$))(?!.*/\\.\\.?(/|$))[^\\u0000-\\u001f\\u007f-\\u009f\\\\%]*$"),
                ),
                responses(
                    (status = "default",
                        description = "Bitbucket's answer, as it came, whatever its status; or Grantry's own refusal (`unauthorized`, `invalid-id`, `invalid-proxy-path`, `not-found`, `needs-reauth`, `provider-unavailable`, `too-large`, …) as a problem that also carries Bitbucket's error fields, in `application/json` when the client accepts only that",
                        content(
                            (Object = "application/json"),
                            (ProblemDoc = "application/problem+json"),
                            (String = "*/*"),
                        )),
                )
            )]
            pub async fn $method() {}
        };
    }

    operation!(get, "Calls Bitbucket's REST API with GET.");
    operation!(head, "Calls Bitbucket's REST API with HEAD.");
    operation!(post, "Calls Bitbucket's REST API with POST.");
    operation!(put, "Calls Bitbucket's REST API with PUT.");
    operation!(patch, "Calls Bitbucket's REST API with PATCH.");
    operation!(delete, "Calls Bitbucket's REST API with DELETE.");
}

pub use documented::*;
