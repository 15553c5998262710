//! When the refresher should next look at a connection, and how long to back off after failures.

use std::time::Duration;

use rand::RngExt;

use crate::clock::{Timestamp, seconds};
use crate::settings::RefreshSettings;
use crate::store::CredentialKind;

/// Renew ahead of expiry by `lead` plus up to half as much jitter, so connections that expire
/// together are renewed spread out; never more than a quarter of the token's lifetime ahead.
/// Rotating refresh tokens are also renewed before they sit unused for `keepalive`. Credentials
/// Grantry cannot renew are looked at again as [`next_static_check`] says.
pub fn next_refresh_at(
    credential: CredentialKind,
    issued_at: Timestamp,
    expires_at: Option<Timestamp>,
    refresh_token_at: Option<Timestamp>,
    settings: &RefreshSettings,
) -> Option<Timestamp> {
    if !credential.renewable() {
        return next_static_check(credential, issued_at, expires_at, settings);
    }
    let by_expiry = expires_at.map(|expires_at| {
        let lifetime = (expires_at - issued_at).max(0);
        let lead = seconds(settings.lead).min(lifetime / 4);
        let jitter = if lead > 1 {
            rand::rng().random_range(0..=lead / 2)
        } else {
            0
        };
        expires_at.plus_seconds(-(lead + jitter))
    });
    let by_keepalive = refresh_token_at.map(|at| at + settings.keepalive);
    let next = match (by_expiry, by_keepalive) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    next.map(|at| at.max(issued_at.plus_seconds(1)))
}

/// When to look at an API token or access token next: at its expiry (to say it is dead), and
/// for an API token `verify_static` after `now` (to ask Bitbucket whether it still takes it),
/// whichever is first. Access tokens are not asked: no endpoint is open to all of them.
pub fn next_static_check(
    credential: CredentialKind,
    now: Timestamp,
    expires_at: Option<Timestamp>,
    settings: &RefreshSettings,
) -> Option<Timestamp> {
    if credential != CredentialKind::ApiToken {
        return expires_at;
    }
    // At least a minute apart, whatever the setting says, so a zero cannot make every check due
    // on every pass.
    let check = now + settings.verify_static.max(Duration::from_secs(60));
    Some(expires_at.map_or(check, |at| at.min(check)))
}

/// Exponential backoff with jitter: base·2^(failures−1), capped, times 0.5–1.0; at least what the
/// provider asked for with `Retry-After`.
pub fn backoff(failures: i64, retry_after: Option<u64>, settings: &RefreshSettings) -> u64 {
    let exponent = failures.clamp(1, 20) as u32 - 1;
    let raw = settings
        .backoff_base
        .as_secs()
        .saturating_mul(1u64 << exponent)
        .min(settings.backoff_max.as_secs());
    let jittered = (raw as f64 * rand::rng().random_range(0.5..=1.0)).round() as u64;
    jittered.max(1).max(retry_after.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn at(unix: i64) -> Timestamp {
        Timestamp::from_unix(unix)
    }

    #[test]
    fn renewal_lands_ahead_of_expiry_with_jitter() {
        let settings = RefreshSettings::default();
        for _ in 0..100 {
            let next = next_refresh_at(
                CredentialKind::Oauth2,
                at(0),
                Some(at(7200)),
                Some(at(0)),
                &settings,
            )
            .unwrap();
            assert!(
                (at(7200 - 900)..=at(7200 - 600)).contains(&next),
                "{next:?}"
            );
        }
        let short =
            next_refresh_at(CredentialKind::Oauth2, at(0), Some(at(60)), None, &settings).unwrap();
        assert!((at(60 - 23)..=at(60 - 15)).contains(&short), "{short:?}");
    }

    #[test]
    fn static_credentials_are_looked_at_by_their_expiry_and_every_few_hours() {
        let settings = RefreshSettings::default();
        let expiring = next_refresh_at(
            CredentialKind::ApiToken,
            at(0),
            Some(at(60)),
            None,
            &settings,
        );
        assert_eq!(expiring, Some(at(60)), "at its expiry, to say so");
        let lasting = next_refresh_at(CredentialKind::ApiToken, at(0), None, None, &settings);
        assert_eq!(
            lasting,
            Some(at(6 * 3600)),
            "checked with Bitbucket every six hours"
        );
        let access = next_refresh_at(CredentialKind::AccessToken, at(0), None, None, &settings);
        assert_eq!(access, None, "no endpoint to check every access token with");
    }

    #[test]
    fn idle_refresh_tokens_are_kept_alive() {
        let settings = RefreshSettings::default();
        let next = next_refresh_at(
            CredentialKind::Oauth2,
            at(0),
            None,
            Some(at(100)),
            &settings,
        )
        .unwrap();
        assert_eq!(next, at(100 + 30 * 86_400));
    }

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let settings = RefreshSettings::default();
        assert!((3..=5).contains(&backoff(1, None, &settings)));
        assert!((300..=600).contains(&backoff(30, None, &settings)));
        assert_eq!(backoff(1, Some(120), &settings), 120);
    }
}
