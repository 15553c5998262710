//! What the Activity page shows, gathered from the services: the events for the filters, the
//! profiles to name them by, and the filters as chosen. No markup here.

use grantry_core::ids::{ConnectionId, ProfileId};
use grantry_core::store::{EventFilter, EventRecord, PageRequest, ProfileRecord};
use grantry_core::{CoreResult, Grantry};
use serde::Deserialize;

use crate::console::layout::Flash;

/// The filters, as the form sends them.
#[derive(Deserialize, Default)]
pub struct Filters {
    pub profile: Option<String>,
    pub connection: Option<String>,
    pub kind: Option<String>,
    pub before: Option<String>,
}

/// Events per page.
pub const PAGE: u32 = 50;

fn nonempty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Activity: the filters and a page of events, newest first.
pub struct ActivityPage {
    pub profiles: Vec<ProfileRecord>,
    pub events: Vec<EventRecord>,
    /// The filters as chosen, empty for "All".
    pub chosen_profile: String,
    pub chosen_kind: String,
    pub chosen_connection: String,
    /// Where the next page starts, when this one is full.
    pub older: Option<String>,
    /// A connection id that is not one.
    pub flash: Option<Flash>,
}

impl ActivityPage {
    /// The next page's address, with every filter kept (encoded as typed), when this page is
    /// full.
    pub fn older_link(&self) -> Option<String> {
        let before = self.older.as_deref()?;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("profile", self.chosen_profile.as_str()),
            ("connection", self.chosen_connection.as_str()),
            ("kind", self.chosen_kind.as_str()),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.append_pair("before", before);
        Some(format!("/ui/activity?{}", query.finish()))
    }

    /// A profile by its name, or its id when it is gone; empty for none.
    pub fn profile_name(&self, id: &Option<ProfileId>) -> String {
        id.as_ref()
            .and_then(|id| {
                self.profiles
                    .iter()
                    .find(|p| p.id == *id)
                    .map(|p| p.name.clone())
                    .or_else(|| Some(id.to_string()))
            })
            .unwrap_or_default()
    }
}

pub async fn activity_page(grantry: &Grantry, filters: &Filters) -> CoreResult<ActivityPage> {
    let profiles = grantry.list_profiles().await?;
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
    let events = grantry.list_events(&filter, &page).await?;
    let older = (events.len() as u32 == PAGE)
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(ActivityPage {
        profiles,
        events,
        chosen_profile: nonempty(&filters.profile).unwrap_or_default().to_owned(),
        chosen_kind: nonempty(&filters.kind).unwrap_or_default().to_owned(),
        chosen_connection: nonempty(&filters.connection).unwrap_or_default().to_owned(),
        older,
        flash,
    })
}
