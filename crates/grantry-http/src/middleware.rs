//! Request ids, one log line per request with the matched route (never the query string, which
//! may carry OAuth codes and states), and the cause of any 5xx logged once.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::problem::{InternalCause, Problem};

const REQUEST_ID: &str = "x-request-id";

fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        })
        .map_or_else(new_request_id, str::to_owned)
}

/// A fresh request id: this process's random prefix and a counter. Ids only need to be unique
/// in the logs, not unguessable, so no system call for randomness is spent on each request.
fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| grantry_crypto::random_token(6));
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    numbered(prefix, n)
}

/// `prefix-n`, n in lowercase hex, written by hand: this runs on every request, and `format!`
/// costs more than the rest of the request id's work.
fn numbered(prefix: &str, n: u64) -> String {
    let mut id = String::with_capacity(prefix.len() + 17);
    id.push_str(prefix);
    id.push('-');
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        let nibble = ((n >> (shift * 4)) & 0xf) as u32;
        id.push(char::from_digit(nibble, 16).expect("a nibble is a hex digit"));
    }
    id
}

pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!("request", request.id = %id, http.method = %method, http.route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let _entered = span.enter();
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(http.status = status.as_u16(), latency_ms, %cause, "request failed");
    } else if status.is_server_error() {
        tracing::error!(http.status = status.as_u16(), latency_ms, "request failed");
    } else if status.is_client_error() {
        tracing::info!(http.status = status.as_u16(), latency_ms, "request refused");
    } else {
        tracing::debug!(http.status = status.as_u16(), latency_ms, "request served");
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Marks a response whose body must pass as it is, errors included: the provider's own answer
/// through the proxy, or a problem the proxy already shaped for Bitbucket clients.
#[derive(Debug, Clone, Copy)]
pub struct PassAsIs;

/// Every error Grantry itself answers is problem+json: the few that leave axum's and tower's
/// layers bare (a 408 from the request timeout, a 413 or 400 from a body limit or a body that
/// would not read, plain text) are given a problem body here. HTML pages (the console, the
/// connect flow) and the provider's answers through the proxy are left as they are.
pub async fn problems_everywhere(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<PassAsIs>().is_some()
    {
        return response;
    }
    let content_type = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/problem+json") || content_type.starts_with("text/html")
    {
        return response;
    }
    let (code, title, detail) = match status {
        StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            "Request timeout",
            "The request took longer than this server allows; try again.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too-large",
            "Request too large",
            "The request body is larger than this server accepts.",
        ),
        _ if status.is_server_error() => (
            "internal",
            "Internal error",
            "Something went wrong on our side; it has been logged.",
        ),
        _ => (
            "bad-request",
            "Bad request",
            "The request could not be read.",
        ),
    };
    let mut problem = Problem::new(status, code, title, detail).into_response();
    if let Some(retry) = response.headers().get(axum::http::header::RETRY_AFTER) {
        problem
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, retry.clone());
    }
    problem
}

/// A panic in a handler becomes a logged, generic 500 (no input should ever cause one).
pub fn panic_to_problem(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned());
    Problem::internal(format!("handler panicked: {message}")).into_response()
}

pub async fn not_found() -> Problem {
    Problem::not_found("no such route; the API lives under /v1")
}

pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not take that method",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_number_in_hex() {
        for n in [0, 1, 9, 10, 15, 16, 255, 4096, 0xdead_beef, u64::MAX] {
            assert_eq!(super::numbered("ab12", n), format!("ab12-{n:x}"));
        }
    }
}
