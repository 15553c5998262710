//! What to tell an admin: the callback URL and exactly what to configure at the provider.

use bitbucket_facts::{ScopeSet, cloud};
use serde::Serialize;

use super::ProviderKind;

/// One step of setting a profile up at the provider.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SetupStep {
    pub text: String,
    /// A value to paste, if the step has one (the callback URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The whole guide for one profile.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
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
