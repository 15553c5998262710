//! `/v1/webhooks`: endpoints (admin only), their deliveries, a test message, redelivery and
//! secret rotation. A signing secret is in the answer once: on creation and on rotation.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use grantry_core::ids::{EventId, WebhookId};
use grantry_core::webhooks::{NewWebhook, WebhookChanges, WebhookWithSecret};
use serde::Deserialize;
use serde_json::json;

use super::MAX_LIMIT;
use crate::extract::{AdminCaller, Body, PathParam, Query};
use crate::problem::Problem;
use crate::state::AppState;
use crate::views::{DeliveryView, WebhookView};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    profiles: Vec<String>,
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditBody {
    url: Option<String>,
    description: Option<String>,
    kinds: Option<Vec<String>>,
    profiles: Option<Vec<String>>,
    enabled: Option<bool>,
}

/// `?before=…&limit=…`: deliveries are listed newest first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

/// The endpoint with its secret, never cached.
fn with_secret(status: StatusCode, created: WebhookWithSecret) -> Response {
    let mut view = WebhookView::from(&created.webhook);
    view.secret = Some(created.secret.to_string());
    let mut response = (status, Json(view)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("valid header"),
    );
    response
}

pub async fn create(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Body(body): Body<CreateBody>,
) -> Result<Response, Problem> {
    let new = NewWebhook {
        url: body.url,
        description: body.description,
        kinds: body.kinds,
        profiles: body.profiles,
        enabled: body.enabled,
    };
    let created = state.grantry.create_webhook(new, &caller.actor()).await?;
    Ok(with_secret(StatusCode::CREATED, created))
}

pub async fn list(State(state): State<AppState>, _admin: AdminCaller) -> Result<Response, Problem> {
    let items: Vec<WebhookView> = state
        .grantry
        .list_webhooks()
        .await?
        .iter()
        .map(WebhookView::from)
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    _admin: AdminCaller,
    PathParam(id): PathParam,
) -> Result<Json<WebhookView>, Problem> {
    let webhook = state.grantry.webhook(&WebhookId::parse(&id)?).await?;
    Ok(Json(WebhookView::from(&webhook)))
}

pub async fn edit(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    PathParam(id): PathParam,
    Body(body): Body<EditBody>,
) -> Result<Json<WebhookView>, Problem> {
    let changes = WebhookChanges {
        url: body.url,
        description: body.description,
        kinds: body.kinds,
        profiles: body.profiles,
        enabled: body.enabled,
    };
    let webhook = state
        .grantry
        .update_webhook(&WebhookId::parse(&id)?, changes, &caller.actor())
        .await?;
    Ok(Json(WebhookView::from(&webhook)))
}

pub async fn delete(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    PathParam(id): PathParam,
) -> Result<StatusCode, Problem> {
    let id = WebhookId::parse(&id)?;
    state.grantry.delete_webhook(&id, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let id = WebhookId::parse(&id)?;
    let rotated = state
        .grantry
        .rotate_webhook_secret(&id, &caller.actor())
        .await?;
    Ok(with_secret(StatusCode::OK, rotated))
}

pub async fn test(
    State(state): State<AppState>,
    _admin: AdminCaller,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let event = state.grantry.test_webhook(&WebhookId::parse(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "event_id": event }))).into_response())
}

pub async fn deliveries(
    State(state): State<AppState>,
    _admin: AdminCaller,
    PathParam(id): PathParam,
    Query(query): Query<DeliveryQuery>,
) -> Result<Response, Problem> {
    let limit = query.limit.unwrap_or(super::DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let items = state
        .grantry
        .webhook_deliveries(&WebhookId::parse(&id)?, query.before, limit)
        .await?;
    let next = (items.len() as u32 == limit)
        .then(|| items.last().map(|d| d.seq))
        .flatten();
    let items: Vec<DeliveryView> = items.iter().map(DeliveryView::from).collect();
    Ok(Json(json!({ "items": items, "next_before": next })).into_response())
}

pub async fn redeliver(
    State(state): State<AppState>,
    _admin: AdminCaller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, Problem> {
    let Path((id, event)) = path?;
    let id = WebhookId::parse(&id)?;
    let event = EventId::parse(&event)?;
    state.grantry.redeliver(&id, &event).await?;
    Ok(StatusCode::ACCEPTED)
}
