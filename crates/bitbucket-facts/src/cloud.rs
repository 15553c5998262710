//! Bitbucket Cloud: classic OAuth 2 scopes and the consumer form's permission checkboxes.

use crate::scopes::{ScopeError, ScopeSet, Vocabulary};

/// Bitbucket Cloud's OAuth 2 scopes, with the implications of its OpenAPI narrative.
pub static SCOPES: Vocabulary = Vocabulary {
    provider: "bitbucket-cloud",
    names: &[
        "account",
        "account:write",
        "email",
        "team",
        "team:write",
        "project",
        "project:admin",
        "repository",
        "repository:write",
        "repository:admin",
        "repository:delete",
        "pullrequest",
        "pullrequest:write",
        "issue",
        "issue:write",
        "wiki",
        "snippet",
        "snippet:write",
        "webhook",
        "pipeline",
        "pipeline:write",
        "pipeline:variable",
        "runner",
        "runner:write",
    ],
    implies: &[
        ("repository:write", &["repository"]),
        ("pullrequest", &["repository"]),
        ("pullrequest:write", &["pullrequest", "repository:write"]),
        ("project", &["repository"]),
        ("issue:write", &["issue"]),
        ("snippet:write", &["snippet"]),
        ("account:write", &["account"]),
        ("team:write", &["team"]),
    ],
    removed: &[(
        "project:write",
        "Bitbucket removed it on 15 May 2023; use `project:admin` (Projects → Admin)",
    )],
};

/// One permission checkbox of Bitbucket's "Add consumer" form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkbox {
    /// The group's heading on the form, e.g. `Pull requests`.
    pub group: &'static str,
    /// The box's label within the group, e.g. `Write`.
    pub label: &'static str,
    /// A stable identifier, `group.box`, e.g. `pull_requests.write`.
    pub key: &'static str,
    /// The scope a ticked box grants.
    pub scope: &'static str,
}

impl Checkbox {
    /// `Pull requests → Write`, as a person reads it on the form.
    pub fn describe(&self) -> String {
        format!("{} → {}", self.group, self.label)
    }
}

const fn cb(
    group: &'static str,
    label: &'static str,
    key: &'static str,
    scope: &'static str,
) -> Checkbox {
    Checkbox {
        group,
        label,
        key,
        scope,
    }
}

/// Every permission checkbox, in the order of the form.
pub static CHECKBOXES: &[Checkbox] = &[
    cb("Account", "Email", "account.email", "email"),
    cb("Account", "Read", "account.read", "account"),
    cb("Account", "Write", "account.write", "account:write"),
    cb(
        "Workspace membership",
        "Read",
        "workspace_membership.read",
        "team",
    ),
    cb(
        "Workspace membership",
        "Write",
        "workspace_membership.write",
        "team:write",
    ),
    cb("Projects", "Read", "projects.read", "project"),
    cb("Projects", "Admin", "projects.admin", "project:admin"),
    cb("Repositories", "Read", "repositories.read", "repository"),
    cb(
        "Repositories",
        "Write",
        "repositories.write",
        "repository:write",
    ),
    cb(
        "Repositories",
        "Admin",
        "repositories.admin",
        "repository:admin",
    ),
    cb(
        "Repositories",
        "Delete",
        "repositories.delete",
        "repository:delete",
    ),
    cb("Pull requests", "Read", "pull_requests.read", "pullrequest"),
    cb(
        "Pull requests",
        "Write",
        "pull_requests.write",
        "pullrequest:write",
    ),
    cb("Issues", "Read", "issues.read", "issue"),
    cb("Issues", "Write", "issues.write", "issue:write"),
    cb("Wikis", "Read and write", "wikis.read_and_write", "wiki"),
    cb("Snippets", "Read", "snippets.read", "snippet"),
    cb("Snippets", "Write", "snippets.write", "snippet:write"),
    cb(
        "Webhooks",
        "Read and write",
        "webhooks.read_and_write",
        "webhook",
    ),
    cb("Pipelines", "Read", "pipelines.read", "pipeline"),
    cb("Pipelines", "Write", "pipelines.write", "pipeline:write"),
    cb(
        "Pipelines",
        "Edit variables",
        "pipelines.edit_variables",
        "pipeline:variable",
    ),
    cb("Runners", "Read", "runners.read", "runner"),
    cb("Runners", "Write", "runners.write", "runner:write"),
];

/// What the form ticks by itself when a box is ticked, beyond scope implication:
/// Account Read ticks Email, and Write ticks Read in groups whose scopes do not imply it.
const FORM_AUTO_TICKS: &[(&str, &str)] = &[
    ("account", "email"),
    ("pipeline:write", "pipeline"),
    ("runner:write", "runner"),
];

/// A checkbox key the form does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission checkbox `{0}`; known: {known}", known = checkbox_keys())]
pub struct UnknownCheckbox(pub String);

fn checkbox_keys() -> String {
    CHECKBOXES
        .iter()
        .map(|b| b.key)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn checkbox(key: &str) -> Result<&'static Checkbox, UnknownCheckbox> {
    CHECKBOXES
        .iter()
        .find(|b| b.key == key)
        .ok_or_else(|| UnknownCheckbox(key.to_owned()))
}

pub fn checkbox_for_scope(scope: &str) -> Option<&'static Checkbox> {
    CHECKBOXES.iter().find(|b| b.scope == scope)
}

/// The scopes a consumer ends up with when these boxes are ticked on the form, including the
/// boxes the form ticks by itself.
pub fn scopes_from_form<'a>(
    ticked: impl IntoIterator<Item = &'a str>,
) -> Result<ScopeSet, UnknownCheckbox> {
    let mut names = Vec::new();
    for key in ticked {
        names.push(checkbox(key)?.scope);
    }
    let chosen = SCOPES
        .from_names(names)
        .expect("every checkbox names a known scope");
    Ok(form_closure(&chosen))
}

/// Closure under scope implication and the form's own auto-ticking.
pub fn form_closure(scopes: &ScopeSet) -> ScopeSet {
    let mut current = scopes.closure();
    loop {
        let mut next = current;
        for (when, also) in FORM_AUTO_TICKS {
            if current.contains(when) {
                next = next
                    .union(&SCOPES.parse(also).expect("known scope"))
                    .closure();
            }
        }
        if next == current {
            return current;
        }
        current = next;
    }
}

/// What to tick on the consumer form so that its tokens satisfy `required`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGuidance {
    /// The boxes a person has to click.
    pub click: Vec<&'static Checkbox>,
    /// Every box that ends up ticked (the clicked ones and those the form ticks by itself).
    pub ticked: Vec<&'static Checkbox>,
}

pub fn consumer_guidance(required: &ScopeSet) -> ConsumerGuidance {
    let click_scopes = form_minimal(required);
    let ticked_scopes = form_closure(required);
    let boxes = |set: &ScopeSet| {
        CHECKBOXES
            .iter()
            .filter(|b| set.contains(b.scope))
            .collect::<Vec<_>>()
    };
    ConsumerGuidance {
        click: boxes(&click_scopes),
        ticked: boxes(&ticked_scopes),
    }
}

/// The fewest scopes whose boxes, once clicked, make the form tick all of `scopes`: scope
/// implication and the form's own auto-ticking (Account Read ticks Email) both count.
fn form_minimal(scopes: &ScopeSet) -> ScopeSet {
    let mut kept = scopes.minimal();
    for name in kept.to_vec() {
        let rest = SCOPES
            .from_names(kept.names().filter(|n| *n != name))
            .expect("names from the vocabulary");
        if form_closure(&rest).contains(&name) {
            kept = rest;
        }
    }
    kept
}

/// Parses Cloud scopes, e.g. `"account repository:write"`.
pub fn parse_scopes(text: &str) -> Result<ScopeSet, ScopeError> {
    SCOPES.parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> ScopeSet {
        parse_scopes(text).unwrap()
    }

    #[test]
    fn implications_follow_the_openapi_narrative() {
        assert_eq!(
            set("pullrequest:write").closure(),
            set("pullrequest:write pullrequest repository:write repository")
        );
        assert_eq!(set("project").closure(), set("project repository"));
        assert_eq!(set("repository:admin").closure(), set("repository:admin"));
        assert!(set("pullrequest").satisfies(&set("repository")));
        assert!(!set("repository").satisfies(&set("pullrequest")));
    }

    #[test]
    fn account_read_ticks_email_on_the_form() {
        assert_eq!(
            scopes_from_form(["account.read"]).unwrap(),
            set("account email")
        );
        assert_eq!(
            scopes_from_form(["pull_requests.write"]).unwrap(),
            set("pullrequest:write pullrequest repository:write repository")
        );
        assert_eq!(
            scopes_from_form(["pipelines.write"]).unwrap(),
            set("pipeline pipeline:write")
        );
    }

    #[test]
    fn guidance_names_the_boxes_to_click() {
        let guidance = consumer_guidance(&set("pullrequest:write repository account email"));
        let click: Vec<_> = guidance.click.iter().map(|b| b.describe()).collect();
        assert_eq!(click, ["Account → Read", "Pull requests → Write"]);
        assert_eq!(guidance.ticked.len(), 6);
    }

    #[test]
    fn removed_and_unknown_scopes_are_named() {
        let removed = parse_scopes("project:write").unwrap_err().to_string();
        assert!(removed.contains("project:admin"), "{removed}");
        let unknown = parse_scopes("repo").unwrap_err().to_string();
        assert!(unknown.contains("`repo`"), "{unknown}");
        assert!(checkbox("repositories.maybe").is_err());
    }
}
