//! Cloud's `/site/oauth2/authorize`: redirect rules, sign-in, consent, codes and implicit tokens.
//!
//! - `redirect_uri`, when given, must start with the consumer's callback URL; otherwise Bitbucket
//!   shows an "Invalid redirect_uri" page and does not redirect.
//! - `scope` is ignored: the consumer's checkboxes decide.
//! - `state` is returned untouched.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bitbucket_facts::cloud;

use super::pages::{self, Consent};
use super::{Approver, Params, found, redirect_with, session_user};
use crate::Sim;
use crate::tokens::{Code, Grant, Product};
use crate::world::cloud::Consumer;

const CARRIED: [&str; 5] = [
    "client_id",
    "response_type",
    "state",
    "redirect_uri",
    "scope",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseType {
    Code,
    Token,
}

/// An authorize request whose client and redirect URL have been checked.
struct Checked {
    consumer: Arc<Consumer>,
    /// Where the browser goes back to.
    redirect: String,
    /// The `redirect_uri` parameter, which the code exchange must repeat.
    redirect_param: Option<String>,
    response_type: ResponseType,
    state: Option<String>,
    carried: Vec<(String, String)>,
}

impl Checked {
    fn back(&self, params: &[(&str, &str)], in_fragment: bool) -> Response {
        let mut all: Vec<(&str, &str)> = params.to_vec();
        if let Some(state) = &self.state {
            all.push(("state", state));
        }
        match redirect_with(&self.redirect, &all, in_fragment) {
            Some(url) => found(&url),
            None => invalid_redirect(),
        }
    }
}

fn invalid_redirect() -> Response {
    pages::error_page(
        StatusCode::BAD_REQUEST,
        "Invalid redirect_uri",
        "This integration is misconfigured. Contact the vendor for assistance.",
    )
}

fn check(sim: &Sim, params: &Params) -> Result<Checked, Response> {
    let bad_client =
        |message: &str| pages::error_page(StatusCode::BAD_REQUEST, "Invalid client_id", message);
    let Some(client_id) = params.non_empty("client_id") else {
        return Err(bad_client("The request has no client_id."));
    };
    let Some(consumer) = sim.world.consumer(client_id) else {
        return Err(bad_client("No OAuth consumer has this key."));
    };
    let Some(callback) = consumer.callback_url.clone() else {
        return Err(pages::error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "No callback uri defined for the OAuth client.",
        ));
    };
    let redirect_param = params.non_empty("redirect_uri").map(str::to_owned);
    let redirect = match &redirect_param {
        Some(uri) if uri.starts_with(&callback) => uri.clone(),
        Some(_) => return Err(invalid_redirect()),
        None => callback,
    };
    let mut checked = Checked {
        consumer,
        redirect,
        redirect_param,
        response_type: ResponseType::Code,
        state: params.get("state").map(str::to_owned),
        carried: CARRIED
            .iter()
            .filter_map(|name| params.get(name).map(|v| ((*name).to_owned(), v.to_owned())))
            .collect(),
    };
    checked.response_type = match params.get("response_type") {
        Some("code") => ResponseType::Code,
        Some("token") => ResponseType::Token,
        _ => return Err(checked.back(&[("error", "unsupported_response_type")], false)),
    };
    Ok(checked)
}

/// Issues a code (or, for the implicit grant, an access token) and sends the browser back.
fn approve(sim: &Sim, request: &Checked, user: &str) -> Response {
    let now = sim.clock.now();
    let consumer = &request.consumer;
    let grant = sim.tokens.remember(Grant::new(
        Product::Cloud,
        &consumer.key,
        user,
        consumer.scopes,
        None,
    ));
    sim.stats.count("authorize", "cloud", "granted");
    let settings = sim.settings();
    match request.response_type {
        ResponseType::Code => {
            let code = sim.tokens.issue_code(Code {
                grant,
                redirect_uri: request.redirect_param.clone(),
                expires_at: now + settings.code_ttl as i64,
                pkce: None,
            });
            request.back(&[("code", &code)], false)
        }
        ResponseType::Token => {
            let length = settings.cloud_access_token_length();
            let ttl = settings.access_token_ttl;
            let token = sim.tokens.issue_access(&grant, ttl, length, now);
            let scopes = consumer.scopes.to_string();
            let fields = [
                ("access_token", token.as_str()),
                ("scopes", scopes.as_str()),
                ("expires_in", &ttl.to_string()),
                ("token_type", "bearer"),
            ];
            request.back(&fields, true)
        }
    }
}

fn consent(request: &Checked, user: Option<&str>, error: Option<&str>) -> Response {
    let consumer = &request.consumer;
    let permissions = cloud::CHECKBOXES
        .iter()
        .filter(|b| consumer.scopes.contains(b.scope))
        .map(|b| format!("{}: {} ({})", b.group, b.label, b.scope))
        .collect();
    pages::consent_page(&Consent {
        action: "/site/oauth2/authorize",
        product: "Bitbucket",
        client_name: &consumer.name,
        client_description: &consumer.description,
        permissions,
        hidden: &request.carried,
        signed_in_as: user,
        error,
    })
}

fn auto_approver(sim: &Sim) -> Option<String> {
    let user = sim.settings().auto_approve.clone()?;
    sim.world.cloud().users.contains_key(&user).then_some(user)
}

/// `GET /site/oauth2/authorize`
pub async fn show(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let request = match check(&sim, &params) {
        Ok(request) => request,
        Err(page) => return page,
    };
    if let Some(user) = auto_approver(&sim) {
        return approve(&sim, &request, &user);
    }
    let user = session_user(&sim, &headers, Product::Cloud);
    consent(&request, user.as_deref(), None)
}

/// `POST /site/oauth2/authorize`: the consent form's Grant or Deny.
pub async fn decide(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = Params::parse(&body);
    let request = match check(&sim, &params) {
        Ok(request) => request,
        Err(page) => return page,
    };
    if params.get("decision") != Some("grant") {
        sim.stats.count("authorize", "cloud", "denied");
        let denied = [
            ("error", "access_denied"),
            ("error_description", "The user denied access."),
        ];
        return request.back(&denied, false);
    }
    Approver::of(&sim, &headers, &params, Product::Cloud)
        .approve(|user| approve(&sim, &request, user))
        .unwrap_or_else(|| consent(&request, None, Some("Incorrect username or password.")))
}
