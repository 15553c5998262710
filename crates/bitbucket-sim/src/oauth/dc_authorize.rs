//! Data Center's `{base}/rest/oauth2/latest/authorize`.
//!
//! - `redirect_uri` must be the link's redirect URL exactly.
//! - `scope` is honoured per request and must lie within the link's scopes; otherwise the browser
//!   goes back with `error=invalid_scope` and Bitbucket's wording.
//! - PKCE `S256` and `plain` are accepted and checked later at the token endpoint.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bitbucket_facts::{ScopeSet, datacenter};

use super::pages::{self, Consent};
use super::{Approver, Params, found, redirect_with, session_user};
use crate::Sim;
use crate::tokens::{Code, Grant, Pkce, Product};
use crate::world::dc::DcLink;

pub const PATH: &str = "/dc/rest/oauth2/latest/authorize";

const CARRIED: [&str; 7] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
];

struct Checked {
    link: Arc<DcLink>,
    redirect: String,
    state: Option<String>,
    scopes: ScopeSet,
    pkce: Option<Pkce>,
    carried: Vec<(String, String)>,
}

fn back(redirect: &str, state: Option<&str>, params: &[(&str, &str)]) -> Response {
    let mut all = params.to_vec();
    if let Some(state) = state {
        all.push(("state", state));
    }
    match redirect_with(redirect, &all, false) {
        Some(url) => found(&url),
        None => pages::error_page(StatusCode::BAD_REQUEST, "Invalid redirect_uri", redirect),
    }
}

/// Java's `Set.toString()`, the form Bitbucket's message uses: `[REPO_READ, ACCOUNT_WRITE]`.
fn bracketed(names: impl Iterator<Item = impl AsRef<str>>) -> String {
    let names: Vec<String> = names.map(|n| n.as_ref().to_owned()).collect();
    format!("[{}]", names.join(", "))
}

fn requested_scopes(link: &DcLink, params: &Params) -> Result<ScopeSet, String> {
    let Some(text) = params.non_empty("scope") else {
        return Ok(link.scopes);
    };
    let invalid = || {
        format!(
            "The scope used in the request {} is not valid for client scope {}",
            bracketed(text.split([' ', ',']).filter(|s| !s.is_empty())),
            bracketed(link.scopes.names())
        )
    };
    let requested = datacenter::parse_scopes(text).map_err(|_| invalid())?;
    if link.scopes.satisfies(&requested) {
        Ok(requested)
    } else {
        Err(invalid())
    }
}

fn requested_pkce(params: &Params) -> Result<Option<Pkce>, &'static str> {
    let Some(challenge) = params.non_empty("code_challenge") else {
        return Ok(None);
    };
    let method = params.non_empty("code_challenge_method").unwrap_or("plain");
    if method != "S256" && method != "plain" {
        return Err("Unsupported code_challenge_method; use S256 or plain.");
    }
    let well_formed = (43..=128).contains(&challenge.len())
        && challenge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    if !well_formed {
        return Err("code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~].");
    }
    Ok(Some(Pkce {
        challenge: challenge.to_owned(),
        method: method.to_owned(),
    }))
}

fn check(sim: &Sim, params: &Params) -> Result<Checked, Response> {
    let Some(link) = params
        .non_empty("client_id")
        .and_then(|id| sim.world.link(id))
    else {
        return Err(pages::error_page(
            StatusCode::BAD_REQUEST,
            "Invalid client",
            "No incoming application link has this client id.",
        ));
    };
    let redirect = match params.non_empty("redirect_uri") {
        Some(uri) if uri == link.redirect_url => uri.to_owned(),
        None => link.redirect_url.clone(),
        Some(_) => {
            return Err(pages::error_page(
                StatusCode::BAD_REQUEST,
                "Invalid redirect_uri",
                "The redirect_uri does not match the application link's redirect URL.",
            ));
        }
    };
    let state = params.get("state");
    if params.get("response_type") != Some("code") {
        return Err(back(
            &redirect,
            state,
            &[("error", "unsupported_response_type")],
        ));
    }
    let scopes = requested_scopes(&link, params).map_err(|description| {
        back(
            &redirect,
            state,
            &[
                ("error", "invalid_scope"),
                ("error_description", &description),
            ],
        )
    })?;
    let pkce = requested_pkce(params).map_err(|description| {
        back(
            &redirect,
            state,
            &[
                ("error", "invalid_request"),
                ("error_description", description),
            ],
        )
    })?;
    Ok(Checked {
        carried: CARRIED
            .iter()
            .filter_map(|name| params.get(name).map(|v| ((*name).to_owned(), v.to_owned())))
            .collect(),
        state: state.map(str::to_owned),
        link,
        redirect,
        scopes,
        pkce,
    })
}

fn approve(sim: &Sim, request: &Checked, user: &str) -> Response {
    let grant = sim.tokens.remember(Grant::new(
        Product::Dc,
        &request.link.client_id,
        user,
        request.scopes,
        Some(request.redirect.clone()),
    ));
    let expires_at = sim.clock.now() + sim.settings().dc_code_ttl as i64;
    let code = sim.tokens.issue_code(Code {
        grant,
        redirect_uri: Some(request.redirect.clone()),
        expires_at,
        pkce: request.pkce.clone(),
    });
    sim.stats.count("authorize", "dc", "granted");
    back(
        &request.redirect,
        request.state.as_deref(),
        &[("code", &code)],
    )
}

fn consent(request: &Checked, user: Option<&str>, error: Option<&str>) -> Response {
    pages::consent_page(&Consent {
        action: PATH,
        product: "Bitbucket Data Center",
        client_name: &request.link.name,
        client_description: "",
        permissions: request.scopes.names().map(str::to_owned).collect(),
        hidden: &request.carried,
        signed_in_as: user,
        error,
    })
}

/// `GET {base}/rest/oauth2/latest/authorize`
pub async fn show(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let request = match check(&sim, &params) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let auto = sim.settings().dc_auto_approve.clone();
    if let Some(user) = auto.filter(|u| sim.world.dc().users.contains_key(u)) {
        return approve(&sim, &request, &user);
    }
    consent(
        &request,
        session_user(&sim, &headers, Product::Dc).as_deref(),
        None,
    )
}

/// `POST {base}/rest/oauth2/latest/authorize`: Allow or Deny.
pub async fn decide(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = Params::parse(&body);
    let request = match check(&sim, &params) {
        Ok(request) => request,
        Err(response) => return response,
    };
    if params.get("decision") != Some("grant") {
        sim.stats.count("authorize", "dc", "denied");
        let denied = [("error", "access_denied")];
        return back(&request.redirect, request.state.as_deref(), &denied);
    }
    Approver::of(&sim, &headers, &params, Product::Dc)
        .approve(|user| approve(&sim, &request, user))
        .unwrap_or_else(|| consent(&request, None, Some("Incorrect username or password.")))
}
