//! The OpenAPI 3.1 document of `/v1`, generated from the handlers' own types and annotations by
//! utoipa (derive macros only: nothing runs per request but serving the finished JSON). Served
//! without a key at `GET /v1/openapi.json` and kept in the repository as `docs/openapi.json`;
//! a test fails when the two differ, so an API change shows in review.
//!
//! utoipa rather than aide or a hand-written document: it reads the serde attributes the
//! handlers already use (tags, renames, defaults), so the document cannot describe a body the
//! server does not parse, and its macros add no runtime dependency.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::responses::{ProblemCode, ProblemDoc};
use super::{connections, events, keys, profiles, proxy, sessions, webhooks};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "A Grantry API key (`gry_…`): `app` keys use connections, `admin` keys also manage profiles, keys, webhooks and read events.",
            ))
            .build();
        components.add_security_scheme("api_key", SecurityScheme::Http(bearer));
        let basic = HttpBuilder::new()
            .scheme(HttpAuthScheme::Basic)
            .description(Some(
                "The proxy only: the API key as the Basic password (any user name), for clients that speak only Basic.",
            ))
            .build();
        components.add_security_scheme("api_key_basic", SecurityScheme::Http(basic));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Grantry",
        description = "A self-hosted OAuth connection broker for Bitbucket: profiles, connect sessions, connections and their tokens, a proxy to Bitbucket's REST API, webhooks and the audit trail. Times are RFC 3339; lists page with `cursor` and `limit`; errors are `application/problem+json` with a stable `code`. The readable guide is docs/api.md."
    ),
    paths(
        profiles::create, profiles::list, profiles::show, profiles::edit, profiles::delete,
        sessions::create, sessions::confirm,
        connections::list, connections::create, connections::show, connections::delete,
        connections::token, connections::refresh, connections::test,
        keys::create, keys::list, keys::revoke,
        events::list,
        webhooks::create, webhooks::list, webhooks::show, webhooks::edit, webhooks::delete,
        webhooks::rotate_secret, webhooks::test, webhooks::deliveries, webhooks::redeliver,
        proxy::get, proxy::head, proxy::post, proxy::put, proxy::patch, proxy::delete,
        document,
    ),
    components(schemas(ProblemDoc, ProblemCode)),
    modifiers(&Security),
    security(("api_key" = [])),
    tags(
        (name = "profiles", description = "Application connection profiles: a Bitbucket OAuth consumer or Data Center link and what it may do"),
        (name = "connect", description = "Connect sessions: single-use links that walk an end user through Bitbucket's consent"),
        (name = "connections", description = "Connected accounts and credentials, and a valid token for any of them"),
        (name = "proxy", description = "Bitbucket's REST API, called with a connection's credential that never leaves Grantry"),
        (name = "webhooks", description = "Signed messages about connections' lives"),
        (name = "admin", description = "API keys and the audit trail"),
    )
)]
pub struct ApiDoc;

/// The document as served and as kept in `docs/openapi.json`.
pub fn json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document =
            serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        fix_link_fields(&mut document);
        let mut text =
            serde_json::to_string_pretty(&document).expect("the OpenAPI document serializes");
        text.push('\n');
        text
    })
}

/// utoipa 5.5 writes a Link object's fields in snake case (`operation_id`); OpenAPI spells them
/// `operationId`, `operationRef` and `requestBody`, and tools ignore the others.
fn fix_link_fields(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(links)) = map.get_mut("links") {
                for link in links.values_mut() {
                    if let serde_json::Value::Object(link) = link {
                        for (from, to) in [
                            ("operation_id", "operationId"),
                            ("operation_ref", "operationRef"),
                            ("request_body", "requestBody"),
                        ] {
                            if let Some(field) = link.remove(from) {
                                link.insert(to.to_owned(), field);
                            }
                        }
                    }
                }
            }
            map.values_mut().for_each(fix_link_fields);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(fix_link_fields),
        _ => {}
    }
}

/// This document.
#[utoipa::path(
    get,
    operation_id = "getOpenApiDocument",
    path = "/v1/openapi.json",
    tag = "admin",
    security(()),
    responses((status = 200, description = "This document", content_type = "application/json", body = Object))
)]
pub async fn document() -> Response {
    let content_type = HeaderValue::from_static("application/json");
    ([(header::CONTENT_TYPE, content_type)], json()).into_response()
}
