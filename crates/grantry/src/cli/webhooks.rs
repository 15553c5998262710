//! `grantry webhooks …`: endpoints that hear about connections' lives, and their deliveries.

use clap::Subcommand;
use grantry_core::ids::{EventId, WebhookId};
use grantry_core::webhooks::{NewWebhook, WebhookChanges, WebhookWithSecret};
use grantry_core::{Actor, Grantry};
use grantry_http::views::{DeliveryView, WebhookView};

use super::Output;
use super::output::{print, table};

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Add an endpoint; its signing secret (`whsec_…`) is printed once.
    Add {
        /// Where messages are posted (http or https).
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "")]
        description: String,
        /// An event kind it wants (repeat the flag); all kinds when none is given.
        #[arg(long = "kind")]
        kinds: Vec<String>,
        /// A profile (id or name) it hears about (repeat the flag); all profiles when none.
        #[arg(long = "profile")]
        profiles: Vec<String>,
    },
    /// List endpoints and their health.
    List,
    /// Enable or disable an endpoint (a disabled endpoint collects no new messages).
    Enable {
        id: String,
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        enabled: bool,
    },
    /// Remove an endpoint and its deliveries.
    Remove { id: String },
    /// A new signing secret; the old one keeps signing beside it for 24 hours.
    RotateSecret { id: String },
    /// Send a `webhook.test` message to an endpoint.
    Test { id: String },
    /// An endpoint's recent deliveries, newest first.
    Deliveries {
        id: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Send a delivered or failed message again, with the same `webhook-id`.
    Redeliver { id: String, event: String },
}

fn shown_once(output: Output, created: WebhookWithSecret, what: &str) -> anyhow::Result<()> {
    let mut view = WebhookView::from(&created.webhook);
    let secret = created.secret.to_string();
    view.secret = Some(secret.clone());
    print(output, &view, || {
        format!(
            "{secret}\n\nWebhook {} {what}. Verify deliveries with this secret (Standard Webhooks); \
             this is the only time it is shown.",
            view.id
        )
    })
}

pub async fn run(grantry: &Grantry, command: WebhookCommand, output: Output) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Add {
            url,
            description,
            kinds,
            profiles,
        } => {
            let new = NewWebhook {
                url,
                description,
                kinds,
                profiles,
                enabled: None,
            };
            let created = grantry.create_webhook(new, &Actor::Cli).await?;
            shown_once(output, created, "added")
        }
        WebhookCommand::List => {
            let views: Vec<WebhookView> = grantry
                .list_webhooks()
                .await?
                .iter()
                .map(WebhookView::from)
                .collect();
            let rows = views
                .iter()
                .map(|w| {
                    let state = match (&w.enabled, &w.disabled_reason, &w.failing_since) {
                        (false, Some(reason), _) => format!("disabled: {reason}"),
                        (false, None, _) => "disabled".into(),
                        (true, _, Some(since)) => format!("failing since {since}"),
                        (true, _, None) => "ok".into(),
                    };
                    let kinds = if w.kinds.is_empty() {
                        "all".into()
                    } else {
                        w.kinds.join(",")
                    };
                    vec![w.id.clone(), w.url.clone(), kinds, state]
                })
                .collect::<Vec<_>>();
            print(output, &views, || {
                table(&["ID", "URL", "KINDS", "STATE"], &rows)
            })
        }
        WebhookCommand::Enable { id, enabled } => {
            let changes = WebhookChanges {
                enabled: Some(enabled),
                ..WebhookChanges::default()
            };
            let webhook = grantry
                .update_webhook(&WebhookId::parse(&id)?, changes, &Actor::Cli)
                .await?;
            let view = WebhookView::from(&webhook);
            print(output, &view, || {
                format!(
                    "Webhook {} {}",
                    view.id,
                    if enabled { "enabled" } else { "disabled" }
                )
            })
        }
        WebhookCommand::Remove { id } => {
            grantry
                .delete_webhook(&WebhookId::parse(&id)?, &Actor::Cli)
                .await?;
            print(output, &serde_json::json!({"removed": id}), || {
                format!("Webhook {id} removed")
            })
        }
        WebhookCommand::RotateSecret { id } => {
            let rotated = grantry
                .rotate_webhook_secret(&WebhookId::parse(&id)?, &Actor::Cli)
                .await?;
            shown_once(
                output,
                rotated,
                "has a new secret (the old one signs for 24 h more)",
            )
        }
        WebhookCommand::Test { id } => {
            let event = grantry.test_webhook(&WebhookId::parse(&id)?).await?;
            print(output, &serde_json::json!({"event_id": event}), || {
                format!("Test message {event} queued for webhook {id}")
            })
        }
        WebhookCommand::Deliveries { id, limit } => {
            let items = grantry
                .webhook_deliveries(&WebhookId::parse(&id)?, None, limit.clamp(1, 200))
                .await?;
            let views: Vec<DeliveryView> = items.iter().map(DeliveryView::from).collect();
            let rows = views
                .iter()
                .map(|d| {
                    vec![
                        d.event_id.clone(),
                        d.kind.clone(),
                        d.state.to_owned(),
                        d.attempts.to_string(),
                        d.last_status.map_or_else(|| "-".into(), |s| s.to_string()),
                        d.last_latency_ms
                            .map_or_else(|| "-".into(), |l| format!("{l} ms")),
                        d.next_attempt_at.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect::<Vec<_>>();
            let head = [
                "EVENT", "KIND", "STATE", "ATTEMPTS", "STATUS", "LATENCY", "NEXT TRY",
            ];
            print(output, &views, || table(&head, &rows))
        }
        WebhookCommand::Redeliver { id, event } => {
            grantry
                .redeliver(&WebhookId::parse(&id)?, &EventId::parse(&event)?)
                .await?;
            print(output, &serde_json::json!({"redelivering": event}), || {
                format!("Message {event} will be sent to webhook {id} again")
            })
        }
    }
}
