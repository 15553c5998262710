//! `/v1/webhooks`: endpoints (admin only), their deliveries, a test message, redelivery and
//! secret rotation. A signing secret is in the answer once: on creation and on rotation.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use grantry_core::ids::{EventId, WebhookId};
use grantry_core::webhooks::{NewWebhook, WebhookChanges, WebhookWithSecret};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::MAX_LIMIT;
use super::responses::{AdminOnly, BodyRefused, Missing, Refused};
use crate::extract::{AdminCaller, Body, PathParam, Query};
use crate::problem::Problem;
use crate::state::AppState;
use crate::views::{Deliveries, DeliveryView, Items, TestQueued, WebhookView};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookBody)]
pub struct CreateBody {
    /// Where messages are posted: http or https, without credentials.
    #[schema(format = "uri", pattern = "^https?://[^\\s@/]+")]
    url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    profiles: Vec<String>,
    enabled: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookPatch)]
pub struct EditBody {
    #[schema(format = "uri", pattern = "^https?://[^\\s@/]+")]
    url: Option<String>,
    description: Option<String>,
    kinds: Option<Vec<String>>,
    profiles: Option<Vec<String>>,
    enabled: Option<bool>,
}

/// `?before=…&limit=…`: deliveries are listed newest first.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// From the previous answer's `next_before`.
    before: Option<i64>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
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

#[utoipa::path(post, operation_id = "createWebhook", path = "/v1/webhooks", tag = "webhooks", request_body = CreateBody,
    responses((status = 201, description = "The endpoint; `secret` is shown this once", body = WebhookView,
            links(("get" = (operation_id = "getWebhook", parameters(("webhook" = "$response.body#/id")))),
                ("update" = (operation_id = "updateWebhook", parameters(("webhook" = "$response.body#/id")))),
                ("deliveries" = (operation_id = "listWebhookDeliveries", parameters(("webhook" = "$response.body#/id")))),
                ("test" = (operation_id = "testWebhook", parameters(("webhook" = "$response.body#/id")))),
                ("rotate" = (operation_id = "rotateWebhookSecret", parameters(("webhook" = "$response.body#/id")))),
                ("delete" = (operation_id = "deleteWebhook", parameters(("webhook" = "$response.body#/id")))))),
              Refused, AdminOnly, BodyRefused))]
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

#[utoipa::path(get, operation_id = "listWebhooks", path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "Every endpoint", body = Items<WebhookView>), Refused, AdminOnly))]
pub async fn list(State(state): State<AppState>, _admin: AdminCaller) -> Result<Response, Problem> {
    let items: Vec<WebhookView> = state
        .grantry
        .list_webhooks()
        .await?
        .iter()
        .map(WebhookView::from)
        .collect();
    Ok(Json(Items { items }).into_response())
}

#[utoipa::path(get, operation_id = "getWebhook", path = "/v1/webhooks/{webhook}", tag = "webhooks", params(("webhook" = String, Path, description = "The endpoint's id (`wh_…`)", pattern = "^wh_[0-9a-hjkmnp-tv-z]{26}$")),
    responses((status = 200, description = "The endpoint", body = WebhookView), Refused, AdminOnly, Missing))]
pub async fn show(
    State(state): State<AppState>,
    _admin: AdminCaller,
    PathParam(id): PathParam,
) -> Result<Json<WebhookView>, Problem> {
    let webhook = state.grantry.webhook(&WebhookId::parse(&id)?).await?;
    Ok(Json(WebhookView::from(&webhook)))
}

#[utoipa::path(patch, operation_id = "updateWebhook", path = "/v1/webhooks/{webhook}", tag = "webhooks", params(("webhook" = String, Path, description = "The endpoint's id (`wh_…`)", pattern = "^wh_[0-9a-hjkmnp-tv-z]{26}$")), request_body = EditBody,
    responses((status = 200, description = "The endpoint as changed", body = WebhookView), Refused, AdminOnly, BodyRefused, Missing))]
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

#[utoipa::path(delete, operation_id = "deleteWebhook", path = "/v1/webhooks/{webhook}", tag = "webhooks", params(("webhook" = String, Path, description = "The endpoint's id (`wh_…`)", pattern = "^wh_[0-9a-hjkmnp-tv-z]{26}$")),
    responses((status = 204, description = "Removed, with its pending messages"), Refused, AdminOnly, Missing))]
pub async fn delete(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    PathParam(id): PathParam,
) -> Result<StatusCode, Problem> {
    let id = WebhookId::parse(&id)?;
    state.grantry.delete_webhook(&id, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, operation_id = "rotateWebhookSecret", path = "/v1/webhooks/{webhook}/rotate-secret", tag = "webhooks", params(("webhook" = String, Path, description = "The endpoint's id (`wh_…`)", pattern = "^wh_[0-9a-hjkmnp-tv-z]{26}$")),
    responses((status = 200, description = "The endpoint with its new `secret`, shown this once; the old one keeps signing for 24 h", body = WebhookView),
              Refused, AdminOnly, Missing))]
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

#[utoipa::path(post, operation_id = "testWebhook", path = "/v1/webhooks/{webhook}/test", tag = "webhooks", params(("webhook" = String, Path, description = "The endpoint's id (`wh_…`)", pattern = "^wh_[0-9a-hjkmnp-tv-z]{26}$")),
    responses((status = 202, description = "A `webhook.test` message queued for the endpoint", body = TestQueued), Refused, AdminOnly, Missing))]
pub async fn test(
    State(state): State<AppState>,
    _admin: AdminCaller,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let event = state.grantry.test_webhook(&WebhookId::parse(&id)?).await?;
    let queued = TestQueued {
        event_id: event.to_string(),
    };
    Ok((StatusCode::ACCEPTED, Json(queued)).into_response())
}

#[utoipa::path(get, operation_id = "listWebhookDeliveries", path = "/v1/webhooks/{webhook}/deliveries", tag = "webhooks", params(("webhook" = String, Path, description = "The endpoint's id (`wh_…`)", pattern = "^wh_[0-9a-hjkmnp-tv-z]{26}$"), DeliveryQuery),
    responses((status = 200, description = "The endpoint's deliveries, newest first", body = Deliveries), Refused, AdminOnly, Missing))]
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
    Ok(Json(Deliveries {
        items,
        next_before: next,
    })
    .into_response())
}

#[utoipa::path(post, operation_id = "redeliverWebhookMessage", path = "/v1/webhooks/{webhook}/deliveries/{event}/redeliver", tag = "webhooks",
    params(("webhook" = String, Path, description = "The endpoint's id (`wh_…`)", pattern = "^wh_[0-9a-hjkmnp-tv-z]{26}$"), ("event" = String, Path, description = "The event's id (`evt_…`)", pattern = "^evt_[0-9a-hjkmnp-tv-z]{26}$")),
    responses((status = 202, description = "Sent again, with the same `webhook-id`"), Refused, AdminOnly, Missing))]
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
