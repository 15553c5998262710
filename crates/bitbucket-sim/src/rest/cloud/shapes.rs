//! Bitbucket Cloud's JSON shapes, with the `links` clients follow (`self`, `repositories`,
//! `pullrequests`, `commits`, `diff`, …) all absolute, as Bitbucket writes them.

use serde_json::{Value, json};

use crate::clock::rfc3339;
use crate::git_read::{CommitInfo, Entry, FileChange};
use crate::world::cloud::{CloudDirectory, PullRequest, Repository, User, Workspace};

/// Where links point: the REST base (`…/2.0`) and the web site.
pub struct Site<'a> {
    pub api: &'a str,
    pub web: &'a str,
}

impl Site<'_> {
    fn repository(&self, repo: &Repository) -> String {
        format!("{}/repositories/{}/{}", self.api, repo.workspace, repo.slug)
    }
}

fn href(url: String) -> Value {
    json!({ "href": url })
}

pub fn user(user: &User, site: &Site<'_>) -> Value {
    json!({
        "display_name": user.display_name,
        "links": {
            "self": href(format!("{}/users/{}", site.api, user.uuid)),
            "avatar": href(format!("{}/users/{}/avatar", site.api, user.uuid)),
            "html": href(format!("{}/{}/", site.web, user.uuid)),
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

pub fn workspace(workspace: &Workspace, site: &Site<'_>) -> Value {
    let (api, slug) = (site.api, &workspace.slug);
    json!({
        "type": "workspace",
        "uuid": workspace.uuid,
        "name": workspace.name,
        "slug": slug,
        "is_private": true,
        "links": {
            "self": href(format!("{api}/workspaces/{slug}")),
            "html": href(format!("{}/{slug}/", site.web)),
            "avatar": href(format!("{}/workspaces/{slug}/avatar", site.web)),
            "repositories": href(format!("{api}/repositories/{slug}")),
            "projects": href(format!("{api}/workspaces/{slug}/projects")),
            "members": href(format!("{api}/workspaces/{slug}/members")),
            "snippets": href(format!("{api}/snippets/{slug}")),
        },
        "created_on": rfc3339(workspace.created_on),
    })
}

/// An entry of `GET /user/workspaces`: the caller's access to one workspace.
pub fn workspace_access(workspace: &Workspace, username: &str, site: &Site<'_>) -> Value {
    let (api, slug) = (site.api, &workspace.slug);
    let administrator = workspace.members.first().is_some_and(|m| m == username);
    json!({
        "type": "workspace_access",
        "administrator": administrator,
        "workspace": {
            "type": "workspace_base",
            "uuid": workspace.uuid,
            "slug": slug,
            "name": workspace.name,
            "links": {
                "self": href(format!("{api}/workspaces/{slug}")),
                "avatar": href(format!("{}/workspaces/{slug}/avatar", site.web)),
            },
        },
        "links": {"self": href(format!("{api}/user/workspaces/{slug}/permission"))},
    })
}

pub fn repository(repo: &Repository, directory: &CloudDirectory, site: &Site<'_>) -> Value {
    let this = site.repository(repo);
    let full_name = format!("{}/{}", repo.workspace, repo.slug);
    let web = format!("{}/{full_name}", site.web);
    let owner = directory
        .workspaces
        .get(&repo.workspace)
        .map(|w| workspace(w, site));
    json!({
        "type": "repository",
        "full_name": full_name,
        "links": {
            "self": href(this.clone()),
            "html": href(web.clone()),
            "avatar": href(format!("{web}/avatar/32")),
            "pullrequests": href(format!("{this}/pullrequests")),
            "commits": href(format!("{this}/commits")),
            "forks": href(format!("{this}/forks")),
            "watchers": href(format!("{this}/watchers")),
            "branches": href(format!("{this}/refs/branches")),
            "tags": href(format!("{this}/refs/tags")),
            "downloads": href(format!("{this}/downloads")),
            "source": href(format!("{this}/src")),
            "hooks": href(format!("{this}/hooks")),
            "clone": [{"name": "https", "href": format!("{web}.git")}],
        },
        "name": repo.name,
        "slug": repo.slug,
        "description": repo.description,
        "scm": "git",
        "is_private": repo.private,
        "uuid": repo.uuid,
        "workspace": owner,
        "mainbranch": {"name": "main", "type": "branch"},
        "created_on": rfc3339(repo.created_on),
        "updated_on": rfc3339(repo.created_on),
    })
}

/// A pull request; `source_hash` and `destination_hash` are its branches' current heads.
pub fn pullrequest(
    pr: &PullRequest,
    repo: &Repository,
    directory: &CloudDirectory,
    heads: (&str, &str),
    site: &Site<'_>,
) -> Value {
    let this = format!("{}/pullrequests/{}", site.repository(repo), pr.id);
    let full_name = format!("{}/{}", repo.workspace, repo.slug);
    let author = directory.users.get(&pr.author).map(|u| user(u, site));
    let side = |branch: &str, hash: &str| {
        json!({
            "branch": {"name": branch},
            "commit": {"type": "commit", "hash": short(hash)},
            "repository": {"type": "repository", "full_name": full_name, "uuid": repo.uuid},
        })
    };
    json!({
        "type": "pullrequest",
        "id": pr.id,
        "title": pr.title,
        "description": pr.description,
        "summary": {"type": "rendered", "raw": pr.description, "markup": "markdown"},
        "state": "OPEN",
        "author": author,
        "source": side(&pr.source_branch, heads.0),
        "destination": side(&pr.destination_branch, heads.1),
        "close_source_branch": pr.close_source_branch,
        "reviewers": [],
        "participants": [],
        "comment_count": 0,
        "task_count": 0,
        "created_on": rfc3339(pr.created_on),
        "updated_on": rfc3339(pr.created_on),
        "links": {
            "self": href(this.clone()),
            "html": href(format!("{}/{full_name}/pull-requests/{}", site.web, pr.id)),
            "commits": href(format!("{this}/commits")),
            "approve": href(format!("{this}/approve")),
            "diff": href(format!("{this}/diff")),
            "diffstat": href(format!("{this}/diffstat")),
            "comments": href(format!("{this}/comments")),
            "activity": href(format!("{this}/activity")),
            "merge": href(format!("{this}/merge")),
            "decline": href(format!("{this}/decline")),
            "statuses": href(format!("{this}/statuses")),
        },
    })
}

/// Bitbucket shows twelve hex digits of a hash where it abbreviates.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

pub fn commit(info: &CommitInfo, repo: &Repository, site: &Site<'_>) -> Value {
    let this = site.repository(repo);
    let hash = &info.hash;
    let summary = info.message.lines().next().unwrap_or_default();
    let parents: Vec<Value> = info
        .parents
        .iter()
        .map(|parent| {
            json!({
                "type": "commit",
                "hash": parent,
                "links": {"self": href(format!("{this}/commit/{parent}"))},
            })
        })
        .collect();
    json!({
        "type": "commit",
        "hash": hash,
        "date": info.date,
        "author": {"type": "author", "raw": info.author},
        "message": info.message,
        "summary": {"type": "rendered", "raw": summary, "markup": "markdown"},
        "parents": parents,
        "repository": {
            "type": "repository",
            "full_name": format!("{}/{}", repo.workspace, repo.slug),
            "uuid": repo.uuid,
            "links": {"self": href(this.clone())},
        },
        "links": {
            "self": href(format!("{this}/commit/{hash}")),
            "html": href(format!("{}/{}/{}/commits/{hash}", site.web, repo.workspace, repo.slug)),
            "diff": href(format!("{this}/diff/{hash}")),
            "patch": href(format!("{this}/patch/{hash}")),
            "comments": href(format!("{this}/commit/{hash}/comments")),
            "statuses": href(format!("{this}/commit/{hash}/statuses")),
        },
    })
}

/// A path as Bitbucket puts it in a URL: every byte but unreserved ones and `/` escaped.
pub fn escape_path(path: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(path, KEEP).to_string()
}

/// One entry of a `src` directory listing, or the `?format=meta` answer for a file.
pub fn source_entry(entry: &Entry, commit: &str, repo: &Repository, site: &Site<'_>) -> Value {
    let this = site.repository(repo);
    let escaped = escape_path(&entry.path);
    let at = format!("{this}/src/{commit}/{escaped}");
    let commit_json = json!({
        "type": "commit",
        "hash": commit,
        "links": {"self": href(format!("{this}/commit/{commit}"))},
    });
    if entry.directory {
        json!({
            "type": "commit_directory",
            "path": entry.path,
            "escaped_path": escaped,
            "commit": commit_json,
            "links": {"self": href(format!("{at}/")), "meta": href(format!("{at}/?format=meta"))},
        })
    } else {
        json!({
            "type": "commit_file",
            "path": entry.path,
            "escaped_path": escaped,
            "size": entry.size,
            "mimetype": Value::Null,
            "attributes": [],
            "commit": commit_json,
            "links": {
                "self": href(at.clone()),
                "meta": href(format!("{at}?format=meta")),
                "history": href(format!("{this}/filehistory/{commit}/{escaped}")),
            },
        })
    }
}

pub fn diffstat(
    change: &FileChange,
    commits: (&str, &str),
    repo: &Repository,
    site: &Site<'_>,
) -> Value {
    let this = site.repository(repo);
    let side = |commit: &str| {
        json!({
            "type": "commit_file",
            "path": change.path,
            "escaped_path": escape_path(&change.path),
            "links": {"self": href(format!("{this}/src/{commit}/{}", escape_path(&change.path)))},
        })
    };
    let (status, old, new) = match change.status {
        'A' => ("added", Value::Null, side(commits.0)),
        'D' => ("removed", side(commits.1), Value::Null),
        _ => ("modified", side(commits.1), side(commits.0)),
    };
    json!({
        "type": "diffstat",
        "status": status,
        "lines_added": change.added,
        "lines_removed": change.removed,
        "old": old,
        "new": new,
    })
}
