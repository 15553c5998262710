//! Webhooks: endpoints (add with the secret shown once, enable/disable, rotate, test, remove)
//! and each endpoint's recent deliveries, with redelivery.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::CoreError;
use grantry_core::events::EventKind;
use grantry_core::ids::{EventId, WebhookId};
use grantry_core::store::{DeliveryState, WebhookRecord};
use grantry_core::webhooks::{NewWebhook, WebhookChanges};
use maud::{Markup, html};

use super::layout::{self, Flash, Section, copyable, csrf};
use super::session::{self, Admin, Posted};
use super::time;
use crate::state::AppState;

/// What to show at the top of the page: a new secret (shown once), or a message.
enum Shown {
    Nothing,
    Secret { id: String, secret: String },
    Flash(Flash),
}

fn health(webhook: &WebhookRecord) -> Markup {
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

async fn render(state: &AppState, admin: &Admin, shown: Shown, error: Option<&str>) -> Response {
    let webhooks = match state.grantry.list_webhooks().await {
        Ok(webhooks) => webhooks,
        Err(error) => return session::unavailable(error),
    };
    let (flash, secret) = match shown {
        Shown::Nothing => (None, None),
        Shown::Secret { id, secret } => (None, Some((id, secret))),
        Shown::Flash(flash) => (Some(flash), None),
    };
    let body = html! {
        h1 { "Webhooks" }
        p.muted { "Grantry posts a signed message (Standard Webhooks) to each endpoint when a connection is created, fails, recovers, needs its user to reconnect, runs short of scopes, nears the end of its credential or is deleted, and when a profile's OAuth client is refused or works again. Verify them with a Standard Webhooks library and the endpoint's secret." }
        @if let Some((id, secret)) = secret {
            div.card role="status" {
                p { strong { "Signing secret of " (id) "." } " Copy it now: it is shown this once." }
                p { (copyable("webhook-secret", &secret)) }
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
                tbody { @for w in &webhooks { tr id={"webhook-" (w.id)} {
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
    };
    let mut response = layout::page(admin, Section::Webhooks, "Webhooks", flash, body);
    if error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

pub async fn page(State(state): State<AppState>, admin: Admin) -> Response {
    render(&state, &admin, Shown::Nothing, None).await
}

pub async fn create(State(state): State<AppState>, Posted { admin, form }: Posted) -> Response {
    let new = NewWebhook {
        url: form.text("url"),
        description: form.text("description"),
        kinds: form.all("kinds"),
        profiles: Vec::new(),
        enabled: None,
    };
    match state.grantry.create_webhook(new, &admin.actor()).await {
        Ok(created) => {
            let shown = Shown::Secret {
                id: created.webhook.id.to_string(),
                secret: created.secret.to_string(),
            };
            render(&state, &admin, shown, None).await
        }
        Err(CoreError::Invalid { message, .. }) => {
            render(&state, &admin, Shown::Nothing, Some(&message)).await
        }
        Err(error) => session::unavailable(error),
    }
}

/// One action on one endpoint, then the list again with what happened.
pub async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Posted { admin, .. }: Posted,
) -> Response {
    let Ok(id) = WebhookId::parse(&id) else {
        return super::not_found("That webhook does not exist.");
    };
    let grantry = &state.grantry;
    let actor = admin.actor();
    let enabled = |enabled| WebhookChanges {
        enabled: Some(enabled),
        ..WebhookChanges::default()
    };
    let done = match action.as_str() {
        "test" => grantry
            .test_webhook(&id)
            .await
            .map(|event| Shown::Flash(Flash::Ok(format!("Test message {event} queued.")))),
        "enable" => grantry
            .update_webhook(&id, enabled(true), &actor)
            .await
            .map(|_| {
                Shown::Flash(Flash::Ok(
                    "Enabled: messages are collected and delivered again.".into(),
                ))
            }),
        "disable" => grantry
            .update_webhook(&id, enabled(false), &actor)
            .await
            .map(|_| {
                Shown::Flash(Flash::Ok(
                    "Disabled: no new messages are collected for it.".into(),
                ))
            }),
        "rotate" => grantry
            .rotate_webhook_secret(&id, &actor)
            .await
            .map(|rotated| Shown::Secret {
                id: format!("{id} (the previous one signs beside it for 24 hours)"),
                secret: rotated.secret.to_string(),
            }),
        "remove" => grantry
            .delete_webhook(&id, &actor)
            .await
            .map(|()| Shown::Flash(Flash::Ok("Endpoint removed with its messages.".into()))),
        _ => return super::not_found("There is no such action."),
    };
    match done {
        Ok(shown) => render(&state, &admin, shown, None).await,
        Err(CoreError::NotFound(_)) => super::not_found("That webhook does not exist."),
        Err(error) => session::unavailable(error),
    }
}

/// One endpoint's recent deliveries.
pub async fn show(State(state): State<AppState>, Path(id): Path<String>, admin: Admin) -> Response {
    deliveries(&state, &admin, &id, None).await
}

async fn deliveries(state: &AppState, admin: &Admin, id: &str, flash: Option<Flash>) -> Response {
    let Ok(id) = WebhookId::parse(id) else {
        return super::not_found("That webhook does not exist.");
    };
    let (webhook, items) = match (
        state.grantry.webhook(&id).await,
        state.grantry.webhook_deliveries(&id, None, 100).await,
    ) {
        (Ok(webhook), Ok(items)) => (webhook, items),
        (Err(CoreError::NotFound(_)), _) | (_, Err(CoreError::NotFound(_))) => {
            return super::not_found("That webhook does not exist.");
        }
        (Err(error), _) | (_, Err(error)) => return session::unavailable(error),
    };
    let body = html! {
        p { a href="/ui/webhooks" { "← Webhooks" } }
        h1 { (webhook.url) }
        p { (health(&webhook)) }
        h2 { "Recent deliveries" }
        @if items.is_empty() {
            p.muted { "Nothing sent yet." }
        } @else {
            div.table-wrap { table {
                thead { tr { th { "Event" } th { "Kind" } th { "State" } th { "Attempts" } th { "Status" } th { "Latency" } th { "Next try" } th { "Actions" } } }
                tbody { @for d in &items { tr {
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
    };
    layout::page(admin, Section::Webhooks, "Webhook deliveries", flash, body)
}

pub async fn redeliver(
    State(state): State<AppState>,
    Path((id, event)): Path<(String, String)>,
    Posted { admin, .. }: Posted,
) -> Response {
    let (Ok(webhook), Ok(event)) = (WebhookId::parse(&id), EventId::parse(&event)) else {
        return super::not_found("That message does not exist.");
    };
    match state.grantry.redeliver(&webhook, &event).await {
        Ok(()) => {
            let flash = Flash::Ok(format!("Message {event} will be sent again."));
            deliveries(&state, &admin, &id, Some(flash)).await
        }
        Err(CoreError::NotFound(_)) => {
            super::not_found("That message does not exist or is pending already.")
        }
        Err(error) => session::unavailable(error),
    }
}
