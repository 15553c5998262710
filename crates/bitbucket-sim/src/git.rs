//! Git over HTTPS at `/{workspace}/{repo_slug}.git`, served by `git http-backend`.
//!
//! Authentication is Bitbucket's: HTTP Basic with the literal user `x-token-auth` and an access
//! token as the password, or an API token (see `authorize_cloud`). Reading needs the `repository` scope, pushing `repository:write`, and
//! the token's user must be allowed to do the same on the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bitbucket_facts::datacenter::Level;
use bitbucket_facts::{api_tokens, cloud};
use tokio::io::AsyncWriteExt;

use crate::Sim;
use crate::credentials::Permission;
use crate::oauth::basic_credentials;
use crate::rest::Caller;
use crate::tokens::{AccessCheck, Product};
use crate::world::error::WorldError;

/// Where Data Center repositories live below the root.
const DC_DIR: &str = "_dc";

/// Largest push accepted.
const MAX_BODY: usize = 256 * 1024 * 1024;

/// Bare repositories on disk, one per Cloud repository.
#[derive(Debug)]
pub struct GitStore {
    root: PathBuf,
    _temporary: Option<tempfile::TempDir>,
}

fn git() -> Command {
    let mut command = Command::new("git");
    command
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Bitbucket Simulator")
        .env("GIT_AUTHOR_EMAIL", "sim@bitbucket.invalid")
        .env("GIT_COMMITTER_NAME", "Bitbucket Simulator")
        .env("GIT_COMMITTER_EMAIL", "sim@bitbucket.invalid");
    command
}

fn run(command: &mut Command, input: Option<&str>) -> Result<String, WorldError> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| WorldError::Git(format!("cannot run git: {e}")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        use std::io::Write;
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| WorldError::Git(e.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| WorldError::Git(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(WorldError::Git(stderr.trim().to_owned()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

impl GitStore {
    /// Repositories in a fresh temporary directory, removed when the simulator stops.
    pub fn temporary() -> std::io::Result<GitStore> {
        let dir = tempfile::Builder::new()
            .prefix("bitbucket-sim-")
            .tempdir()?;
        Ok(GitStore {
            root: dir.path().to_owned(),
            _temporary: Some(dir),
        })
    }

    /// Repositories kept in `root`.
    pub fn at(root: &Path) -> std::io::Result<GitStore> {
        std::fs::create_dir_all(root)?;
        Ok(GitStore {
            root: root.to_owned(),
            _temporary: None,
        })
    }

    /// A Cloud repository's directory.
    pub fn path(&self, workspace: &str, slug: &str) -> PathBuf {
        self.root.join(workspace).join(format!("{slug}.git"))
    }

    /// A Data Center repository's directory. `_dc` is no Cloud workspace slug (those start with
    /// a letter or digit), so the two never meet.
    pub fn dc_path(&self, project: &str, slug: &str) -> PathBuf {
        self.root
            .join(DC_DIR)
            .join(project)
            .join(format!("{slug}.git"))
    }

    /// Creates a Cloud repository; see `create_at`.
    pub fn create(&self, workspace: &str, slug: &str, description: &str) -> Result<(), WorldError> {
        self.create_at(&self.path(workspace, slug), slug, description)
    }

    /// Creates a bare repository whose `main` holds one commit with a README.
    pub fn create_at(&self, path: &Path, slug: &str, description: &str) -> Result<(), WorldError> {
        if path.exists() {
            return Ok(());
        }
        let dir = path.to_string_lossy().into_owned();
        run(
            git().args(["init", "--bare", "--quiet", "-b", "main", &dir]),
            None,
        )?;
        let in_repo = |args: &[&str]| {
            let mut command = git();
            command.arg("--git-dir").arg(&dir).args(args);
            command
        };
        run(&mut in_repo(&["config", "http.receivepack", "true"]), None)?;
        let readme = format!("# {slug}\n\n{description}\n");
        let blob = run(
            &mut in_repo(&["hash-object", "-w", "--stdin"]),
            Some(&readme),
        )?;
        let tree = run(
            &mut in_repo(&["mktree"]),
            Some(&format!("100644 blob {blob}\tREADME.md\n")),
        )?;
        let commit = run(
            &mut in_repo(&["commit-tree", &tree, "-m", "Initial commit"]),
            None,
        )?;
        run(
            &mut in_repo(&["update-ref", "refs/heads/main", &commit]),
            None,
        )?;
        Ok(())
    }

    pub async fn branch_exists(&self, workspace: &str, slug: &str, branch: &str) -> bool {
        if branch.starts_with('-') {
            return false;
        }
        let reference = format!("refs/heads/{branch}");
        tokio::process::Command::new("git")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .arg("--git-dir")
            .arg(self.path(workspace, slug))
            .args(["rev-parse", "--verify", "--quiet", &reference])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|status| status.success())
    }
}

/// Which repository a git URL names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// `/{workspace}/{slug}.git/…`
    Cloud { workspace: String, slug: String },
    /// `/dc/scm/{project}/{slug}.git/…`, the project key in any case, as Data Center allows.
    Dc { project: String, slug: String },
}

/// The smart-HTTP request a URL addresses.
#[derive(Debug)]
struct GitRequest {
    target: Target,
    /// The repository's path below the store's root and the service, as `http-backend` wants it.
    path_info: String,
    write: bool,
}

fn parse(path: &str, query: &str) -> Option<GitRequest> {
    let (dc, rest) = match path.strip_prefix("/dc/scm/") {
        Some(rest) => (true, rest),
        None => (false, path.trim_start_matches('/')),
    };
    let mut parts = rest.splitn(3, '/');
    let owner = parts.next()?.to_owned();
    let slug = parts.next()?.strip_suffix(".git")?.to_owned();
    let service = parts.next()?;
    let write = match service {
        "info/refs" if query.contains("service=git-receive-pack") => true,
        "info/refs" if query.contains("service=git-upload-pack") => false,
        "git-upload-pack" => false,
        "git-receive-pack" => true,
        _ => return None,
    };
    if owner.is_empty() || owner.starts_with('.') || slug.is_empty() || slug.starts_with('.') {
        return None;
    }
    let (target, path_info) = if dc {
        let project = owner.to_ascii_uppercase();
        let path_info = format!("/{DC_DIR}/{project}/{slug}.git/{service}");
        (Target::Dc { project, slug }, path_info)
    } else {
        let path_info = format!("/{owner}/{slug}.git/{service}");
        (
            Target::Cloud {
                workspace: owner,
                slug,
            },
            path_info,
        )
    };
    Some(GitRequest {
        target,
        path_info,
        write,
    })
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain")],
        message.to_owned(),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Bitbucket.org HTTP\""),
        );
    }
    response
}

/// Decides whether the request may go on; answers the user name to hand to `http-backend`.
fn authorize(
    sim: &Sim,
    request: &GitRequest,
    headers: &HeaderMap,
) -> Result<Option<String>, Response> {
    match &request.target {
        Target::Cloud { workspace, slug } => {
            authorize_cloud(sim, (workspace, slug), request.write, headers)
        }
        Target::Dc { project, slug } => authorize_dc(sim, (project, slug), request.write, headers),
    }
}

/// Cloud: Basic with the literal user `x-token-auth` and an OAuth or access token, or with
/// `x-bitbucket-api-token-auth` (or the Bitbucket user name) and an API token. Reading needs
/// `repository` (`read:repository:bitbucket`), pushing `repository:write`
/// (`write:repository:bitbucket`), and the user's membership or the access token's resource.
fn authorize_cloud(
    sim: &Sim,
    (workspace, slug): (&str, &str),
    write: bool,
    headers: &HeaderMap,
) -> Result<Option<String>, Response> {
    let directory = sim.world.cloud();
    let Ok(repository) = directory.repository(workspace, slug) else {
        return Err(refuse(StatusCode::NOT_FOUND, "Repository not found"));
    };
    let Some(Some((user, token))) = basic_credentials(headers) else {
        if !write && !repository.private {
            return Ok(None);
        }
        return Err(refuse(StatusCode::UNAUTHORIZED, "Authentication required"));
    };
    let now = sim.clock.now();
    let lacking = || {
        let message = "Your credentials lack one or more required privilege scopes.";
        refuse(StatusCode::FORBIDDEN, message)
    };
    let classic = || {
        let needed = if write {
            "repository:write"
        } else {
            "repository"
        };
        cloud::parse_scopes(needed).expect("known scope")
    };
    let caller = if user == "x-token-auth" {
        match sim.tokens.check_access(&token, now) {
            AccessCheck::Valid(grant) if grant.product == Product::Cloud => {
                if !grant.scopes.satisfies(&classic()) {
                    return Err(lacking());
                }
                Caller::OAuth(grant)
            }
            _ => match sim.credentials.check_access_token(&token, now) {
                Ok(access) if access.resource.product() == Product::Cloud => {
                    if !access.scopes().is_some_and(|s| s.satisfies(&classic())) {
                        return Err(lacking());
                    }
                    Caller::AccessToken(access)
                }
                _ => return Err(invalid()),
            },
        }
    } else {
        match sim.credentials.check_api_token(&user, &token, now) {
            Ok(api) if !user.contains('@') => {
                let needed = if write {
                    "write:repository:bitbucket"
                } else {
                    "read:repository:bitbucket"
                };
                let needed = api_tokens::parse_scopes(needed).expect("known scope");
                if !api.scopes.satisfies(&needed) {
                    return Err(lacking());
                }
                Caller::ApiToken(api)
            }
            _ => return Err(invalid()),
        }
    };
    if !caller.may_access(&directory, repository, write) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "You may not have access to this repository.",
        ));
    }
    let acting = match &caller {
        Caller::AccessToken(access) => access.name.clone(),
        other => other.user().unwrap_or_default().to_owned(),
    };
    Ok(Some(acting))
}

/// Data Center: the token as a Basic password (any user name) or as a bearer token, capped by
/// both its scope and the user's permission on the repository.
fn authorize_dc(
    sim: &Sim,
    (project, slug): (&str, &str),
    write: bool,
    headers: &HeaderMap,
) -> Result<Option<String>, Response> {
    let directory = sim.world.dc();
    let Ok(repository) = directory.repository(project, slug) else {
        return Err(refuse(StatusCode::NOT_FOUND, "Repository not found"));
    };
    let token = crate::oauth::bearer(
        headers,
        &crate::oauth::Params::default(),
        crate::Mode::Rotating,
    )
    .or_else(|| {
        basic_credentials(headers)
            .flatten()
            .map(|(_, password)| password)
    });
    let Some(token) = token else {
        return Err(refuse(StatusCode::UNAUTHORIZED, "Authentication required"));
    };
    let needed = if write {
        Level::RepoWrite
    } else {
        Level::RepoRead
    };
    let now = sim.clock.now();
    // An OAuth token is capped by its user's permission; an HTTP access token by its resource.
    let (acting, token_level, held) = match sim.tokens.check_access(&token, now) {
        AccessCheck::Valid(grant) if grant.product == Product::Dc => {
            let held = directory.user_level(&grant.user, repository);
            (grant.user.clone(), Level::of(&grant.scopes), held)
        }
        _ => match sim.credentials.check_access_token(&token, now) {
            Ok(access) => match access.permission {
                Permission::Level(level)
                    if access
                        .resource
                        .holds_dc(&repository.project, &repository.slug) =>
                {
                    (access.name.clone(), Some(level), Some(level))
                }
                Permission::Level(_) => (access.name.clone(), None, None),
                Permission::Scopes(_) => return Err(invalid()),
            },
            Err(_) => return Err(invalid()),
        },
    };
    if token_level.min(held) < Some(needed) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "You are not permitted to access this repository.",
        ));
    }
    Ok(Some(acting))
}

fn invalid() -> Response {
    refuse(StatusCode::UNAUTHORIZED, "Token is invalid or expired")
}

/// Fallback handler: git smart HTTP, or 404.
pub async fn serve(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let Some(git_request) = parse(parts.uri.path(), &query) else {
        return refuse(StatusCode::NOT_FOUND, "Not found");
    };
    let kind = if git_request.write {
        "receive-pack"
    } else {
        "upload-pack"
    };
    let user = match authorize(&sim, &git_request, &parts.headers) {
        Ok(user) => user,
        Err(response) => {
            sim.stats
                .count("git", kind, crate::stats::status_label(response.status()));
            return response;
        }
    };
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "Push too large"),
    };
    let cgi = Cgi {
        root: &sim.world.git.root,
        path_info: &git_request.path_info,
        method: parts.method.as_str(),
        query: &query,
        headers: &parts.headers,
        user: user.as_deref(),
    };
    let response = cgi.run(body).await;
    sim.stats
        .count("git", kind, crate::stats::status_label(response.status()));
    response
}

/// One `git http-backend` invocation (CGI).
struct Cgi<'a> {
    root: &'a Path,
    path_info: &'a str,
    method: &'a str,
    query: &'a str,
    headers: &'a HeaderMap,
    user: Option<&'a str>,
}

impl Cgi<'_> {
    fn header(&self, name: HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    async fn run(&self, body: Bytes) -> Response {
        let mut command = tokio::process::Command::new("git");
        command
            .arg("http-backend")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_PROJECT_ROOT", self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("PATH_INFO", self.path_info)
            .env("REQUEST_METHOD", self.method)
            .env("QUERY_STRING", self.query)
            .env("CONTENT_TYPE", self.header(header::CONTENT_TYPE))
            .env("CONTENT_LENGTH", body.len().to_string())
            .env(
                "HTTP_CONTENT_ENCODING",
                self.header(header::CONTENT_ENCODING),
            )
            .env(
                "GIT_PROTOCOL",
                self.header(HeaderName::from_static("git-protocol")),
            )
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("REMOTE_USER", self.user.unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let Ok(mut child) = command.spawn() else {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot run git http-backend",
            );
        };
        if let Some(mut stdin) = child.stdin.take() {
            tokio::spawn(async move {
                let _ = stdin.write_all(&body).await;
            });
        }
        match child.wait_with_output().await {
            Ok(output) => cgi_response(&output.stdout),
            Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "git http-backend failed"),
        }
    }
}

/// Turns CGI output (headers, blank line, body) into a response.
fn cgi_response(output: &[u8]) -> Response {
    let split = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| {
            output
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, i + 2))
        });
    let Some((head_end, body_start)) = split else {
        return refuse(StatusCode::BAD_GATEWAY, "git http-backend gave no headers");
    };
    let head = String::from_utf8_lossy(&output[..head_end]);
    let mut response = Response::new(Body::from(output[body_start..].to_vec()));
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().and_then(|c| c.parse().ok());
            *response.status_mut() = code
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::OK);
        } else if let (Ok(name), Ok(value)) =
            (HeaderName::try_from(name), HeaderValue::from_str(value))
        {
            response.headers_mut().append(name, value);
        }
    }
    response
}
