//! Data Center's REST APIs under `{base}/rest/{root}/{version}/` (`latest` or `1.0`): `api` (the
//! user, projects and repositories, paged with `start` / `limit` / `nextPageStart`) and
//! `build-status` (commit build statuses), each answer naming the user in `X-AUSERNAME`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bitbucket_facts::datacenter::Level;
use serde_json::{Value, json};

use super::page;
use crate::Sim;
use crate::credentials::{AccessToken, Permission};
use crate::oauth::{Params, basic_credentials};
use crate::settings::Mode;
use crate::tokens::{AccessCheck, Grant, Product};
use crate::world::dc::{DcDirectory, DcProject, DcRepository, DcUser};

/// Where Data Center's REST roots live: the simulator's `/dc` context path, then `/rest`.
pub const PREFIX: &str = "/dc/rest";

fn dc_error(status: StatusCode, message: &str, exception: &str) -> Response {
    let body =
        json!({"errors": [{"context": null, "message": message, "exceptionName": exception}]});
    (status, Json(body)).into_response()
}

fn unauthorized() -> Response {
    dc_error(
        StatusCode::UNAUTHORIZED,
        "Authentication failed. Please check your credentials and try again.",
        "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException",
    )
}

/// Who is calling: a user through an OAuth token, or a project's or repository's HTTP access
/// token (which acts for its resource only).
enum Who {
    User(Arc<Grant>),
    Token(Arc<AccessToken>),
}

struct Caller {
    who: Who,
    /// The token's repository/project level, if it has one.
    level: Option<Level>,
}

impl Caller {
    fn level(&self) -> Level {
        self.level.unwrap_or(Level::PublicRepos)
    }

    /// Whether the caller may read a repository: the lower of token scope and user permission.
    fn may_read(&self, directory: &DcDirectory, repository: &DcRepository) -> bool {
        let Some(token_level) = self.level else {
            return false;
        };
        let user_level = match &self.who {
            Who::User(grant) => directory.user_level(&grant.user, repository),
            Who::Token(token) => token
                .resource
                .holds_dc(&repository.project, &repository.slug)
                .then_some(token_level),
        };
        let effective = user_level.map(|user| user.min(token_level));
        let public = repository.public
            || directory
                .projects
                .get(&repository.project)
                .is_some_and(|p| p.public);
        effective >= Some(Level::RepoRead) || (public && token_level >= Level::PublicRepos)
    }
}

/// Everything under `{base}/rest/` but OAuth's own endpoints.
pub async fn api(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(caller) = dc_caller(&sim, &headers) else {
        sim.stats.count("rest", "dc", "401");
        return unauthorized();
    };
    let path = uri.path().strip_prefix(PREFIX).unwrap_or_default();
    let query = Params::parse(uri.query().unwrap_or_default().as_bytes());
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = if method == Method::HEAD {
        Method::GET
    } else {
        method
    };
    let mut response = match (method.as_str(), segments.as_slice()) {
        (method, ["api", version, rest @ ..]) if is_version(version) => match (method, rest) {
            ("GET", ["users", slug]) => user(&sim, &caller, slug),
            ("GET", ["projects"]) => projects(&sim, &caller, &query),
            ("GET", ["projects", key]) => project(&sim, &caller, key),
            ("GET", ["projects", key, "repos"]) => repos(&sim, &caller, key, &query),
            ("GET", ["projects", key, "repos", slug]) => repo(&sim, &caller, key, slug),
            _ => not_implemented(method, path),
        },
        ("GET", ["build-status", version, "commits", commit]) if is_version(version) => {
            build_statuses(&sim, &caller, commit, &query)
        }
        ("POST", ["build-status", version, "commits", commit]) if is_version(version) => {
            add_build_status(&sim, &caller, commit, &body)
        }
        _ => not_implemented(method.as_str(), path),
    };
    sim.stats
        .count("rest", "dc", crate::stats::status_label(response.status()));
    if let Who::User(grant) = &caller.who
        && let Ok(name) = HeaderValue::from_str(&grant.user)
    {
        response.headers_mut().insert("X-AUSERNAME", name);
    }
    response
}

/// The caller of a REST request: an OAuth token (Bearer, or a Basic password as `git` sends
/// it), or an HTTP access token, which Data Center takes as Bearer only.
fn dc_caller(sim: &Sim, headers: &HeaderMap) -> Option<Caller> {
    let now = sim.clock.now();
    let bearer = crate::oauth::bearer(headers, &Params::default(), Mode::Rotating);
    let token = bearer.clone().or_else(|| basic_password(headers))?;
    if let AccessCheck::Valid(grant) = sim.tokens.check_access(&token, now)
        && grant.product == Product::Dc
    {
        return Some(Caller {
            level: Level::of(&grant.scopes),
            who: Who::User(grant),
        });
    }
    let access = sim
        .credentials
        .check_access_token(bearer.as_deref()?, now)
        .ok()?;
    match access.permission {
        Permission::Level(level) if access.resource.product() == Product::Dc => Some(Caller {
            level: Some(level),
            who: Who::Token(access),
        }),
        _ => None,
    }
}

/// A token sent as a Basic password (the user name is ignored), as `git` and Basic-only
/// clients send it.
fn basic_password(headers: &HeaderMap) -> Option<String> {
    basic_credentials(headers)
        .flatten()
        .map(|(_, password)| password)
}

fn is_version(version: &str) -> bool {
    matches!(version, "latest" | "1.0")
}

fn not_implemented(method: &str, path: &str) -> Response {
    dc_error(
        StatusCode::NOT_FOUND,
        &format!("The simulator does not implement {method} {PREFIX}{path}."),
        "com.atlassian.bitbucket.rest.NotFoundException",
    )
}

fn user_json(user: &DcUser, sim: &Sim) -> Value {
    json!({
        "name": user.slug,
        "emailAddress": user.email,
        "active": true,
        "displayName": user.display_name,
        "id": user.id,
        "slug": user.slug,
        "type": "NORMAL",
        "links": {"self": [{"href": format!("{}/dc/users/{}", sim.base_url, user.slug)}]},
    })
}

fn project_json(project: &DcProject, sim: &Sim) -> Value {
    json!({
        "key": project.key,
        "id": project.id,
        "name": project.name,
        "public": project.public,
        "type": "NORMAL",
        "links": {"self": [{"href": format!("{}/dc/projects/{}", sim.base_url, project.key)}]},
        "description": project.name,
    })
}

fn repo_json(repo: &DcRepository, project: &DcProject, sim: &Sim) -> Value {
    let base = &sim.base_url;
    let (key, slug) = (&project.key, &repo.slug);
    json!({
        "slug": slug,
        "id": repo.id,
        "name": repo.name,
        "scmId": "git",
        "state": "AVAILABLE",
        "forkable": true,
        "project": project_json(project, sim),
        "public": repo.public,
        "links": {
            "clone": [{"href": format!("{base}/dc/scm/{}/{slug}.git", key.to_lowercase()), "name": "http"}],
            "self": [{"href": format!("{base}/dc/projects/{key}/repos/{slug}/browse")}],
        },
    })
}

fn user(sim: &Sim, caller: &Caller, slug: &str) -> Response {
    // HTTP access tokens cannot call user-management endpoints.
    if let Who::Token(_) = caller.who {
        return forbidden();
    }
    let directory = sim.world.dc();
    match directory.users.get(slug) {
        Some(user) => Json(user_json(user, sim)).into_response(),
        None => dc_error(
            StatusCode::NOT_FOUND,
            &format!("User {slug} does not exist."),
            "com.atlassian.bitbucket.user.NoSuchUserException",
        ),
    }
}

fn paged(items: Vec<Value>, query: &Params) -> Response {
    match page::dc(items, query) {
        Ok(body) => Json(body).into_response(),
        Err(bad) => dc_error(
            StatusCode::BAD_REQUEST,
            &bad.0,
            "com.atlassian.bitbucket.rest.BadRequestException",
        ),
    }
}

fn projects(sim: &Sim, caller: &Caller, query: &Params) -> Response {
    let directory = sim.world.dc();
    let visible = directory
        .projects
        .values()
        .filter(|project| {
            directory
                .repositories
                .values()
                .any(|r| r.project == project.key && caller.may_read(&directory, r))
        })
        .map(|project| project_json(project, sim))
        .collect();
    paged(visible, query)
}

fn repos(sim: &Sim, caller: &Caller, key: &str, query: &Params) -> Response {
    let directory = sim.world.dc();
    let Some(project) = directory.projects.get(key) else {
        return no_such_project(key);
    };
    let visible: Vec<Value> = directory
        .repositories
        .values()
        .filter(|r| r.project == key && caller.may_read(&directory, r))
        .map(|r| repo_json(r, project, sim))
        .collect();
    if visible.is_empty() && !project.public {
        return no_such_project(key);
    }
    paged(visible, query)
}

fn no_such_project(key: &str) -> Response {
    dc_error(
        StatusCode::NOT_FOUND,
        &format!("Project {key} does not exist."),
        "com.atlassian.bitbucket.project.NoSuchProjectException",
    )
}

fn project(sim: &Sim, caller: &Caller, key: &str) -> Response {
    let directory = sim.world.dc();
    let visible = directory.projects.get(key).filter(|project| {
        project.public
            || directory
                .repositories
                .values()
                .any(|r| r.project == project.key && caller.may_read(&directory, r))
    });
    match visible {
        Some(project) => Json(project_json(project, sim)).into_response(),
        None => no_such_project(key),
    }
}

fn repo(sim: &Sim, caller: &Caller, key: &str, slug: &str) -> Response {
    let directory = sim.world.dc();
    let found = directory
        .repositories
        .get(&(key.to_owned(), slug.to_owned()))
        .filter(|r| caller.may_read(&directory, r));
    match (found, directory.projects.get(key)) {
        (Some(repository), Some(project)) => {
            Json(repo_json(repository, project, sim)).into_response()
        }
        _ => dc_error(
            StatusCode::NOT_FOUND,
            &format!("Repository {key}/{slug} does not exist."),
            "com.atlassian.bitbucket.repository.NoSuchRepositoryException",
        ),
    }
}

fn build_statuses(sim: &Sim, caller: &Caller, commit: &str, query: &Params) -> Response {
    if caller.level() < Level::RepoRead {
        return forbidden();
    }
    paged(sim.world.build_statuses(commit), query)
}

/// The fields Data Center requires of a build status.
#[derive(serde::Deserialize)]
struct NewBuildStatus {
    state: String,
    key: String,
    url: String,
    name: Option<String>,
    description: Option<String>,
}

fn add_build_status(sim: &Sim, caller: &Caller, commit: &str, body: &[u8]) -> Response {
    if caller.level() < Level::RepoRead {
        return forbidden();
    }
    let bad = |message: &str| {
        dc_error(
            StatusCode::BAD_REQUEST,
            message,
            "com.atlassian.bitbucket.rest.BadRequestException",
        )
    };
    let status: NewBuildStatus = match serde_json::from_slice(body) {
        Ok(status) => status,
        Err(error) => return bad(&format!("Invalid build status: {error}")),
    };
    if !matches!(
        status.state.as_str(),
        "SUCCESSFUL" | "FAILED" | "INPROGRESS"
    ) {
        return bad("state must be one of SUCCESSFUL, FAILED, INPROGRESS");
    }
    if !commit.chars().all(|c| c.is_ascii_hexdigit()) || commit.len() < 7 {
        return bad("The commit id must be a hexadecimal hash");
    }
    sim.world.add_build_status(
        commit,
        json!({
            "state": status.state,
            "key": status.key,
            "name": status.name.unwrap_or_default(),
            "url": status.url,
            "description": status.description.unwrap_or_default(),
            "dateAdded": sim.clock.now() * 1000,
        }),
    );
    StatusCode::NO_CONTENT.into_response()
}

fn forbidden() -> Response {
    dc_error(
        StatusCode::FORBIDDEN,
        "You are not permitted to access this resource",
        "com.atlassian.bitbucket.AuthorisationException",
    )
}
