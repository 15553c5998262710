//! The provider's side of OAuth, as the services need it. `grantry-provider` implements it over
//! HTTP; tests may implement it in memory.

use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::catalog::{Endpoints, FailureClass, ProviderSpec};
use crate::proxy::{Answer, Forward};

/// The OAuth client a call is made as.
pub struct ProviderTarget<'a> {
    pub spec: &'static ProviderSpec,
    pub endpoints: &'a Endpoints,
    pub client_id: &'a str,
    pub client_secret: &'a SecretString,
    /// Grantry's callback URL.
    pub redirect_uri: &'a str,
    /// Scopes to ask for where the provider takes them per request.
    pub scopes: &'a [String],
}

/// A credential presented to the provider's API.
pub enum Presented<'a> {
    Bearer(&'a SecretString),
    Basic {
        username: &'a str,
        password: &'a SecretString,
    },
}

/// A successful token answer.
pub struct TokenGrant {
    pub access_token: SecretString,
    /// `None` when the provider issued none (client credentials in 2026 mode).
    pub refresh_token: Option<SecretString>,
    pub expires_in: Option<u64>,
    /// The scopes granted, if the answer said (`scope` or Bitbucket's older `scopes`).
    pub scopes: Option<Vec<String>>,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Who authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Stable account id (Cloud: the account's UUID; Data Center: the user id).
    pub account_id: String,
    pub username: String,
    pub display_name: String,
    /// Scopes the API said the token has (Cloud's `x-oauth-scopes`), if it said.
    pub scopes: Option<Vec<String>>,
}

/// Why a provider call failed, as raw as is useful for classification. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderFailure {
    /// An OAuth error answer (`{"error", "error_description"}`).
    OAuth {
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// Any other unsuccessful HTTP answer.
    Http {
        status: u16,
        retry_after: Option<u64>,
    },
    /// No answer: refused, reset, timed out.
    Network { timeout: bool, message: String },
    /// An answer that does not make sense (not JSON, fields missing).
    Protocol(String),
}

impl ProviderFailure {
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ProviderFailure::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for ProviderFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderFailure::OAuth {
                status,
                error,
                description,
            } => match description {
                Some(description) => write!(f, "HTTP {status} {error}: {description}"),
                None => write!(f, "HTTP {status} {error}"),
            },
            ProviderFailure::Http { status, .. } => write!(f, "HTTP {status}"),
            ProviderFailure::Network { timeout: true, .. } => f.write_str("timed out"),
            ProviderFailure::Network { message, .. } => write!(f, "no answer: {message}"),
            ProviderFailure::Protocol(message) => write!(f, "unexpected answer: {message}"),
        }
    }
}

/// An answer from the provider's REST API, for the console's "Test".
#[derive(Debug, Clone)]
pub struct ApiAnswer {
    pub status: u16,
    pub body: String,
}

#[async_trait]
pub trait ProviderClient: Send + Sync {
    async fn exchange_code(
        &self,
        target: &ProviderTarget<'_>,
        code: &str,
        pkce_verifier: Option<&str>,
    ) -> Result<TokenGrant, ProviderFailure>;

    async fn refresh(
        &self,
        target: &ProviderTarget<'_>,
        refresh_token: &SecretString,
    ) -> Result<TokenGrant, ProviderFailure>;

    async fn client_credentials(
        &self,
        target: &ProviderTarget<'_>,
    ) -> Result<TokenGrant, ProviderFailure>;

    /// Looks up who a credential belongs to.
    async fn identity(
        &self,
        target: &ProviderTarget<'_>,
        credential: Presented<'_>,
    ) -> Result<Identity, ProviderFailure>;

    /// Calls the identity endpoint and returns the raw answer, for a person to look at.
    async fn probe(
        &self,
        target: &ProviderTarget<'_>,
        credential: Presented<'_>,
    ) -> Result<ApiAnswer, ProviderFailure>;

    /// Makes an application's call to `url` (checked to lie below the REST root) with
    /// `credential`, streaming the body both ways; any HTTP answer is a success here (the
    /// application reads the status), only no answer is a failure.
    async fn forward(
        &self,
        url: &url::Url,
        credential: Presented<'_>,
        request: Forward,
    ) -> Result<Answer, ProviderFailure>;
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
