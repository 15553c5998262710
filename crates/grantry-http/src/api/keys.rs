//! `/v1/api-keys`: keys for applications, shown once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use grantry_core::ids::ApiKeyId;
use grantry_core::store::Role;
use secrecy::ExposeSecret;
use serde::Deserialize;
use utoipa::ToSchema;

use super::responses::{AdminOnly, BodyRefused, Missing, Refused};
use crate::extract::{AdminCaller, Body, PathParam};
use crate::problem::Problem;
use crate::state::AppState;
use crate::views::{ApiKeyView, Items};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
    role: Role,
}

#[utoipa::path(post, operation_id = "createApiKey", path = "/v1/api-keys", tag = "admin", request_body = KeyBody,
    responses((status = 201, description = "The key; `key` is shown this once", body = ApiKeyView,
            links(("revoke" = (operation_id = "revokeApiKey", parameters(("key" = "$response.body#/id")))))),
              Refused, AdminOnly, BodyRefused))]
pub async fn create(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Body(body): Body<KeyBody>,
) -> Result<Response, Problem> {
    let created = state
        .grantry
        .create_api_key(&body.name, body.role, &caller.actor())
        .await?;
    let mut view = ApiKeyView::from(created.record);
    view.key = Some(created.secret.expose_secret().to_owned());
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        "no-store".parse().expect("valid header"),
    );
    Ok(response)
}

#[utoipa::path(get, operation_id = "listApiKeys", path = "/v1/api-keys", tag = "admin",
    responses((status = 200, description = "Every key, revoked ones included, without secrets", body = Items<ApiKeyView>), Refused, AdminOnly))]
pub async fn list(State(state): State<AppState>, _admin: AdminCaller) -> Result<Response, Problem> {
    let keys: Vec<ApiKeyView> = state
        .grantry
        .list_api_keys()
        .await?
        .into_iter()
        .map(ApiKeyView::from)
        .collect();
    Ok(Json(Items { items: keys }).into_response())
}

#[utoipa::path(delete, operation_id = "revokeApiKey", path = "/v1/api-keys/{key}", tag = "admin",
    params(("key" = String, Path, description = "The key's id (`key_…`)", pattern = "^key_[0-9a-hjkmnp-tv-z]{26}$")),
    responses((status = 204, description = "Revoked"), Refused, AdminOnly, Missing))]
pub async fn revoke(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    PathParam(id): PathParam,
) -> Result<StatusCode, Problem> {
    let id = ApiKeyId::parse(&id)?;
    state.grantry.revoke_api_key(&id, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
