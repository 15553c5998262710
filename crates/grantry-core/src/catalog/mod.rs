//! The provider catalog: what Grantry knows about each provider, as data. Code asks the catalog
//! (endpoints, scope vocabulary, PKCE, client authentication, how to classify a failure, how to
//! tell an admin what to configure) instead of branching on the provider.

mod failure_rules;
mod guidance;

pub use failure_rules::FailureClass;
pub use guidance::{
    CredentialGuide, SetupGuide, SetupStep, credential_guide, missing_scope_advice, setup_guide,
};

use std::fmt;

use bitbucket_facts::{ScopeError, ScopeSet, Vocabulary, cloud, datacenter};
use serde::{Deserialize, Serialize};
use url::Url;

/// A service Grantry can talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ProviderKind {
    #[serde(rename = "bitbucket-cloud")]
    BitbucketCloud,
    #[serde(rename = "bitbucket-datacenter")]
    BitbucketDatacenter,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 2] = [
        ProviderKind::BitbucketCloud,
        ProviderKind::BitbucketDatacenter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::BitbucketCloud => "bitbucket-cloud",
            ProviderKind::BitbucketDatacenter => "bitbucket-datacenter",
        }
    }

    pub fn parse(text: &str) -> Option<ProviderKind> {
        ProviderKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    pub fn spec(self) -> &'static ProviderSpec {
        match self {
            ProviderKind::BitbucketCloud => &BITBUCKET_CLOUD,
            ProviderKind::BitbucketDatacenter => &BITBUCKET_DATACENTER,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic `client_id:client_secret`.
    Basic,
    /// `client_id` and `client_secret` form fields.
    Form,
}

/// How to learn who authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityLookup {
    /// `GET {api}/user` answers the account (Cloud; needs the `account` scope).
    CurrentUser,
    /// Any authenticated call names the user in `X-AUSERNAME`; then `GET {api}/users/{slug}`.
    UsernameHeaderThenUser,
}

/// How a failure answer is classified; see [`classify`].
#[derive(Debug, Clone, Copy)]
pub struct FailureRule {
    pub error: &'static str,
    /// Matches when the description contains this text (case-insensitive); `None` matches any.
    pub description_contains: Option<&'static str>,
    pub class: FailureClass,
}

/// Everything Grantry knows about one provider.
#[derive(Debug)]
pub struct ProviderSpec {
    pub kind: ProviderKind,
    pub display_name: &'static str,
    pub scopes: &'static Vocabulary,
    /// Scopes Grantry itself needs (to look up the account), added to every profile.
    pub identity_scopes: &'static [&'static str],
    pub identity: IdentityLookup,
    pub client_auth: ClientAuth,
    /// Whether to send PKCE S256 on the authorization code flow.
    pub pkce: bool,
    /// Whether scopes are asked for per authorization (DC) or fixed by the client's settings (Cloud).
    pub scopes_in_authorize: bool,
    /// Whether the token endpoint wants `redirect_uri` again on the refresh grant.
    pub redirect_uri_on_refresh: bool,
    /// Whether a profile names the instance's base URL (Data Center).
    pub needs_base_url: bool,
    /// Whether the client credentials grant exists (Cloud, private consumers only).
    pub client_credentials: bool,
    /// Access token lifetime to assume when the answer has no `expires_in`.
    pub default_token_ttl: u64,
    /// Whether Atlassian API tokens work here (Cloud only).
    pub api_tokens: bool,
    /// The user name `git` presents with the token as password.
    pub git_username: &'static str,
    /// How Bitbucket's own URLs begin below the API host (Cloud) or the base URL (Data Center),
    /// up to the REST root: a proxied path starting so is in Bitbucket's layout.
    pub rest_layout: &'static str,
    /// Where a short proxied path goes below the REST root (Data Center: the core API).
    pub rest_short: &'static str,
    pub failure_rules: &'static [FailureRule],
}

pub static BITBUCKET_CLOUD: ProviderSpec = ProviderSpec {
    kind: ProviderKind::BitbucketCloud,
    display_name: "Bitbucket Cloud",
    scopes: &cloud::SCOPES,
    identity_scopes: &["account"],
    identity: IdentityLookup::CurrentUser,
    client_auth: ClientAuth::Basic,
    pkce: false,
    scopes_in_authorize: false,
    redirect_uri_on_refresh: false,
    needs_base_url: false,
    client_credentials: true,
    default_token_ttl: 7200,
    api_tokens: true,
    git_username: "x-token-auth",
    rest_layout: "2.0/",
    rest_short: "",
    failure_rules: failure_rules::BITBUCKET_CLOUD_RULES,
};

pub static BITBUCKET_DATACENTER: ProviderSpec = ProviderSpec {
    kind: ProviderKind::BitbucketDatacenter,
    display_name: "Bitbucket Data Center",
    scopes: &datacenter::SCOPES,
    identity_scopes: &[],
    identity: IdentityLookup::UsernameHeaderThenUser,
    client_auth: ClientAuth::Form,
    pkce: true,
    scopes_in_authorize: true,
    redirect_uri_on_refresh: true,
    needs_base_url: true,
    client_credentials: false,
    default_token_ttl: 3600,
    api_tokens: false,
    git_username: "OAUTH_USERNAME",
    rest_layout: "rest/",
    rest_short: "api/latest/",
    failure_rules: failure_rules::BITBUCKET_DATACENTER_RULES,
};

impl ProviderSpec {
    /// Parses and checks scopes against this provider's vocabulary.
    pub fn parse_scopes<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<ScopeSet, ScopeError> {
        self.scopes.from_names(names)
    }

    /// The scopes a profile must require: what was asked plus what Grantry needs itself.
    pub fn required_with_identity(&self, asked: &ScopeSet) -> ScopeSet {
        let identity = self
            .scopes
            .from_names(self.identity_scopes.iter().copied())
            .expect("identity scopes are in the vocabulary");
        asked.union(&identity)
    }
}

/// Where a profile's provider lives: Cloud's fixed hosts (overridable for the simulator) or a
/// Data Center instance's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub authorize: Url,
    pub token: Url,
    /// REST base, ending in `/`: `…/2.0/` or `…/rest/api/latest/`.
    pub api: Url,
    /// Everything the proxy may reach, ending in `/`: Cloud's `…/2.0/`, Data Center's
    /// `{base}/rest/` (all its REST roots: `api`, `build-status`, `default-reviewers`, …).
    pub rest: Url,
    /// Git over HTTPS base.
    pub git: Url,
}

/// Cloud's hosts; tests and the demo point them at the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudHosts {
    /// `https://bitbucket.org`
    pub web: Url,
    /// `https://api.bitbucket.org`
    pub api: Url,
}

impl Default for CloudHosts {
    fn default() -> Self {
        CloudHosts {
            web: Url::parse("https://bitbucket.org").expect("valid URL"),
            api: Url::parse("https://api.bitbucket.org").expect("valid URL"),
        }
    }
}

fn join(base: &Url, path: &str) -> Url {
    let mut text = base.as_str().trim_end_matches('/').to_owned();
    text.push_str(path);
    Url::parse(&text).expect("a valid base joined with a fixed path is valid")
}

impl Endpoints {
    /// Endpoints for a provider; `base_url` is the Data Center instance (ignored for Cloud).
    pub fn of(kind: ProviderKind, cloud: &CloudHosts, base_url: Option<&Url>) -> Option<Endpoints> {
        match kind {
            ProviderKind::BitbucketCloud => Some(Endpoints {
                authorize: join(&cloud.web, "/site/oauth2/authorize"),
                token: join(&cloud.web, "/site/oauth2/access_token"),
                api: join(&cloud.api, "/2.0/"),
                rest: join(&cloud.api, "/2.0/"),
                git: join(&cloud.web, "/"),
            }),
            ProviderKind::BitbucketDatacenter => {
                let base = base_url?;
                Some(Endpoints {
                    authorize: join(base, "/rest/oauth2/latest/authorize"),
                    token: join(base, "/rest/oauth2/latest/token"),
                    api: join(base, "/rest/api/latest/"),
                    rest: join(base, "/rest/"),
                    git: join(base, "/scm/"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_provider() {
        let cloud =
            Endpoints::of(ProviderKind::BitbucketCloud, &CloudHosts::default(), None).unwrap();
        assert_eq!(
            cloud.token.as_str(),
            "https://bitbucket.org/site/oauth2/access_token"
        );
        assert_eq!(cloud.api.as_str(), "https://api.bitbucket.org/2.0/");
        let base = Url::parse("https://git.example.com/bitbucket/").unwrap();
        let dc = Endpoints::of(
            ProviderKind::BitbucketDatacenter,
            &CloudHosts::default(),
            Some(&base),
        )
        .unwrap();
        assert_eq!(
            dc.authorize.as_str(),
            "https://git.example.com/bitbucket/rest/oauth2/latest/authorize"
        );
        assert!(
            Endpoints::of(
                ProviderKind::BitbucketDatacenter,
                &CloudHosts::default(),
                None
            )
            .is_none()
        );
    }

    #[test]
    fn cloud_profiles_always_require_account() {
        let spec = ProviderKind::BitbucketCloud.spec();
        let asked = spec.parse_scopes(["repository"]).unwrap();
        assert_eq!(
            spec.required_with_identity(&asked).to_string(),
            "account repository"
        );
    }
}
