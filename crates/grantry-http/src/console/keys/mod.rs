//! API keys: create (the key shown once), list, revoke. The handlers are here; what the page
//! shows is gathered in `data.rs` and drawn in `view.rs`.

pub mod data;
pub mod view;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::ids::ApiKeyId;
use grantry_core::store::Role;
use secrecy::ExposeSecret;

use self::data::NewKey;
use super::layout::{self, Flash, Section};
use super::session::{self, Admin, Posted};
use crate::state::AppState;

/// The page again; `error` (the name refused) answers 422.
async fn render(
    state: &AppState,
    admin: &Admin,
    flash: Option<Flash>,
    created: Option<NewKey>,
    error: Option<String>,
) -> Response {
    let page = match data::keys_page(&state.grantry, flash, created, error).await {
        Ok(page) => page,
        Err(error) => return session::failed(error),
    };
    let body = view::page(admin, &page);
    let mut response = layout::page(admin, Section::ApiKeys, "API keys", page.flash, body);
    if page.error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

pub async fn page(State(state): State<AppState>, admin: Admin) -> Response {
    render(&state, &admin, None, None, None).await
}

pub async fn create(
    State(state): State<AppState>,
    Posted {
        admin,
        form: posted,
    }: Posted,
) -> Response {
    let role = if posted.get("role") == Some("admin") {
        Role::Admin
    } else {
        Role::App
    };
    match state
        .grantry
        .create_api_key(&posted.text("name"), role, &admin.actor())
        .await
    {
        Ok(created) => {
            let shown = NewKey {
                name: created.record.name.clone(),
                key: created.secret.expose_secret().to_owned(),
            };
            render(&state, &admin, None, Some(shown), None).await
        }
        Err(grantry_core::CoreError::Invalid { message, .. }) => {
            render(&state, &admin, None, None, Some(message)).await
        }
        Err(error) => session::failed(error),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { admin, .. }: Posted,
) -> Response {
    let Ok(id) = ApiKeyId::parse(&id) else {
        return layout::not_found("That API key does not exist.");
    };
    match state.grantry.revoke_api_key(&id, &admin.actor()).await {
        Ok(()) => {
            let flash = Flash::Ok("Key revoked: requests with it are refused from now on.".into());
            render(&state, &admin, Some(flash), None, None).await
        }
        Err(grantry_core::CoreError::NotFound(_)) => {
            layout::not_found("That API key does not exist or was revoked already.")
        }
        Err(error) => session::failed(error),
    }
}
