//! Data Center's token endpoint, `POST {base}/rest/oauth2/latest/token`.
//!
//! Client authentication is `client_id`/`client_secret` in the form. `redirect_uri` is checked on
//! the code grant and again on the refresh grant. Every refresh returns a new refresh token.
//! Errors follow RFC 6749 (Data Center's exact wording is not documented).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Params;
use crate::Sim;
use crate::settings::Settings;
use crate::tokens::{Grant, Pkce, RefreshPolicy};
use crate::world::dc::DcLink;

pub const PATH: &str = "/dc/rest/oauth2/latest/token";

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: String,
}

#[derive(Debug)]
struct Refused(StatusCode, ErrorBody);

fn refused(status: StatusCode, error: &'static str, description: &str) -> Refused {
    Refused(
        status,
        ErrorBody {
            error,
            error_description: description.to_owned(),
        },
    )
}

fn invalid_grant(description: &str) -> Refused {
    refused(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

#[derive(Debug, Serialize)]
struct TokenBody {
    scope: String,
    access_token: String,
    refresh_token: String,
    expires_in: u64,
    token_type: &'static str,
}

/// `POST {base}/rest/oauth2/latest/token`
pub async fn exchange(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let params = Params::parse(&body);
    let kind = match params.get("grant_type") {
        Some("authorization_code") => "authorization_code",
        Some("refresh_token") => "refresh_token",
        _ => "unsupported",
    };
    match handle(&sim, kind, &params) {
        Ok(body) => {
            sim.stats.count("dc_token", kind, "ok");
            Json(body).into_response()
        }
        Err(Refused(status, body)) => {
            sim.stats.count("dc_token", kind, body.error);
            (status, Json(body)).into_response()
        }
    }
}

fn handle(sim: &Sim, kind: &str, params: &Params) -> Result<TokenBody, Refused> {
    if kind == "unsupported" {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ));
    }
    let link = authenticate(sim, params)?;
    let settings = sim.settings().clone();
    let now = sim.clock.now();
    let grant = if kind == "authorization_code" {
        code_grant(sim, &link, params, now)?
    } else {
        refresh_grant(sim, &link, params, now)?
    };
    Ok(answer(sim, &settings, &grant, now))
}

fn authenticate(sim: &Sim, params: &Params) -> Result<Arc<DcLink>, Refused> {
    let link = params
        .non_empty("client_id")
        .and_then(|id| sim.world.link(id));
    match (link, params.get("client_secret")) {
        (Some(link), Some(secret)) if link.client_secret == secret => Ok(link),
        _ => Err(refused(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        )),
    }
}

fn code_grant(sim: &Sim, link: &DcLink, params: &Params, now: i64) -> Result<Arc<Grant>, Refused> {
    let code = params
        .non_empty("code")
        .and_then(|code| sim.tokens.take_code(code, &link.client_id, now))
        .ok_or_else(|| invalid_grant("The authorization code is invalid or has expired"))?;
    if params.get("redirect_uri") != code.redirect_uri.as_deref() {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    if let Some(pkce) = &code.pkce {
        verify_pkce(pkce, params.get("code_verifier"))?;
    }
    Ok(code.grant)
}

fn verify_pkce(pkce: &Pkce, verifier: Option<&str>) -> Result<(), Refused> {
    let Some(verifier) = verifier.filter(|v| !v.is_empty()) else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code_verifier is required",
        ));
    };
    let derived = match pkce.method.as_str() {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        _ => verifier.to_owned(),
    };
    if derived == pkce.challenge {
        Ok(())
    } else {
        Err(invalid_grant(
            "code_verifier does not match the code_challenge",
        ))
    }
}

fn refresh_grant(
    sim: &Sim,
    link: &DcLink,
    params: &Params,
    now: i64,
) -> Result<Arc<Grant>, Refused> {
    let grant = params
        .non_empty("refresh_token")
        .and_then(|token| sim.tokens.use_refresh(token, &link.client_id, now))
        .ok_or_else(|| invalid_grant("The refresh token is invalid or has expired"))?;
    if params.get("redirect_uri") != grant.redirect_uri.as_deref() {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    Ok(grant)
}

fn answer(sim: &Sim, settings: &Settings, grant: &Arc<Grant>, now: i64) -> TokenBody {
    let policy = RefreshPolicy {
        rotating: true,
        grace: settings.dc_refresh_grace as i64,
        idle_expiry: Some(settings.dc_refresh_token_ttl as i64),
    };
    TokenBody {
        scope: grant.scopes.to_string(),
        access_token: sim
            .tokens
            .issue_access(grant, settings.dc_access_token_ttl, 44, now),
        refresh_token: sim.tokens.issue_refresh(grant, policy, now),
        expires_in: settings.dc_access_token_ttl,
        token_type: "bearer",
    }
}
