//! `grantry events`: the audit trail.

use clap::Args;
use grantry_core::Grantry;
use grantry_core::ids::ConnectionId;
use grantry_core::store::{EventFilter, PageRequest};
use grantry_http::views::EventView;

use super::Output;
use super::output::{print, table};

#[derive(Args)]
pub struct EventArgs {
    /// Profile id or name.
    #[arg(long)]
    profile: Option<String>,
    #[arg(long)]
    connection: Option<String>,
    /// An event kind, or a prefix such as `connection.`
    #[arg(long)]
    kind: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

pub async fn events(grantry: &Grantry, args: EventArgs, output: Output) -> anyhow::Result<()> {
    let profile_id = match &args.profile {
        Some(reference) => Some(grantry.find_profile(reference).await?.id),
        None => None,
    };
    let filter = EventFilter {
        profile_id,
        connection_id: args
            .connection
            .as_deref()
            .map(ConnectionId::parse)
            .transpose()?,
        kind: args.kind,
    };
    let page = PageRequest {
        after: None,
        limit: args.limit.clamp(1, 1000),
    };
    let views: Vec<EventView> = grantry
        .list_events(&filter, &page)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let rows = views
        .iter()
        .map(|e| {
            vec![
                e.at.clone(),
                e.kind.clone(),
                e.actor.clone(),
                e.detail.clone(),
            ]
        })
        .collect::<Vec<_>>();
    print(output, &views, || {
        table(&["AT", "KIND", "ACTOR", "DETAIL"], &rows)
    })
}
