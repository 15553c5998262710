//! The Cloud resources the simulator implements, in Bitbucket's JSON shapes: the account,
//! workspaces, repositories, pull requests, and what `git` holds (source, commits, diffs).

mod pullrequests;
mod shapes;
mod source;

use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bitbucket_facts::operations::Matched;
use serde_json::{Value, json};

use super::Caller;
use super::page::{self, BadPage};
use super::{cloud_error, cloud_json};
use crate::Sim;
use crate::oauth::Params;
use crate::world::cloud::{CloudDirectory, Repository, User};
use shapes::Site;

/// A request that has passed authentication and the scope check.
pub struct Request<'a> {
    pub sim: &'a Sim,
    pub caller: Option<&'a Caller>,
    pub matched: &'a Matched<'a>,
    pub query: &'a Params,
    pub body: &'a [u8],
}

impl Request<'_> {
    fn param(&self, name: &str) -> &str {
        self.matched.param(name).unwrap_or_default()
    }

    fn user(&self) -> Option<&str> {
        self.caller.and_then(Caller::user)
    }

    /// Whether the caller may read (or write) `repo`; anonymous callers only read public ones.
    fn may_access(&self, directory: &CloudDirectory, repo: &Repository, write: bool) -> bool {
        match self.caller {
            Some(caller) => caller.may_access(directory, repo, write),
            None => directory.may_access(repo, "", write),
        }
    }

    fn api(&self) -> String {
        format!("{}/2.0", self.sim.base_url)
    }

    /// Builds what links need and hands it to `make`.
    fn with_site<T>(&self, make: impl FnOnce(&Site<'_>) -> T) -> T {
        let api = self.api();
        make(&Site {
            api: &api,
            web: &self.sim.base_url,
        })
    }

    /// One page of `items`; `url` is the list's address, for `next` and `previous`.
    fn page(&self, items: Vec<Value>, url: &str) -> Answer {
        let body = page::cloud(items, self.query, url).map_err(bad_page)?;
        Ok(cloud_json(StatusCode::OK, &body))
    }
}

pub async fn dispatch(request: Request<'_>) -> Response {
    const REPO: &str = "/repositories/{workspace}/{repo_slug}";
    let operation = request.matched.operation;
    let template = operation.template.as_str();
    let result = match (operation.method.as_str(), template.strip_prefix(REPO)) {
        ("GET", Some("")) => repository(&request),
        ("GET", Some("/pullrequests")) => pullrequests::list(&request).await,
        ("POST", Some("/pullrequests")) => pullrequests::create(&request).await,
        ("GET", Some("/pullrequests/{pull_request_id}")) => pullrequests::one(&request).await,
        ("GET", Some("/pullrequests/{pull_request_id}/commits")) => {
            pullrequests::commits(&request).await
        }
        ("GET", Some("/pullrequests/{pull_request_id}/diff")) => {
            pullrequests::to_canonical(&request, "diff").await
        }
        ("GET", Some("/pullrequests/{pull_request_id}/diffstat")) => {
            pullrequests::to_canonical(&request, "diffstat").await
        }
        ("GET", Some("/src")) => source::main_branch_root(&request).await,
        ("GET", Some("/src/{commit}/{path}")) => source::read(&request).await,
        ("GET", Some("/commits")) => source::commits(&request, None).await,
        ("GET", Some("/commits/{revision}")) => {
            source::commits(&request, Some(request.param("revision"))).await
        }
        ("GET", Some("/commit/{commit}")) => source::commit(&request).await,
        ("GET", Some("/diff/{spec}")) => source::diff(&request).await,
        ("GET", Some("/diffstat/{spec}")) => source::diffstat(&request).await,
        _ => match (operation.method.as_str(), template) {
            ("GET", "/user") => current_user(&request),
            ("GET", "/user/emails") => emails(&request),
            ("GET", "/user/workspaces") => user_workspaces(&request),
            ("GET", "/workspaces") => workspaces(&request),
            ("GET", "/workspaces/{workspace}") => workspace(&request),
            ("GET", "/repositories/{workspace}") => repositories(&request),
            (method, template) => Err(cloud_error(
                StatusCode::NOT_FOUND,
                &format!("The simulator does not implement {method} /2.0{template}."),
            )),
        },
    };
    result.unwrap_or_else(|response| response)
}

type Answer = Result<Response, Response>;

fn bad_page(error: BadPage) -> Response {
    cloud_error(StatusCode::BAD_REQUEST, &error.0)
}

/// A 302 to `location`, as Bitbucket answers where a resource has a canonical address.
fn found(location: &str) -> Answer {
    let location = HeaderValue::from_str(location)
        .map_err(|_| cloud_error(StatusCode::INTERNAL_SERVER_ERROR, "unusable redirect"))?;
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}

fn signed_in<'a>(
    request: &Request<'_>,
    directory: &'a CloudDirectory,
) -> Result<&'a User, Response> {
    request
        .user()
        .and_then(|name| directory.users.get(name))
        .ok_or_else(|| cloud_error(StatusCode::UNAUTHORIZED, "Authentication required."))
}

fn current_user(request: &Request<'_>) -> Answer {
    let directory = request.sim.world.cloud();
    let user = signed_in(request, &directory)?;
    let body = request.with_site(|site| shapes::user(user, site));
    Ok(cloud_json(StatusCode::OK, &body))
}

fn emails(request: &Request<'_>) -> Answer {
    let directory = request.sim.world.cloud();
    let user = signed_in(request, &directory)?;
    let values = vec![json!({
        "is_primary": true,
        "is_confirmed": true,
        "type": "email",
        "email": user.email,
        "links": {"self": {"href": format!("{}/user/emails/{}", request.api(), user.email)}},
    })];
    request.page(values, &format!("{}/user/emails", request.api()))
}

/// The workspaces `username` is a member of.
fn member_of<'a>(
    directory: &'a CloudDirectory,
    username: &'a str,
) -> impl Iterator<Item = &'a crate::world::cloud::Workspace> {
    directory
        .workspaces
        .values()
        .filter(move |w| w.members.iter().any(|m| m == username))
}

/// The deprecated list of the caller's workspaces (CHANGE-2770), still answered.
fn workspaces(request: &Request<'_>) -> Answer {
    let directory = request.sim.world.cloud();
    let user = signed_in(request, &directory)?;
    let values = request.with_site(|site| {
        member_of(&directory, &user.username)
            .map(|w| shapes::workspace(w, site))
            .collect()
    });
    request.page(values, &format!("{}/workspaces", request.api()))
}

/// The caller's workspaces as `workspace_access` entries, the list that replaces `/workspaces`.
fn user_workspaces(request: &Request<'_>) -> Answer {
    let directory = request.sim.world.cloud();
    let user = signed_in(request, &directory)?;
    let values = request.with_site(|site| {
        member_of(&directory, &user.username)
            .map(|w| shapes::workspace_access(w, &user.username, site))
            .collect()
    });
    request.page(values, &format!("{}/user/workspaces", request.api()))
}

fn workspace(request: &Request<'_>) -> Answer {
    let directory = request.sim.world.cloud();
    let slug = request.param("workspace");
    let found = directory
        .workspaces
        .get(slug)
        .filter(|w| request.caller.is_some_and(|c| c.may_see_workspace(w)));
    let Some(workspace) = found else {
        let message = format!("No workspace with identifier '{slug}'.");
        return Err(cloud_error(StatusCode::NOT_FOUND, &message));
    };
    let body = request.with_site(|site| shapes::workspace(workspace, site));
    Ok(cloud_json(StatusCode::OK, &body))
}

fn repositories(request: &Request<'_>) -> Answer {
    let directory = request.sim.world.cloud();
    let slug = request.param("workspace");
    if !directory.workspaces.contains_key(slug) {
        let message = format!("No workspace with identifier '{slug}'.");
        return Err(cloud_error(StatusCode::NOT_FOUND, &message));
    }
    let values = request.with_site(|site| {
        directory
            .repositories
            .values()
            .filter(|r| r.workspace == slug && request.may_access(&directory, r, false))
            .map(|r| shapes::repository(r, &directory, site))
            .collect()
    });
    request.page(values, &format!("{}/repositories/{slug}", request.api()))
}

/// The addressed repository, if the caller may see it (else 404, as for a missing one).
fn visible_repository<'a>(
    request: &Request<'_>,
    directory: &'a CloudDirectory,
) -> Result<&'a Repository, Response> {
    let (workspace, slug) = (request.param("workspace"), request.param("repo_slug"));
    directory
        .repositories
        .get(&(workspace.to_owned(), slug.to_owned()))
        .filter(|r| request.may_access(directory, r, false))
        .ok_or_else(|| {
            let message = format!("Repository {workspace}/{slug} not found");
            cloud_error(StatusCode::NOT_FOUND, &message)
        })
}

/// The addressed repository (a copy, so no lock is held across `git`) and its directory on disk.
fn repository_on_disk(request: &Request<'_>) -> Result<(Repository, PathBuf), Response> {
    let directory = request.sim.world.cloud();
    let repo = visible_repository(request, &directory)?.clone();
    let path = request.sim.world.git.path(&repo.workspace, &repo.slug);
    Ok((repo, path))
}

fn repository(request: &Request<'_>) -> Answer {
    let directory = request.sim.world.cloud();
    let repo = visible_repository(request, &directory)?;
    let body = request.with_site(|site| shapes::repository(repo, &directory, site));
    Ok(cloud_json(StatusCode::OK, &body))
}
