//! Extractors whose rejections are problem+json: the API key, JSON bodies, query strings, ids.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use grantry_core::Actor;
use grantry_core::store::{ApiKeyRecord, Role};
use secrecy::SecretString;
use serde::de::DeserializeOwned;

use crate::problem::Problem;
use crate::state::AppState;

/// An application (or admin) authenticated by its API key: `Authorization: Bearer gry_…`, or
/// HTTP Basic with the key as the password (or the user name), for clients that speak only Basic.
pub struct Caller {
    pub key: std::sync::Arc<ApiKeyRecord>,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::ApiKey {
            id: self.key.id.clone(),
            role: self.key.role,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(Problem::unauthorized(
                "send an API key: `Authorization: Bearer gry_…`",
            ));
        };
        let Some(presented) = value.to_str().ok().and_then(presented_key) else {
            return Err(Problem::unauthorized(
                "the Authorization header must be `Bearer` and an API key (or Basic with the key as the password)",
            ));
        };
        match state.grantry.authenticate(&presented).await? {
            Some(key) => Ok(Caller { key }),
            None => Err(Problem::unauthorized(
                "the API key is not valid (unknown or revoked)",
            )),
        }
    }
}

/// The API key in an `Authorization` value: `Bearer gry_…`, or Basic `anything:gry_…`.
fn presented_key(value: &str) -> Option<SecretString> {
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(SecretString::from(rest.trim().to_owned()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let decoded = zeroize::Zeroizing::new(String::from_utf8(decoded).ok()?);
    let (user, password) = decoded.split_once(':')?;
    let key = if password.starts_with(grantry_crypto::API_KEY_PREFIX) {
        password
    } else {
        user
    };
    Some(SecretString::from(key.to_owned()))
}

/// A caller with the admin role.
pub struct AdminCaller(pub Caller);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.key.role != Role::Admin {
            return Err(Problem::forbidden(
                "this needs an API key with the admin role",
            ));
        }
        Ok(AdminCaller(caller))
    }
}

/// A JSON body whose every rejection is a problem naming what is wrong.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Problem> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(Body(value))
    }
}

/// A query string, rejected as a problem.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

/// Where the request comes from (for throttling sign-ins): the peer, or behind a trusted reverse
/// proxy the address it forwarded.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(crate::server::client_address(
            parts,
            state.http.trust_forwarded_for,
        )))
    }
}

/// The request's cookies as `(name, value)`, from every `Cookie` header.
pub fn cookies(headers: &axum::http::HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

/// A single path parameter, rejected as a problem.
pub struct PathParam(pub String);

impl FromRequestParts<AppState> for PathParam {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let axum::extract::Path(value) =
            axum::extract::Path::<String>::from_request_parts(parts, state).await?;
        Ok(PathParam(value))
    }
}
