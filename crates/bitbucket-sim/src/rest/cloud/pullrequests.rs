//! Pull requests: list, create, read one, its commits, and its diff and diffstat, which answer
//! 302 to the canonical `…/diff/{workspace}/{repo}:{source}%0D{destination}` address as
//! Bitbucket does.

use std::path::Path;

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::shapes::{self, short};
use super::{Answer, Request, found, repository_on_disk, visible_repository};
use crate::git_read;
use crate::rest::{cloud_error, cloud_json};
use crate::world::cloud::{PullRequest, Repository};

/// The current heads of a pull request's source and destination branches.
async fn heads(path: &Path, pr: &PullRequest) -> (String, String) {
    let (source, destination) = tokio::join!(
        git_read::resolve(path, &pr.source_branch),
        git_read::resolve(path, &pr.destination_branch),
    );
    (source.unwrap_or_default(), destination.unwrap_or_default())
}

async fn render(request: &Request<'_>, pr: &PullRequest, repo: &Repository, path: &Path) -> Value {
    let (source, destination) = heads(path, pr).await;
    let directory = request.sim.world.cloud();
    request
        .with_site(|site| shapes::pullrequest(pr, repo, &directory, (&source, &destination), site))
}

pub async fn list(request: &Request<'_>) -> Answer {
    let (repo, path) = repository_on_disk(request)?;
    let state = request.query.get("state").unwrap_or("OPEN");
    let mut values = Vec::new();
    if state.eq_ignore_ascii_case("OPEN") {
        for pr in &repo.pullrequests {
            values.push(render(request, pr, &repo, &path).await);
        }
    }
    let url = format!(
        "{}/repositories/{}/{}/pullrequests",
        request.api(),
        repo.workspace,
        repo.slug
    );
    request.page(values, &url)
}

/// The addressed pull request, or Bitbucket's 404.
fn addressed(
    request: &Request<'_>,
    repo: &Repository,
) -> Result<PullRequest, axum::response::Response> {
    let id = request.param("pull_request_id");
    id.parse::<u64>()
        .ok()
        .and_then(|id| repo.pullrequests.iter().find(|pr| pr.id == id))
        .cloned()
        .ok_or_else(|| {
            let message = format!(
                "Pull request {id} not found in {}/{}",
                repo.workspace, repo.slug
            );
            cloud_error(StatusCode::NOT_FOUND, &message)
        })
}

pub async fn one(request: &Request<'_>) -> Answer {
    let (repo, path) = repository_on_disk(request)?;
    let pr = addressed(request, &repo)?;
    Ok(cloud_json(
        StatusCode::OK,
        &render(request, &pr, &repo, &path).await,
    ))
}

/// The commits on the source branch that the destination lacks, newest first.
pub async fn commits(request: &Request<'_>) -> Answer {
    let (repo, path) = repository_on_disk(request)?;
    let pr = addressed(request, &repo)?;
    let (source, destination) = heads(&path, &pr).await;
    let log = git_read::commits(&path, Some(&destination), &source, 1000).await;
    let values =
        request.with_site(|site| log.iter().map(|c| shapes::commit(c, &repo, site)).collect());
    let url = format!(
        "{}/repositories/{}/{}/pullrequests/{}/commits",
        request.api(),
        repo.workspace,
        repo.slug,
        pr.id
    );
    request.page(values, &url)
}

/// `…/pullrequests/{id}/diff` and `/diffstat`: a 302 to the canonical spec URL.
pub async fn to_canonical(request: &Request<'_>, kind: &str) -> Answer {
    let (repo, path) = repository_on_disk(request)?;
    let pr = addressed(request, &repo)?;
    let (source, destination) = heads(&path, &pr).await;
    let (workspace, slug) = (&repo.workspace, &repo.slug);
    let location = format!(
        "{}/repositories/{workspace}/{slug}/{kind}/{workspace}/{slug}:{}%0D{}?from_pullrequest_id={}&topic=true",
        request.api(),
        short(&source),
        short(&destination),
        pr.id,
    );
    found(&location)
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
    description: Option<String>,
    source: Option<BranchRef>,
    destination: Option<BranchRef>,
    #[serde(default)]
    close_source_branch: Option<bool>,
}

fn field_error(field: &str, message: &str) -> axum::response::Response {
    let body = json!({
        "type": "error",
        "error": {"message": "Bad request", "fields": {field: [message]}},
    });
    cloud_json(StatusCode::BAD_REQUEST, &body)
}

pub async fn create(request: &Request<'_>) -> Answer {
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
        if !request.may_access(&directory, repo, true) {
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
    let (pr, repo) = {
        let mut directory = request.sim.world.cloud_mut();
        let key = (workspace.to_owned(), slug.to_owned());
        let Some(repo) = directory.repositories.get_mut(&key) else {
            return Err(cloud_error(StatusCode::NOT_FOUND, "Repository not found"));
        };
        let pr = PullRequest {
            id: repo.pullrequests.len() as u64 + 1,
            title,
            description: new.description.unwrap_or_default(),
            author: user,
            source_branch: source,
            destination_branch: destination,
            close_source_branch: new.close_source_branch.unwrap_or(false),
            created_on: now,
        };
        repo.pullrequests.push(pr.clone());
        (pr, repo.clone())
    };
    let path = request.sim.world.git.path(workspace, slug);
    Ok(cloud_json(
        StatusCode::CREATED,
        &render(request, &pr, &repo, &path).await,
    ))
}
