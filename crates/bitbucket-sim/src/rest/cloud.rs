//! The Cloud resources the simulator implements, in Bitbucket's JSON shapes.

use axum::http::StatusCode;
use axum::response::Response;
use bitbucket_facts::operations::Matched;
use serde::Deserialize;
use serde_json::{Value, json};

use super::page::{self, BadPage};
use super::{cloud_error, cloud_json};
use crate::Sim;
use crate::clock::rfc3339;
use crate::oauth::Params;
use crate::tokens::Grant;
use crate::world::cloud::{CloudDirectory, PullRequest, Repository, User, Workspace};

/// A request that has passed authentication and the scope check.
pub struct Request<'a> {
    pub sim: &'a Sim,
    pub grant: Option<&'a Grant>,
    pub matched: &'a Matched<'a>,
    pub query: &'a Params,
    pub body: &'a [u8],
}

impl Request<'_> {
    fn param(&self, name: &str) -> &str {
        self.matched.param(name).unwrap_or_default()
    }

    fn user(&self) -> Option<&str> {
        self.grant.map(|g| g.user.as_str())
    }

    fn api(&self) -> String {
        format!("{}/2.0", self.sim.base_url)
    }
}

pub async fn dispatch(request: Request<'_>) -> Response {
    let operation = request.matched.operation;
    let result = match (operation.method.as_str(), operation.template.as_str()) {
        ("GET", "/user") => current_user(&request),
        ("GET", "/user/emails") => emails(&request),
        ("GET", "/workspaces") => workspaces(&request),
        ("GET", "/repositories/{workspace}") => repositories(&request),
        ("GET", "/repositories/{workspace}/{repo_slug}") => repository(&request),
        ("GET", "/repositories/{workspace}/{repo_slug}/pullrequests") => pullrequests(&request),
        ("POST", "/repositories/{workspace}/{repo_slug}/pullrequests") => {
            create_pullrequest(&request).await
        }
        (method, template) => Err(cloud_error(
            StatusCode::NOT_FOUND,
            &format!("The simulator does not implement {method} /2.0{template}."),
        )),
    };
    result.unwrap_or_else(|response| response)
}

type Answer = Result<Response, Response>;

fn bad_page(error: BadPage) -> Response {
    cloud_error(StatusCode::BAD_REQUEST, &error.0)
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

pub fn user_json(user: &User, api: &str) -> Value {
    json!({
        "display_name": user.display_name,
        "links": {
            "self": {"href": format!("{api}/users/{}", user.uuid)},
            "avatar": {"href": format!("{api}/users/{}/avatar", user.uuid)},
        },
        "type": "user",
        "uuid": user.uuid,
        "account_id": user.account_id,
        "nickname": user.username,
        "username": user.username,
        "created_on": rfc3339(user.created_on),
        "account_status": "active",
        "is_staff": false,
    })
}

fn workspace_json(workspace: &Workspace, api: &str) -> Value {
    json!({
        "type": "workspace",
        "uuid": workspace.uuid,
        "name": workspace.name,
        "slug": workspace.slug,
        "is_private": true,
        "links": {"self": {"href": format!("{api}/workspaces/{}", workspace.slug)}},
        "created_on": rfc3339(workspace.created_on),
    })
}

fn repository_json(repo: &Repository, directory: &CloudDirectory, request: &Request<'_>) -> Value {
    let api = request.api();
    let full_name = format!("{}/{}", repo.workspace, repo.slug);
    let clone_url = format!("{}/{full_name}.git", request.sim.base_url);
    let workspace = directory
        .workspaces
        .get(&repo.workspace)
        .map(|w| workspace_json(w, &api));
    json!({
        "type": "repository",
        "full_name": full_name,
        "links": {
            "self": {"href": format!("{api}/repositories/{full_name}")},
            "html": {"href": format!("{}/{full_name}", request.sim.base_url)},
            "clone": [{"name": "https", "href": clone_url}],
        },
        "name": repo.name,
        "slug": repo.slug,
        "description": repo.description,
        "scm": "git",
        "is_private": repo.private,
        "uuid": repo.uuid,
        "workspace": workspace,
        "mainbranch": {"name": "main", "type": "branch"},
        "created_on": rfc3339(repo.created_on),
        "updated_on": rfc3339(repo.created_on),
    })
}

fn current_user(request: &Request<'_>) -> Answer {
    let directory = request.sim.world.cloud();
    let user = signed_in(request, &directory)?;
    Ok(cloud_json(StatusCode::OK, &user_json(user, &request.api())))
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
    let body = page::cloud(
        values,
        request.query,
        &format!("{}/user/emails", request.api()),
    )
    .map_err(bad_page)?;
    Ok(cloud_json(StatusCode::OK, &body))
}

fn workspaces(request: &Request<'_>) -> Answer {
    let directory = request.sim.world.cloud();
    let user = signed_in(request, &directory)?;
    let api = request.api();
    let values = directory
        .workspaces
        .values()
        .filter(|w| w.members.contains(&user.username))
        .map(|w| workspace_json(w, &api))
        .collect();
    let body =
        page::cloud(values, request.query, &format!("{api}/workspaces")).map_err(bad_page)?;
    Ok(cloud_json(StatusCode::OK, &body))
}

fn repositories(request: &Request<'_>) -> Answer {
    let directory = request.sim.world.cloud();
    let slug = request.param("workspace");
    if !directory.workspaces.contains_key(slug) {
        let message = format!("No workspace with identifier '{slug}'.");
        return Err(cloud_error(StatusCode::NOT_FOUND, &message));
    }
    let user = request.user().unwrap_or_default();
    let values = directory
        .repositories
        .values()
        .filter(|r| r.workspace == slug && directory.may_access(r, user, false))
        .map(|r| repository_json(r, &directory, request))
        .collect();
    let url = format!("{}/repositories/{slug}", request.api());
    let body = page::cloud(values, request.query, &url).map_err(bad_page)?;
    Ok(cloud_json(StatusCode::OK, &body))
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
        .filter(|r| directory.may_access(r, request.user().unwrap_or_default(), false))
        .ok_or_else(|| {
            let message = format!("Repository {workspace}/{slug} not found");
            cloud_error(StatusCode::NOT_FOUND, &message)
        })
}

fn repository(request: &Request<'_>) -> Answer {
    let directory = request.sim.world.cloud();
    let repo = visible_repository(request, &directory)?;
    Ok(cloud_json(
        StatusCode::OK,
        &repository_json(repo, &directory, request),
    ))
}

fn pullrequest_json(
    pr: &PullRequest,
    repo: &Repository,
    directory: &CloudDirectory,
    api: &str,
) -> Value {
    let full_name = format!("{}/{}", repo.workspace, repo.slug);
    let author = directory.users.get(&pr.author).map(|u| user_json(u, api));
    let side = |branch: &str| {
        json!({
            "branch": {"name": branch},
            "repository": {"type": "repository", "full_name": full_name, "uuid": repo.uuid},
        })
    };
    json!({
        "type": "pullrequest",
        "id": pr.id,
        "title": pr.title,
        "description": pr.description,
        "state": "OPEN",
        "author": author,
        "source": side(&pr.source_branch),
        "destination": side(&pr.destination_branch),
        "close_source_branch": pr.close_source_branch,
        "comment_count": 0,
        "task_count": 0,
        "created_on": rfc3339(pr.created_on),
        "updated_on": rfc3339(pr.created_on),
        "links": {"self": {"href": format!("{api}/repositories/{full_name}/pullrequests/{}", pr.id)}},
    })
}

fn pullrequests(request: &Request<'_>) -> Answer {
    let directory = request.sim.world.cloud();
    let repo = visible_repository(request, &directory)?;
    let api = request.api();
    let state = request.query.get("state").unwrap_or("OPEN");
    let values = repo
        .pullrequests
        .iter()
        .filter(|_| state.eq_ignore_ascii_case("OPEN"))
        .map(|pr| pullrequest_json(pr, repo, &directory, &api))
        .collect();
    let url = format!(
        "{api}/repositories/{}/{}/pullrequests",
        repo.workspace, repo.slug
    );
    let body = page::cloud(values, request.query, &url).map_err(bad_page)?;
    Ok(cloud_json(StatusCode::OK, &body))
}

#[derive(Debug, Deserialize)]
struct BranchRef {
    branch: BranchName,
}

#[derive(Debug, Deserialize)]
struct BranchName {
    name: String,
}

#[derive(Debug, Deserialize)]
struct NewPullRequest {
    title: Option<String>,
    #[serde(default)]
    description: String,
    source: Option<BranchRef>,
    destination: Option<BranchRef>,
    #[serde(default)]
    close_source_branch: bool,
}

fn field_error(field: &str, message: &str) -> Response {
    let body = json!({
        "type": "error",
        "error": {"message": "Bad request", "fields": {field: [message]}},
    });
    cloud_json(StatusCode::BAD_REQUEST, &body)
}

async fn create_pullrequest(request: &Request<'_>) -> Answer {
    let new: NewPullRequest = serde_json::from_slice(request.body)
        .map_err(|e| cloud_error(StatusCode::BAD_REQUEST, &format!("Bad request: {e}")))?;
    let title = new
        .title
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| field_error("title", "required key not provided"))?;
    let source = new
        .source
        .map(|s| s.branch.name)
        .ok_or_else(|| field_error("source", "required key not provided"))?;
    let destination = new
        .destination
        .map_or_else(|| "main".to_owned(), |d| d.branch.name);
    let (workspace, slug) = (request.param("workspace"), request.param("repo_slug"));
    let user = request.user().unwrap_or_default().to_owned();
    {
        let directory = request.sim.world.cloud();
        let repo = visible_repository(request, &directory)?;
        if !directory.may_access(repo, &user, true) {
            let message = "You do not have write access to this repository.";
            return Err(cloud_error(StatusCode::FORBIDDEN, message));
        }
    }
    if source == destination {
        return Err(field_error("source", "There are no changes to be pulled"));
    }
    for (field, branch) in [("source", &source), ("destination", &destination)] {
        if !request
            .sim
            .world
            .git
            .branch_exists(workspace, slug, branch)
            .await
        {
            return Err(field_error(field, &format!("Branch not found: {branch}")));
        }
    }
    let now = request.sim.clock.now();
    let mut directory = request.sim.world.cloud_mut();
    let key = (workspace.to_owned(), slug.to_owned());
    let Some(repo) = directory.repositories.get_mut(&key) else {
        return Err(cloud_error(StatusCode::NOT_FOUND, "Repository not found"));
    };
    let pr = PullRequest {
        id: repo.pullrequests.len() as u64 + 1,
        title,
        description: new.description,
        author: user,
        source_branch: source,
        destination_branch: destination,
        close_source_branch: new.close_source_branch,
        created_on: now,
    };
    repo.pullrequests.push(pr.clone());
    let repo = repo.clone();
    let body = pullrequest_json(&pr, &repo, &directory, &request.api());
    Ok(cloud_json(StatusCode::CREATED, &body))
}
