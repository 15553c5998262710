//! REST APIs. Cloud: every request to an operation of Bitbucket's OpenAPI document is checked
//! against the token's scopes (with implications) before anything else; operations the simulator
//! does not implement then answer 404, never made-up data. Data Center: a few read endpoints,
//! capped by both the token's scope and the user's permissions.

pub mod cloud;
pub mod dc;
pub mod page;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bitbucket_facts::operations::{Operation, OperationTable};
use serde_json::{Value, json};

use crate::credentials::{AccessToken, ApiToken};
use crate::oauth::{Params, basic_credentials, bearer};
use crate::settings::Mode;
use crate::tokens::{AccessCheck, Grant, Product};
use crate::world::cloud::{CloudDirectory, Repository, Workspace};
use crate::{Sim, util};

/// A Cloud REST answer: status and JSON body in Bitbucket's spacing.
pub fn cloud_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        util::python_json(body),
    )
        .into_response()
}

/// `{"type": "error", "error": {"message": …}}`
pub fn cloud_error(status: StatusCode, message: &str) -> Response {
    cloud_json(
        status,
        &json!({"type": "error", "error": {"message": message}}),
    )
}

/// Who is calling the Cloud API, and with what credential.
#[derive(Debug, Clone)]
pub enum Caller {
    /// An OAuth access token: its grant's user and scopes.
    OAuth(Arc<Grant>),
    /// An Atlassian API token (Basic with the account's e-mail): its user, API token scopes.
    ApiToken(Arc<ApiToken>),
    /// A repository or workspace access token (Bearer): no user, its resource and scopes.
    AccessToken(Arc<AccessToken>),
}

impl Caller {
    /// The Bitbucket user acting, if any (access tokens act for their resource, not a user).
    pub fn user(&self) -> Option<&str> {
        match self {
            Caller::OAuth(grant) => Some(&grant.user),
            Caller::ApiToken(token) => Some(&token.user),
            Caller::AccessToken(_) => None,
        }
    }

    /// Whether the caller may read (or write) a repository: a user's membership, or an access
    /// token's resource.
    pub fn may_access(&self, directory: &CloudDirectory, repo: &Repository, write: bool) -> bool {
        match self {
            Caller::AccessToken(token) => {
                let project = repo.project.as_deref();
                token
                    .resource
                    .holds_cloud(&repo.workspace, &repo.slug, project)
                    || (!write && !repo.private)
            }
            _ => directory.may_access(repo, self.user().unwrap_or_default(), write),
        }
    }

    /// Whether the caller may see a workspace.
    pub fn may_see_workspace(&self, workspace: &Workspace) -> bool {
        match self {
            Caller::AccessToken(token) => token.resource.in_workspace(&workspace.slug),
            _ => {
                let user = self.user().unwrap_or_default();
                workspace.members.iter().any(|m| m == user)
            }
        }
    }

    /// Whether the credential carries what an operation needs; `Err` lists both sides.
    fn check_scopes(&self, operation: &Operation) -> Result<(), (Vec<String>, Vec<String>)> {
        let (held, required) = match self {
            Caller::OAuth(grant) => (&grant.scopes, &operation.scopes),
            Caller::ApiToken(token) => (&token.scopes, &operation.api_token_scopes),
            Caller::AccessToken(token) => match token.scopes() {
                Some(scopes) => (scopes, &operation.scopes),
                None => return Err((Vec::new(), operation.scopes.to_vec())),
            },
        };
        if held.satisfies(required) {
            Ok(())
        } else {
            Err((held.to_vec(), required.to_vec()))
        }
    }

    /// The scopes shown in `x-oauth-scopes`.
    fn granted(&self) -> Option<String> {
        let scopes = match self {
            Caller::OAuth(grant) => &grant.scopes,
            Caller::ApiToken(token) => &token.scopes,
            Caller::AccessToken(token) => token.scopes()?,
        };
        Some(scopes.names().collect::<Vec<_>>().join(", "))
    }
}

const INVALID_TOKEN: &str = "Token is invalid, expired, or not supported for this endpoint.";

/// Who is calling: an OAuth token, an access token, an API token, or nobody.
fn caller(sim: &Sim, headers: &HeaderMap, query: &Params) -> Result<Option<Caller>, Response> {
    let mode = sim.settings().mode;
    let now = sim.clock.now();
    let refused = || cloud_error(StatusCode::UNAUTHORIZED, INVALID_TOKEN);
    if let Some(Some((who, secret))) = basic_credentials(headers) {
        // Basic is for API tokens (app passwords were switched off on 28 July 2026).
        return match sim.credentials.check_api_token(&who, &secret, now) {
            Ok(token) if who.contains('@') => Ok(Some(Caller::ApiToken(token))),
            _ => Err(refused()),
        };
    }
    let Some(token) = bearer(headers, query, mode) else {
        return Ok(None);
    };
    match sim.tokens.check_access(&token, now) {
        AccessCheck::Valid(grant) => return Ok(Some(Caller::OAuth(grant))),
        AccessCheck::Expired if mode == Mode::Legacy => {
            return Err(cloud_error(
                StatusCode::UNAUTHORIZED,
                "Access token expired. Use your refresh token to obtain a new access token.",
            ));
        }
        AccessCheck::Expired => return Err(refused()),
        AccessCheck::Invalid => {}
    }
    match sim.credentials.check_access_token(&token, now) {
        Ok(access) if access.resource.product() == Product::Cloud => {
            Ok(Some(Caller::AccessToken(access)))
        }
        _ => Err(refused()),
    }
}

fn scope_headers(response: &mut Response, caller: Option<&Caller>, accepted: &str) {
    let headers = response.headers_mut();
    if let Some(granted) = caller.and_then(Caller::granted)
        && let Ok(value) = HeaderValue::from_str(&granted)
    {
        headers.insert("x-oauth-scopes", value);
    }
    if let Ok(value) = HeaderValue::from_str(accepted) {
        headers.insert("x-accepted-oauth-scopes", value);
    }
    if let Some(Caller::AccessToken(token)) = caller {
        let kind = HeaderValue::from_static(token.resource.credential_type());
        headers.insert("x-credential-type", kind);
    }
}

/// Counts an access token's request against its hourly budget: the `X-RateLimit-*` headers
/// Bitbucket gives access tokens, or a 429 once the budget is spent.
fn spend_budget(sim: &Sim, token: &AccessToken, path: &str) -> (Vec<(&'static str, String)>, bool) {
    let limit = sim.settings().access_token_rate_limit;
    let budget = token.spend(sim.clock.now(), limit);
    let resource = if path.starts_with("/repositories") {
        "api/repositories"
    } else {
        "api"
    };
    let headers = vec![
        ("x-ratelimit-limit", budget.limit.to_string()),
        ("x-ratelimit-resource", resource.to_owned()),
        ("x-ratelimit-nearlimit", budget.near().to_string()),
    ];
    (headers, budget.exceeded())
}

/// Everything under `/2.0/`.
pub async fn cloud_api(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().strip_prefix("/2.0").unwrap_or_default();
    let query = Params::parse(uri.query().unwrap_or_default().as_bytes());
    // HEAD is answered as GET; the server sends the head only, Content-Length included.
    let method = if method == Method::HEAD {
        Method::GET
    } else {
        method
    };
    let Some(matched) = OperationTable::cloud().find(method.as_str(), path) else {
        sim.stats.count("rest", "cloud", "404");
        return cloud_error(StatusCode::NOT_FOUND, "Resource not found");
    };
    let required = matched.operation.scopes;
    let caller = match caller(&sim, &headers, &query) {
        Ok(caller) => caller,
        Err(response) => {
            sim.stats.count("rest", "cloud", "401");
            return response;
        }
    };
    let budget = match &caller {
        Some(Caller::AccessToken(token)) => Some(spend_budget(&sim, token, path)),
        _ => None,
    };
    let scopes = caller.as_ref().map(|c| c.check_scopes(matched.operation));
    let mut response = match (&caller, scopes) {
        _ if budget.as_ref().is_some_and(|(_, exceeded)| *exceeded) => {
            sim.stats.count("rest", "cloud", "429");
            cloud_error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit for this resource has been exceeded.",
            )
        }
        (None, _) if !required.is_empty() => {
            sim.stats.count("rest", "cloud", "401");
            cloud_error(StatusCode::UNAUTHORIZED, "Authentication required.")
        }
        (Some(_), Some(Err((granted, required)))) => {
            sim.stats.count("rest", "cloud", "403");
            insufficient_scopes(granted, required)
        }
        _ => {
            let request = cloud::Request {
                sim: &sim,
                caller: caller.as_ref(),
                matched: &matched,
                query: &query,
                body: &body,
            };
            let response = cloud::dispatch(request).await;
            sim.stats.count(
                "rest",
                "cloud",
                crate::stats::status_label(response.status()),
            );
            response
        }
    };
    let accepted = match &caller {
        Some(Caller::ApiToken(_)) => &matched.operation.api_token_scopes,
        _ => &required,
    };
    let accepted = accepted.names().collect::<Vec<_>>().join(", ");
    scope_headers(&mut response, caller.as_ref(), &accepted);
    if let Some((headers, _)) = budget {
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}

fn insufficient_scopes(granted: Vec<String>, required: Vec<String>) -> Response {
    let body = json!({
        "type": "error",
        "error": {
            "message": "Your credentials lack one or more required privilege scopes.",
            "detail": {"granted": granted, "required": required}
        }
    });
    cloud_json(StatusCode::FORBIDDEN, &body)
}
