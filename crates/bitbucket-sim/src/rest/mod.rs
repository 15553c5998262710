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
use bitbucket_facts::operations::OperationTable;
use serde_json::{Value, json};

use crate::oauth::{Params, bearer};
use crate::settings::Mode;
use crate::tokens::{AccessCheck, Grant};
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

/// Who is calling: a token's grant, or nobody.
fn caller(sim: &Sim, headers: &HeaderMap, query: &Params) -> Result<Option<Arc<Grant>>, Response> {
    let mode = sim.settings().mode;
    let Some(token) = bearer(headers, query, mode) else {
        return Ok(None);
    };
    match sim.tokens.check_access(&token, sim.clock.now()) {
        AccessCheck::Valid(grant) => Ok(Some(grant)),
        AccessCheck::Expired if mode == Mode::Legacy => Err(cloud_error(
            StatusCode::UNAUTHORIZED,
            "Access token expired. Use your refresh token to obtain a new access token.",
        )),
        AccessCheck::Expired | AccessCheck::Invalid => Err(cloud_error(
            StatusCode::UNAUTHORIZED,
            "Token is invalid, expired, or not supported for this endpoint.",
        )),
    }
}

fn scope_headers(response: &mut Response, granted: Option<&Grant>, accepted: &str) {
    let headers = response.headers_mut();
    if let Some(grant) = granted
        && let Ok(value) =
            HeaderValue::from_str(&grant.scopes.names().collect::<Vec<_>>().join(", "))
    {
        headers.insert("x-oauth-scopes", value);
    }
    if let Ok(value) = HeaderValue::from_str(accepted) {
        headers.insert("x-accepted-oauth-scopes", value);
    }
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
    let accepted = required.names().collect::<Vec<_>>().join(", ");
    let grant = match caller(&sim, &headers, &query) {
        Ok(grant) => grant,
        Err(response) => {
            sim.stats.count("rest", "cloud", "401");
            return response;
        }
    };
    let mut response = match &grant {
        None if !required.is_empty() => {
            sim.stats.count("rest", "cloud", "401");
            cloud_error(StatusCode::UNAUTHORIZED, "Authentication required.")
        }
        Some(grant) if !grant.scopes.satisfies(&required) => {
            sim.stats.count("rest", "cloud", "403");
            insufficient_scopes(grant, &required.to_vec())
        }
        _ => {
            let request = cloud::Request {
                sim: &sim,
                grant: grant.as_deref(),
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
    scope_headers(&mut response, grant.as_deref(), &accepted);
    response
}

fn insufficient_scopes(grant: &Grant, required: &[String]) -> Response {
    let body = json!({
        "type": "error",
        "error": {
            "message": "Your credentials lack one or more required privilege scopes.",
            "detail": {"granted": grant.scopes.to_vec(), "required": required}
        }
    });
    cloud_json(StatusCode::FORBIDDEN, &body)
}
