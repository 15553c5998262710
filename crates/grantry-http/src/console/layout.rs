//! The console's page shell and small pieces shared by its pages. maud escapes everything that is
//! not explicitly marked as markup, so text from users and from Bitbucket cannot inject HTML.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use grantry_core::clock::{Timestamp, rfc3339};
use maud::{DOCTYPE, Markup, html};

use super::signed_in::Admin;

/// Which section a page belongs to, for the navigation's `aria-current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Connections,
    Activity,
    ApiKeys,
    Webhooks,
    Admins,
    Reference,
}

/// A message shown once at the top of a page.
pub enum Flash {
    Ok(String),
    Bad(String),
}

fn security_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn document(title: &str, header: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Grantry" }
                link rel="stylesheet" href="/ui/assets/console.css";
                script src="/ui/assets/console.js" defer {}
            }
            body {
                (header)
                main id="main" { (body) }
            }
        }
    }
}

fn navigation(admin: &Admin, section: Section) -> Markup {
    let link = |href: &str, label: &str, this: Section| {
        html! {
            @if section == this { a href=(href) aria-current="page" { (label) } }
            @else { a href=(href) { (label) } }
        }
    };
    html! {
        header.top {
            div.bar {
                a.brand href="/ui/" { "Grantry" }
                nav aria-label="Console" {
                    (link("/ui/profiles", "Application connections", Section::Connections))
                    (link("/ui/activity", "Activity", Section::Activity))
                    (link("/ui/api-keys", "API keys", Section::ApiKeys))
                    (link("/ui/webhooks", "Webhooks", Section::Webhooks))
                    (link("/ui/admins", "Admins", Section::Admins))
                    (link("/ui/api", "API", Section::Reference))
                    span.who { "Signed in as " (admin.username) }
                    form method="post" action="/ui/logout" {
                        input type="hidden" name="csrf" value=(admin.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
            }
        }
    }
}

/// A page for a signed-in admin.
pub fn page(
    admin: &Admin,
    section: Section,
    title: &str,
    flash: Option<Flash>,
    body: Markup,
) -> Response {
    let body = html! {
        @match flash {
            Some(Flash::Ok(text)) => p.flash.ok role="status" { (text) },
            Some(Flash::Bad(text)) => p.flash.bad role="alert" { (text) },
            None => {},
        }
        (body)
    };
    respond(
        StatusCode::OK,
        document(title, navigation(admin, section), body),
    )
}

/// A page for someone not signed in (sign-in, setup, messages).
pub fn public_page(status: StatusCode, title: &str, body: Markup) -> Response {
    let header = html! { header.top { div.bar { span.brand { "Grantry" } } } };
    respond(
        status,
        document(title, header, html! { div.login { (body) } }),
    )
}

pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response();
    security_headers(&mut response);
    response
}

/// A `303 See Other`, the answer to every successful form.
pub fn see_other(location: &str) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response();
    security_headers(&mut response);
    response
}

/// The console's 404, for a page or a thing that does not exist.
pub fn not_found(message: &str) -> Response {
    let body =
        html! { h1 { "Not found" } p { (message) } p { a href="/ui/" { "Back to the console" } } };
    public_page(StatusCode::NOT_FOUND, "Not found", body)
}

/// A time for people: `2026-11-24 09:12 UTC`.
pub fn time(at: Timestamp) -> String {
    let text = rfc3339(at);
    format!("{} {} UTC", &text[..10], &text[11..16])
}

/// A time for people, or "never" when there is none.
pub fn expiry(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "never".to_owned(), time)
}

/// A status in words, with a colour as a second cue.
pub fn status_badge(status: &str) -> Markup {
    let words = match status {
        "active" => "Active",
        "needs_reauth" => "Needs reconnecting",
        "insufficient_scopes" => "Missing permissions",
        "failing" => "Failing (retrying)",
        other => other,
    };
    html! { span class={"status " (status)} { (words) } }
}

/// A message as a sentence: a capital first letter.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Scopes as separate words that wrap between, never inside, a scope.
pub fn scopes(names: &[String]) -> Markup {
    html! { span.scopes { @for name in names { code { (name) } } } }
}

/// The CSRF field every form carries.
pub fn csrf(admin: &Admin) -> Markup {
    html! { input type="hidden" name="csrf" value=(admin.csrf); }
}

/// A value with a copy button.
pub fn copyable(id: &str, value: &str) -> Markup {
    html! {
        span.copy {
            code id=(id) { (value) }
            button type="button" data-copy={"#" (id)} { "Copy" }
        }
    }
}

/// A form field: label, control, hint and error, tied together for screen readers.
pub fn field(
    name: &str,
    label: &str,
    control: Markup,
    hint: Option<&str>,
    error: Option<&str>,
) -> Markup {
    html! {
        div.field.invalid[error.is_some()] {
            label for=(name) { (label) }
            (control)
            @if let Some(hint) = hint { p.hint id={(name) "-hint"} { (hint) } }
                        @if let Some(error) = error { p.error id={(name) "-error"} role="alert" { (sentence(error)) } }
        }
    }
}

pub const CSS: &str = include_str!("assets/console.css");
pub const JS: &str = include_str!("assets/console.js");

pub async fn css() -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    response
}

pub async fn js() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    response
}
