//! What each provider's failures mean: the rules `provider::classify` applies.

use super::FailureRule;

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
