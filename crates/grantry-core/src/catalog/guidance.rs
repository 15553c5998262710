//! What to tell an admin: the callback URL and exactly what to configure at the provider.

use bitbucket_facts::datacenter::Level;
use bitbucket_facts::{ScopeSet, cloud};
use serde::Serialize;

use super::ProviderKind;

/// One step of setting a profile up at the provider.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SetupStep {
    pub text: String,
    /// A value to paste, if the step has one (the callback URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The whole guide for one profile.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SetupGuide {
    pub callback_url: String,
    /// Where in the provider's UI this happens.
    pub location: &'static str,
    pub steps: Vec<SetupStep>,
    /// Cloud: the permission boxes to click, e.g. `Pull requests → Write`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tick: Vec<String>,
    /// Cloud: every box that ends up ticked (the form ticks some by itself).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ticked: Vec<String>,
    /// Data Center: the scopes to give the incoming link.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

fn step(text: impl Into<String>) -> SetupStep {
    SetupStep {
        text: text.into(),
        value: None,
    }
}

fn with_value(text: impl Into<String>, value: &str) -> SetupStep {
    SetupStep {
        text: text.into(),
        value: Some(value.to_owned()),
    }
}

pub fn setup_guide(
    kind: ProviderKind,
    required: &ScopeSet,
    callback_url: &str,
    private: bool,
) -> SetupGuide {
    match kind {
        ProviderKind::BitbucketCloud => cloud_guide(required, callback_url, private),
        ProviderKind::BitbucketDatacenter => dc_guide(required, callback_url),
    }
}

fn cloud_guide(required: &ScopeSet, callback_url: &str, private: bool) -> SetupGuide {
    let guidance = cloud::consumer_guidance(required);
    let tick: Vec<String> = guidance.click.iter().map(|b| b.describe()).collect();
    let ticked: Vec<String> = guidance.ticked.iter().map(|b| b.describe()).collect();
    let mut steps = vec![
        step(
            "In Bitbucket, open Workspace settings > Apps and features > OAuth consumers > Add consumer.",
        ),
        step("Give it a name (and, if you like, a description and URL)."),
        with_value("Paste this Callback URL:", callback_url),
        step(format!("Under Permissions, tick: {}.", tick.join(", "))),
        step(format!(
            "Bitbucket then shows these boxes ticked: {}.",
            ticked.join(", ")
        )),
    ];
    if private {
        steps.push(step(
            "Tick \"This is a private consumer\" (needed for client-credentials connections).",
        ));
    }
    steps.push(step(
        "Save, then copy the consumer's Key and Secret into this profile.",
    ));
    SetupGuide {
        callback_url: callback_url.to_owned(),
        location: "Workspace settings > Apps and features > OAuth consumers > Add consumer",
        steps,
        tick,
        ticked,
        scopes: Vec::new(),
    }
}

fn dc_guide(required: &ScopeSet, callback_url: &str) -> SetupGuide {
    let scopes = required.to_vec();
    SetupGuide {
        callback_url: callback_url.to_owned(),
        location: "Administration > Applications > Application links > Create link > External application > Incoming",
        steps: vec![
            step(
                "In Bitbucket Data Center, open Administration > Applications > Application links > Create link.",
            ),
            step("Choose External application, then Incoming."),
            with_value("Enter this Redirect URL:", callback_url),
            step(format!(
                "Give the link these scopes: {}.",
                scopes.join(", ")
            )),
            step(
                "Save, then open More actions > View credentials and copy the Client ID and Client secret into this profile.",
            ),
        ],
        tick: Vec::new(),
        ticked: Vec::new(),
        scopes,
    }
}

/// Words an admin can act on for scopes a connection lacks.
pub fn missing_scope_advice(kind: ProviderKind, missing: &ScopeSet) -> String {
    match kind {
        ProviderKind::BitbucketCloud => {
            let boxes: Vec<String> = cloud::consumer_guidance(missing)
                .click
                .iter()
                .map(|b| b.describe())
                .collect();
            format!(
                "The OAuth consumer does not grant {}: tick {} on the OAuth consumer, then reconnect.",
                missing.to_vec().join(", "),
                boxes.join(" and ")
            )
        }
        ProviderKind::BitbucketDatacenter => format!(
            "The token lacks {}: add {} to the incoming application link's scopes, then reconnect.",
            missing.to_vec().join(", "),
            missing.minimal().to_vec().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_guide_names_the_boxes_and_the_callback() {
        let required = cloud::parse_scopes("account pullrequest:write").unwrap();
        let guide = setup_guide(
            ProviderKind::BitbucketCloud,
            &required,
            "https://g.example/oauth/callback",
            false,
        );
        assert_eq!(guide.tick, ["Account → Read", "Pull requests → Write"]);
        assert!(guide.ticked.contains(&"Repositories → Write".to_owned()));
        assert!(guide.ticked.contains(&"Account → Email".to_owned()));
        assert!(
            guide
                .steps
                .iter()
                .any(|s| s.value.as_deref() == Some("https://g.example/oauth/callback"))
        );
    }

    #[test]
    fn missing_scopes_are_said_in_admin_words() {
        let missing = cloud::parse_scopes("pullrequest:write").unwrap();
        let advice = missing_scope_advice(ProviderKind::BitbucketCloud, &missing);
        assert!(
            advice.contains("tick Pull requests → Write on the OAuth consumer"),
            "{advice}"
        );
    }
}

/// How to make a credential by hand for a profile's needs: an Atlassian API token (Cloud) and
/// an access token, in the same words as the consumer guidance.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CredentialGuide {
    /// Cloud only: the steps, and the API token scopes to tick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_token: Option<Vec<SetupStep>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_token_scopes: Vec<String>,
    /// Repository or workspace access token (Cloud); project or repository HTTP access token
    /// (Data Center).
    pub access_token: Vec<SetupStep>,
}

pub fn credential_guide(kind: ProviderKind, required: &ScopeSet) -> CredentialGuide {
    match kind {
        ProviderKind::BitbucketCloud => {
            let scopes = bitbucket_facts::api_tokens::for_classic(required).to_vec();
            let api_token = vec![
                step(
                    "Signed in to Bitbucket as the account to connect, open Atlassian account settings > Security > Create and manage API tokens > Create API token with scopes.",
                ),
                step(
                    "Name it and choose its expiry (at most one year; Grantry warns seven days ahead), then choose the app Bitbucket.",
                ),
                step(format!(
                    "Tick these scopes (none includes another, so reading and writing are both listed): {}.",
                    scopes.join(", ")
                )),
                step(
                    "Create it, copy the token (shown once) and enter it here with the account's Atlassian e-mail address and the same expiry.",
                ),
            ];
            // Access tokens act for a repository or workspace, never an account.
            let boxes: Vec<String> = cloud::consumer_guidance(required)
                .click
                .iter()
                .filter(|b| !matches!(b.group, "Account" | "Workspace membership"))
                .map(|b| b.describe())
                .collect();
            let access_token = vec![
                step(
                    "In the repository, open Repository settings > Security > Access tokens > Create Repository Access Token (or, with Bitbucket Premium, Workspace settings > Security > Access tokens for every repository of the workspace).",
                ),
                step(format!(
                    "Name it (commits and comments show that name) and tick: {}.",
                    if boxes.is_empty() {
                        "the permissions the application needs".to_owned()
                    } else {
                        boxes.join(", ")
                    }
                )),
                step(
                    "Create it, copy the token (shown once) and enter it here with its expiry, if it has one.",
                ),
            ];
            CredentialGuide {
                api_token: Some(api_token),
                api_token_scopes: scopes,
                access_token,
            }
        }
        ProviderKind::BitbucketDatacenter => {
            let level = Level::of(required).unwrap_or(Level::RepoRead);
            let permission = match level {
                Level::PublicRepos | Level::RepoRead => "Repository read",
                Level::RepoWrite => "Repository write",
                Level::RepoAdmin => "Repository admin",
                _ => "Project admin",
            };
            CredentialGuide {
                api_token: None,
                api_token_scopes: Vec::new(),
                access_token: vec![
                    step(
                        "In Bitbucket Data Center, open the project (or the repository) > Project settings (Repository settings) > HTTP access tokens > Create token.",
                    ),
                    step(format!(
                        "Name it and give it the permission {permission} ({}).",
                        level.scope()
                    )),
                    step(
                        "Set its expiry, create it, copy the token (shown once) and enter it here with that expiry. It works on REST as a bearer token and for git.",
                    ),
                ],
            }
        }
    }
}
