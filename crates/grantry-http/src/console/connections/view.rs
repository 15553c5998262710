//! The connection pages' markup, from the structs in `data.rs`: pure functions, no services.

use grantry_core::store::{ConnectionRecord, CredentialKind};
use maud::{Markup, html};

use super::data::{ConnectionRow, RefreshFailed, TestPage};
use crate::console::layout::expiry;
use crate::console::layout::{self, csrf, status_badge};
use crate::console::signed_in::Admin;

/// A profile's connections, with Test, Refresh (or Check) and Delete on each (the profile's
/// page shows it).
pub fn table(admin: &Admin, rows: &[ConnectionRow]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted { "No account connected yet. Use “Connect an account” to run the flow in this browser." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th { "Account" } th { "Status" } th { "Granted scopes" } th { "Missing scopes" }
                        th { "Token expires" } th { "Last refresh" } th { "Last problem" } th { "Actions" }
                    } }
                    tbody {
                        @for row in rows {
                            @let c = &row.connection;
                            @let missing = &row.missing;
                            tr id={"connection-" (c.id)} {
                                td {
                                    (c.account_display_name.as_deref().unwrap_or("—"))
                                    br; span.muted { (c.account_username.as_deref().unwrap_or("")) " · " (c.credential.as_str()) }
                                }
                                td { (status_badge(c.status.as_str())) }
                                td { (layout::scopes(&c.granted_scopes)) }
                                td { @if missing.is_empty() { span.muted { "none" } } @else { (layout::scopes(missing)) } }
                                td {
                                    (expiry(c.expires_at))
                                    @if let Some(days) = row.ending_in_days {
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

pub fn test(page: &TestPage) -> Markup {
    let connection = &page.connection;
    html! {
        h1 { "Test of " (connection.account_username.as_deref().unwrap_or("the connection")) }
        p { "Grantry called Bitbucket's identity endpoint with this connection's token." }
        @match &page.outcome {
            Ok(answer) => {
                p { "Bitbucket answered " strong id="test-status" { "HTTP " (answer.status) } @if answer.status == 200 { " — the token works." } }
                pre id="test-body" { (answer.body) }
            }
            Err(error) => p.flash.bad role="alert" id="test-status" { (error) },
        }
        p { a.button href={"/ui/profiles/" (connection.profile_id)} { "Back to the profile" } }
    }
}

pub fn refresh_failed(failed: &RefreshFailed) -> Markup {
    html! {
        h1 { "Refresh did not succeed" }
        p.flash.bad role="alert" { (failed.message) }
        p { a.button href=(failed.back) { "Back to the profile" } }
    }
}

pub fn confirm_delete(admin: &Admin, connection: &ConnectionRecord) -> Markup {
    let who = connection
        .account_username
        .as_deref()
        .unwrap_or("this account");
    html! {
        h1 { "Delete the connection of " (who) "?" }
        p { "This deletes the connection " code { (connection.id) } " of " strong { (who) } " and its tokens. "
            "Applications will get “not found” for it; the user would have to connect again." }
        form method="post" action={"/ui/connections/" (connection.id) "/delete"} {
            (csrf(admin))
            div.actions {
                button.danger type="submit" { "Delete" }
                a.button href={"/ui/profiles/" (connection.profile_id)} { "Cancel" }
            }
        }
    }
}

/// The whole page (no console shell) that forwards a landing browser to `next`.
pub fn landed(next: &str) -> Markup {
    html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content={"0;url=" (next)};
                title { "Back to the console · Grantry" }
            }
            body { p { "Back to the console… " a href=(next) { "continue" } } }
        }
    }
}

#[cfg(test)]
mod tests {
    use grantry_core::provider::ApiAnswer;
    use grantry_core::store::{ConnectionStatus, CredentialKind};

    use super::*;
    use crate::console::connections::data::ending_soon;
    use crate::console::fixtures::{self, NOW};

    fn row(status: ConnectionStatus) -> ConnectionRow {
        ConnectionRow {
            connection: fixtures::connection(status),
            missing: Vec::new(),
            ending_in_days: None,
        }
    }

    #[test]
    fn a_connection_that_needs_reconnecting_says_so_in_words() {
        let mut row = row(ConnectionStatus::NeedsReauth);
        row.connection.status_reason = Some("Bitbucket refused the refresh token".into());
        let html = table(&fixtures::admin(), &[row]).into_string();
        assert!(html.contains(r#"<span class="status needs_reauth">Needs reconnecting</span>"#));
        assert!(html.contains("<td>Bitbucket refused the refresh token</td>"));
        assert!(html.contains(r#"<tr id="connection-con_00000000000000000000000001">"#));
    }

    #[test]
    fn the_table_escapes_account_names_and_lists_missing_scopes() {
        let mut row = row(ConnectionStatus::InsufficientScopes);
        row.missing = vec!["pullrequest:write".into()];
        let html = table(&fixtures::admin(), &[row]).into_string();
        assert!(html.contains("Alice &lt;Liddell&gt;"));
        assert!(!html.contains("<Liddell>"));
        assert!(html.contains(r#"<span class="scopes"><code>pullrequest:write</code></span>"#));
        assert!(html.contains("Missing permissions"));
        // Every form carries the session's CSRF token.
        assert_eq!(html.matches(r#"name="csrf" value="csrf-token""#).count(), 2);
    }

    #[test]
    fn tokens_that_renew_offer_refresh_and_access_tokens_offer_a_check() {
        let oauth = table(&fixtures::admin(), &[row(ConnectionStatus::Active)]).into_string();
        assert!(oauth.contains(">Refresh</button>"));
        assert!(oauth.contains(r#"<span class="muted">none</span>"#));
        let mut access = row(ConnectionStatus::Active);
        access.connection.credential = CredentialKind::AccessToken;
        access.ending_in_days = Some(3);
        let html = table(&fixtures::admin(), &[access]).into_string();
        assert!(html.contains(">Check</button>"));
        assert!(!html.contains(">Refresh</button>"));
        assert!(html.contains("Ends in 3 day(s): add a new one"));
    }

    #[test]
    fn no_connection_yet_is_said_instead_of_an_empty_table() {
        let html = table(&fixtures::admin(), &[]).into_string();
        assert!(html.contains("No account connected yet."));
        assert!(!html.contains("<table>"));
    }

    #[test]
    fn only_credentials_that_cannot_renew_end_soon() {
        let week = 7 * 86_400;
        let mut access = fixtures::connection(ConnectionStatus::Active);
        access.credential = CredentialKind::AccessToken;
        access.expires_at = Some(NOW.plus_seconds(2 * 86_400 + 60));
        assert_eq!(ending_soon(&access, NOW, week), Some(3));
        access.expires_at = Some(NOW.plus_seconds(8 * 86_400));
        assert_eq!(ending_soon(&access, NOW, week), None);
        let oauth = fixtures::connection(ConnectionStatus::Active);
        assert_eq!(ending_soon(&oauth, NOW, week), None);
    }

    #[test]
    fn a_test_shows_bitbucket_s_answer_or_the_error() {
        let works = TestPage {
            connection: fixtures::connection(ConnectionStatus::Active),
            outcome: Ok(ApiAnswer {
                status: 200,
                body: "{\"username\":\"alice\"}".into(),
            }),
        };
        let html = test(&works).into_string();
        assert!(html.contains("<h1>Test of alice</h1>"));
        assert!(html.contains(r#"<strong id="test-status">HTTP 200</strong> — the token works."#));
        assert!(html.contains(r#"href="/ui/profiles/prf_00000000000000000000000001""#));
        let refused = TestPage {
            outcome: Err("Bitbucket is unreachable".into()),
            ..works
        };
        let html = test(&refused).into_string();
        assert!(html.contains(
            r#"<p class="flash bad" role="alert" id="test-status">Bitbucket is unreachable</p>"#
        ));
    }
}
