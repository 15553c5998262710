//! The Activity page's markup, from the struct in `data.rs`: a pure function, no services.

use grantry_core::events::EventKind;
use maud::{Markup, html};

use super::data::ActivityPage;
use crate::console::layout::time;

pub fn page(page: &ActivityPage) -> Markup {
    let chosen_profile = page.chosen_profile.as_str();
    let chosen_kind = page.chosen_kind.as_str();
    html! {
        h1 { "Activity" }
        form.filters method="get" action="/ui/activity" role="search" aria-label="Filter the activity" {
            div.field {
                label for="profile" { "Profile" }
                select id="profile" name="profile" {
                    option value="" { "All" }
                    @for p in &page.profiles { option value=(p.id) selected[chosen_profile == p.id.as_str()] { (p.name) } }
                }
            }
            div.field {
                label for="connection" { "Connection" }
                input type="text" id="connection" name="connection" placeholder="con_…" value=(page.chosen_connection);
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
        @if page.events.is_empty() { p.muted { "Nothing recorded for these filters." } } @else {
            div.table-wrap { table {
                thead { tr { th { "When" } th { "What" } th { "Profile" } th { "Connection" } th { "Who" } th { "Detail" } } }
                tbody { @for event in &page.events { tr {
                    td { (time(event.at)) }
                    td { code.nowrap { (event.kind) } }
                    td { (page.profile_name(&event.profile_id)) }
                    td { @if let Some(c) = &event.connection_id { code { (c) } } }
                    td { (event.actor) }
                    td { (event.detail) }
                } } }
            } }
            @if let Some(older) = page.older_link() {
                p { a.button href=(older) { "Older" } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use grantry_core::ids::{EventId, ProfileId};
    use grantry_core::store::EventRecord;

    use super::*;
    use crate::console::fixtures::{self, NOW, PROFILE_ID};

    fn event(profile: Option<&str>) -> EventRecord {
        EventRecord {
            id: EventId::parse("evt_00000000000000000000000009").unwrap(),
            at: NOW,
            kind: "profile.created".into(),
            profile_id: profile.map(|p| ProfileId::parse(p).unwrap()),
            connection_id: None,
            actor: "admin:ada".into(),
            detail: "Created <Busy>".into(),
        }
    }

    fn activity(events: Vec<EventRecord>, older: Option<&str>) -> ActivityPage {
        ActivityPage {
            profiles: vec![fixtures::profile("Busy")],
            events,
            chosen_profile: PROFILE_ID.into(),
            chosen_kind: "profile.".into(),
            chosen_connection: String::new(),
            older: older.map(str::to_owned),
            flash: None,
        }
    }

    #[test]
    fn events_name_their_profile_or_its_id_once_it_is_gone() {
        let gone = "prf_00000000000000000000000002";
        let html = page(&activity(
            vec![event(Some(PROFILE_ID)), event(Some(gone))],
            None,
        ))
        .into_string();
        assert!(html.contains("<td>Busy</td>"));
        assert!(html.contains(&format!("<td>{gone}</td>")));
        assert!(html.contains("<td>Created &lt;Busy&gt;</td>"));
        assert!(html.contains(&format!(
            r#"<option value="{PROFILE_ID}" selected>Busy</option>"#
        )));
        assert!(html.contains(r#"<option value="profile." selected>profile.*</option>"#));
        assert!(!html.contains("Older"));
    }

    #[test]
    fn a_full_page_links_to_older_events_with_every_filter_kept() {
        let html = page(&activity(
            vec![event(None)],
            Some("evt_00000000000000000000000009"),
        ))
        .into_string();
        assert!(html.contains(&format!(
            r#"href="/ui/activity?profile={PROFILE_ID}&amp;kind=profile.&amp;before=evt_00000000000000000000000009""#
        )));
        let mut by_connection = activity(vec![event(None)], Some("evt_00000000000000000000000009"));
        by_connection.chosen_connection = "con_00000000000000000000000001".into();
        by_connection.chosen_kind = "a&b=c d".into();
        assert_eq!(
            by_connection.older_link().unwrap(),
            format!(
                "/ui/activity?profile={PROFILE_ID}&connection=con_00000000000000000000000001\
                 &kind=a%26b%3Dc+d&before=evt_00000000000000000000000009"
            ),
            "the connection filter is kept and what was typed cannot add parameters"
        );
        let empty = page(&activity(Vec::new(), None)).into_string();
        assert!(empty.contains("Nothing recorded for these filters."));
    }
}
