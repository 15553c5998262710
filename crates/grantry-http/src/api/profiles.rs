//! `/v1/profiles`: application connection profiles.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use grantry_core::catalog::ProviderKind;
use grantry_core::profiles::{NewProfile, ProfileChanges};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::responses::{AdminOnly, BodyRefused, Conflicting, Missing, Refused};
use crate::extract::{AdminCaller, Body, Caller, PathParam};
use crate::problem::Problem;
use crate::state::AppState;
use crate::views::{Items, ProfileDeleted, ProfileView};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    /// Unique; not starting with `prf_`.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
    #[serde(default)]
    description: String,
    provider: ProviderKind,
    /// The OAuth client id (Bitbucket's consumer "Key").
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    key: String,
    /// Never returned.
    #[schema(value_type = String, min_length = 1, max_length = 1000)]
    secret: SecretString,
    base_url: Option<String>,
    #[serde(default)]
    required_scopes: Vec<String>,
    #[serde(default)]
    allowed_return_urls: Vec<String>,
    #[serde(default)]
    private: bool,
    /// Whether the application confirms each connection made through a connect session with
    /// its return URL (default: true).
    #[serde(default = "yes")]
    confirm_connections: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    name: Option<String>,
    description: Option<String>,
    provider: Option<ProviderKind>,
    key: Option<String>,
    #[schema(value_type = Option<String>)]
    secret: Option<SecretString>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    base_url: Option<Option<String>>,
    required_scopes: Option<Vec<String>>,
    allowed_return_urls: Option<Vec<String>>,
    private: Option<bool>,
    confirm_connections: Option<bool>,
}

/// Tells `"base_url": null` (clear it) from a missing field (leave it).
fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn view(state: &AppState, profile: grantry_core::store::ProfileRecord) -> ProfileView {
    let setup = state.grantry.setup_guide(&profile);
    ProfileView::new(profile, setup)
}

#[utoipa::path(post, operation_id = "createProfile", path = "/v1/profiles", tag = "profiles", request_body = ProfileBody,
    responses((status = 201, description = "The profile, with what to set up in Bitbucket", body = ProfileView,
            links(("get" = (operation_id = "getProfile", parameters(("profile" = "$response.body#/id")))),
                ("update" = (operation_id = "updateProfile", parameters(("profile" = "$response.body#/id")))),
                ("delete" = (operation_id = "deleteProfile", parameters(("profile" = "$response.body#/id")))))),
              Refused, AdminOnly, BodyRefused, Conflicting))]
pub async fn create(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Body(body): Body<ProfileBody>,
) -> Result<Response, Problem> {
    let new = NewProfile {
        name: body.name,
        description: body.description,
        provider: body.provider,
        key: body.key,
        secret: body.secret,
        base_url: body.base_url,
        required_scopes: body.required_scopes,
        allowed_return_urls: body.allowed_return_urls,
        private: body.private,
        confirm_connections: body.confirm_connections,
    };
    let profile = state.grantry.create_profile(new, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(view(&state, profile))).into_response())
}

#[utoipa::path(get, operation_id = "listProfiles", path = "/v1/profiles", tag = "profiles",
    responses((status = 200, description = "Every profile", body = Items<ProfileView>), Refused))]
pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Response, Problem> {
    let profiles = state.grantry.list_profiles().await?;
    let items: Vec<ProfileView> = profiles.into_iter().map(|p| view(&state, p)).collect();
    Ok(Json(Items { items }).into_response())
}

#[utoipa::path(get, operation_id = "getProfile", path = "/v1/profiles/{profile}", tag = "profiles",
    params(("profile" = String, Path, description = "The profile's id (`prf_…`) or name", min_length = 1)),
    responses((status = 200, description = "The profile", body = ProfileView), Refused, Missing))]
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(reference): PathParam,
) -> Result<Json<ProfileView>, Problem> {
    let profile = state.grantry.find_profile(&reference).await?;
    Ok(Json(view(&state, profile)))
}

#[utoipa::path(patch, operation_id = "updateProfile", path = "/v1/profiles/{profile}", tag = "profiles", request_body = ProfilePatch,
    params(("profile" = String, Path, description = "The profile's id (`prf_…`) or name", min_length = 1)),
    responses((status = 200, description = "The profile as changed", body = ProfileView),
              Refused, AdminOnly, BodyRefused, Missing, Conflicting))]
pub async fn edit(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    PathParam(reference): PathParam,
    Body(patch): Body<ProfilePatch>,
) -> Result<Json<ProfileView>, Problem> {
    let changes = ProfileChanges {
        name: patch.name,
        description: patch.description,
        provider: patch.provider,
        key: patch.key,
        secret: patch.secret,
        base_url: patch.base_url,
        required_scopes: patch.required_scopes,
        allowed_return_urls: patch.allowed_return_urls,
        private: patch.private,
        confirm_connections: patch.confirm_connections,
    };
    let profile = state
        .grantry
        .update_profile(&reference, changes, &caller.actor())
        .await?;
    Ok(Json(view(&state, profile)))
}

#[utoipa::path(delete, operation_id = "deleteProfile", path = "/v1/profiles/{profile}", tag = "profiles",
    params(("profile" = String, Path, description = "The profile's id (`prf_…`) or name", min_length = 1)),
    responses((status = 200, description = "What was deleted, its connections included", body = ProfileDeleted),
              Refused, AdminOnly, Missing))]
pub async fn delete(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    PathParam(reference): PathParam,
) -> Result<Response, Problem> {
    let (profile, connections) = state
        .grantry
        .delete_profile(&reference, &caller.actor())
        .await?;
    let body = ProfileDeleted {
        deleted: profile.id.to_string(),
        name: profile.name,
        connections_deleted: connections,
    };
    Ok(Json(body).into_response())
}
