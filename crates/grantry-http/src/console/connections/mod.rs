//! A profile's connections in the console: Test, Refresh, Delete, and the landing page after
//! "Connect an account". The handlers are here; what the pages show is gathered in `data.rs`
//! and drawn in `view.rs` (whose connections table the profile's page uses too).

pub mod data;
pub mod view;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::ids::ConnectionId;
use grantry_core::store::ConnectionRecord;
use grantry_core::{CoreError, Grantry};

use self::data::{Landing, RefreshFailed};
use super::layout::{self, Section};
use super::session::{self, Admin, Posted};
use crate::state::AppState;

async fn find(grantry: &Grantry, raw: &str) -> Result<ConnectionRecord, Response> {
    let Ok(id) = ConnectionId::parse(raw) else {
        return Err(layout::not_found("That connection does not exist."));
    };
    match grantry.connection(&id).await {
        Ok(connection) => Ok(connection),
        Err(CoreError::NotFound(_)) => Err(layout::not_found("That connection does not exist.")),
        Err(error) => Err(session::failed(error)),
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
    let page = data::test_page(&state.grantry, connection).await;
    layout::page(
        &admin,
        Section::Connections,
        "Test",
        None,
        view::test(&page),
    )
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
            let failed = RefreshFailed::new(back, &error);
            tracing::info!(%error, connection.id = %connection.id, "console: refresh did not succeed");
            let body = view::refresh_failed(&failed);
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
    let body = view::confirm_delete(&admin, &connection);
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
        Err(error) => session::failed(error),
    }
}

/// Where a console-started connect flow lands. Coming from Bitbucket, the browser may not send
/// the SameSite=Strict session cookie, so this page only forwards, by a fresh same-site
/// navigation, to the confirmation (which needs the signed-in admin) or to the profile.
pub async fn landed(Query(landing): Query<Landing>) -> Response {
    let next = data::next_step(&landing);
    layout::respond(StatusCode::OK, view::landed(&next))
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
        Err(error) => session::failed(error),
    }
}
