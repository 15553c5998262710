//! Console admins: who may sign in, adding one, removing one, and changing one's own password
//! (which signs that admin out everywhere, this browser included). The handlers are here; what
//! the page shows is gathered in `data.rs` and drawn in `view.rs`.

pub mod data;
pub mod view;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::CoreError;
use secrecy::SecretString;

use self::data::Errors;
use super::layout::{self, Flash, Section};
use super::session::{self, Admin, Posted, cleared_cookie};
use crate::state::AppState;

/// The page again; any error answers 422.
async fn render(
    state: &AppState,
    admin: &Admin,
    flash: Option<Flash>,
    errors: Errors,
    typed_username: &str,
) -> Response {
    let page = match data::admins_page(&state.grantry, flash, errors, typed_username).await {
        Ok(page) => page,
        Err(error) => return session::failed(error),
    };
    let body = view::page(admin, &page);
    let mut response = layout::page(admin, Section::Admins, "Admins", page.flash, body);
    if page.errors.any() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

pub async fn page(State(state): State<AppState>, admin: Admin) -> Response {
    render(&state, &admin, None, Errors::default(), "").await
}

pub async fn create(
    State(state): State<AppState>,
    Posted {
        admin,
        form: posted,
    }: Posted,
) -> Response {
    let username = posted.text("username");
    let password = SecretString::from(posted.text("password"));
    match state
        .grantry
        .create_admin(&username, &password, &admin.actor())
        .await
    {
        Ok(created) => {
            let flash = Flash::Ok(format!(
                "Admin “{}” added; they can sign in now.",
                created.username
            ));
            render(&state, &admin, Some(flash), Errors::default(), "").await
        }
        Err(CoreError::Invalid { field, message }) => {
            let errors = if field == "password" {
                Errors {
                    password: Some(message),
                    ..Errors::default()
                }
            } else {
                Errors {
                    username: Some(message),
                    ..Errors::default()
                }
            };
            render(&state, &admin, None, errors, &username).await
        }
        Err(CoreError::Conflict(message)) => {
            let errors = Errors {
                username: Some(message),
                ..Errors::default()
            };
            render(&state, &admin, None, errors, &username).await
        }
        Err(error) => session::failed(error),
    }
}

pub async fn change_password(
    State(state): State<AppState>,
    Posted {
        admin,
        form: posted,
    }: Posted,
) -> Response {
    let current = SecretString::from(posted.text("current"));
    match state
        .grantry
        .check_admin_password(&admin.username, &current)
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => {
            let errors = Errors {
                current: Some("this is not your current password".into()),
                ..Errors::default()
            };
            return render(&state, &admin, None, errors, "").await;
        }
        Err(error) => return session::failed(error),
    }
    let new_password = SecretString::from(posted.text("new_password"));
    match state
        .grantry
        .change_admin_password(&admin.username, &new_password, &admin.actor())
        .await
    {
        Ok(()) => {
            let mut response = layout::see_other("/ui/login?password_changed=1");
            response
                .headers_mut()
                .insert(axum::http::header::SET_COOKIE, cleared_cookie());
            response
        }
        Err(CoreError::Invalid { message, .. }) => {
            let errors = Errors {
                new_password: Some(message),
                ..Errors::default()
            };
            render(&state, &admin, None, errors, "").await
        }
        Err(error) => session::failed(error),
    }
}

pub async fn remove(
    State(state): State<AppState>,
    Path(username): Path<String>,
    Posted { admin, .. }: Posted,
) -> Response {
    if username == admin.username {
        let flash = Flash::Bad("You cannot remove yourself; ask another admin.".into());
        return render(&state, &admin, Some(flash), Errors::default(), "").await;
    }
    match state.grantry.remove_admin(&username, &admin.actor()).await {
        Ok(()) => {
            let flash = Flash::Ok(format!("Admin “{username}” removed; their sessions ended."));
            render(&state, &admin, Some(flash), Errors::default(), "").await
        }
        Err(CoreError::NotFound(_)) => layout::not_found("That admin does not exist."),
        Err(CoreError::Conflict(message)) => {
            render(
                &state,
                &admin,
                Some(Flash::Bad(message)),
                Errors::default(),
                "",
            )
            .await
        }
        Err(error) => session::failed(error),
    }
}
