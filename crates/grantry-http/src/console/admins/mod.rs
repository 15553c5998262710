//! Console admins: who may sign in, adding one, removing one, and changing one's own password
//! (which signs that admin out everywhere, this browser included).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::CoreError;
use maud::html;
use secrecy::SecretString;

use super::layout::{self, Flash, Section, csrf, field};
use super::session::{self, Admin, Posted, cleared_cookie};
use super::time;
use crate::state::AppState;

/// Errors to show next to the forms' fields.
#[derive(Default)]
struct Errors<'a> {
    current: Option<&'a str>,
    new_password: Option<&'a str>,
    username: Option<&'a str>,
    password: Option<&'a str>,
}

impl Errors<'_> {
    fn any(&self) -> bool {
        self.current.is_some()
            || self.new_password.is_some()
            || self.username.is_some()
            || self.password.is_some()
    }
}

async fn render(
    state: &AppState,
    admin: &Admin,
    flash: Option<Flash>,
    errors: Errors<'_>,
    typed_username: &str,
) -> Response {
    let admins = match state.grantry.list_admins().await {
        Ok(admins) => admins,
        Err(error) => return session::unavailable(error),
    };
    let body = html! {
        h1 { "Admins" }
        p.muted { "Admins sign in to this console. Removing an admin or changing a password ends that admin's sessions at once." }
        h2 { "Your password" }
        form.stack method="post" action="/ui/admins/password" {
            (csrf(admin))
            (field("current", "Current password", html! { input type="password" id="current" name="current" autocomplete="current-password" required; }, None, errors.current))
            (field("new_password", "New password", html! { input type="password" id="new_password" name="new_password" autocomplete="new-password" required; }, Some("At least 12 characters. You will sign in again with it."), errors.new_password))
            button.primary type="submit" { "Change password" }
        }
        h2 { "Add an admin" }
        form.stack method="post" action="/ui/admins" {
            (csrf(admin))
            (field("username", "User name", html! { input type="text" id="username" name="username" value=(typed_username) autocomplete="off" required; }, None, errors.username))
            (field("password", "Password", html! { input type="password" id="password" name="password" autocomplete="new-password" required; }, Some("At least 12 characters; tell it to them out of band."), errors.password))
            button.primary type="submit" { "Add admin" }
        }
        h2 { "Admins" }
        div.table-wrap { table {
            thead { tr { th { "User name" } th { "Added" } th { "Actions" } } }
            tbody { @for each in &admins { tr {
                td { (each.username) @if each.username == admin.username { " (you)" } }
                td { (time(each.created_at)) }
                td { @if each.username != admin.username && admins.len() > 1 {
                    form method="post" action={"/ui/admins/" (each.username) "/remove"} {
                        (csrf(admin)) button.danger type="submit" aria-label={"Remove " (each.username)} { "Remove" }
                    }
                } }
            } } }
        } }
    };
    let mut response = layout::page(admin, Section::Admins, "Admins", flash, body);
    if errors.any() {
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
                    password: Some(&message),
                    ..Errors::default()
                }
            } else {
                Errors {
                    username: Some(&message),
                    ..Errors::default()
                }
            };
            render(&state, &admin, None, errors, &username).await
        }
        Err(CoreError::Conflict(message)) => {
            let errors = Errors {
                username: Some(&message),
                ..Errors::default()
            };
            render(&state, &admin, None, errors, &username).await
        }
        Err(error) => session::unavailable(error),
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
                current: Some("this is not your current password"),
                ..Errors::default()
            };
            return render(&state, &admin, None, errors, "").await;
        }
        Err(error) => return session::unavailable(error),
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
                new_password: Some(&message),
                ..Errors::default()
            };
            render(&state, &admin, None, errors, "").await
        }
        Err(error) => session::unavailable(error),
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
        Err(CoreError::NotFound(_)) => super::not_found("That admin does not exist."),
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
        Err(error) => session::unavailable(error),
    }
}
