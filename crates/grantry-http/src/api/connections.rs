//! `/v1/connections`: list, read, delete, refresh, test, and `GET …/token`, the hot path.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use grantry_core::clock::Rfc3339;
use grantry_core::connections::{NewConnection, NewCredential};
use grantry_core::ids::ConnectionId;
use grantry_core::store::{ConnectionFilter, ConnectionStatus};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::responses::{BodyRefused, Missing, ProblemDoc, Refused, TokenRefused};
use super::{next_cursor, page_request};
use crate::extract::{Body, Caller, PathParam, Query};
use crate::problem::Problem;
use crate::state::AppState;
use crate::views::{ConnectionView, Page, TestAnswer, TokenView};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Profile id or name.
    profile: Option<String>,
    end_user_id: Option<String>,
    /// `active`, `needs_reauth`, `insufficient_scopes` or `failing`.
    #[param(pattern = "^(active|needs_reauth|insufficient_scopes|failing)$")]
    status: Option<String>,
    /// From the previous page's `next_cursor`.
    #[param(max_length = 64)]
    cursor: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// A credential to connect without a browser.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialBody {
    ClientCredentials,
    ApiToken {
        email: String,
        #[schema(value_type = String)]
        token: SecretString,
        /// RFC 3339 (unix seconds are accepted too).
        #[serde(default, deserialize_with = "expires_at")]
        #[schema(value_type = Option<String>, format = DateTime, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$")]
        expires_at: Option<Rfc3339>,
    },
    AccessToken {
        #[schema(value_type = String)]
        token: SecretString,
        /// RFC 3339 (unix seconds are accepted too).
        #[serde(default, deserialize_with = "expires_at")]
        #[schema(value_type = Option<String>, format = DateTime, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$")]
        expires_at: Option<Rfc3339>,
    },
}

/// `expires_at`, named in its error: inside the tagged `credential` the path stops there.
fn expires_at<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Rfc3339>, D::Error> {
    <Option<Rfc3339> as Deserialize>::deserialize(deserializer)
        .map_err(|error| serde::de::Error::custom(format_args!("expires_at: {error}")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Profile id or name.
    profile: String,
    end_user_id: Option<String>,
    credential: CredentialBody,
}

fn id(raw: &str) -> Result<ConnectionId, Problem> {
    Ok(ConnectionId::parse(raw)?)
}

#[utoipa::path(get, operation_id = "listConnections", path = "/v1/connections", tag = "connections", params(ListQuery),
    responses((status = 200, description = "A page of connections", body = Page<ConnectionView>), Refused, Missing))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<ConnectionView>>, Problem> {
    let status = match query.status.as_deref() {
        Some(text) => Some(ConnectionStatus::parse(text).ok_or_else(|| {
            Problem::bad_request(format!(
                "status `{text}` is not one of active, needs_reauth, insufficient_scopes, failing"
            ))
        })?),
        None => None,
    };
    let profile_id = match query.profile {
        Some(reference) => Some(state.grantry.find_profile(&reference).await?.id),
        None => None,
    };
    let filter = ConnectionFilter {
        profile_id,
        end_user_id: query.end_user_id,
        status,
    };
    let page = page_request(query.cursor, query.limit)?;
    let connections = state.grantry.list_connections(&filter, &page).await?;
    let next_cursor = next_cursor(&connections, page.limit, |c| c.id.to_string());
    Ok(Json(Page {
        items: connections.into_iter().map(ConnectionView::from).collect(),
        next_cursor,
    }))
}

#[utoipa::path(post, operation_id = "createConnection", path = "/v1/connections", tag = "connections", request_body = CreateBody,
    responses((status = 201, description = "The connection", body = ConnectionView,
            links(("get" = (operation_id = "getConnection", parameters(("connection" = "$response.body#/id")))),
                ("token" = (operation_id = "getToken", parameters(("connection" = "$response.body#/id")))),
                ("refresh" = (operation_id = "refreshConnection", parameters(("connection" = "$response.body#/id")))),
                ("test" = (operation_id = "testConnection", parameters(("connection" = "$response.body#/id")))),
                ("delete" = (operation_id = "deleteConnection", parameters(("connection" = "$response.body#/id")))))),
              Refused, BodyRefused, Missing, TokenRefused,
              (status = 503, description = "`provider-unavailable`: Bitbucket could not be asked", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<CreateBody>,
) -> Result<Response, Problem> {
    let credential = match body.credential {
        CredentialBody::ClientCredentials => NewCredential::ClientCredentials,
        CredentialBody::ApiToken {
            email,
            token,
            expires_at,
        } => NewCredential::ApiToken {
            email,
            token,
            expires_at: expires_at.map(|at| at.0),
        },
        CredentialBody::AccessToken { token, expires_at } => NewCredential::AccessToken {
            token,
            expires_at: expires_at.map(|at| at.0),
        },
    };
    let new = NewConnection {
        profile: body.profile,
        end_user_id: body.end_user_id,
        credential,
    };
    let connection = state
        .grantry
        .create_connection(new, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(ConnectionView::from(connection))).into_response())
}

#[utoipa::path(get, operation_id = "getConnection", path = "/v1/connections/{connection}", tag = "connections",
    params(("connection" = String, Path, description = "The connection's id (`con_…`)", pattern = "^con_[0-9a-hjkmnp-tv-z]{26}$")),
    responses((status = 200, description = "The connection", body = ConnectionView), Refused, Missing))]
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(raw): PathParam,
) -> Result<Json<ConnectionView>, Problem> {
    Ok(Json(state.grantry.connection(&id(&raw)?).await?.into()))
}

#[utoipa::path(delete, operation_id = "deleteConnection", path = "/v1/connections/{connection}", tag = "connections",
    params(("connection" = String, Path, description = "The connection's id (`con_…`)", pattern = "^con_[0-9a-hjkmnp-tv-z]{26}$")),
    responses((status = 204, description = "Deleted"), Refused, Missing))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(raw): PathParam,
) -> Result<StatusCode, Problem> {
    state
        .grantry
        .delete_connection(&id(&raw)?, &caller.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, operation_id = "refreshConnection", path = "/v1/connections/{connection}/refresh", tag = "connections",
    params(("connection" = String, Path, description = "The connection's id (`con_…`)", pattern = "^con_[0-9a-hjkmnp-tv-z]{26}$")),
    responses((status = 200, description = "The connection after the refresh (or, for an API token or access token, the check)", body = ConnectionView),
              Refused, Missing, TokenRefused))]
pub async fn refresh(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(raw): PathParam,
) -> Result<Json<ConnectionView>, Problem> {
    let id = id(&raw)?;
    let connection = state.grantry.refresh_now(&id, &caller.actor()).await?;
    Ok(Json(connection.into()))
}

#[utoipa::path(post, operation_id = "testConnection", path = "/v1/connections/{connection}/test", tag = "connections",
    params(("connection" = String, Path, description = "The connection's id (`con_…`)", pattern = "^con_[0-9a-hjkmnp-tv-z]{26}$")),
    responses((status = 200, description = "What Bitbucket's identity endpoint answered the connection's token", body = TestAnswer),
              Refused, Missing, TokenRefused))]
pub async fn test(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(raw): PathParam,
) -> Result<Response, Problem> {
    let answer = state.grantry.test_connection(&id(&raw)?).await?;
    let answer = TestAnswer {
        status: answer.status,
        body: answer.body,
    };
    Ok(Json(answer).into_response())
}

/// The hot path: a fresh token comes from memory, with no database and no decryption.
#[utoipa::path(get, operation_id = "getToken", path = "/v1/connections/{connection}/token", tag = "connections",
    params(("connection" = String, Path, description = "The connection's id (`con_…`)", pattern = "^con_[0-9a-hjkmnp-tv-z]{26}$")),
    responses((status = 200, description = "A valid token, refreshed first when it expires within the margin", body = TokenView),
              Refused, Missing, TokenRefused))]
pub async fn token(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(raw): PathParam,
) -> Result<Response, Problem> {
    let token = state.grantry.token(&id(&raw)?).await?;
    let body = TokenView::json(&token, state.grantry.clock.now());
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    Ok((headers, body).into_response())
}
