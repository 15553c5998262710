//! `POST /v1/connect-sessions`: a single-use link for an end user's browser; and
//! `POST /v1/connect-sessions/{id}/confirm`: the application confirms that the browser which
//! came back with a verification code is its signed-in end user, and the connection is saved.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use grantry_core::clock::rfc3339;
use grantry_core::connect::NewSession;
use grantry_core::ids::{ConnectionId, SessionId};
use serde::Deserialize;
use utoipa::ToSchema;

use super::responses::{BodyRefused, Conflicting, Missing, ProblemDoc, Refused};
use crate::extract::{Body, Caller, PathParam};
use crate::problem::Problem;
use crate::state::AppState;
use crate::views::{ConnectionView, SessionView};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    /// Profile id or name.
    profile: String,
    end_user_id: Option<String>,
    return_url: Option<String>,
    /// Reconnect this connection instead of making a new one.
    #[schema(pattern = "^con_[0-9a-hjkmnp-tv-z]{26}$")]
    connection_id: Option<String>,
}

#[utoipa::path(post, operation_id = "createConnectSession", path = "/v1/connect-sessions", tag = "connect", request_body = SessionBody,
    responses((status = 201, description = "The session, with the single-use link for the end user's browser", body = SessionView,
            links(("confirm" = (operation_id = "confirmConnectSession", parameters(("session" = "$response.body#/id")))))),
              Refused, BodyRefused, Missing))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<SessionBody>,
) -> Result<Response, Problem> {
    let connection_id = body
        .connection_id
        .as_deref()
        .map(ConnectionId::parse)
        .transpose()?;
    let new = NewSession {
        profile: body.profile,
        end_user_id: body.end_user_id,
        return_url: body.return_url,
        connection_id,
    };
    let created = state.grantry.create_session(new, &caller.actor()).await?;
    let session = created.record;
    let answer = SessionView {
        id: session.id.to_string(),
        url: created.url,
        expires_at: rfc3339(session.expires_at),
        profile_id: session.profile_id.to_string(),
        end_user_id: session.end_user_id,
        return_url: session.return_url,
        connection_id: session.connection_id.map(|c| c.to_string()),
        confirmation_required: created.confirmation_required,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The end user the application has signed in, as it named them when making the session.
    end_user_id: Option<String>,
    /// The code the browser brought back to the return URL.
    verification_code: String,
}

#[utoipa::path(post, operation_id = "confirmConnectSession", path = "/v1/connect-sessions/{session}/confirm", tag = "connect", request_body = ConfirmBody,
    params(("session" = String, Path, description = "The connect session's id (`cs_…`)", pattern = "^cs_[0-9a-hjkmnp-tv-z]{26}$")),
    responses((status = 200, description = "The connection, saved now", body = ConnectionView),
              (status = 403, description = "`confirmation-refused`: another end user or a wrong code; the session is spent", body = ProblemDoc, content_type = "application/problem+json"),
              Refused, BodyRefused, Missing, Conflicting))]
pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(raw): PathParam,
    Body(body): Body<ConfirmBody>,
) -> Result<Json<ConnectionView>, Problem> {
    let id = SessionId::parse(&raw)?;
    let saved = state
        .grantry
        .confirm_session(
            &id,
            body.end_user_id.as_deref(),
            &body.verification_code,
            &caller.actor(),
        )
        .await?;
    Ok(Json(ConnectionView::saved(saved)))
}
