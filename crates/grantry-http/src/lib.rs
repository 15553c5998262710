//! Grantry's HTTP layer (axum): the `/v1` JSON API, the connect flow (`/connect/{token}`,
//! `/oauth/callback`, `/connect/complete`), `/healthz`, `/readyz` and `/metrics`.
//!
//! A handler extracts (API key, body, path), calls one service on `Grantry`, and maps the result
//! to a response type; errors are RFC 9457 problems.

pub mod api;
pub mod connect;
pub mod console;
pub mod extract;
pub mod health;
pub mod html;
pub mod metrics;
pub mod middleware;
pub mod problem;
pub mod server;
pub mod state;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::routing::get;
use grantry_core::Grantry;
use tower::ServiceBuilder;
use tower::util::MapResponseLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;

pub use state::{AppState, HttpSettings};

/// The whole application.
pub fn router(grantry: Arc<Grantry>, settings: HttpSettings) -> Router {
    let timeout = settings.request_timeout;
    let body_limit = settings.body_limit;
    let state = AppState {
        grantry,
        http: Arc::new(settings),
    };
    // Everything but the proxy answers within the request timeout and takes small bodies; the
    // proxy streams (large bodies, long downloads) under its own limit and idle timeouts.
    //
    // Each `Router::layer` call wraps every route in a boxed service of its own, cloned and
    // boxed again on every request; so each group of middleware is one `ServiceBuilder` stack,
    // applied in one call (outermost first).
    let bounded = Router::new()
        .merge(api::routes())
        .merge(console::routes())
        .route("/connect/complete", get(connect::complete))
        .route("/connect/{token}", get(connect::begin))
        .route("/oauth/callback", get(connect::callback))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(metrics::render))
        .layer(
            ServiceBuilder::new()
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    timeout,
                ))
                .layer(DefaultBodyLimit::max(body_limit)),
        );
    bounded
        .merge(api::proxy_routes())
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::COOKIE,
                ]))
                .layer(MapResponseLayer::new(middleware::problems_everywhere))
                .layer(middleware::ObserveLayer)
                .layer(CatchPanicLayer::custom(middleware::panic_to_problem)),
        )
        .with_state(state)
}
