//! A profile's connections in the console: the table, Test, Refresh, Delete, and the landing page
//! after "Connect an account".

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::ids::ConnectionId;
use grantry_core::store::{ConnectionRecord, ConnectionStatus, CredentialKind, ProfileRecord};
use grantry_core::{CoreError, Grantry};
use maud::{Markup, html};
use serde::Deserialize;

use super::expiry;
use super::layout::{self, Section, csrf, status_badge};
use super::session::{self, Admin, Posted};
use crate::state::AppState;

pub fn table(
    state: &AppState,
    admin: &Admin,
    profile: &ProfileRecord,
    connections: &[ConnectionRecord],
) -> Markup {
    html! {
        @if connections.is_empty() {
            p.muted { "No account connected yet. Use “Connect an account” to run the flow in this browser." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th { "Account" } th { "Status" } th { "Granted scopes" } th { "Missing scopes" }
                        th { "Token expires" } th { "Last refresh" } th { "Last problem" } th { "Actions" }
                    } }
                    tbody {
                        @for c in connections {
                            @let missing = state.grantry.connection_missing_scopes(profile, c);
                            tr id={"connection-" (c.id)} {
                                td {
                                    (c.account_display_name.as_deref().unwrap_or("—"))
                                    br; span.muted { (c.account_username.as_deref().unwrap_or("")) " · " (c.credential.as_str()) }
                                }
                                td { (status_badge(c.status.as_str())) }
                                                                td { (layout::scopes(&c.granted_scopes)) }
                                td { @if missing.is_empty() { span.muted { "none" } } @else { (layout::scopes(&missing)) } }
                                td {
                                    (expiry(c.expires_at))
                                    @if let Some(days) = ending_soon(state, c) {
                                        br; span.status.failing { "Ends in " (days) " day(s): add a new one" }
                                    }
                                }
                                td { (expiry(c.refreshed_at)) }
                                td { (c.status_reason.as_deref().or(c.last_error.as_deref()).unwrap_or("—")) }
                                td {
                                    form method="post" action={"/ui/connections/" (c.id) "/test"} {
                                        (csrf(admin)) button type="submit" aria-label={"Test " (c.id)} { "Test" }
                                    } " "
                                    @let (verb, label) = match c.credential {
                                        CredentialKind::ApiToken => ("Check", "Ask Bitbucket whether it still takes the API token"),
                                        CredentialKind::AccessToken => ("Check", "Check the access token's expiry"),
                                        _ => ("Refresh", "Refresh the token now"),
                                    };
                                    form method="post" action={"/ui/connections/" (c.id) "/refresh"} {
                                        (csrf(admin)) button type="submit" aria-label={(verb) " " (c.id)} title=(label) { (verb) }
                                    } " "
                                    a.button.danger href={"/ui/connections/" (c.id) "/delete"} aria-label={"Delete " (c.id)} { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Days until a credential Grantry cannot renew ends, when that is within the warning period
/// (`webhooks.expiry_warning_days`, the same that sends `connection.credential_expiring`).
fn ending_soon(state: &AppState, c: &ConnectionRecord) -> Option<i64> {
    if c.credential.renewable() || c.status == ConnectionStatus::NeedsReauth {
        return None;
    }
    let now = state.grantry.clock.now();
    let warning = state.grantry.settings.webhooks.expiry_warning.as_secs() as i64;
    let at = c
        .expires_at
        .filter(|at| *at > now && *at - now <= warning)?;
    Some((at - now + 86_399) / 86_400)
}

async fn find(grantry: &Grantry, raw: &str) -> Result<ConnectionRecord, Response> {
    let Ok(id) = ConnectionId::parse(raw) else {
        return Err(super::not_found("That connection does not exist."));
    };
    match grantry.connection(&id).await {
        Ok(connection) => Ok(connection),
        Err(CoreError::NotFound(_)) => Err(super::not_found("That connection does not exist.")),
        Err(error) => Err(session::unavailable(error)),
    }
}

pub async fn test(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { admin, .. }: Posted,
) -> Response {
    let connection = match find(&state.grantry, &id).await {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    let outcome = state.grantry.test_connection(&connection.id).await;
    let body = html! {
        h1 { "Test of " (connection.account_username.as_deref().unwrap_or("the connection")) }
        p { "Grantry called Bitbucket's identity endpoint with this connection's token." }
        @match &outcome {
            Ok(answer) => {
                p { "Bitbucket answered " strong id="test-status" { "HTTP " (answer.status) } @if answer.status == 200 { " — the token works." } }
                pre id="test-body" { (answer.body) }
            }
            Err(error) => p.flash.bad role="alert" id="test-status" { (error.to_string()) },
        }
        p { a.button href={"/ui/profiles/" (connection.profile_id)} { "Back to the profile" } }
    };
    layout::page(&admin, Section::Connections, "Test", None, body)
}

pub async fn refresh(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { admin, .. }: Posted,
) -> Response {
    let connection = match find(&state.grantry, &id).await {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    let back = format!("/ui/profiles/{}", connection.profile_id);
    match state
        .grantry
        .refresh_now(&connection.id, &admin.actor())
        .await
    {
        Ok(_) if !connection.credential.renewable() => {
            layout::see_other(&format!("{back}?checked=1"))
        }
        Ok(_) => layout::see_other(&format!("{back}?refreshed=1")),
        Err(error) => {
            let message = match &error {
                CoreError::Store(_) | CoreError::Crypto(_) => {
                    "Grantry could not complete the refresh; it has been logged.".to_owned()
                }
                other => other.to_string(),
            };
            tracing::info!(%error, connection.id = %connection.id, "console: refresh did not succeed");
            let body = html! {
                h1 { "Refresh did not succeed" }
                p.flash.bad role="alert" { (message) }
                p { a.button href=(back) { "Back to the profile" } }
            };
            let mut response = layout::page(&admin, Section::Connections, "Refresh", None, body);
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    }
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let connection = match find(&state.grantry, &id).await {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    let who = connection
        .account_username
        .as_deref()
        .unwrap_or("this account");
    let body = html! {
        h1 { "Delete the connection of " (who) "?" }
        p { "This deletes the connection " code { (connection.id) } " of " strong { (who) } " and its tokens. "
            "Applications will get “not found” for it; the user would have to connect again." }
        form method="post" action={"/ui/connections/" (connection.id) "/delete"} {
            (csrf(&admin))
            div.actions {
                button.danger type="submit" { "Delete" }
                a.button href={"/ui/profiles/" (connection.profile_id)} { "Cancel" }
            }
        }
    };
    layout::page(
        &admin,
        Section::Connections,
        "Delete connection",
        None,
        body,
    )
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { admin, .. }: Posted,
) -> Response {
    let connection = match find(&state.grantry, &id).await {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    match state
        .grantry
        .delete_connection(&connection.id, &admin.actor())
        .await
    {
        Ok(_) => layout::see_other(&format!("/ui/profiles/{}?removed=1", connection.profile_id)),
        Err(error) => session::unavailable(error),
    }
}

#[derive(Deserialize)]
pub struct Landing {
    profile: Option<String>,
    error: Option<String>,
    connect_session_id: Option<String>,
    verification_code: Option<String>,
}

/// Only what the console needs from a landing URL: a known profile id, and the session and
/// code to confirm (each checked for shape), or an error code kept to letters and `_`.
fn next_step(landing: &Landing) -> String {
    let profile = landing
        .profile
        .as_deref()
        .and_then(|p| grantry_core::ids::ProfileId::parse(p).ok());
    let Some(profile) = profile else {
        return "/ui/profiles".to_owned();
    };
    if let Some(error) = &landing.error {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return format!("/ui/profiles/{profile}?error={code}");
    }
    let session = landing
        .connect_session_id
        .as_deref()
        .and_then(|s| grantry_core::ids::SessionId::parse(s).ok());
    let code = landing.verification_code.as_deref().filter(|c| {
        c.len() <= 100
            && c.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    });
    match (session, code) {
        (Some(session), Some(code)) => format!(
            "/ui/connected/confirm?profile={profile}&connect_session_id={session}&verification_code={code}"
        ),
        _ => format!("/ui/profiles/{profile}?connected=1"),
    }
}

/// Where a console-started connect flow lands. Coming from Bitbucket, the browser may not send
/// the SameSite=Strict session cookie, so this page only forwards, by a fresh same-site
/// navigation, to the confirmation (which needs the signed-in admin) or to the profile.
pub async fn landed(Query(landing): Query<Landing>) -> Response {
    let next = next_step(&landing);
    let page = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content={"0;url=" (next)};
                title { "Back to the console · Grantry" }
            }
            body { p { "Back to the console… " a href=(next) { "continue" } } }
        }
    };
    layout::respond(StatusCode::OK, page)
}

/// The console's own flow is confirmed by the signed-in admin's session: the connection is
/// saved under the admin who started it (`console:{username}`), or refused.
pub async fn confirm(
    State(state): State<AppState>,
    admin: Admin,
    Query(landing): Query<Landing>,
) -> Response {
    let profile = landing.profile.clone().unwrap_or_default();
    let back = |outcome: &str| {
        let profile = grantry_core::ids::ProfileId::parse(&profile).ok();
        match profile {
            Some(profile) => layout::see_other(&format!("/ui/profiles/{profile}?{outcome}")),
            None => layout::see_other("/ui/profiles"),
        }
    };
    let session = landing
        .connect_session_id
        .as_deref()
        .and_then(|s| grantry_core::ids::SessionId::parse(s).ok());
    let (Some(session), Some(code)) = (session, landing.verification_code.as_deref()) else {
        return back("error=invalid_request");
    };
    let end_user = format!("console:{}", admin.username);
    match state
        .grantry
        .confirm_session(&session, Some(&end_user), code, &admin.actor())
        .await
    {
        Ok(_) => back("connected=1"),
        Err(
            CoreError::ConfirmationRefused(_) | CoreError::Conflict(_) | CoreError::NotFound(_),
        ) => back("error=not_confirmed"),
        Err(error) => session::unavailable(error),
    }
}
