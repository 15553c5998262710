//! The simulator's HTML: the sign-in and consent page, and error pages.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::util::html_escape;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;\
padding:0 1rem;color:#172b4d}h1{font-size:1.4rem}.box{border:1px solid #dfe1e6;border-radius:6px;\
padding:1rem 1.25rem}ul{padding-left:1.2rem}label{display:block;margin:.6rem 0 .2rem}\
input[type=text],input[type=password]{width:100%;padding:.45rem;box-sizing:border-box}\
button{padding:.5rem 1rem;margin:1rem .5rem 0 0;border-radius:4px;border:1px solid #0052cc;\
font-size:1rem}button.grant{background:#0052cc;color:#fff}button.deny{background:#fff;color:#0052cc}\
.error{color:#bf2600;font-weight:600}.muted{color:#5e6c84;font-size:.9rem}";

/// A complete HTML document.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        html_escape(title)
    )
}

/// An error shown in the browser instead of a redirect (as Bitbucket does for a bad
/// `redirect_uri` or client id).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>",
        html_escape(title),
        html_escape(message)
    );
    (status, Html(page(title, &body))).into_response()
}

/// What the consent page shows.
pub struct Consent<'a> {
    /// Where the form posts to.
    pub action: &'a str,
    /// `Bitbucket` or `Bitbucket Data Center`.
    pub product: &'a str,
    pub client_name: &'a str,
    pub client_description: &'a str,
    /// One line per permission asked, e.g. `Repositories: Read (repository)`.
    pub permissions: Vec<String>,
    /// The authorize request's parameters, carried through the form.
    pub hidden: &'a [(String, String)],
    pub signed_in_as: Option<&'a str>,
    pub error: Option<&'a str>,
}

pub fn consent_page(consent: &Consent<'_>) -> Response {
    let status = if consent.error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let title = format!("Authorize {}", consent.client_name);
    (status, Html(page(&title, &consent_body(consent)))).into_response()
}

fn consent_body(consent: &Consent<'_>) -> String {
    let mut body = format!(
        "<h1>{title}</h1><div class=\"box\"><p><strong>{name}</strong> is requesting access to \
         your {product} account.</p><p class=\"muted\">{description}</p>\
         <p>It will be able to:</p><ul>{permissions}</ul></div>",
        title = html_escape(&format!("Authorize {}", consent.client_name)),
        name = html_escape(consent.client_name),
        product = html_escape(consent.product),
        description = html_escape(consent.client_description),
        permissions = consent
            .permissions
            .iter()
            .map(|p| format!("<li>{}</li>", html_escape(p)))
            .collect::<String>(),
    );
    if let Some(error) = consent.error {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            html_escape(error)
        ));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">",
        html_escape(consent.action)
    ));
    for (name, value) in consent.hidden {
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            html_escape(name),
            html_escape(value)
        ));
    }
    match consent.signed_in_as {
        Some(user) => body.push_str(&format!(
            "<p class=\"muted\">Signed in as <strong id=\"signed-in-as\">{}</strong>.</p>",
            html_escape(user)
        )),
        None => body.push_str(
            "<p>Sign in as a simulated user to continue.</p>\
             <label for=\"username\">Username</label>\
             <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\">\
             <label for=\"password\">Password</label>\
             <input type=\"password\" id=\"password\" name=\"password\" \
             autocomplete=\"current-password\">",
        ),
    }
    body.push_str(
        "<button class=\"grant\" type=\"submit\" name=\"decision\" value=\"grant\" id=\"grant\">\
         Grant access</button><button class=\"deny\" type=\"submit\" name=\"decision\" \
         value=\"deny\" id=\"deny\">Deny</button></form>",
    );
    body
}
