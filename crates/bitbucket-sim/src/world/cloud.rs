//! Bitbucket Cloud's world: users, workspaces, repositories, pull requests and OAuth consumers.

use std::collections::BTreeMap;

use bitbucket_facts::{ScopeSet, cloud};
use serde::{Deserialize, Serialize};

use super::{WorldError, check_slug, check_url};
use crate::util;

fn default_password() -> String {
    "password".to_owned()
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// For the consent page's sign-in form. Default: `password`.
    #[serde(default = "default_password")]
    pub password: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub username: String,
    pub display_name: String,
    pub email: String,
    #[serde(skip)]
    pub password: String,
    pub uuid: String,
    pub account_id: String,
    pub created_on: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    pub slug: String,
    pub name: Option<String>,
    /// Usernames of members; members may read and write every repository of the workspace.
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Workspace {
    pub slug: String,
    pub name: String,
    pub uuid: String,
    pub members: Vec<String>,
    pub created_on: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRepository {
    pub workspace: String,
    pub slug: String,
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_true")]
    pub private: bool,
    /// The key of the workspace project it belongs to (for project access tokens), if any.
    pub project: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Repository {
    pub workspace: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub private: bool,
    pub project: Option<String>,
    pub uuid: String,
    pub created_on: i64,
    #[serde(skip)]
    pub pullrequests: Vec<PullRequest>,
}

#[derive(Debug, Clone)]
pub struct PullRequest {
    pub id: u64,
    pub title: String,
    pub description: String,
    pub author: String,
    pub source_branch: String,
    pub destination_branch: String,
    pub close_source_branch: bool,
    pub created_on: i64,
}

/// What Bitbucket's "Add consumer" form asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConsumer {
    pub workspace: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub callback_url: Option<String>,
    #[serde(default)]
    pub url: String,
    /// "This is a private consumer": allows the client credentials grant.
    #[serde(default)]
    pub private: bool,
    /// Ticked permission boxes, e.g. `["account.read", "repositories.write"]`.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The member who adds it; client credentials tokens act as this user. Default: the first
    /// member of the workspace.
    pub owner: Option<String>,
    /// Fixed credentials, for reproducible seeds. Default: fresh ones in the 2026 format.
    pub key: Option<String>,
    pub secret: Option<String>,
}

/// Changes to a consumer, as its "Edit" form allows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub callback_url: Option<Option<String>>,
    pub url: Option<String>,
    pub private: Option<bool>,
    pub permissions: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Consumer {
    pub key: String,
    pub secret: String,
    pub name: String,
    pub description: String,
    pub callback_url: Option<String>,
    pub url: String,
    pub private: bool,
    pub workspace: String,
    pub owner: String,
    #[serde(serialize_with = "serialize_scopes")]
    pub scopes: ScopeSet,
    pub created_on: i64,
}

fn serialize_scopes<S: serde::Serializer>(scopes: &ScopeSet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(scopes.names())
}

/// Cloud's users, workspaces and repositories. Consumers live apart, in a concurrent map, because
/// the token endpoint reads them on every request.
#[derive(Debug, Default)]
pub struct CloudDirectory {
    pub users: BTreeMap<String, User>,
    pub workspaces: BTreeMap<String, Workspace>,
    pub repositories: BTreeMap<(String, String), Repository>,
}

impl CloudDirectory {
    pub fn add_user(&mut self, new: NewUser, now: i64) -> Result<User, WorldError> {
        check_slug("username", &new.username)?;
        if self.users.contains_key(&new.username) {
            return Err(WorldError::Duplicate(format!("user `{}`", new.username)));
        }
        let uuid = util::braced_uuid();
        let user = User {
            display_name: new.display_name.unwrap_or_else(|| new.username.clone()),
            email: new
                .email
                .unwrap_or_else(|| format!("{}@example.com", new.username)),
            password: new.password,
            account_id: format!("712020:{}", uuid.trim_matches(['{', '}'])),
            uuid,
            created_on: now,
            username: new.username,
        };
        self.users.insert(user.username.clone(), user.clone());
        Ok(user)
    }

    pub fn add_workspace(&mut self, new: NewWorkspace, now: i64) -> Result<Workspace, WorldError> {
        check_slug("workspace slug", &new.slug)?;
        if self.workspaces.contains_key(&new.slug) {
            return Err(WorldError::Duplicate(format!("workspace `{}`", new.slug)));
        }
        for member in &new.members {
            self.user(member)?;
        }
        let workspace = Workspace {
            name: new.name.unwrap_or_else(|| new.slug.clone()),
            uuid: util::braced_uuid(),
            members: new.members,
            created_on: now,
            slug: new.slug,
        };
        self.workspaces
            .insert(workspace.slug.clone(), workspace.clone());
        Ok(workspace)
    }

    /// Checks a new repository; the caller creates its git repository before `insert_repository`.
    pub fn check_new_repository(&self, new: &NewRepository) -> Result<(), WorldError> {
        check_slug("repository slug", &new.slug)?;
        self.workspace(&new.workspace)?;
        if self
            .repositories
            .contains_key(&(new.workspace.clone(), new.slug.clone()))
        {
            return Err(WorldError::Duplicate(format!(
                "repository `{}/{}`",
                new.workspace, new.slug
            )));
        }
        Ok(())
    }

    pub fn insert_repository(&mut self, new: NewRepository, now: i64) -> Repository {
        let repository = Repository {
            name: new.name.unwrap_or_else(|| new.slug.clone()),
            description: new.description,
            private: new.private,
            project: new.project,
            uuid: util::braced_uuid(),
            created_on: now,
            pullrequests: Vec::new(),
            workspace: new.workspace,
            slug: new.slug,
        };
        let key = (repository.workspace.clone(), repository.slug.clone());
        self.repositories.insert(key, repository.clone());
        repository
    }

    pub fn user(&self, username: &str) -> Result<&User, WorldError> {
        self.users
            .get(username)
            .ok_or_else(|| WorldError::NotFound(format!("user `{username}`")))
    }

    pub fn workspace(&self, slug: &str) -> Result<&Workspace, WorldError> {
        self.workspaces
            .get(slug)
            .ok_or_else(|| WorldError::NotFound(format!("workspace `{slug}`")))
    }

    pub fn repository(&self, workspace: &str, slug: &str) -> Result<&Repository, WorldError> {
        self.repositories
            .get(&(workspace.to_owned(), slug.to_owned()))
            .ok_or_else(|| WorldError::NotFound(format!("repository `{workspace}/{slug}`")))
    }

    pub fn is_member(&self, workspace: &str, username: &str) -> bool {
        self.workspaces
            .get(workspace)
            .is_some_and(|w| w.members.iter().any(|m| m == username))
    }

    /// Whether a user may read (`write == false`) or write a repository.
    pub fn may_access(&self, repository: &Repository, username: &str, write: bool) -> bool {
        self.is_member(&repository.workspace, username) || (!write && !repository.private)
    }

    pub fn new_consumer(&self, new: NewConsumer, now: i64) -> Result<Consumer, WorldError> {
        let workspace = self.workspace(&new.workspace)?;
        let owner = match new.owner {
            Some(owner) => {
                self.user(&owner)?;
                owner
            }
            None => workspace.members.first().cloned().ok_or_else(|| {
                WorldError::invalid("owner", "the workspace has no members to own the consumer")
            })?,
        };
        check_consumer_fields(&new.name, new.callback_url.as_deref())?;
        Ok(Consumer {
            key: new.key.unwrap_or_else(|| util::alnum(32)),
            secret: new.secret.unwrap_or_else(|| util::alnum(76)),
            scopes: form_scopes(&new.permissions)?,
            name: new.name,
            description: new.description,
            callback_url: new.callback_url.filter(|url| !url.is_empty()),
            url: new.url,
            private: new.private,
            workspace: new.workspace,
            owner,
            created_on: now,
        })
    }
}

fn check_consumer_fields(name: &str, callback_url: Option<&str>) -> Result<(), WorldError> {
    if name.trim().is_empty() {
        return Err(WorldError::invalid("name", "a consumer needs a name"));
    }
    if let Some(url) = callback_url.filter(|url| !url.is_empty()) {
        check_url("callback_url", url)?;
    }
    Ok(())
}

fn form_scopes(permissions: &[String]) -> Result<ScopeSet, WorldError> {
    cloud::scopes_from_form(permissions.iter().map(String::as_str))
        .map_err(|e| WorldError::invalid("permissions", &e.to_string()))
}

/// Applies an edit to a consumer, as its "Edit" form would.
pub fn edit_consumer(
    consumer: &Consumer,
    changes: ConsumerChanges,
) -> Result<Consumer, WorldError> {
    let mut edited = consumer.clone();
    if let Some(name) = changes.name {
        edited.name = name;
    }
    if let Some(description) = changes.description {
        edited.description = description;
    }
    if let Some(callback_url) = changes.callback_url {
        edited.callback_url = callback_url.filter(|url| !url.is_empty());
    }
    if let Some(url) = changes.url {
        edited.url = url;
    }
    if let Some(private) = changes.private {
        edited.private = private;
    }
    if let Some(permissions) = changes.permissions {
        edited.scopes = form_scopes(&permissions)?;
    }
    check_consumer_fields(&edited.name, edited.callback_url.as_deref())?;
    Ok(edited)
}
