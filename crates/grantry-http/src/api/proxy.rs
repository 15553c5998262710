//! `/v1/proxy/{connection}/{path}`: the application's call, made to Bitbucket's REST API with the
//! connection's token, for applications that would rather not handle tokens at all. The path is
//! taken below the profile's REST base (`…/2.0/` on Cloud, `…/rest/api/latest/` on Data Center);
//! the caller's API key never leaves Grantry.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, OriginalUri, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use grantry_core::ids::ConnectionId;
use grantry_core::provider::{ApiRequest, FORWARDED_REQUEST_HEADERS};

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

/// The two path parameters: the connection and the rest of the path.
pub struct ProxyPath {
    connection: ConnectionId,
    segments: Vec<String>,
}

impl FromRequestParts<AppState> for ProxyPath {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Problem> {
        let axum::extract::Path((connection, path)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state).await?;
        Ok(ProxyPath {
            connection: ConnectionId::parse(&connection)?,
            segments: segments(&path)?,
        })
    }
}

/// The path below the REST base as segments. `.` and `..` and empty segments (other than a
/// trailing one, which Bitbucket's `src` listings use) are refused: they could only be meant to
/// leave the API.
fn segments(path: &str) -> Result<Vec<String>, Problem> {
    let parts: Vec<&str> = path.split('/').collect();
    let last = parts.len() - 1;
    for (n, part) in parts.iter().enumerate() {
        let bad = matches!(*part, "." | "..") || (part.is_empty() && n != last);
        if bad {
            return Err(Problem::bad_request(format!(
                "the proxied path `{path}` has an empty, `.` or `..` segment; give the REST path \
                 below the API base, e.g. `repositories/acme/widget`"
            )));
        }
    }
    if path.is_empty() {
        return Err(Problem::bad_request(
            "give the REST path below the API base, e.g. /v1/proxy/con_…/user",
        ));
    }
    Ok(parts.into_iter().map(str::to_owned).collect())
}

pub async fn proxy(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    OriginalUri(uri): OriginalUri,
    path: ProxyPath,
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
        segments: path.segments,
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
        .proxy(&path.connection, &request, &caller.actor())
        .await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, answer.body).into_response();
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

#[cfg(test)]
mod tests {
    use super::segments;

    #[test]
    fn paths_stay_below_the_api_base() {
        assert_eq!(
            segments("repositories/acme/widget").unwrap(),
            ["repositories", "acme", "widget"]
        );
        assert_eq!(
            segments("repositories/acme/widget/src/main/").unwrap(),
            ["repositories", "acme", "widget", "src", "main", ""],
            "a trailing slash is kept"
        );
        for bad in ["", "..", "user/../../x", "./user", "a//b", "/user"] {
            assert!(segments(bad).is_err(), "{bad:?} is refused");
        }
    }
}
