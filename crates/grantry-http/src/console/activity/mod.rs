//! Activity: the audit trail, filtered by profile, connection and kind.

use axum::extract::{Query, State};
use axum::response::Response;
use grantry_core::events::EventKind;
use grantry_core::ids::{ConnectionId, ProfileId};
use grantry_core::store::{EventFilter, PageRequest};
use maud::html;
use serde::Deserialize;

use super::layout::{self, Flash, Section};
use super::session::{self, Admin};
use super::time;
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct Filters {
    profile: Option<String>,
    connection: Option<String>,
    kind: Option<String>,
    before: Option<String>,
}

const PAGE: u32 = 50;

fn nonempty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub async fn page(
    State(state): State<AppState>,
    admin: Admin,
    Query(filters): Query<Filters>,
) -> Response {
    let profiles = match state.grantry.list_profiles().await {
        Ok(profiles) => profiles,
        Err(error) => return session::unavailable(error),
    };
    let mut flash = None;
    let connection = match nonempty(&filters.connection).map(ConnectionId::parse) {
        Some(Ok(id)) => Some(id),
        Some(Err(error)) => {
            flash = Some(Flash::Bad(error.to_string()));
            None
        }
        None => None,
    };
    let filter = EventFilter {
        profile_id: nonempty(&filters.profile).and_then(|p| ProfileId::parse(p).ok()),
        connection_id: connection,
        kind: nonempty(&filters.kind).map(str::to_owned),
    };
    let page = PageRequest {
        after: nonempty(&filters.before).map(str::to_owned),
        limit: PAGE,
    };
    let events = match state.grantry.list_events(&filter, &page).await {
        Ok(events) => events,
        Err(error) => return session::unavailable(error),
    };
    let names = |id: &Option<ProfileId>| {
        id.as_ref()
            .and_then(|id| {
                profiles
                    .iter()
                    .find(|p| p.id == *id)
                    .map(|p| p.name.clone())
                    .or_else(|| Some(id.to_string()))
            })
            .unwrap_or_default()
    };
    let chosen_kind = nonempty(&filters.kind).unwrap_or_default();
    let chosen_profile = nonempty(&filters.profile).unwrap_or_default();
    let older = (events.len() as u32 == PAGE)
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    let body = html! {
        h1 { "Activity" }
                form.filters method="get" action="/ui/activity" role="search" aria-label="Filter the activity" {
            div.field {
                label for="profile" { "Profile" }
                select id="profile" name="profile" {
                    option value="" { "All" }
                    @for p in &profiles { option value=(p.id) selected[chosen_profile == p.id.as_str()] { (p.name) } }
                }
            }
            div.field {
                label for="connection" { "Connection" }
                input type="text" id="connection" name="connection" placeholder="con_…" value=(nonempty(&filters.connection).unwrap_or_default());
            }
            div.field {
                label for="kind" { "Kind" }
                select id="kind" name="kind" {
                    option value="" { "All" }
                    @for prefix in ["profile.", "connection.", "api_key.", "admin."] { option value=(prefix) selected[chosen_kind == prefix] { (prefix) "*" } }
                    @for kind in EventKind::ALL { option value=(kind.as_str()) selected[chosen_kind == kind.as_str()] { (kind.as_str()) } }
                }
            }
            div.field { button type="submit" { "Filter" } }
        }
        @if events.is_empty() { p.muted { "Nothing recorded for these filters." } } @else {
            div.table-wrap { table {
                thead { tr { th { "When" } th { "What" } th { "Profile" } th { "Connection" } th { "Who" } th { "Detail" } } }
                tbody { @for event in &events { tr {
                    td { (time(event.at)) }
                                        td { code.nowrap { (event.kind) } }
                    td { (names(&event.profile_id)) }
                    td { @if let Some(c) = &event.connection_id { code { (c) } } }
                    td { (event.actor) }
                    td { (event.detail) }
                } } }
            } }
            @if let Some(before) = older {
                p { a.button href={"/ui/activity?profile=" (chosen_profile) "&kind=" (chosen_kind) "&before=" (before)} { "Older" } }
            }
        }
    };
    layout::page(&admin, Section::Activity, "Activity", flash, body)
}
