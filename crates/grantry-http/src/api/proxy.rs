//! `/v1/proxy/{connection}/{path}`: the application's call, made to Bitbucket's REST API with the
//! connection's token, for applications that would rather not handle tokens at all. The path is
//! Bitbucket's own (`2.0/user`, `rest/api/1.0/projects`) or short, below the profile's REST base
//! (`user`, `projects`); the caller's API key never leaves Grantry.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, OriginalUri, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use grantry_core::CoreError;
use grantry_core::ids::ConnectionId;
use grantry_core::provider::{ApiRequest, FORWARDED_REQUEST_HEADERS};
use grantry_core::proxy::ProxyPath;

use crate::extract::Caller;
use crate::problem::Problem;
use crate::state::AppState;

/// The methods of Bitbucket's REST API; anything else (CONNECT, TRACE, …) stays here.
const PROXIED_METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The connection and the rest of the path, taken from the URI as sent (percent-encoding
/// included: Bitbucket reads `%2F` inside a segment as part of it) and checked to stay below the
/// REST API in every spelling.
pub struct ProxyTarget {
    connection: ConnectionId,
    path: ProxyPath,
}

impl FromRequestParts<AppState> for ProxyTarget {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &AppState,
    ) -> Result<Self, Problem> {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        let rest = uri.path().strip_prefix("/v1/proxy/").unwrap_or_default();
        let (connection, path) = rest.split_once('/').unwrap_or((rest, ""));
        Ok(ProxyTarget {
            connection: ConnectionId::parse(connection)?,
            path: ProxyPath::parse(path).map_err(|e| Problem::from(CoreError::from(e)))?,
        })
    }
}

pub async fn proxy(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    OriginalUri(uri): OriginalUri,
    target: ProxyTarget,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    if !PROXIED_METHODS.contains(&method) {
        return Err(Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not proxied",
            format!("{method} is not proxied; use GET, HEAD, POST, PUT, PATCH or DELETE"),
        ));
    }
    let request = ApiRequest {
        method: method.as_str().to_owned(),
        path: target.path,
        query: uri.query().map(str::to_owned),
        headers: FORWARDED_REQUEST_HEADERS
            .iter()
            .flat_map(|name| {
                headers
                    .get_all(*name)
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .map(|value| ((*name).to_owned(), value.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect(),
        body: body.to_vec(),
    };
    let answer = state
        .grantry
        .proxy(&target.connection, &request, &caller.actor())
        .await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, answer.body).into_response();
    response
        .extensions_mut()
        .insert(crate::middleware::FromProvider);
    let out = response.headers_mut();
    out.remove(axum::http::header::CONTENT_TYPE);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            out.append(name, value);
        }
    }
    Ok(response)
}
