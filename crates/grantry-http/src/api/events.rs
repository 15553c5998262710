//! `GET /v1/events`: the audit trail, newest first.

use axum::extract::State;
use axum::response::Json;
use grantry_core::ids::ConnectionId;
use grantry_core::store::EventFilter;
use serde::Deserialize;

use super::{next_cursor, page_request};
use crate::extract::{AdminCaller, Query};
use crate::problem::Problem;
use crate::state::AppState;
use crate::views::{EventView, Page};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    profile: Option<String>,
    connection: Option<String>,
    /// `connection.needs_reauth`, or a prefix such as `connection.`
    kind: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

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
