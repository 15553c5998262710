//! API keys: create (the key shown once), list, revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::ids::ApiKeyId;
use grantry_core::store::Role;
use maud::html;
use secrecy::ExposeSecret;

use super::layout::{self, Flash, Section, copyable, csrf};
use super::session::{self, Admin, Posted};
use super::time;
use crate::state::AppState;

async fn render(
    state: &AppState,
    admin: &Admin,
    flash: Option<Flash>,
    created: Option<(String, String)>,
    error: Option<&str>,
) -> Response {
    let keys = match state.grantry.list_api_keys().await {
        Ok(keys) => keys,
        Err(error) => return session::unavailable(error),
    };
    let body = html! {
        h1 { "API keys" }
        p.muted { "Applications present an API key to Grantry. An app key creates connect sessions and reads tokens; an admin key may also manage profiles and keys." }
        @if let Some((name, key)) = created {
            div.card role="status" {
                p { strong { "New key “" (name) "”." } " Copy it now: it is shown this once." }
                p { (copyable("new-api-key", &key)) }
            }
        }
        h2 { "Create a key" }
        form.stack method="post" action="/ui/api-keys" {
            (csrf(admin))
            (layout::field("name", "Name", html! { input type="text" id="name" name="name" placeholder="backup-service" autocomplete="off"; }, Some("What the key is for."), error))
            div.field {
                label for="role" { "Role" }
                select id="role" name="role" {
                    option value="app" { "app — connect sessions, connections, tokens" }
                    option value="admin" { "admin — everything" }
                }
            }
            button.primary type="submit" { "Create key" }
        }
        h2 { "Keys" }
        div.table-wrap { table {
            thead { tr { th { "Name" } th { "Role" } th { "Key" } th { "Created" } th { "State" } th { "Actions" } } }
            tbody { @for key in &keys { tr id={"key-" (key.id)} {
                td { (key.name) } td { (key.role.as_str()) } td { code { (key.hint) } } td { (time(key.created_at)) }
                td { @match key.revoked_at { Some(at) => { span class="status problem" { "Revoked" } " " (time(at)) }, None => span class="status active" { "Active" } } }
                td { @if key.revoked_at.is_none() {
                    form method="post" action={"/ui/api-keys/" (key.id) "/revoke"} {
                        (csrf(admin)) button.danger type="submit" aria-label={"Revoke " (key.name)} { "Revoke" }
                    }
                } }
            } } }
        } }
    };
    let mut response = layout::page(admin, Section::ApiKeys, "API keys", flash, body);
    if error.is_some() {
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
            let shown = (
                created.record.name.clone(),
                created.secret.expose_secret().to_owned(),
            );
            render(&state, &admin, None, Some(shown), None).await
        }
        Err(grantry_core::CoreError::Invalid { message, .. }) => {
            render(&state, &admin, None, None, Some(&message)).await
        }
        Err(error) => session::unavailable(error),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { admin, .. }: Posted,
) -> Response {
    let Ok(id) = ApiKeyId::parse(&id) else {
        return super::not_found("That API key does not exist.");
    };
    match state.grantry.revoke_api_key(&id, &admin.actor()).await {
        Ok(()) => {
            render(
                &state,
                &admin,
                Some(Flash::Ok(
                    "Key revoked: requests with it are refused from now on.".into(),
                )),
                None,
                None,
            )
            .await
        }
        Err(grantry_core::CoreError::NotFound(_)) => {
            super::not_found("That API key does not exist or was revoked already.")
        }
        Err(error) => session::unavailable(error),
    }
}
