//! `/v1/profiles`: application connection profiles.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use grantry_core::catalog::ProviderKind;
use grantry_core::profiles::{NewProfile, ProfileChanges};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::extract::{AdminCaller, Body, Caller, PathParam};
use crate::problem::Problem;
use crate::state::AppState;
use crate::views::ProfileView;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    name: String,
    #[serde(default)]
    description: String,
    provider: ProviderKind,
    key: String,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    name: Option<String>,
    description: Option<String>,
    provider: Option<ProviderKind>,
    key: Option<String>,
    secret: Option<SecretString>,
    #[serde(default, deserialize_with = "double_option")]
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

pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Response, Problem> {
    let profiles = state.grantry.list_profiles().await?;
    let items: Vec<ProfileView> = profiles.into_iter().map(|p| view(&state, p)).collect();
    Ok(Json(json!({ "items": items })).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(reference): PathParam,
) -> Result<Json<ProfileView>, Problem> {
    let profile = state.grantry.find_profile(&reference).await?;
    Ok(Json(view(&state, profile)))
}

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

pub async fn delete(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    PathParam(reference): PathParam,
) -> Result<Response, Problem> {
    let (profile, connections) = state
        .grantry
        .delete_profile(&reference, &caller.actor())
        .await?;
    let body = json!({"deleted": profile.id.to_string(), "name": profile.name, "connections_deleted": connections});
    Ok(Json(body).into_response())
}
