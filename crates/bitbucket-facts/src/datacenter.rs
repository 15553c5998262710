//! Bitbucket Data Center: OAuth 2 scopes of an incoming application link.
//!
//! Repository and project levels form a chain, each including the ones below it:
//! `PUBLIC_REPOS ⊂ REPO_READ ⊂ REPO_WRITE ⊂ REPO_ADMIN ⊂ PROJECT_ADMIN ⊂ ADMIN_WRITE ⊂ SYSTEM_ADMIN`.
//! `ACCOUNT_WRITE` stands apart.

use crate::scopes::{ScopeError, ScopeSet, Vocabulary};

pub static SCOPES: Vocabulary = Vocabulary {
    provider: "bitbucket-datacenter",
    names: &[
        "PUBLIC_REPOS",
        "REPO_READ",
        "REPO_WRITE",
        "REPO_ADMIN",
        "PROJECT_ADMIN",
        "ACCOUNT_WRITE",
        "ADMIN_WRITE",
        "SYSTEM_ADMIN",
    ],
    implies: &[
        ("REPO_READ", &["PUBLIC_REPOS"]),
        ("REPO_WRITE", &["REPO_READ"]),
        ("REPO_ADMIN", &["REPO_WRITE"]),
        ("PROJECT_ADMIN", &["REPO_ADMIN"]),
        ("ADMIN_WRITE", &["PROJECT_ADMIN"]),
        ("SYSTEM_ADMIN", &["ADMIN_WRITE"]),
    ],
    removed: &[],
};

/// Repository and project permission levels, lowest first. A token's power over a repository is
/// the lower of its scope level and the user's permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    PublicRepos,
    RepoRead,
    RepoWrite,
    RepoAdmin,
    ProjectAdmin,
    AdminWrite,
    SystemAdmin,
}

impl Level {
    pub const ALL: [Level; 7] = [
        Level::PublicRepos,
        Level::RepoRead,
        Level::RepoWrite,
        Level::RepoAdmin,
        Level::ProjectAdmin,
        Level::AdminWrite,
        Level::SystemAdmin,
    ];

    pub fn scope(self) -> &'static str {
        match self {
            Level::PublicRepos => "PUBLIC_REPOS",
            Level::RepoRead => "REPO_READ",
            Level::RepoWrite => "REPO_WRITE",
            Level::RepoAdmin => "REPO_ADMIN",
            Level::ProjectAdmin => "PROJECT_ADMIN",
            Level::AdminWrite => "ADMIN_WRITE",
            Level::SystemAdmin => "SYSTEM_ADMIN",
        }
    }

    /// The highest level a set of scopes reaches, if any.
    pub fn of(scopes: &ScopeSet) -> Option<Level> {
        let closed = scopes.closure();
        Level::ALL
            .iter()
            .rev()
            .copied()
            .find(|level| closed.contains(level.scope()))
    }
}

pub fn parse_scopes(text: &str) -> Result<ScopeSet, ScopeError> {
    SCOPES.parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_include_the_ones_below() {
        let write = parse_scopes("REPO_WRITE").unwrap();
        assert!(write.satisfies(&parse_scopes("REPO_READ PUBLIC_REPOS").unwrap()));
        assert!(!write.satisfies(&parse_scopes("REPO_ADMIN").unwrap()));
        assert!(!write.satisfies(&parse_scopes("ACCOUNT_WRITE").unwrap()));
        assert_eq!(Level::of(&write), Some(Level::RepoWrite));
        assert_eq!(Level::of(&parse_scopes("ACCOUNT_WRITE").unwrap()), None);
    }
}
