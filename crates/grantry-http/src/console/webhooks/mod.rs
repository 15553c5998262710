//! Webhooks: endpoints (add with the secret shown once, enable/disable, rotate, test, remove)
//! and each endpoint's recent deliveries, with redelivery. The handlers are here; what the pages
//! show is gathered in `data.rs` and drawn in `view.rs`.

pub mod data;
pub mod view;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::CoreError;
use grantry_core::ids::{EventId, WebhookId};
use grantry_core::webhooks::{NewWebhook, WebhookChanges};

use self::data::Shown;
use super::layout::{self, Flash, Section};
use super::session::{self, Admin, Posted};
use crate::state::AppState;

/// The list, with what to show at its top; `error` (the URL refused) answers 422.
async fn render(state: &AppState, admin: &Admin, shown: Shown, error: Option<String>) -> Response {
    let page = match data::webhooks_page(&state.grantry, shown, error).await {
        Ok(page) => page,
        Err(error) => return session::failed(error),
    };
    let body = view::list(admin, &page);
    let mut response = layout::page(admin, Section::Webhooks, "Webhooks", page.flash, body);
    if page.error.is_some() {
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
            render(&state, &admin, Shown::Nothing, Some(message)).await
        }
        Err(error) => session::failed(error),
    }
}

/// One action on one endpoint, then the list again with what happened.
pub async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Posted { admin, .. }: Posted,
) -> Response {
    let Ok(id) = WebhookId::parse(&id) else {
        return layout::not_found("That webhook does not exist.");
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
        _ => return layout::not_found("There is no such action."),
    };
    match done {
        Ok(shown) => render(&state, &admin, shown, None).await,
        Err(CoreError::NotFound(_)) => layout::not_found("That webhook does not exist."),
        Err(error) => session::failed(error),
    }
}

/// One endpoint's recent deliveries.
pub async fn show(State(state): State<AppState>, Path(id): Path<String>, admin: Admin) -> Response {
    deliveries(&state, &admin, &id, None).await
}

async fn deliveries(state: &AppState, admin: &Admin, id: &str, flash: Option<Flash>) -> Response {
    let Ok(id) = WebhookId::parse(id) else {
        return layout::not_found("That webhook does not exist.");
    };
    let page = match data::deliveries_page(&state.grantry, &id, flash).await {
        Ok(page) => page,
        Err(CoreError::NotFound(_)) => return layout::not_found("That webhook does not exist."),
        Err(error) => return session::failed(error),
    };
    let body = view::deliveries(admin, &page);
    layout::page(
        admin,
        Section::Webhooks,
        "Webhook deliveries",
        page.flash,
        body,
    )
}

pub async fn redeliver(
    State(state): State<AppState>,
    Path((id, event)): Path<(String, String)>,
    Posted { admin, .. }: Posted,
) -> Response {
    let (Ok(webhook), Ok(event)) = (WebhookId::parse(&id), EventId::parse(&event)) else {
        return layout::not_found("That message does not exist.");
    };
    match state.grantry.redeliver(&webhook, &event).await {
        Ok(()) => {
            let flash = Flash::Ok(format!("Message {event} will be sent again."));
            deliveries(&state, &admin, &id, Some(flash)).await
        }
        Err(CoreError::NotFound(_)) => {
            layout::not_found("That message does not exist or is pending already.")
        }
        Err(error) => session::failed(error),
    }
}
