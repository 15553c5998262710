//! Turning a provider's failure into what Grantry should do about it.

use super::{FailureRule, ProviderSpec};
use crate::provider::ProviderFailure;

/// What a failed token call means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The grant is gone (bad, expired, reused or revoked refresh token): the user must reconnect.
    Reauth,
    /// The OAuth client itself is refused: the profile's key or secret is wrong.
    ProfileMisconfigured,
    /// Worth trying again later (5xx, 429, timeouts, dropped connections).
    Transient,
    /// Refused for a reason no rule knows: kept as failing, retried slowly, never marked dead.
    Unexpected,
}

/// Bitbucket Cloud answers 400 with `unauthorized_client` (not RFC 6749's `invalid_client`) and
/// `invalid_request` / `Invalid refresh_token` for a dead refresh token.
pub(super) static BITBUCKET_CLOUD_RULES: &[FailureRule] = &[
    rule(
        "invalid_request",
        Some("refresh_token"),
        FailureClass::Reauth,
    ),
    rule("invalid_grant", None, FailureClass::Reauth),
    rule(
        "unauthorized_client",
        None,
        FailureClass::ProfileMisconfigured,
    ),
    rule("invalid_client", None, FailureClass::ProfileMisconfigured),
    rule(
        "invalid_request",
        Some("callback"),
        FailureClass::ProfileMisconfigured,
    ),
];

pub(super) static BITBUCKET_DATACENTER_RULES: &[FailureRule] = &[
    rule("invalid_grant", None, FailureClass::Reauth),
    rule("invalid_client", None, FailureClass::ProfileMisconfigured),
    rule(
        "unauthorized_client",
        None,
        FailureClass::ProfileMisconfigured,
    ),
];

const fn rule(
    error: &'static str,
    contains: Option<&'static str>,
    class: FailureClass,
) -> FailureRule {
    FailureRule {
        error,
        description_contains: contains,
        class,
    }
}

/// Classifies a failed token call by the provider's rules.
pub fn classify(spec: &ProviderSpec, failure: &ProviderFailure) -> FailureClass {
    match failure {
        ProviderFailure::OAuth {
            error, description, ..
        } => {
            let description = description.as_deref().unwrap_or_default().to_lowercase();
            spec.failure_rules
                .iter()
                .find(|rule| {
                    rule.error == error
                        && rule
                            .description_contains
                            .is_none_or(|needle| description.contains(&needle.to_lowercase()))
                })
                .map_or(FailureClass::Unexpected, |rule| rule.class)
        }
        ProviderFailure::Http { status, .. } if *status == 429 || *status >= 500 => {
            FailureClass::Transient
        }
        ProviderFailure::Http { status: 401, .. } => FailureClass::ProfileMisconfigured,
        ProviderFailure::Http { .. } | ProviderFailure::Protocol(_) => FailureClass::Unexpected,
        ProviderFailure::Network { .. } => FailureClass::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ProviderKind;

    fn oauth(error: &str, description: &str) -> ProviderFailure {
        ProviderFailure::OAuth {
            status: 400,
            error: error.into(),
            description: Some(description.into()),
        }
    }

    #[test]
    fn bitbucket_cloud_failures_mean_what_facts_say() {
        let cloud = ProviderKind::BitbucketCloud.spec();
        assert_eq!(
            classify(cloud, &oauth("invalid_request", "Invalid refresh_token")),
            FailureClass::Reauth
        );
        assert_eq!(
            classify(
                cloud,
                &oauth("invalid_grant", "The specified code is not valid.")
            ),
            FailureClass::Reauth
        );
        assert_eq!(
            classify(
                cloud,
                &oauth("unauthorized_client", "Invalid OAuth client credentials")
            ),
            FailureClass::ProfileMisconfigured
        );
        assert_eq!(
            classify(
                cloud,
                &oauth(
                    "invalid_request",
                    "No callback uri defined for the OAuth client."
                )
            ),
            FailureClass::ProfileMisconfigured
        );
        let busy = ProviderFailure::Http {
            status: 429,
            retry_after: Some(5),
        };
        assert_eq!(classify(cloud, &busy), FailureClass::Transient);
        let down = ProviderFailure::Http {
            status: 503,
            retry_after: None,
        };
        assert_eq!(classify(cloud, &down), FailureClass::Transient);
        let cut = ProviderFailure::Network {
            timeout: false,
            message: "reset".into(),
        };
        assert_eq!(classify(cloud, &cut), FailureClass::Transient);
        assert_eq!(
            classify(cloud, &oauth("slow_down", "")),
            FailureClass::Unexpected
        );
    }
}
