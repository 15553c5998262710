//! The browser's side of connecting: `/connect/{token}` → the provider → `/oauth/callback` →
//! the application's return URL (or Grantry's own `/connect/complete` page).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::connect::{CallbackParams, ConnectError};

use crate::extract::PathParam;
use crate::html::{self, escape};
use crate::state::AppState;

fn error_page(error: &ConnectError) -> Response {
    let status = match error {
        ConnectError::UnknownLink | ConnectError::ProfileGone => StatusCode::NOT_FOUND,
        ConnectError::UsedLink | ConnectError::ExpiredLink | ConnectError::ExpiredState => {
            StatusCode::GONE
        }
        ConnectError::UnknownState | ConnectError::ReplayedState => StatusCode::BAD_REQUEST,
        ConnectError::Unavailable(cause) => {
            tracing::error!(%cause, "the connect flow could not continue");
            return html::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again in a moment",
                "Grantry cannot complete this right now. Nothing was stored; please try again.",
            );
        }
    };
    html::error_page(status, "This link cannot be used", &error.to_string())
}

/// `GET /connect/{token}`
pub async fn begin(State(state): State<AppState>, PathParam(token): PathParam) -> Response {
    match state.grantry.begin_connect(&token).await {
        Ok(url) => html::see_other(url.as_str()),
        Err(error) => error_page(&error),
    }
}

fn callback_params(query: &str) -> CallbackParams {
    let mut params = CallbackParams::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "state" => &mut params.state,
            "code" => &mut params.code,
            "error" => &mut params.error,
            "error_description" => &mut params.error_description,
            _ => continue,
        };
        slot.get_or_insert_with(|| value.into_owned());
    }
    params
}

/// `GET /oauth/callback`
pub async fn callback(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = callback_params(query.as_deref().unwrap_or_default());
    match state.grantry.finish_connect(&params).await {
        Ok(url) => html::see_other(url.as_str()),
        Err(error) => error_page(&error),
    }
}

/// `GET /connect/complete`: Grantry's own landing page when the application gave no return URL.
pub async fn complete(RawQuery(query): RawQuery) -> Response {
    let mut status = None;
    let mut error = None;
    let mut connection = None;
    for (key, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
    {
        match key.as_ref() {
            "status" => status = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "connection_id" => connection = Some(value.into_owned()),
            _ => {}
        }
    }
    let connection = connection
        .map(|c| format!("<p>Connection <code>{}</code>.</p>", escape(&c)))
        .unwrap_or_default();
    let body = match (error, status) {
        (None, Some(_)) => format!(
            "<h1 class=\"ok\">Connected</h1><div class=\"box\"><p>Your Bitbucket account is connected. You can close this window.</p>{connection}</div>"
        ),
        (Some(error), _) => format!(
            "<h1 class=\"bad\">Not connected</h1><div class=\"box\"><p role=\"alert\">The authorization ended with <code>{}</code>.</p>{connection}<p>Close this window and try again from the application.</p></div>",
            escape(&error)
        ),
        (None, None) => {
            "<h1>Nothing to show</h1><p>This page shows the outcome of connecting an account.</p>"
                .to_owned()
        }
    };
    html::page(StatusCode::OK, "Connect", &body)
}
