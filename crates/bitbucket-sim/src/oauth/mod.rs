//! OAuth 2: the authorize pages and token endpoints of Cloud and Data Center.

pub mod cloud_authorize;
pub mod cloud_token;
pub mod dc_authorize;
pub mod dc_token;
pub mod pages;

use axum::http::StatusCode;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Sim;
use crate::settings::Mode;
use crate::tokens::Product;

/// Request parameters (query string or form body) as received; the first of a repeated name wins.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(text: &[u8]) -> Params {
        Params(url::form_urlencoded::parse(text).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A parameter that is present and not empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.is_empty())
    }
}

/// Client credentials from an `Authorization: Basic` header, if there is one.
/// `Some(None)` means a Basic header that could not be decoded.
pub fn basic_credentials(headers: &HeaderMap) -> Option<Option<(String, String)>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    Some(decoded.and_then(|text| {
        text.split_once(':')
            .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
    }))
}

/// `302 Found`, the status Bitbucket redirects with.
pub fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// Appends parameters to a redirect URL, in its query or (implicit grant) its fragment.
pub fn redirect_with(base: &str, params: &[(&str, &str)], in_fragment: bool) -> Option<String> {
    let mut url = url::Url::parse(base).ok()?;
    if in_fragment {
        let fragment = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        url.set_fragment(Some(&fragment));
    } else {
        url.query_pairs_mut().extend_pairs(params);
    }
    Some(url.into())
}

const SESSION_COOKIE: &str = "bbsim_session";

/// The simulated user signed in on this browser for a product, from the session cookie.
pub fn session_user(sim: &Sim, headers: &HeaderMap, product: Product) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let session = cookies
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)?;
    let entry = sim.sessions.get(session)?;
    (entry.0 == product).then(|| entry.1.clone())
}

/// Who grants an authorization on the consent form.
pub enum Approver {
    /// Already signed in on this browser.
    Session(String),
    /// Signed in with the form's username and password; carries the `Set-Cookie` value.
    SignedIn(String, String),
    /// Wrong username or password.
    Refused,
}

impl Approver {
    pub fn of(sim: &Sim, headers: &HeaderMap, params: &Params, product: Product) -> Approver {
        if let Some(user) = session_user(sim, headers, product) {
            return Approver::Session(user);
        }
        let username = params.get("username").unwrap_or_default();
        let password = params.get("password").unwrap_or_default();
        let known = match product {
            Product::Cloud => sim
                .world
                .cloud()
                .users
                .get(username)
                .map(|u| u.password.clone()),
            Product::Dc => sim
                .world
                .dc()
                .users
                .get(username)
                .map(|u| u.password.clone()),
        };
        if known.is_none_or(|expected| expected != password) {
            return Approver::Refused;
        }
        let session = crate::util::token(32);
        sim.sessions
            .insert(session.clone(), (product, username.to_owned()));
        let cookie = format!("{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax");
        Approver::SignedIn(username.to_owned(), cookie)
    }

    /// Runs `approve` for the user and sets the session cookie after a fresh sign-in.
    pub fn approve(self, approve: impl FnOnce(&str) -> Response) -> Option<Response> {
        match self {
            Approver::Refused => None,
            Approver::Session(user) => Some(approve(&user)),
            Approver::SignedIn(user, cookie) => {
                let mut response = approve(&user);
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                }
                Some(response)
            }
        }
    }
}

/// The bearer token of a request. Legacy mode also takes `?access_token=`, as Bitbucket did
/// before May 2026.
pub fn bearer<'a>(headers: &'a HeaderMap, query: &'a Params, mode: Mode) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    from_header.or_else(|| match mode {
        Mode::Legacy => query.non_empty("access_token").map(str::to_owned),
        Mode::Rotating => None,
    })
}
