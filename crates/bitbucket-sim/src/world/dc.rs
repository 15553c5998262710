//! Bitbucket Data Center's world: users with global and per-project/repository permissions,
//! projects, repositories and incoming application links.

use std::collections::BTreeMap;

use bitbucket_facts::ScopeSet;
use bitbucket_facts::datacenter::{self, Level};
use serde::{Deserialize, Serialize};

use super::{WorldError, check_slug, check_url};

fn default_password() -> String {
    "password".to_owned()
}

/// A user's global permission on the instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GlobalPermission {
    #[default]
    LicensedUser,
    ProjectCreate,
    Admin,
    SysAdmin,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDcUser {
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    #[serde(default = "default_password")]
    pub password: String,
    #[serde(default)]
    pub global_permission: GlobalPermission,
}

#[derive(Debug, Clone, Serialize)]
pub struct DcUser {
    pub id: u64,
    pub slug: String,
    pub display_name: String,
    pub email: String,
    #[serde(skip)]
    pub password: String,
    pub global_permission: GlobalPermission,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDcProject {
    pub key: String,
    pub name: Option<String>,
    #[serde(default)]
    pub public: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DcProject {
    pub id: u64,
    pub key: String,
    pub name: String,
    pub public: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDcRepository {
    pub project: String,
    pub slug: String,
    pub name: Option<String>,
    #[serde(default)]
    pub public: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DcRepository {
    pub id: u64,
    pub project: String,
    pub slug: String,
    pub name: String,
    pub public: bool,
}

/// A grant like `PROJECT_WRITE` on a project, or `REPO_READ` on one repository.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DcPermission {
    pub user: String,
    pub project: String,
    pub repository: Option<String>,
    /// `PROJECT_READ`, `PROJECT_WRITE`, `PROJECT_ADMIN`, `REPO_READ`, `REPO_WRITE` or `REPO_ADMIN`.
    pub permission: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDcLink {
    pub name: String,
    pub redirect_url: String,
    /// e.g. `["REPO_READ", "ACCOUNT_WRITE"]`
    pub scopes: Vec<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// An incoming application link; its credentials stay viewable ("View credentials").
#[derive(Debug, Clone, Serialize)]
pub struct DcLink {
    pub name: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_url: String,
    #[serde(serialize_with = "serialize_scopes")]
    pub scopes: ScopeSet,
}

fn serialize_scopes<S: serde::Serializer>(scopes: &ScopeSet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(scopes.names())
}

#[derive(Debug, Default)]
pub struct DcDirectory {
    pub users: BTreeMap<String, DcUser>,
    pub projects: BTreeMap<String, DcProject>,
    pub repositories: BTreeMap<(String, String), DcRepository>,
    permissions: Vec<(DcPermission, Level)>,
    next_id: u64,
}

impl DcDirectory {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn add_user(&mut self, new: NewDcUser) -> Result<DcUser, WorldError> {
        check_slug("username", &new.username)?;
        if self.users.contains_key(&new.username) {
            return Err(WorldError::Duplicate(format!("user `{}`", new.username)));
        }
        let user = DcUser {
            id: self.next_id(),
            display_name: new.display_name.unwrap_or_else(|| new.username.clone()),
            email: new
                .email
                .unwrap_or_else(|| format!("{}@example.com", new.username)),
            password: new.password,
            global_permission: new.global_permission,
            slug: new.username,
        };
        self.users.insert(user.slug.clone(), user.clone());
        Ok(user)
    }

    pub fn add_project(&mut self, new: NewDcProject) -> Result<DcProject, WorldError> {
        let key_ok = !new.key.is_empty()
            && new.key.len() <= 128
            && new.key.starts_with(|c: char| c.is_ascii_uppercase())
            && new
                .key
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !key_ok {
            return Err(WorldError::invalid(
                "key",
                "a project key starts with a capital letter and holds only A-Z, 0-9 and _",
            ));
        }
        if self.projects.contains_key(&new.key) {
            return Err(WorldError::Duplicate(format!("project `{}`", new.key)));
        }
        let project = DcProject {
            id: self.next_id(),
            name: new.name.unwrap_or_else(|| new.key.clone()),
            public: new.public,
            key: new.key,
        };
        self.projects.insert(project.key.clone(), project.clone());
        Ok(project)
    }

    /// Checks a new repository; `World::add_dc_repository` creates its git repository, then
    /// `add_repository`.
    pub fn check_new_repository(&self, new: &NewDcRepository) -> Result<(), WorldError> {
        check_slug("repository slug", &new.slug)?;
        self.project(&new.project)?;
        if self
            .repositories
            .contains_key(&(new.project.clone(), new.slug.clone()))
        {
            return Err(WorldError::Duplicate(format!(
                "repository `{}/{}`",
                new.project, new.slug
            )));
        }
        Ok(())
    }

    pub fn add_repository(&mut self, new: NewDcRepository) -> Result<DcRepository, WorldError> {
        self.check_new_repository(&new)?;
        let key = (new.project.clone(), new.slug.clone());
        let repository = DcRepository {
            id: self.next_id(),
            name: new.name.unwrap_or_else(|| new.slug.clone()),
            public: new.public,
            project: new.project,
            slug: new.slug,
        };
        self.repositories.insert(key, repository.clone());
        Ok(repository)
    }

    pub fn add_permission(&mut self, grant: DcPermission) -> Result<(), WorldError> {
        self.user(&grant.user)?;
        self.project(&grant.project)?;
        if let Some(repository) = &grant.repository {
            self.repository(&grant.project, repository)?;
        }
        let level = match (grant.repository.is_some(), grant.permission.as_str()) {
            (false, "PROJECT_READ") | (true, "REPO_READ") => Level::RepoRead,
            (false, "PROJECT_WRITE") | (true, "REPO_WRITE") => Level::RepoWrite,
            (true, "REPO_ADMIN") => Level::RepoAdmin,
            (false, "PROJECT_ADMIN") => Level::ProjectAdmin,
            _ => {
                return Err(WorldError::invalid(
                    "permission",
                    "expected PROJECT_READ, PROJECT_WRITE or PROJECT_ADMIN on a project, \
                     REPO_READ, REPO_WRITE or REPO_ADMIN on a repository",
                ));
            }
        };
        self.permissions.push((grant, level));
        Ok(())
    }

    pub fn user(&self, slug: &str) -> Result<&DcUser, WorldError> {
        self.users
            .get(slug)
            .ok_or_else(|| WorldError::NotFound(format!("user `{slug}`")))
    }

    pub fn project(&self, key: &str) -> Result<&DcProject, WorldError> {
        self.projects
            .get(key)
            .ok_or_else(|| WorldError::NotFound(format!("project `{key}`")))
    }

    pub fn repository(&self, project: &str, slug: &str) -> Result<&DcRepository, WorldError> {
        self.repositories
            .get(&(project.to_owned(), slug.to_owned()))
            .ok_or_else(|| WorldError::NotFound(format!("repository `{project}/{slug}`")))
    }

    /// What a user may do on a repository, from global, project and repository permissions.
    pub fn user_level(&self, user: &str, repository: &DcRepository) -> Option<Level> {
        let global = match self.users.get(user)?.global_permission {
            GlobalPermission::SysAdmin => Some(Level::SystemAdmin),
            GlobalPermission::Admin => Some(Level::AdminWrite),
            _ => None,
        };
        let public = self
            .projects
            .get(&repository.project)
            .is_some_and(|p| p.public)
            || repository.public;
        let granted = self
            .permissions
            .iter()
            .filter(|(p, _)| p.user == user && p.project == repository.project)
            .filter(|(p, _)| p.repository.as_ref().is_none_or(|r| *r == repository.slug))
            .map(|(_, level)| *level);
        global
            .into_iter()
            .chain(granted)
            .chain(public.then_some(Level::RepoRead))
            .max()
    }
}

pub fn new_link(new: NewDcLink) -> Result<DcLink, WorldError> {
    if new.name.trim().is_empty() {
        return Err(WorldError::invalid("name", "a link needs a name"));
    }
    check_url("redirect_url", &new.redirect_url)?;
    let scopes = datacenter::SCOPES
        .from_names(new.scopes.iter().map(String::as_str))
        .map_err(|e| WorldError::invalid("scopes", &e.to_string()))?;
    if scopes.is_empty() {
        return Err(WorldError::invalid(
            "scopes",
            "a link needs at least one scope",
        ));
    }
    Ok(DcLink {
        name: new.name,
        client_id: new
            .client_id
            .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>())),
        client_secret: new
            .client_secret
            .unwrap_or_else(|| hex::encode(rand::random::<[u8; 32]>())),
        redirect_url: new.redirect_url,
        scopes,
    })
}
