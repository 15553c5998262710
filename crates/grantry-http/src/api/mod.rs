//! The `/v1` JSON API. Every route needs an API key; `app` keys may create connect sessions and
//! use connections, `admin` keys may also manage profiles, API keys and webhooks, and read the
//! audit trail.

mod connections;
mod events;
mod keys;
pub mod openapi;
mod profiles;
pub mod proxy;
pub mod responses;
mod sessions;
mod webhooks;

use axum::Router;
use axum::routing::{any, get, post};
use grantry_core::store::PageRequest;
use serde::Deserialize;

use crate::problem::Problem;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/openapi.json", get(openapi::document))
        .route("/v1/profiles", post(profiles::create).get(profiles::list))
        .route(
            "/v1/profiles/{profile}",
            get(profiles::show)
                .patch(profiles::edit)
                .delete(profiles::delete),
        )
        .route("/v1/connect-sessions", post(sessions::create))
        .route("/v1/connect-sessions/{id}/confirm", post(sessions::confirm))
        .route(
            "/v1/connections",
            get(connections::list).post(connections::create),
        )
        .route(
            "/v1/connections/{id}",
            get(connections::show).delete(connections::delete),
        )
        .route("/v1/connections/{id}/token", get(connections::token))
        .route("/v1/connections/{id}/refresh", post(connections::refresh))
        .route("/v1/connections/{id}/test", post(connections::test))
        .route("/v1/api-keys", post(keys::create).get(keys::list))
        .route("/v1/api-keys/{id}", axum::routing::delete(keys::revoke))
        .route("/v1/events", get(events::list))
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::show)
                .patch(webhooks::edit)
                .delete(webhooks::delete),
        )
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/v1/webhooks/{id}/test", post(webhooks::test))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/v1/webhooks/{id}/deliveries/{event}/redeliver",
            post(webhooks::redeliver),
        )
}

/// `/v1/proxy`, kept apart: it streams, so the request timeout and body limit of the other
/// routes do not apply.
pub fn proxy_routes() -> Router<AppState> {
    Router::new().route("/v1/proxy/{id}/{*path}", any(proxy::proxy))
}

/// `?cursor=…&limit=…`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

pub fn page_request(cursor: Option<String>, limit: Option<u32>) -> Result<PageRequest, Problem> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if cursor.as_ref().is_some_and(|c| c.len() > 64) {
        return Err(Problem::bad_request("cursor is not one this API gave out"));
    }
    Ok(PageRequest {
        after: cursor,
        limit,
    })
}

/// The cursor for the page after `items`, if the page was full.
pub fn next_cursor<T>(items: &[T], limit: u32, id: impl Fn(&T) -> String) -> Option<String> {
    (items.len() as u32 == limit)
        .then(|| items.last().map(id))
        .flatten()
}
