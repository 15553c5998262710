//! The control API for hand-made credentials: create API tokens and access tokens (the secret
//! is answered once), revoke them, rotate access tokens.
//!
//! - `POST /_sim/api-tokens` `{"user", "scopes": "read:repository:bitbucket …", "expires_at"?}`
//! - `POST /_sim/access-tokens` `{"name"?, "workspace", "repository"? or "project"?, "scopes",
//!   "expires_at"?}`
//!   for Cloud, `{"dc_project", "dc_repository"?, "permission": "REPO_WRITE", "expires_at"?}`
//!   for Data Center
//! - `POST /_sim/credentials/{id}/revoke`
//! - `POST /_sim/access-tokens/{id}/rotate` `{"expires_at"?}`
//!
//! Times are unix seconds of the simulator's clock; without `expires_at` a credential lives a
//! year (API tokens may not live longer).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use bitbucket_facts::datacenter::{self, Level};
use bitbucket_facts::{api_tokens, cloud};
use serde::Deserialize;
use serde_json::json;

use crate::Sim;
use crate::control_reply::{Answer, ControlError, created, parse};
use crate::credentials::{API_TOKEN_MAX_LIFE, Permission, Resource};

fn bad(message: impl Into<String>) -> ControlError {
    ControlError(StatusCode::BAD_REQUEST, message.into())
}

/// A requested expiry: in the future, and for API tokens within a year.
fn expiry(sim: &Sim, requested: Option<i64>, max_life: Option<i64>) -> Result<i64, ControlError> {
    let now = sim.clock.now();
    let at = requested.unwrap_or(now + API_TOKEN_MAX_LIFE);
    if at <= now {
        return Err(bad("expires_at must be in the future"));
    }
    if max_life.is_some_and(|life| at - now > life) {
        return Err(bad("an API token lives at most one year"));
    }
    Ok(at)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApiToken {
    user: String,
    scopes: String,
    expires_at: Option<i64>,
}

pub async fn add_api_token(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let new: NewApiToken = parse(&body)?;
    let email = sim.world.cloud().user(&new.user)?.email.clone();
    let scopes = api_tokens::parse_scopes(&new.scopes).map_err(|e| bad(e.to_string()))?;
    let expires_at = expiry(&sim, new.expires_at, Some(API_TOKEN_MAX_LIFE))?;
    let issued = sim
        .credentials
        .issue_api_token(&new.user, &email, scopes, expires_at);
    let body = json!({
        "id": issued.id,
        "token": issued.token,
        "email": email,
        "expires_at": issued.expires_at,
    });
    created(body)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccessToken {
    name: Option<String>,
    workspace: Option<String>,
    repository: Option<String>,
    project: Option<String>,
    scopes: Option<String>,
    dc_project: Option<String>,
    dc_repository: Option<String>,
    permission: Option<String>,
    expires_at: Option<i64>,
}

fn cloud_token(sim: &Sim, new: &NewAccessToken) -> Result<(Resource, Permission), ControlError> {
    let workspace = new.workspace.clone().unwrap_or_default();
    let directory = sim.world.cloud();
    directory.workspace(&workspace)?;
    let resource = match (&new.repository, &new.project) {
        (Some(slug), None) => {
            directory.repository(&workspace, slug)?;
            Resource::Repository {
                workspace,
                slug: slug.clone(),
            }
        }
        (None, Some(key)) => Resource::Project {
            workspace,
            key: key.clone(),
        },
        (None, None) => Resource::Workspace { workspace },
        (Some(_), Some(_)) => return Err(bad("give `repository` or `project`, not both")),
    };
    let scopes = new.scopes.as_deref().ok_or_else(|| {
        bad("scopes: a Cloud access token needs scopes, e.g. \"repository:write\"")
    })?;
    let scopes = cloud::parse_scopes(scopes).map_err(|e| bad(e.to_string()))?;
    Ok((resource, Permission::Scopes(scopes)))
}

fn dc_token(
    sim: &Sim,
    new: &NewAccessToken,
    project: &str,
) -> Result<(Resource, Permission), ControlError> {
    let directory = sim.world.dc();
    let resource = match &new.dc_repository {
        Some(slug) => {
            directory.repository(project, slug)?;
            Resource::DcRepository {
                project: project.to_owned(),
                slug: slug.clone(),
            }
        }
        None => {
            if !directory.projects.contains_key(project) {
                return Err(ControlError(
                    StatusCode::NOT_FOUND,
                    format!("no Data Center project `{project}`"),
                ));
            }
            Resource::DcProject {
                key: project.to_owned(),
            }
        }
    };
    let permission = new.permission.as_deref().unwrap_or("REPO_READ");
    let level = datacenter::parse_scopes(permission)
        .ok()
        .and_then(|scopes| Level::of(&scopes))
        .filter(|level| *level >= Level::RepoRead && *level <= Level::ProjectAdmin)
        .ok_or_else(|| {
            bad("permission: one of REPO_READ, REPO_WRITE, REPO_ADMIN, PROJECT_ADMIN")
        })?;
    Ok((resource, Permission::Level(level)))
}

pub async fn add_access_token(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let new: NewAccessToken = parse(&body)?;
    let (resource, permission) = match (&new.workspace, &new.dc_project) {
        (Some(_), None) => cloud_token(&sim, &new)?,
        (None, Some(project)) => dc_token(&sim, &new, project)?,
        _ => {
            return Err(bad(
                "give `workspace` (Cloud, with `repository` for a repository token) or `dc_project` (Data Center)",
            ));
        }
    };
    let expires_at = expiry(&sim, new.expires_at, None)?;
    let name = new.name.unwrap_or_else(|| "Access token".to_owned());
    let kind = resource.credential_type();
    let issued = sim
        .credentials
        .issue_access_token(&name, resource, permission, expires_at);
    created(json!({
        "id": issued.id,
        "token": issued.token,
        "kind": kind,
        "expires_at": issued.expires_at,
    }))
}

pub async fn revoke(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Answer {
    if sim.credentials.revoke(&id) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ControlError(
            StatusCode::NOT_FOUND,
            format!("no credential `{id}`"),
        ))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotation {
    expires_at: Option<i64>,
}

pub async fn rotate(State(sim): State<Arc<Sim>>, Path(id): Path<String>, body: Bytes) -> Answer {
    let rotation: Rotation = if body.is_empty() {
        Rotation::default()
    } else {
        parse(&body)?
    };
    let expires_at = expiry(&sim, rotation.expires_at, None)?;
    let now = sim.clock.now();
    let issued = sim
        .credentials
        .rotate(&id, expires_at, now)
        .ok_or_else(|| {
            ControlError(
                StatusCode::NOT_FOUND,
                format!("no live access token `{id}`"),
            )
        })?;
    Ok(Json(issued).into_response())
}
