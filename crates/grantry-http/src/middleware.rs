//! What every request passes through: its request id, one log line with the id, method and
//! matched route (never the query string, which may carry OAuth codes and states) and the cause
//! of any 5xx logged once ([`ObserveLayer`]); and problem+json for the errors axum and tower answer bare
//! ([`problems_everywhere`]).
//!
//! Both are plain tower middleware with futures of their own type rather than
//! `axum::middleware::from_fn`, which clones the inner service and boxes a future on every
//! request, and `router` applies them in one `ServiceBuilder` stack. Together that took a
//! proxied call from about 117k to 109k instructions (callgrind, 2026-12-08).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::problem::{InternalCause, Problem};

const REQUEST_ID: &str = "x-request-id";

/// The request's id: the caller's `X-Request-Id` when it is 1 to 64 letters, digits, `-` or
/// `_`, else a fresh one.
fn request_id(request: &Request) -> HeaderValue {
    request
        .headers()
        .get(REQUEST_ID)
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.as_bytes()
                    .iter()
                    .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
        .cloned()
        .unwrap_or_else(new_request_id)
}

/// A fresh request id: this process's random prefix and a counter. Ids only need to be unique
/// in the logs, not unguessable, so no system call for randomness is spent on each request.
fn new_request_id() -> HeaderValue {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| grantry_crypto::random_token(6));
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    HeaderValue::try_from(numbered(prefix, n))
        .expect("a URL-safe prefix, a dash and hex digits make a header value")
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

/// Gives each request its id (echoed in the answer's `X-Request-Id`) and one log line when it is
/// answered: refusals at info, failures at error with their cause, the rest at debug. At debug
/// level, a `request` span with the same fields also wraps everything logged while serving it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

/// See [`ObserveLayer`].
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
}

impl<S, B> Service<Request> for Observe<S>
where
    S: Service<Request, Response = axum::http::Response<B>>,
{
    type Response = axum::http::Response<B>;
    type Error = S::Error;
    type Future = Observed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Observed<S::Future> {
        let started = Instant::now();
        let id = request_id(&request);
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        // At debug level: an enabled span costs about 9k instructions per request (the
        // subscriber stores it and formats its fields), more than the rest of a token read's own
        // work. The outcome line below carries the same fields at any level.
        let span = tracing::debug_span!(
            "request",
            request.id = id.to_str().unwrap_or_default(),
            http.method = %method,
            http.route = route_of(route.as_ref()),
        );
        let answer = span.in_scope(|| self.inner.call(request));
        Observed {
            answer: answer.instrument(span),
            started,
            id,
            method,
            route,
        }
    }
}

fn route_of(route: Option<&MatchedPath>) -> &str {
    route.map_or("unmatched", MatchedPath::as_str)
}

pin_project_lite::pin_project! {
    /// A request being served under [`Observe`]: logs its outcome and sets its id on the answer.
    pub struct Observed<F> {
        #[pin]
        answer: Instrumented<F>,
        started: Instant,
        id: HeaderValue,
        method: Method,
        route: Option<MatchedPath>,
    }
}

impl<F, B, E> Future for Observed<F>
where
    F: Future<Output = Result<axum::http::Response<B>, E>>,
{
    type Output = Result<axum::http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut response = ready!(this.answer.as_mut().poll(cx))?;
        let _entered = this.answer.span().enter();
        let status = response.status().as_u16();
        let latency_ms = this.started.elapsed().as_secs_f64() * 1000.0;
        let id = this.id.to_str().unwrap_or_default();
        let (method, route) = (&*this.method, route_of(this.route.as_ref()));
        macro_rules! outcome {
            ($level:ident, $($rest:tt)+) => {
                tracing::$level!(
                    request.id = id,
                    http.method = %method,
                    http.route = route,
                    http.status = status,
                    latency_ms,
                    $($rest)+
                )
            };
        }
        if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
            outcome!(error, %cause, "request failed");
        } else if response.status().is_server_error() {
            outcome!(error, "request failed");
        } else if response.status().is_client_error() {
            outcome!(info, "request refused");
        } else {
            outcome!(debug, "request served");
        }
        response.headers_mut().insert(REQUEST_ID, this.id.clone());
        Poll::Ready(Ok(response))
    }
}

/// Marks a response whose body must pass as it is, errors included: the provider's own answer
/// through the proxy, or a problem the proxy already shaped for Bitbucket clients.
#[derive(Debug, Clone, Copy)]
pub struct PassAsIs;

/// Every error Grantry itself answers is problem+json: the few that leave axum's and tower's
/// layers bare (a 408 from the request timeout, a 413 or 400 from a body limit or a body that
/// would not read, plain text) are given a problem body here. HTML pages (the console, the
/// connect flow) and the provider's answers through the proxy are left as they are.
///
/// A response mapper, for `tower::util::MapResponseLayer`, of whatever body the layer inside
/// answers with.
pub fn problems_everywhere<B>(response: axum::http::Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let response = response.map(axum::body::Body::new);
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
    // What the bare answer said that still holds: when to try again, and the request's id.
    for kept in [axum::http::header::RETRY_AFTER.as_str(), REQUEST_ID] {
        if let Some(value) = response.headers().get(kept) {
            problem.headers_mut().insert(kept, value.clone());
        }
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
    use axum::Router;
    use axum::body::Body;
    use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
    use axum::routing::get;
    use tower::util::MapResponseLayer;
    use tower::{ServiceBuilder, ServiceExt};
    use tower_http::catch_panic::CatchPanicLayer;

    use super::*;

    /// A router with the middleware as `router` stacks it, and routes that answer as the
    /// tests need.
    fn app() -> Router {
        Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/bare",
                get(|| async {
                    (
                        StatusCode::PAYLOAD_TOO_LARGE,
                        [(RETRY_AFTER, "7")],
                        "too big",
                    )
                }),
            )
            .route(
                "/as-is",
                get(|| async {
                    let mut response =
                        (StatusCode::BAD_GATEWAY, "the provider's own").into_response();
                    response.extensions_mut().insert(PassAsIs);
                    response
                }),
            )
            .route("/panics", get(panics))
            .fallback(not_found)
            .layer(
                ServiceBuilder::new()
                    .layer(MapResponseLayer::new(problems_everywhere))
                    .layer(ObserveLayer)
                    .layer(CatchPanicLayer::custom(panic_to_problem)),
            )
    }

    async fn panics() -> &'static str {
        panic!("a bug")
    }

    async fn call(uri: &str, id: Option<&str>) -> (Response, String) {
        let mut request = Request::get(uri);
        if let Some(id) = id {
            request = request.header(REQUEST_ID, id);
        }
        let response = app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (
            Response::from_parts(parts, Body::empty()),
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    fn id_of(response: &Response) -> &str {
        response.headers()[REQUEST_ID].to_str().unwrap()
    }

    #[tokio::test]
    async fn each_answer_carries_a_fresh_request_id_unless_the_caller_sent_a_sound_one() {
        let (first, _) = call("/ok", None).await;
        let (second, _) = call("/ok", None).await;
        assert_ne!(id_of(&first), id_of(&second));
        // The prefix is URL-safe base64, which may hold a `-` of its own.
        let (prefix, counter) = id_of(&first).rsplit_once('-').unwrap();
        assert_eq!(
            prefix,
            id_of(&second).rsplit_once('-').unwrap().0,
            "one prefix per process"
        );
        assert!(u64::from_str_radix(counter, 16).is_ok(), "{counter}");

        let (kept, _) = call("/ok", Some("trace_01-AB")).await;
        assert_eq!(id_of(&kept), "trace_01-AB");
        // Refused ids get a fresh one: characters beyond the set, or longer than 64.
        for unsound in ["has space", "semi;colon", &"x".repeat(65)] {
            let (answer, _) = call("/ok", Some(unsound)).await;
            assert_ne!(id_of(&answer), unsound);
            assert!(id_of(&answer).starts_with(prefix));
        }
        let (refused, _) = call("/nowhere", Some("the-id")).await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            id_of(&refused),
            "the-id",
            "unmatched requests keep their id too"
        );
    }

    #[tokio::test]
    async fn bare_errors_become_problems_and_the_proxys_answers_pass_as_they_are() {
        let (answer, body) = call("/bare", None).await;
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(answer.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(answer.headers()[RETRY_AFTER], "7", "Retry-After survives");
        let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["code"], "too-large", "{body}");
        assert!(answer.headers().contains_key(REQUEST_ID));

        let (answer, body) = call("/as-is", None).await;
        assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(body, "the provider's own");

        let (answer, body) = call("/ok", None).await;
        assert_eq!((answer.status(), body.as_str()), (StatusCode::OK, "ok"));
    }

    #[tokio::test]
    async fn a_panic_is_a_generic_problem_that_keeps_the_request_id() {
        let (answer, body) = call("/panics", Some("the-id")).await;
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(answer.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(id_of(&answer), "the-id");
        assert!(
            !body.contains("a bug"),
            "the cause is logged, not told: {body}"
        );
    }

    #[test]
    fn request_ids_number_in_hex() {
        for n in [0, 1, 9, 10, 15, 16, 255, 4096, 0xdead_beef, u64::MAX] {
            assert_eq!(super::numbered("ab12", n), format!("ab12-{n:x}"));
        }
    }
}
