//! What `git` holds, read through the REST API: `src` (directory listings as JSON, files raw and
//! streamed), commits, and `diff` / `diffstat` for a spec (`A`, `A..B`, or the canonical
//! `{workspace}/{repo}:{A}%0D{B}`, source first).

use std::path::Path;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use super::shapes;
use super::{Answer, Request, found, repository_on_disk};
use crate::git_read::{self, Entry, Found};
use crate::rest::{cloud_error, cloud_json};
use crate::world::cloud::Repository;

/// Path parameters arrive as sent, percent-encoded (`docs%2Freadme.md`).
fn decoded(raw: &str) -> Result<String, Response> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| cloud_error(StatusCode::BAD_REQUEST, "The path is not valid UTF-8."))
}

/// The full hash a branch, tag or (abbreviated) hash names, or Bitbucket's 404.
async fn commit_named(path: &Path, name: &str) -> Result<String, Response> {
    git_read::resolve(path, name)
        .await
        .ok_or_else(|| cloud_error(StatusCode::NOT_FOUND, &format!("Commit not found: {name}")))
}

fn text_answer(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// `GET …/src`: Bitbucket redirects to the root directory of the main branch's head.
pub async fn main_branch_root(request: &Request<'_>) -> Answer {
    let (repo, path) = repository_on_disk(request)?;
    let head = commit_named(&path, "main").await?;
    found(&format!(
        "{}/repositories/{}/{}/src/{head}/",
        request.api(),
        repo.workspace,
        repo.slug
    ))
}

/// `GET …/src/{commit}/{path}`: a directory listing, a file's bytes, or (`?format=meta`) what
/// the path is.
pub async fn read(request: &Request<'_>) -> Answer {
    let (repo, path) = repository_on_disk(request)?;
    let commit = commit_named(&path, &decoded(request.param("commit"))?).await?;
    let file_path = decoded(request.param("path"))?;
    let file_path = file_path.trim_matches('/');
    let Some(found) = git_read::at(&path, &commit, file_path).await else {
        let message = format!("No such file or directory: {file_path}");
        return Err(cloud_error(StatusCode::NOT_FOUND, &message));
    };
    let meta = request.query.get("format") == Some("meta");
    match found {
        Found::Directory(_) if meta => {
            let entry = Entry {
                path: file_path.to_owned(),
                directory: true,
                size: 0,
            };
            let body = request.with_site(|site| shapes::source_entry(&entry, &commit, &repo, site));
            Ok(cloud_json(StatusCode::OK, &body))
        }
        Found::Directory(entries) => {
            let values = request.with_site(|site| {
                entries
                    .iter()
                    .map(|entry| shapes::source_entry(entry, &commit, &repo, site))
                    .collect()
            });
            let url = format!(
                "{}/repositories/{}/{}/src/{commit}/{}",
                request.api(),
                repo.workspace,
                repo.slug,
                shapes::escape_path(file_path)
            );
            request.page(values, &url)
        }
        Found::File { size } if meta => {
            let entry = Entry {
                path: file_path.to_owned(),
                directory: false,
                size,
            };
            let body = request.with_site(|site| shapes::source_entry(&entry, &commit, &repo, site));
            Ok(cloud_json(StatusCode::OK, &body))
        }
        Found::File { .. } => raw_file(&path, &commit, file_path).await,
    }
}

/// A file's bytes, streamed, with its length and a type guessed from its name.
async fn raw_file(path: &Path, commit: &str, file_path: &str) -> Answer {
    let Some((size, chunks)) = git_read::blob(path, commit, file_path).await else {
        return Err(cloud_error(StatusCode::NOT_FOUND, "File not found"));
    };
    let binary = [
        "png", "jpg", "jpeg", "gif", "zip", "gz", "tgz", "jar", "pdf", "bin",
    ];
    let extension = file_path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    let content_type = if extension.is_some_and(|e| binary.contains(&e.as_str())) {
        "application/octet-stream"
    } else {
        "text/plain"
    };
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    Ok(response)
}

/// `GET …/commits` (the main branch) and `…/commits/{revision}`.
pub async fn commits(request: &Request<'_>, revision: Option<&str>) -> Answer {
    let (repo, path) = repository_on_disk(request)?;
    let name = match revision {
        Some(raw) => decoded(raw)?,
        None => "main".to_owned(),
    };
    let head = commit_named(&path, &name).await?;
    let log = git_read::commits(&path, None, &head, 1000).await;
    let values =
        request.with_site(|site| log.iter().map(|c| shapes::commit(c, &repo, site)).collect());
    let url = match revision {
        Some(raw) => format!(
            "{}/repositories/{}/{}/commits/{raw}",
            request.api(),
            repo.workspace,
            repo.slug
        ),
        None => format!(
            "{}/repositories/{}/{}/commits",
            request.api(),
            repo.workspace,
            repo.slug
        ),
    };
    request.page(values, &url)
}

pub async fn commit(request: &Request<'_>) -> Answer {
    let (repo, path) = repository_on_disk(request)?;
    let hash = commit_named(&path, &decoded(request.param("commit"))?).await?;
    let log = git_read::commits(&path, None, &hash, 1).await;
    let Some(info) = log.first() else {
        return Err(cloud_error(StatusCode::NOT_FOUND, "Commit not found"));
    };
    let body = request.with_site(|site| shapes::commit(info, &repo, site));
    Ok(cloud_json(StatusCode::OK, &body))
}

/// A diff spec, resolved: the source and destination commits and whether the diff starts at
/// their merge base.
struct Spec {
    source: String,
    destination: String,
    topic: bool,
}

/// One side of a spec: a commit, or in the canonical form `{workspace}/{repo}:{commit}`.
fn side<'s>(text: &'s str, repo: &Repository) -> Result<&'s str, Response> {
    match text.rsplit_once(':') {
        None => Ok(text),
        Some((owner, commit)) if owner == format!("{}/{}", repo.workspace, repo.slug) => Ok(commit),
        Some(_) => Err(cloud_error(
            StatusCode::NOT_FOUND,
            "The simulator compares commits of one repository only.",
        )),
    }
}

async fn spec(request: &Request<'_>, repo: &Repository, path: &Path) -> Result<Spec, Response> {
    let text = decoded(request.param("spec"))?;
    let topic = request.query.get("topic") != Some("false");
    let pair = text.split_once('\r').or_else(|| text.split_once(".."));
    match pair {
        Some((source, destination)) => Ok(Spec {
            source: commit_named(path, side(source, repo)?).await?,
            destination: commit_named(path, side(destination, repo)?).await?,
            topic,
        }),
        None => {
            let source = commit_named(path, side(&text, repo)?).await?;
            let log = git_read::commits(path, None, &source, 1).await;
            let parent = log
                .first()
                .and_then(|c| c.parents.first().cloned())
                .unwrap_or_else(|| git_read::EMPTY_TREE.to_owned());
            Ok(Spec {
                source,
                destination: parent,
                topic: false,
            })
        }
    }
}

/// `GET …/diff/{spec}`: a unified diff, as text.
pub async fn diff(request: &Request<'_>) -> Answer {
    let (repo, path) = repository_on_disk(request)?;
    let spec = spec(request, &repo, &path).await?;
    let diff = git_read::diff(&path, &spec.destination, &spec.source, spec.topic)
        .await
        .ok_or_else(|| cloud_error(StatusCode::NOT_FOUND, "No diff for these commits"))?;
    Ok(text_answer(diff))
}

/// `GET …/diffstat/{spec}`: one entry per changed file, paged.
pub async fn diffstat(request: &Request<'_>) -> Answer {
    let (repo, path) = repository_on_disk(request)?;
    let spec = spec(request, &repo, &path).await?;
    let changes = git_read::diffstat(&path, &spec.destination, &spec.source, spec.topic).await;
    let values = request.with_site(|site| {
        changes
            .iter()
            .map(|change| shapes::diffstat(change, (&spec.source, &spec.destination), &repo, site))
            .collect()
    });
    let url = format!(
        "{}/repositories/{}/{}/diffstat/{}",
        request.api(),
        repo.workspace,
        repo.slug,
        request.param("spec")
    );
    request.page(values, &url)
}
