//! What the connection pages show, gathered from the services: a profile's connections as table
//! rows, a test's answer, why a refresh did not succeed, and where a console-started connect flow
//! goes next. No markup here.

use grantry_core::clock::Timestamp;
use grantry_core::provider::ApiAnswer;
use grantry_core::store::{ConnectionRecord, ConnectionStatus, ProfileRecord};
use grantry_core::{CoreError, Grantry};
use serde::Deserialize;

/// One row of a profile's connections table.
pub struct ConnectionRow {
    pub connection: ConnectionRecord,
    /// The profile's scopes the connection lacks, in its credential's own words.
    pub missing: Vec<String>,
    /// Days until a credential Grantry cannot renew ends, when within the warning period.
    pub ending_in_days: Option<i64>,
}

/// A profile's connections as the table shows them.
pub fn rows(
    grantry: &Grantry,
    profile: &ProfileRecord,
    connections: Vec<ConnectionRecord>,
) -> Vec<ConnectionRow> {
    let now = grantry.clock.now();
    let warning = grantry.settings.webhooks.expiry_warning.as_secs() as i64;
    connections
        .into_iter()
        .map(|connection| ConnectionRow {
            missing: grantry.connection_missing_scopes(profile, &connection),
            ending_in_days: ending_soon(&connection, now, warning),
            connection,
        })
        .collect()
}

/// Days until a credential Grantry cannot renew ends, when that is within the warning period
/// (`webhooks.expiry_warning_days`, the same that sends `connection.credential_expiring`).
pub fn ending_soon(c: &ConnectionRecord, now: Timestamp, warning: i64) -> Option<i64> {
    if c.credential.renewable() || c.status == ConnectionStatus::NeedsReauth {
        return None;
    }
    let at = c
        .expires_at
        .filter(|at| *at > now && *at - now <= warning)?;
    Some((at - now + 86_399) / 86_400)
}

/// "Test": what Bitbucket's identity endpoint answered with the connection's token.
pub struct TestPage {
    pub connection: ConnectionRecord,
    /// Bitbucket's answer, or why there was none.
    pub outcome: Result<ApiAnswer, String>,
}

pub async fn test_page(grantry: &Grantry, connection: ConnectionRecord) -> TestPage {
    let outcome = grantry
        .test_connection(&connection.id)
        .await
        .map_err(|error| error.to_string());
    TestPage {
        connection,
        outcome,
    }
}

/// A refresh (or check) that did not succeed.
pub struct RefreshFailed {
    /// The profile's page.
    pub back: String,
    pub message: String,
}

impl RefreshFailed {
    /// The database and sealing are not explained to the admin (they are logged); anything
    /// else (Bitbucket's answer) is said as it is.
    pub fn new(back: String, error: &CoreError) -> RefreshFailed {
        let message = match error {
            CoreError::Store(_) | CoreError::Crypto(_) => {
                "Grantry could not complete the refresh; it has been logged.".to_owned()
            }
            other => other.to_string(),
        };
        RefreshFailed { back, message }
    }
}

/// Where a console-started connect flow lands, as Grantry sends it back.
#[derive(Deserialize)]
pub struct Landing {
    pub profile: Option<String>,
    pub error: Option<String>,
    pub connect_session_id: Option<String>,
    pub verification_code: Option<String>,
}

/// Only what the console needs from a landing URL: a known profile id, and the session and
/// code to confirm (each checked for shape), or an error code kept to letters and `_`.
pub fn next_step(landing: &Landing) -> String {
    let profile = landing
        .profile
        .as_deref()
        .and_then(|p| grantry_core::ids::ProfileId::parse(p).ok());
    let Some(profile) = profile else {
        return "/ui/profiles".to_owned();
    };
    if let Some(error) = &landing.error {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return format!("/ui/profiles/{profile}?error={code}");
    }
    let session = landing
        .connect_session_id
        .as_deref()
        .and_then(|s| grantry_core::ids::SessionId::parse(s).ok());
    let code = landing.verification_code.as_deref().filter(|c| {
        c.len() <= 100
            && c.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    });
    match (session, code) {
        (Some(session), Some(code)) => format!(
            "/ui/connected/confirm?profile={profile}&connect_session_id={session}&verification_code={code}"
        ),
        _ => format!("/ui/profiles/{profile}?connected=1"),
    }
}
