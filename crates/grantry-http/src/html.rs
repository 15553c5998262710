//! A little HTML for pages Grantry shows browsers directly (the connect flow). Text is always
//! escaped; pages carry a strict Content-Security-Policy and no referrer.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;\
color:#1b1f24;line-height:1.5}h1{font-size:1.4rem}.box{border:1px solid #d0d7de;border-radius:8px;\
padding:1rem 1.25rem}.ok{color:#116329}.bad{color:#a40e26}code{background:#f6f8fa;padding:.1rem .3rem}";

/// Security headers for pages: no scripts, no framing, no referrer (URLs here carry codes).
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

/// A whole page; `body` is trusted HTML built with [`escape`].
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Grantry</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    harden(&mut response);
    response
}

/// An error page for the browser: what happened and what to do.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><div class=\"box\"><p class=\"bad\" role=\"alert\">{}</p></div>",
        escape(title),
        escape(message)
    );
    page(status, title, &body)
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
