//! Signing in and out, and the first run: creating the first admin through the one-time link.
//!
//! One file: these pages show nothing from the services (a typed user name, a message), so there
//! is no data step; `login_form` and `setup_form` are the pure views, the rest are handlers.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use grantry_core::CoreError;
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;

use super::layout::{self, field};
use super::session::{self, Form, Posted, cleared_cookie, session_cookie};
use crate::extract::ClientAddress;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LoginQuery {
    expired: Option<String>,
    password_changed: Option<String>,
}

fn login_form(username: &str, message: Option<(&str, bool)>) -> Markup {
    html! {
        h1 { "Sign in to Grantry" }
        @if let Some((text, bad)) = message {
            @if bad { p.flash.bad role="alert" { (text) } } @else { p.flash.ok role="status" { (text) } }
        }
        form.stack method="post" action="/ui/login" {
            (field("username", "User name", html! { input type="text" id="username" name="username" value=(username) autocomplete="username" required; }, None, None))
            (field("password", "Password", html! { input type="password" id="password" name="password" autocomplete="current-password" required; }, None, None))
            button.primary type="submit" { "Sign in" }
        }
    }
}

pub async fn login_page(Query(query): Query<LoginQuery>) -> Response {
    let message = if query.password_changed.is_some() {
        Some((
            "Password changed, and you were signed out everywhere. Sign in with the new one.",
            false,
        ))
    } else {
        query
            .expired
            .is_some()
            .then_some(("Your session expired. Sign in again.", false))
    };
    layout::public_page(StatusCode::OK, "Sign in", login_form("", message))
}

fn signed_in(state: &AppState, token: &SecretString, to: &str) -> Response {
    use secrecy::ExposeSecret;
    let mut response = layout::see_other(to);
    let cookie = session_cookie(token.expose_secret(), state.http.secure_cookies);
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    form: Form,
) -> Response {
    let username = form.text("username");
    let password = SecretString::from(form.text("password"));
    match state.grantry.sign_in(&username, &password, address).await {
        Ok(Some(session)) => signed_in(&state, &session.token, "/ui/profiles"),
        Ok(None) => {
            let message = Some(("Incorrect user name or password.", true));
            layout::public_page(
                StatusCode::UNAUTHORIZED,
                "Sign in",
                login_form(&username, message),
            )
        }
        Err(CoreError::Throttled { retry_after }) => {
            let text = format!(
                "Too many failed sign-ins for this user name or from this address. Try again in {retry_after} seconds."
            );
            let page = login_form(&username, Some((&text, true)));
            later(StatusCode::TOO_MANY_REQUESTS, retry_after, page)
        }
        Err(CoreError::Busy { retry_after }) => {
            let text = "Grantry is checking many passwords right now. Try again in a moment.";
            let page = login_form(&username, Some((text, true)));
            later(StatusCode::SERVICE_UNAVAILABLE, retry_after, page)
        }
        Err(error) => session::failed(error),
    }
}

/// The sign-in page again, with `Retry-After`.
fn later(status: StatusCode, retry_after: u64, page: Markup) -> Response {
    let mut response = layout::public_page(status, "Sign in", page);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

pub async fn logout(State(state): State<AppState>, Posted { admin, .. }: Posted) -> Response {
    if let Err(error) = state.grantry.sign_out(&admin.token).await {
        return session::failed(error);
    }
    let mut response = layout::see_other("/ui/login");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cleared_cookie());
    response
}

fn setup_form(token: &str, username: &str, errors: (Option<&str>, Option<&str>)) -> Markup {
    html! {
        h1 { "Create the first admin" }
        p { "Grantry has no console admin yet. This link works once." }
        form.stack method="post" action={"/ui/setup/" (token)} {
            (field("username", "User name", html! { input type="text" id="username" name="username" value=(username) autocomplete="username" required; }, None, errors.0))
            (field("password", "Password", html! { input type="password" id="password" name="password" autocomplete="new-password" required; }, Some("At least 12 characters."), errors.1))
            button.primary type="submit" { "Create admin and sign in" }
        }
    }
}

fn setup_gone() -> Response {
    let body = html! {
        h1 { "This setup link cannot be used" }
        p role="alert" { "It was used already, has expired, or an admin exists. Sign in, or restart the server for a new link." }
        p { a href="/ui/login" { "Sign in" } }
    };
    layout::public_page(StatusCode::GONE, "Setup", body)
}

pub async fn setup_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state.grantry.setup_link_valid(&token).await {
        Ok(true) => layout::public_page(
            StatusCode::OK,
            "Setup",
            setup_form(&token, "", (None, None)),
        ),
        Ok(false) => setup_gone(),
        Err(error) => session::failed(error),
    }
}

pub async fn setup(
    State(state): State<AppState>,
    Path(token): Path<String>,
    form: Form,
) -> Response {
    let username = form.text("username");
    let password = SecretString::from(form.text("password"));
    match state
        .grantry
        .finish_setup(&token, &username, &password)
        .await
    {
        Ok(session) => signed_in(&state, &session.token, "/ui/profiles"),
        Err(CoreError::Invalid { field, message }) => {
            let errors = if field == "username" {
                (Some(message.as_str()), None)
            } else {
                (None, Some(message.as_str()))
            };
            layout::public_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Setup",
                setup_form(&token, &username, errors),
            )
        }
        Err(CoreError::Conflict(_)) => setup_gone(),
        Err(error) => session::failed(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_form_keeps_the_user_name_and_says_a_refusal_as_an_alert() {
        let html =
            login_form("ada", Some(("Incorrect user name or password.", true))).into_string();
        assert!(
            html.contains(
                r#"<p class="flash bad" role="alert">Incorrect user name or password.</p>"#
            )
        );
        assert!(html.contains(r#"name="username" value="ada""#));
        let expired =
            login_form("", Some(("Your session expired. Sign in again.", false))).into_string();
        assert!(expired.contains(r#"<p class="flash ok" role="status">"#));
    }

    #[test]
    fn the_setup_form_posts_to_its_link_with_errors_by_their_fields() {
        let html = setup_form("tok123", "ada", (None, Some("too short"))).into_string();
        assert!(html.contains(r#"action="/ui/setup/tok123""#));
        assert!(
            html.contains(r#"<p class="error" id="password-error" role="alert">Too short</p>"#)
        );
        assert!(!html.contains("username-error"));
    }
}
