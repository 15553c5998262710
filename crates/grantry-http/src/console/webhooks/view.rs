//! The webhook pages' markup, from the structs in `data.rs`: pure functions, no services.

use grantry_core::events::EventKind;
use grantry_core::store::{DeliveryState, WebhookRecord};
use maud::{Markup, html};

use super::data::{DeliveriesPage, WebhooksPage};
use crate::console::layout::time;
use crate::console::layout::{self, copyable, csrf};
use crate::console::signed_in::Admin;

/// An endpoint's state in words: delivering, failing since when, or disabled (and why).
pub fn health(webhook: &WebhookRecord) -> Markup {
    match (
        webhook.enabled,
        &webhook.disabled_reason,
        webhook.failing_since,
    ) {
        (false, Some(reason), _) => {
            html! { span class="status problem" { "Disabled" } " " (reason) }
        }
        (false, None, _) => html! { span class="status" { "Disabled" } },
        (true, _, Some(since)) => {
            html! { span class="status problem" { "Failing" } " since " (time(since)) }
        }
        (true, _, None) => html! { span class="status active" { "Delivering" } },
    }
}

fn button(admin: &Admin, action: String, label: &str, class: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            (csrf(admin)) button class=(class) type="submit" { (label) }
        }
    }
}

pub fn list(admin: &Admin, page: &WebhooksPage) -> Markup {
    let webhooks = &page.webhooks;
    let error = page.error.as_deref();
    html! {
        h1 { "Webhooks" }
        p.muted { "Grantry posts a signed message (Standard Webhooks) to each endpoint when a connection is created, fails, recovers, needs its user to reconnect, runs short of scopes, nears the end of its credential or is deleted, and when a profile's OAuth client is refused or works again. Verify them with a Standard Webhooks library and the endpoint's secret." }
        @if let Some((id, secret)) = &page.secret {
            div.card role="status" {
                p { strong { "Signing secret of " (id) "." } " Copy it now: it is shown this once." }
                p { (copyable("webhook-secret", secret)) }
            }
        }
        h2 { "Add an endpoint" }
        form.stack method="post" action="/ui/webhooks" {
            (csrf(admin))
            (layout::field("url", "URL", html! { input type="url" id="url" name="url" placeholder="https://app.example.com/hooks/grantry" autocomplete="off" required; }, Some("Where messages are posted (http or https)."), error))
            (layout::field("description", "Description", html! { input type="text" id="description" name="description" autocomplete="off"; }, None, None))
            fieldset {
                legend { "Event kinds (none ticked: every kind)" }
                @for kind in EventKind::FOR_WEBHOOKS {
                    label.check { input type="checkbox" name="kinds" value=(kind.as_str()); " " code { (kind.as_str()) } }
                }
            }
            button.primary type="submit" { "Add endpoint" }
        }
        h2 { "Endpoints" }
        @if webhooks.is_empty() {
            p.muted { "No endpoint yet." }
        } @else {
            div.table-wrap { table {
                thead { tr { th { "URL" } th { "Kinds" } th { "State" } th { "Actions" } } }
                tbody { @for w in webhooks { tr id={"webhook-" (w.id)} {
                    td { a href={"/ui/webhooks/" (w.id)} { (w.url) } @if !w.description.is_empty() { br; span.muted { (w.description) } } }
                    td { @if w.kinds.is_empty() { "all" } @else { (w.kinds.join(", ")) } }
                    td { (health(w)) }
                    td.actions {
                        (button(admin, format!("/ui/webhooks/{}/test", w.id), "Send a test", ""))
                        @if w.enabled {
                            (button(admin, format!("/ui/webhooks/{}/disable", w.id), "Disable", ""))
                        } @else {
                            (button(admin, format!("/ui/webhooks/{}/enable", w.id), "Enable", ""))
                        }
                        (button(admin, format!("/ui/webhooks/{}/rotate", w.id), "Rotate secret", ""))
                        (button(admin, format!("/ui/webhooks/{}/remove", w.id), "Remove", "danger"))
                    }
                } } }
            } }
        }
    }
}

pub fn deliveries(admin: &Admin, page: &DeliveriesPage) -> Markup {
    let webhook = &page.webhook;
    let items = &page.items;
    html! {
        p { a href="/ui/webhooks" { "← Webhooks" } }
        h1 { (webhook.url) }
        p { (health(webhook)) }
        h2 { "Recent deliveries" }
        @if items.is_empty() {
            p.muted { "Nothing sent yet." }
        } @else {
            div.table-wrap { table {
                thead { tr { th { "Event" } th { "Kind" } th { "State" } th { "Attempts" } th { "Status" } th { "Latency" } th { "Next try" } th { "Actions" } } }
                tbody { @for d in items { tr {
                    td { code { (d.event_id) } br; span.muted { (time(d.created_at)) } }
                    td { code { (d.kind) } }
                    td { @match d.state {
                        DeliveryState::Delivered => span class="status active" { "Delivered" },
                        DeliveryState::Pending => span class="status" { "Pending" },
                        DeliveryState::Failed => span class="status problem" { "Failed" },
                    } }
                    td { (d.attempts) }
                    td { @if let Some(status) = d.last_status { (status) } @else if let Some(error) = &d.last_error { span.muted { (error) } } @else { "–" } }
                    td { @if let Some(ms) = d.last_latency_ms { (ms) " ms" } @else { "–" } }
                    td { @if d.state == DeliveryState::Pending { (time(d.next_attempt_at)) } @else { "–" } }
                    td { @if d.state != DeliveryState::Pending {
                        (button(admin, format!("/ui/webhooks/{}/deliveries/{}/redeliver", webhook.id, d.event_id), "Send again", ""))
                    } }
                } } }
            } }
        }
    }
}

#[cfg(test)]
mod tests {
    use grantry_core::ids::{EventId, WebhookId};
    use grantry_core::store::DeliveryRecord;

    use super::*;
    use crate::console::fixtures::{self, NOW};

    fn webhook() -> WebhookRecord {
        WebhookRecord {
            id: WebhookId::parse("wh_00000000000000000000000001").unwrap(),
            url: "https://app.example.com/hooks?a=1&b=2".into(),
            description: String::new(),
            kinds: Vec::new(),
            profiles: Vec::new(),
            enabled: true,
            secret: Vec::new(),
            previous_secret: None,
            previous_until: None,
            disabled_reason: None,
            failing_since: None,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    #[test]
    fn an_endpoint_s_health_is_said_in_words() {
        let mut w = webhook();
        assert_eq!(
            health(&w).into_string(),
            r#"<span class="status active">Delivering</span>"#
        );
        w.failing_since = Some(NOW);
        assert_eq!(
            health(&w).into_string(),
            r#"<span class="status problem">Failing</span> since 2026-11-24 09:12 UTC"#
        );
        w.enabled = false;
        w.disabled_reason = Some("410 Gone".into());
        assert_eq!(
            health(&w).into_string(),
            r#"<span class="status problem">Disabled</span> 410 Gone"#
        );
    }

    #[test]
    fn a_new_secret_is_shown_once_above_the_list() {
        let page = WebhooksPage {
            webhooks: vec![webhook()],
            secret: Some(("wh_00000000000000000000000001".into(), "whsec_abc".into())),
            flash: None,
            error: None,
        };
        let html = list(&fixtures::admin(), &page).into_string();
        assert!(html.contains("<strong>Signing secret of wh_00000000000000000000000001.</strong>"));
        assert!(html.contains(r#"<code id="webhook-secret">whsec_abc</code>"#));
        assert!(html.contains("<td>all</td>"));
        assert!(html.contains(">https://app.example.com/hooks?a=1&amp;b=2</a>"));
        assert!(html.contains(r#"action="/ui/webhooks/wh_00000000000000000000000001/disable""#));
        assert!(!html.contains("/enable"));
    }

    #[test]
    fn only_finished_deliveries_can_be_sent_again() {
        let delivery = |state, event: &str| DeliveryRecord {
            seq: 1,
            webhook_id: WebhookId::parse("wh_00000000000000000000000001").unwrap(),
            event_id: EventId::parse(event).unwrap(),
            kind: "connection.created".into(),
            ordering_key: String::new(),
            payload: String::new(),
            created_at: NOW,
            state,
            attempts: 2,
            next_attempt_at: NOW,
            last_status: Some(500),
            last_error: None,
            last_latency_ms: Some(12),
            finished_at: None,
        };
        let page = DeliveriesPage {
            webhook: webhook(),
            items: vec![
                delivery(DeliveryState::Pending, "evt_00000000000000000000000001"),
                delivery(DeliveryState::Failed, "evt_00000000000000000000000002"),
            ],
            flash: None,
        };
        let html = deliveries(&fixtures::admin(), &page).into_string();
        assert_eq!(html.matches("Send again").count(), 1);
        assert!(html.contains("/deliveries/evt_00000000000000000000000002/redeliver"));
        assert!(html.contains(r#"<span class="status problem">Failed</span>"#));
        assert!(html.contains("<td>12 ms</td>"));
    }
}
