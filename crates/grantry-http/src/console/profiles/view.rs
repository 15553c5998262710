//! The application-connection pages' markup, from the structs in `data.rs`: pure functions, no
//! services.

use grantry_core::catalog::{CredentialGuide, SetupGuide};
use grantry_core::store::{ConnectionStatus, ProfileRecord};
use maud::{Markup, html};

use super::data::{Counts, DeletePage, ProfilePage, ProfilePanel, ProfilesPage};
use super::form::{self, Errors};
use crate::console::connections;
use crate::console::layout::{self, copyable, csrf};
use crate::console::signed_in::Admin;

/// A profile's connections by status, in words: `2 active, 1 failing`, or `none`.
pub fn counts_text(counts: Option<&Counts>) -> String {
    let words = [
        (ConnectionStatus::Active, "active"),
        (ConnectionStatus::NeedsReauth, "needs reconnecting"),
        (ConnectionStatus::InsufficientScopes, "missing permissions"),
        (ConnectionStatus::Failing, "failing"),
    ];
    let parts: Vec<String> = words
        .iter()
        .filter_map(|(status, word)| counts?.get(status).map(|n| format!("{n} {word}")))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

pub fn list(page: &ProfilesPage) -> Markup {
    let profiles = &page.profiles;
    // The action bar acts on the profile chosen in the table: a plain GET form, so it works
    // without JavaScript (`selected` sends the browser on to the Edit panel or the confirmation).
    html! {
        h1 { "Application connections" }
        form #profiles method="get" action="/ui/profiles/selected" {
            div.actions role="toolbar" aria-label="Actions" {
                a.button.primary href="/ui/profiles/new" { "Create" }
                @if !profiles.is_empty() {
                    button type="submit" name="action" value="edit" data-needs-choice { "Edit" }
                    button.danger type="submit" name="action" value="delete" data-needs-choice { "Delete" }
                }
            }
        }
        @if profiles.is_empty() {
            p.muted { "No application connection yet. Create one for each Bitbucket OAuth consumer or Data Center link." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th { span.visually-hidden { "Choose" } } th { "Profile name" } th { "Application" } th { "Description" } th { "Connections" } th { "Last problem" } } }
                    tbody {
                        @for profile in profiles {
                            tr {
                                td.choose {
                                    input type="radio" form="profiles" name="profile" value=(profile.id)
                                        id={"choose-" (profile.id)};
                                    label.visually-hidden for={"choose-" (profile.id)} { "Choose " (profile.name) }
                                }
                                td { a href={"/ui/profiles/" (profile.id)} { (profile.name) } }
                                td { (profile.provider.spec().display_name) }
                                td { (profile.description) }
                                td { (counts_text(page.counts_by_profile.get(profile.id.as_str()))) }
                                td {
                                    @match &profile.problem {
                                        Some(problem) => { span class="status problem" { "Problem" } " " (problem) },
                                        None => span.muted { "none" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The Create / Edit panel.
pub fn panel(admin: &Admin, panel: &ProfilePanel) -> Markup {
    let title = if panel.editing {
        "Edit application connection"
    } else {
        "Create an application connection"
    };
    html! {
        h1 { (title) }
        (form::render(admin, &panel.form, &panel.errors, &panel.action, &panel.callback_url, panel.editing))
    }
}

fn setup_card(guide: &SetupGuide, open: bool) -> Markup {
    html! {
        details.card open[open] {
            summary { strong { "Set it up in Bitbucket" } " — " (guide.location) }
            p { "Callback URL: " (copyable("setup-callback-url", &guide.callback_url)) }
            ol.steps {
                @for step in &guide.steps {
                    li { (step.text) @if let Some(value) = &step.value { " " code { (value) } } }
                }
            }
            @if !guide.tick.is_empty() {
                p { "Boxes to tick: " }
                ul id="boxes-to-tick" { @for label in &guide.tick { li { (label) } } }
            }
            @if !guide.scopes.is_empty() {
                p { "Scopes for the link: " span id="link-scopes" { (guide.scopes.join(", ")) } }
            }
        }
    }
}

/// A profile's page.
pub fn profile(admin: &Admin, page: &ProfilePage) -> Markup {
    let profile = &page.profile;
    html! {
        h1 { (profile.name) }
        p.muted { (profile.provider.spec().display_name) " · Key " code { (profile.client_id) } @if !profile.description.is_empty() { " · " (profile.description) } }
        @if let Some(problem) = &profile.problem { p.flash.bad role="alert" { strong { "Problem: " } (problem) } }
        div.actions role="toolbar" aria-label="Actions" {
            form method="post" action={"/ui/profiles/" (profile.id) "/connect"} {
                (csrf(admin))
                button.primary type="submit" { "Connect an account" }
            }
            a.button href={"/ui/profiles/" (profile.id) "/edit"} { "Edit" }
            a.button.danger href={"/ui/profiles/" (profile.id) "/delete"} { "Delete" }
        }
        (setup_card(&page.setup, page.setup_open))
        (credential_card(admin, profile, &page.credential, page.refused.as_ref()))
        h2 { "Connections" }
        @if page.total > page.connections.len() as u64 {
            p.muted { "Showing the first " (page.connections.len()) " of " (page.total) " connections. "
                "The API (" code { "GET /v1/connections?profile=…" } ") and the CLI (" code { "grantry connections list --profile " (profile.name) } ") list them all." }
        }
        (connections::view::table(admin, &page.connections))
    }
}

/// "Add an API token or access token": how to make one in Bitbucket for this profile's needs,
/// and the form to store it.
fn credential_card(
    admin: &Admin,
    profile: &ProfileRecord,
    guide: &CredentialGuide,
    refused: Option<&Errors>,
) -> Markup {
    let error = |field: &str| refused.and_then(|errors| errors.get(field));
    let date = |name: &str| html! { input type="date" id=(name) name=(name); };
    html! {
        details.card id="add-credential" open[refused.is_some()] {
            summary { strong { "Add an API token or access token" } " — for scripts and services without a browser" }
            @if let Some(steps) = &guide.api_token {
                h3 { "An API token (an account's)" }
                ol.steps { @for step in steps { li { (step.text) } } }
                @if !guide.api_token_scopes.is_empty() {
                    p { "API token scopes: " span id="api-token-scopes" { (guide.api_token_scopes.join(", ")) } }
                }
            }
            h3 { "An access token (a repository's, project's or workspace's)" }
            ol.steps { @for step in &guide.access_token { li { (step.text) } } }
            form.stack method="post" action={"/ui/profiles/" (profile.id) "/credentials"} {
                (csrf(admin))
                fieldset {
                    legend { "Kind" }
                    @if guide.api_token.is_some() {
                        label.check { input type="radio" name="kind" value="api_token" checked; " API token" }
                        label.check { input type="radio" name="kind" value="access_token"; " Access token" }
                    } @else {
                        label.check { input type="radio" name="kind" value="access_token" checked; " HTTP access token" }
                    }
                }
                @if guide.api_token.is_some() {
                    (layout::field("email", "Atlassian e-mail (API tokens only)", html! { input type="email" id="email" name="email" autocomplete="off"; }, None, error("email")))
                }
                (layout::field("token", "Token", html! { input type="password" id="token" name="token" autocomplete="off" required; }, Some("Checked with Bitbucket before it is stored (API tokens), sealed at rest, never shown again."), error("token")))
                (layout::field("expires_on", "Expires on (UTC)", date("expires_on"), Some("Grantry warns seven days ahead and stops serving it then."), error("expires_at")))
                (layout::field("end_user_id", "End user id (optional)", html! { input type="text" id="end_user_id" name="end_user_id" autocomplete="off"; }, Some("Your own id for whoever uses it."), error("end_user_id")))
                button.primary type="submit" { "Add credential" }
            }
        }
    }
}

/// "Delete …?", with the name to type.
pub fn confirm_delete(admin: &Admin, page: &DeletePage) -> Markup {
    let profile = &page.profile;
    html! {
        h1 { "Delete " (profile.name) "?" }
        p { "This deletes the application connection " strong { (profile.name) } ", its " strong { (page.connections) " connection(s)" }
            " and their tokens. Applications using them will get “not found”. This cannot be undone." }
        form.stack method="post" action={"/ui/profiles/" (profile.id) "/delete"} {
            (csrf(admin))
            (layout::field("confirm", "Type the profile name to confirm", html! { input type="text" id="confirm" name="confirm" autocomplete="off"; }, None, page.error.as_deref()))
            div.actions {
                button.danger type="submit" { "Delete" }
                a.button href={"/ui/profiles/" (profile.id)} { "Cancel" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use grantry_core::catalog::SetupStep;
    use grantry_core::ids::ProfileId;
    use grantry_core::store::ConnectionStatus;

    use super::*;
    use crate::console::connections::data::ConnectionRow;
    use crate::console::fixtures;

    fn two_profiles() -> ProfilesPage {
        let busy = fixtures::profile("Busy <app>");
        let mut idle = fixtures::profile("Idle");
        idle.id = ProfileId::parse("prf_00000000000000000000000002").unwrap();
        idle.problem = Some("Bitbucket refused the client".into());
        let counts = HashMap::from([
            (ConnectionStatus::Active, 2),
            (ConnectionStatus::Failing, 1),
        ]);
        ProfilesPage {
            counts_by_profile: HashMap::from([(busy.id.to_string(), counts)]),
            profiles: vec![busy, idle],
            flash: None,
        }
    }

    #[test]
    fn the_list_says_connection_counts_in_words_and_none_when_there_are_none() {
        let html = list(&two_profiles()).into_string();
        assert!(html.contains("<td>2 active, 1 failing</td>"));
        assert!(html.contains("<td>none</td>"));
        assert!(html.contains(
            r#"<a href="/ui/profiles/prf_00000000000000000000000001">Busy &lt;app&gt;</a>"#
        ));
        assert!(html.contains(
            r#"<span class="status problem">Problem</span> Bitbucket refused the client"#
        ));
        assert!(html.contains(r#"<span class="muted">none</span>"#));
        assert!(html.contains(r#"value="edit" data-needs-choice>Edit</button>"#));
    }

    #[test]
    fn counts_follow_a_fixed_order_of_statuses() {
        let counts = HashMap::from([
            (ConnectionStatus::Failing, 1),
            (ConnectionStatus::NeedsReauth, 3),
            (ConnectionStatus::InsufficientScopes, 4),
        ]);
        assert_eq!(
            counts_text(Some(&counts)),
            "3 needs reconnecting, 4 missing permissions, 1 failing"
        );
        assert_eq!(counts_text(Some(&HashMap::new())), "none");
        assert_eq!(counts_text(None), "none");
    }

    #[test]
    fn an_empty_list_offers_only_create() {
        let empty = ProfilesPage {
            profiles: Vec::new(),
            counts_by_profile: HashMap::new(),
            flash: None,
        };
        let html = list(&empty).into_string();
        assert!(html.contains("No application connection yet."));
        assert!(html.contains(r#"href="/ui/profiles/new">Create</a>"#));
        assert!(!html.contains("data-needs-choice"));
        assert!(!html.contains("<table>"));
    }

    fn profile_page(refused: Option<Errors>) -> ProfilePage {
        let profile = fixtures::profile("Busy");
        ProfilePage {
            connections: vec![ConnectionRow {
                connection: fixtures::connection(ConnectionStatus::NeedsReauth),
                missing: Vec::new(),
                ending_in_days: None,
            }],
            total: 1,
            setup: SetupGuide {
                callback_url: "https://grantry.example.com/connect/callback".into(),
                location: "Workspace settings → OAuth consumers",
                steps: vec![SetupStep {
                    text: "Name it".into(),
                    value: Some("Grantry".into()),
                }],
                tick: vec!["Repositories → Read".into()],
                ticked: Vec::new(),
                scopes: Vec::new(),
            },
            credential: CredentialGuide {
                api_token: None,
                api_token_scopes: Vec::new(),
                access_token: vec![SetupStep {
                    text: "Create an access token".into(),
                    value: None,
                }],
            },
            setup_open: false,
            refused,
            flash: None,
            profile,
        }
    }

    #[test]
    fn a_profile_page_shows_its_setup_steps_and_its_connections() {
        let html = profile(&fixtures::admin(), &profile_page(None)).into_string();
        assert!(html.contains("<details class=\"card\"><summary>"));
        assert!(html.contains("<li>Name it <code>Grantry</code></li>"));
        assert!(html.contains(r#"<ul id="boxes-to-tick"><li>Repositories → Read</li></ul>"#));
        assert!(html.contains(r#"<details class="card" id="add-credential">"#));
        assert!(html.contains(r#"value="access_token" checked> HTTP access token"#));
        assert!(html.contains("Needs reconnecting"));
        assert!(html.contains(r#"action="/ui/profiles/prf_00000000000000000000000001/connect""#));
        assert!(!html.contains("Showing the first"));
    }

    #[test]
    fn a_profile_with_more_connections_than_shown_says_so_and_where_to_see_them_all() {
        let mut page = profile_page(None);
        page.total = 1_203;
        let html = profile(&fixtures::admin(), &page).into_string();
        assert!(html.contains("Showing the first 1 of 1203 connections."));
        assert!(html.contains("<code>grantry connections list --profile Busy</code>"));
    }

    #[test]
    fn a_refused_credential_opens_its_form_with_the_error_by_its_field() {
        let refused = Errors::one("expires_at", "a date such as 2027-06-01");
        let html = profile(&fixtures::admin(), &profile_page(Some(refused))).into_string();
        assert!(html.contains(r#"<details class="card" id="add-credential" open>"#));
        assert!(html.contains(
            r#"<p class="error" id="expires_on-error" role="alert">A date such as 2027-06-01</p>"#
        ));
    }

    #[test]
    fn the_delete_confirmation_counts_connections_and_says_a_wrong_name() {
        let page = DeletePage {
            profile: fixtures::profile("Busy"),
            connections: 3,
            error: Some("That is not the profile's name.".into()),
        };
        let html = confirm_delete(&fixtures::admin(), &page).into_string();
        assert!(html.contains("<h1>Delete Busy?</h1>"));
        assert!(html.contains("<strong>3 connection(s)</strong>"));
        assert!(html.contains(r#"<div class="field invalid">"#));
        assert!(html.contains(
            r#"<p class="error" id="confirm-error" role="alert">That is not the profile's name.</p>"#
        ));
    }
}
