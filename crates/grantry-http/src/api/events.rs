//! `GET /v1/events`: the audit trail, newest first.

use axum::extract::State;
use axum::response::Json;
use grantry_core::ids::ConnectionId;
use grantry_core::store::EventFilter;
use serde::Deserialize;
use utoipa::IntoParams;

use super::responses::{AdminOnly, Missing, Refused};
use super::{next_cursor, page_request};
use crate::extract::{AdminCaller, Query};
use crate::problem::Problem;
use crate::state::AppState;
use crate::views::{EventView, Page};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Profile id or name.
    profile: Option<String>,
    /// Connection id (`con_…`).
    #[param(pattern = "^con_[0-9a-hjkmnp-tv-z]{26}$")]
    connection: Option<String>,
    /// `connection.needs_reauth`, or a prefix such as `connection.`
    kind: Option<String>,
    /// From the previous page's `next_cursor`.
    #[param(max_length = 64)]
    cursor: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

#[utoipa::path(get, operation_id = "listEvents", path = "/v1/events", tag = "admin", params(EventQuery),
    responses((status = 200, description = "A page of the audit trail, newest first", body = Page<EventView>), Refused, AdminOnly, Missing))]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Query(query): Query<EventQuery>,
) -> Result<Json<Page<EventView>>, Problem> {
    let profile_id = match query.profile {
        Some(reference) => Some(state.grantry.find_profile(&reference).await?.id),
        None => None,
    };
    let filter = EventFilter {
        profile_id,
        connection_id: query
            .connection
            .as_deref()
            .map(ConnectionId::parse)
            .transpose()?,
        kind: query.kind,
    };
    let page = page_request(query.cursor, query.limit)?;
    let events = state.grantry.list_events(&filter, &page).await?;
    let next_cursor = next_cursor(&events, page.limit, |e| e.id.to_string());
    Ok(Json(Page {
        items: events.into_iter().map(EventView::from).collect(),
        next_cursor,
    }))
}
