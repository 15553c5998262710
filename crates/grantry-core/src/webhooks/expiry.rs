//! `connection.credential_expiring`: a warning, once per credential, that a credential Grantry
//! cannot renew itself nears its end: an API token or access token with an expiry, or a rotating
//! refresh token whose keep-alive refresh has been failing. Every node scans; the conditional
//! mark makes one of them announce it.

use std::time::Duration;

use serde_json::json;

use crate::app::{Actor, Grantry};
use crate::clock::{Rfc3339, Timestamp};
use crate::events::EventKind;
use crate::store::{ConnectionRecord, CredentialKind};

/// How long a rotating refresh token lives without use (Bitbucket Cloud: three months unused;
/// Data Center: 90 days), in seconds.
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(90 * 86_400);

/// Connections looked at per scan.
const PER_SCAN: u32 = 500;

/// When a connection's credential dies, and what dies.
fn dies(c: &ConnectionRecord) -> Option<(Timestamp, &'static str)> {
    match c.credential {
        CredentialKind::ApiToken => c.expires_at.map(|at| (at, "the API token expires")),
        CredentialKind::AccessToken => c.expires_at.map(|at| (at, "the access token expires")),
        CredentialKind::Oauth2 => c.refresh_token_at.map(|at| {
            (
                at + REFRESH_TOKEN_LIFETIME,
                "the refresh token dies unused (renewing it keeps failing)",
            )
        }),
        CredentialKind::ClientCredentials => None,
    }
}

impl Grantry {
    /// Announces every credential that dies within the warning period and was not announced
    /// yet; answers how many were.
    pub async fn warn_expiring_credentials(&self) -> crate::error::CoreResult<usize> {
        let now = self.clock.now();
        let warn_until = now + self.settings.webhooks.expiry_warning;
        let due = self
            .store
            .expiring(now, warn_until, REFRESH_TOKEN_LIFETIME, PER_SCAN)
            .await?;
        let mut announced = 0;
        for connection in due {
            let Some((at, what)) = dies(&connection) else {
                continue;
            };
            let Some(profile) = self.store.profile(&connection.profile_id).await? else {
                continue;
            };
            let days = ((at - now) as f64 / 86_400.0).ceil() as i64;
            let reason = format!(
                "{what} in {days} day(s), at {}; the user must provide a new one",
                Rfc3339(at)
            );
            let mut announce = self.about_connection(
                EventKind::ConnectionCredentialExpiring,
                &profile,
                &connection,
                (connection.status, Some(&reason)),
                &Actor::System,
                reason.clone(),
            );
            announce.message = announce.message.map(|m| with_expiry(&m, at));
            if self
                .store
                .mark_expiry_warned(&connection.id, connection.version, now, &[announce])
                .await?
            {
                announced += 1;
            }
        }
        Ok(announced)
    }
}

/// The message with `data.expires_at` added.
fn with_expiry(message: &str, at: Timestamp) -> String {
    match serde_json::from_str::<serde_json::Value>(message) {
        Ok(mut value) => {
            value["data"]["expires_at"] = json!(Rfc3339(at).to_string());
            value.to_string()
        }
        Err(_) => message.to_owned(),
    }
}
