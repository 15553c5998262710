//! Atlassian API tokens for Bitbucket Cloud: their scopes (`read:repository:bitbucket`, …) and
//! which of them an operation, or a set of classic OAuth scopes, corresponds to.
//!
//! API tokens replace app passwords (switched off on 28 July 2026). Unlike classic scopes, no API
//! token scope implies another: `write:repository:bitbucket` does not grant reading (Atlassian's
//! "API token permissions" page), so an operation needing both names both.

use crate::cloud;
use crate::scopes::{ScopeError, ScopeSet, Vocabulary};

/// The Bitbucket scopes an API token can carry. None implies another.
pub static SCOPES: Vocabulary = Vocabulary {
    provider: "bitbucket-api-token",
    names: &[
        "read:user:bitbucket",
        "write:user:bitbucket",
        "read:workspace:bitbucket",
        "admin:workspace:bitbucket",
        "read:project:bitbucket",
        "admin:project:bitbucket",
        "read:repository:bitbucket",
        "write:repository:bitbucket",
        "admin:repository:bitbucket",
        "delete:repository:bitbucket",
        "read:pullrequest:bitbucket",
        "write:pullrequest:bitbucket",
        "read:issue:bitbucket",
        "write:issue:bitbucket",
        "read:wiki:bitbucket",
        "write:wiki:bitbucket",
        "read:snippet:bitbucket",
        "write:snippet:bitbucket",
        "read:webhook:bitbucket",
        "write:webhook:bitbucket",
        "read:pipeline:bitbucket",
        "write:pipeline:bitbucket",
        "admin:pipeline:bitbucket",
        "read:runner:bitbucket",
        "write:runner:bitbucket",
    ],
    implies: &[],
    removed: &[],
};

/// Parses API token scopes, e.g. `"read:repository:bitbucket read:user:bitbucket"`.
pub fn parse_scopes(text: &str) -> Result<ScopeSet, ScopeError> {
    SCOPES.parse(text)
}

/// The API token scope covering the same resource as a classic scope, at the level an operation
/// of `method` needs: reading for `GET`/`HEAD`, the classic scope's own level otherwise.
///
/// Bitbucket's OpenAPI document names API token scopes for 178 of its operations and none for
/// 112 others (`/user`, issues, snippets, webhooks…). For those, and for the guidance Grantry
/// gives when an API token is to stand in for a profile's classic scopes, this correspondence
/// is the reading: `account` → `read:user:bitbucket`, `team` → `read:workspace:bitbucket`, and
/// so on.
fn corresponding(classic: &str, reading: bool) -> &'static [&'static str] {
    let read_or = |read: &'static [&'static str], other: &'static [&'static str]| {
        if reading { read } else { other }
    };
    match classic {
        "account" | "email" => &["read:user:bitbucket"],
        "account:write" => read_or(&["read:user:bitbucket"], &["write:user:bitbucket"]),
        "team" => &["read:workspace:bitbucket"],
        "team:write" => read_or(
            &["read:workspace:bitbucket"],
            &["admin:workspace:bitbucket"],
        ),
        "project" => &["read:project:bitbucket"],
        "project:admin" => read_or(&["read:project:bitbucket"], &["admin:project:bitbucket"]),
        "repository" => &["read:repository:bitbucket"],
        "repository:write" => read_or(
            &["read:repository:bitbucket"],
            &["write:repository:bitbucket"],
        ),
        "repository:admin" => &["admin:repository:bitbucket"],
        "repository:delete" => &["delete:repository:bitbucket"],
        "pullrequest" => &["read:pullrequest:bitbucket"],
        "pullrequest:write" => read_or(
            &["read:pullrequest:bitbucket"],
            &["write:pullrequest:bitbucket"],
        ),
        "issue" => &["read:issue:bitbucket"],
        "issue:write" => read_or(&["read:issue:bitbucket"], &["write:issue:bitbucket"]),
        "wiki" => read_or(&["read:wiki:bitbucket"], &["write:wiki:bitbucket"]),
        "snippet" => &["read:snippet:bitbucket"],
        "snippet:write" => read_or(&["read:snippet:bitbucket"], &["write:snippet:bitbucket"]),
        "webhook" => read_or(&["read:webhook:bitbucket"], &["write:webhook:bitbucket"]),
        "pipeline" => &["read:pipeline:bitbucket"],
        "pipeline:write" => read_or(&["read:pipeline:bitbucket"], &["write:pipeline:bitbucket"]),
        "pipeline:variable" => &["admin:pipeline:bitbucket"],
        "runner" => &["read:runner:bitbucket"],
        "runner:write" => read_or(&["read:runner:bitbucket"], &["write:runner:bitbucket"]),
        _ => &[],
    }
}

/// What an operation of `method` whose classic scopes are `classic` needs from an API token,
/// when Bitbucket's document does not say.
pub fn for_operation(method: &str, classic: &ScopeSet) -> ScopeSet {
    let reading = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    let names = classic
        .names()
        .flat_map(|name| corresponding(name, reading).iter().copied());
    SCOPES
        .from_names(names)
        .expect("corresponding scopes are in the vocabulary")
}

/// The API token scopes to tick for a token to do what classic `scopes` allow: each classic
/// scope's reading and writing scopes, since no API token scope implies another.
pub fn for_classic(scopes: &ScopeSet) -> ScopeSet {
    let all = cloud::form_closure(scopes);
    let names = all.names().flat_map(|name| {
        corresponding(name, true)
            .iter()
            .chain(corresponding(name, false))
            .copied()
    });
    SCOPES
        .from_names(names)
        .expect("corresponding scopes are in the vocabulary")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_without_published_api_token_scopes_takes_the_corresponding_ones() {
        let account = cloud::parse_scopes("account").unwrap();
        assert_eq!(
            for_operation("GET", &account).to_vec(),
            ["read:user:bitbucket"]
        );
        let write = cloud::parse_scopes("issue:write").unwrap();
        assert_eq!(
            for_operation("POST", &write).to_vec(),
            ["write:issue:bitbucket"]
        );
        assert_eq!(
            for_operation("GET", &write).to_vec(),
            ["read:issue:bitbucket"]
        );
    }

    #[test]
    fn a_profile_needing_pull_request_writes_asks_for_reading_and_writing_both() {
        let classic = cloud::parse_scopes("account pullrequest:write").unwrap();
        let wanted = for_classic(&classic).to_vec();
        for scope in [
            "read:user:bitbucket",
            "read:pullrequest:bitbucket",
            "write:pullrequest:bitbucket",
            "read:repository:bitbucket",
            "write:repository:bitbucket",
        ] {
            assert!(wanted.iter().any(|s| s == scope), "{scope} in {wanted:?}");
        }
        assert!(!wanted.iter().any(|s| s == "admin:repository:bitbucket"));
    }
}
