//! Pages Grantry shows browsers directly in the connect flow, built with maud like the console
//! (everything not marked as markup is escaped). They carry a strict Content-Security-Policy, no
//! referrer (their URLs carry codes) and are never cached.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;\
color:#1b1f24;line-height:1.5}h1{font-size:1.4rem}.box{border:1px solid #d0d7de;border-radius:8px;\
padding:1rem 1.25rem}.ok{color:#116329}.bad{color:#a40e26}code{background:#f6f8fa;padding:.1rem .3rem}";

/// Security headers for pages: no scripts, no framing, no referrer, no caching.
pub fn harden(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A whole page around `body`.
pub fn page(status: StatusCode, title: &str, body: Markup) -> Response {
    let document = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Grantry" }
                style { (PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    };
    let mut response = (status, Html(document.into_string())).into_response();
    harden(&mut response);
    response
}

/// An error page for the browser: what happened and what to do.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        h1 { (title) }
        div.box { p.bad role="alert" { (message) } }
    };
    page(status, title, body)
}

/// A `303 See Other` that hardens the answer too.
pub fn see_other(location: &str) -> Response {
    let mut response = match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Cannot continue",
                "The next address is not valid.",
            );
        }
    };
    harden(&mut response);
    response
}
