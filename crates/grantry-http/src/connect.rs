//! The browser's side of connecting: `/connect/{token}` → the provider → `/oauth/callback` →
//! the application's return URL (or Grantry's own `/connect/complete` page).
//!
//! `/connect/{token}` gives the browser a nonce in a cookie that only `/oauth/callback` sees
//! (HttpOnly, `SameSite=Lax` so it comes back on the redirect from Bitbucket, `Secure` behind
//! HTTPS); the callback clears it, whatever the outcome.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use grantry_core::connect::{BROWSER_COOKIE_PREFIX, Begun, CallbackParams, ConnectError};
use grantry_core::ids::ConnectionId;
use maud::html;

use crate::extract::{PathParam, cookies};
use crate::html;
use crate::state::AppState;

const CALLBACK_PATH: &str = "/oauth/callback";

fn error_page(error: &ConnectError) -> Response {
    let status = match error {
        ConnectError::UnknownLink | ConnectError::ProfileGone => StatusCode::NOT_FOUND,
        ConnectError::UsedLink | ConnectError::ExpiredLink | ConnectError::ExpiredState => {
            StatusCode::GONE
        }
        ConnectError::UnknownState | ConnectError::ReplayedState => StatusCode::BAD_REQUEST,
        ConnectError::OtherBrowser => StatusCode::FORBIDDEN,
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

fn cookie(name: &str, value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={CALLBACK_PATH}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// `GET /connect/{token}`
pub async fn begin(State(state): State<AppState>, PathParam(token): PathParam) -> Response {
    let Begun {
        authorize,
        cookie_name,
        nonce,
        max_age,
    } = match state.grantry.begin_connect(&token).await {
        Ok(begun) => begun,
        Err(error) => return error_page(&error),
    };
    let mut response = html::see_other(authorize.as_str());
    if let Some(value) = cookie(&cookie_name, &nonce, max_age, state.http.secure_cookies) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn callback_params(query: &str, headers: &HeaderMap) -> CallbackParams {
    let mut params = CallbackParams {
        browser_cookies: cookies(headers)
            .filter(|(name, _)| name.starts_with(BROWSER_COOKIE_PREFIX))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
        ..CallbackParams::default()
    };
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
pub async fn callback(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = callback_params(query.as_deref().unwrap_or_default(), &headers);
    match state.grantry.finish_connect(&params).await {
        Ok(finished) => {
            let mut response = html::see_other(finished.url.as_str());
            // Only this flow's cookie: others in the same browser (other tabs) are still going.
            if let Some(value) = cookie(&finished.cookie_name, "", 0, state.http.secure_cookies) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(error) => error_page(&error),
    }
}

/// What an error code Grantry or Bitbucket put in a landing URL means. Anything else is shown
/// as a generic failure: pages never repeat text from their URL.
pub fn explain(code: &str) -> &'static str {
    match code {
        "not_confirmed" => {
            "The connection could not be confirmed (the link was finished by someone else, or too late)."
        }
        "access_denied" => "You declined the authorization at Bitbucket.",
        "insufficient_scopes" => {
            "Bitbucket granted fewer permissions than the application needs; an admin must \
             update the OAuth consumer or application link."
        }
        "invalid_scope" | "unauthorized_client" | "profile_misconfigured" => {
            "Bitbucket refused the application's configuration; an admin must fix it."
        }
        "account_mismatch" => {
            "A different Bitbucket account authorized than the one this connection belongs to."
        }
        "exchange_failed" | "identity_failed" | "temporarily_unavailable" | "server_error" => {
            "Bitbucket or Grantry could not complete the authorization; try again in a moment."
        }
        _ => "The authorization did not complete.",
    }
}

/// `GET /connect/complete`: Grantry's own landing page when the application gave no return URL.
pub async fn complete(RawQuery(query): RawQuery) -> Response {
    let (mut status, mut error, mut connection) = (None, None, None);
    for (key, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
    {
        match key.as_ref() {
            "status" => status = Some(()),
            "error" => error = Some(explain(&value)),
            "connection_id" => connection = ConnectionId::parse(&value).ok(),
            _ => {}
        }
    }
    let connection = html! {
        @if let Some(id) = &connection { p { "Connection " code { (id) } "." } }
    };
    let body = match (error, status) {
        (None, Some(())) => html! {
            h1.ok { "Connected" }
            div.box { p { "Your Bitbucket account is connected. You can close this window." } (connection) }
        },
        (Some(error), _) => html! {
            h1.bad { "Not connected" }
            div.box {
                p role="alert" { (error) }
                (connection)
                p { "Close this window and try again from the application." }
            }
        },
        (None, None) => html! {
            h1 { "Nothing to show" }
            p { "This page shows the outcome of connecting an account." }
        },
    };
    html::page(StatusCode::OK, "Connect", body)
}
