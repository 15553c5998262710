//! Cloud's token endpoint, `POST /site/oauth2/access_token`.
//!
//! Bodies are byte-for-byte Bitbucket's: Python-style JSON, errors as
//! `{"error_description": …, "error": …}` with HTTP 400, `unauthorized_client` for bad client
//! credentials, `invalid_request` / `Invalid refresh_token` for a dead refresh token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{Params, basic_credentials};
use crate::settings::{Mode, Settings};
use crate::tokens::{Grant, Product, RefreshPolicy};
use crate::world::cloud::Consumer;
use crate::{Sim, util};

/// A token endpoint error, as Bitbucket words it.
#[derive(Debug)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            error,
            description: description.into(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error_description: &'a str,
    error: &'a str,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = util::python_json(&ErrorBody {
            error_description: &self.description,
            error: self.error,
        });
        json_response(StatusCode::BAD_REQUEST, body)
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The success body. Legacy mode names the scopes `scopes`, 2026 mode `scope`; `state` echoes
/// the grant type, not the client's state.
#[derive(Serialize)]
struct TokenBody {
    access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    token_type: &'static str,
    state: &'static str,
}

fn invalid_refresh() -> OAuthError {
    OAuthError::new("invalid_request", "Invalid refresh_token")
}

fn invalid_code() -> OAuthError {
    OAuthError::new("invalid_grant", "The specified code is not valid.")
}

/// `POST /site/oauth2/access_token`
pub async fn exchange(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let (kind, result) = handle(&sim, &headers, &body);
    match result {
        Ok(body) => {
            sim.stats.count("token", kind, "ok");
            json_response(StatusCode::OK, util::python_json(&body))
        }
        Err(error) => {
            sim.stats.count("token", kind, error.error);
            error.into_response()
        }
    }
}

fn handle(
    sim: &Sim,
    headers: &HeaderMap,
    body: &[u8],
) -> (&'static str, Result<TokenBody, OAuthError>) {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let params = if is_form {
        Params::parse(body)
    } else {
        Params::default()
    };
    let (kind, grant_type) = match params.get("grant_type") {
        Some("authorization_code") => ("authorization_code", "authorization_code"),
        Some("refresh_token") => ("refresh_token", "refresh_token"),
        Some("client_credentials") => ("client_credentials", "client_credentials"),
        other => {
            let shown = other.unwrap_or("None");
            let error =
                OAuthError::new("invalid_grant", format!("Unsupported grant type: {shown}"));
            return ("unsupported", Err(error));
        }
    };
    let consumer = match authenticate(sim, headers, &params) {
        Ok(consumer) => consumer,
        Err(error) => return (kind, Err(error)),
    };
    let settings = sim.settings().clone();
    let now = sim.clock.now();
    let result = match grant_type {
        "authorization_code" => code_grant(sim, &settings, &consumer, &params, now),
        "refresh_token" => refresh_grant(sim, &settings, &consumer, &params, now),
        _ => client_credentials_grant(sim, &settings, &consumer, now),
    };
    (kind, result)
}

/// HTTP Basic `key:secret` or `client_id`/`client_secret` form fields; a secret is required.
fn authenticate(
    sim: &Sim,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Arc<Consumer>, OAuthError> {
    let bad = || OAuthError::new("unauthorized_client", "Invalid OAuth client credentials");
    let (key, secret) = match basic_credentials(headers) {
        Some(Some(pair)) => pair,
        Some(None) => return Err(bad()),
        None => match (params.non_empty("client_id"), params.get("client_secret")) {
            (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
            (Some(_), None) => return Err(bad()),
            (None, _) => {
                return Err(OAuthError::new(
                    "unauthorized_client",
                    "Requests must be authenticated using OAuth client credentials",
                ));
            }
        },
    };
    match sim.world.consumer(&key) {
        Some(consumer) if consumer.secret == secret => Ok(consumer),
        _ => Err(bad()),
    }
}

fn policy(settings: &Settings) -> RefreshPolicy {
    match settings.mode {
        Mode::Legacy => RefreshPolicy {
            rotating: false,
            grace: 0,
            idle_expiry: None,
        },
        Mode::Rotating => RefreshPolicy {
            rotating: true,
            grace: settings.refresh_grace as i64,
            idle_expiry: Some(settings.refresh_idle_expiry as i64),
        },
    }
}

/// Builds the answer; `refresh_token` is what to hand back, if anything.
fn answer(
    sim: &Sim,
    settings: &Settings,
    grant: &Arc<Grant>,
    refresh_token: Option<String>,
    state: &'static str,
    now: i64,
) -> TokenBody {
    let ttl = settings.access_token_ttl;
    let access_token =
        sim.tokens
            .issue_access(grant, ttl, settings.cloud_access_token_length(), now);
    let scopes = grant.scopes.to_string();
    let (scopes, scope) = match settings.mode {
        Mode::Legacy => (Some(scopes), None),
        Mode::Rotating => (None, Some(scopes)),
    };
    TokenBody {
        access_token,
        scopes,
        scope,
        expires_in: ttl,
        refresh_token,
        token_type: "bearer",
        state,
    }
}

fn code_grant(
    sim: &Sim,
    settings: &Settings,
    consumer: &Consumer,
    params: &Params,
    now: i64,
) -> Result<TokenBody, OAuthError> {
    if consumer.callback_url.is_none() {
        return Err(OAuthError::new(
            "invalid_request",
            "No callback uri defined for the OAuth client.",
        ));
    }
    let code = params.non_empty("code").ok_or_else(invalid_code)?;
    let code = sim
        .tokens
        .take_code(code, &consumer.key, now)
        .ok_or_else(invalid_code)?;
    if let Some(expected) = &code.redirect_uri
        && params.get("redirect_uri") != Some(expected.as_str())
    {
        return Err(OAuthError::new(
            "invalid_grant",
            "redirect_uri does not match the one given to authorize.",
        ));
    }
    let refresh = sim.tokens.issue_refresh(&code.grant, policy(settings), now);
    Ok(answer(
        sim,
        settings,
        &code.grant,
        Some(refresh),
        "authorization_code",
        now,
    ))
}

fn refresh_grant(
    sim: &Sim,
    settings: &Settings,
    consumer: &Consumer,
    params: &Params,
    now: i64,
) -> Result<TokenBody, OAuthError> {
    let presented = params
        .non_empty("refresh_token")
        .ok_or_else(invalid_refresh)?;
    let grant = sim
        .tokens
        .use_refresh(presented, &consumer.key, now)
        .ok_or_else(invalid_refresh)?;
    let refresh = match settings.mode {
        Mode::Legacy => presented.to_owned(),
        Mode::Rotating => sim.tokens.issue_refresh(&grant, policy(settings), now),
    };
    Ok(answer(
        sim,
        settings,
        &grant,
        Some(refresh),
        "refresh_token",
        now,
    ))
}

fn client_credentials_grant(
    sim: &Sim,
    settings: &Settings,
    consumer: &Consumer,
    now: i64,
) -> Result<TokenBody, OAuthError> {
    if !consumer.private {
        return Err(OAuthError::new(
            "invalid_grant",
            "Cannot use client_credentials with a consumer marked as \"public\". Calls for auto \
             generated consumers should use urn:bitbucket:oauth2:jwt instead.",
        ));
    }
    let grant = sim.tokens.remember(Grant::new(
        Product::Cloud,
        &consumer.key,
        &consumer.owner,
        consumer.scopes,
        None,
    ));
    let refresh = match settings.mode {
        Mode::Legacy => Some(sim.tokens.issue_refresh(&grant, policy(settings), now)),
        Mode::Rotating => None,
    };
    Ok(answer(
        sim,
        settings,
        &grant,
        refresh,
        "client_credentials",
        now,
    ))
}
