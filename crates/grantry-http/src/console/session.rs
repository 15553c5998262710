//! Who is signed in: the session cookie (HttpOnly, SameSite=Strict, path `/ui`), the CSRF token
//! every form must carry, and form bodies with repeated fields (checkbox groups).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use grantry_core::admins::SessionCheck;
use grantry_core::store::StoreError;
use grantry_core::{CoreError, Grantry};
use maud::html;

use super::layout;
pub use super::signed_in::Admin;
use crate::problem::Problem;
use crate::state::AppState;

pub const COOKIE: &str = "grantry_console";

pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    crate::extract::cookies(headers)
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty() && value.len() <= 100)
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(token: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("a random token is a valid header value")
}

pub fn cleared_cookie() -> HeaderValue {
    HeaderValue::from_static("grantry_console=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The page for a service call that failed, with the status the API gives the same error: the
/// database away is a 503 to try again in a moment; an error a person can act on (not found, a
/// conflict, Bitbucket unreachable) says what it was; anything internal is logged and shown
/// only as "something went wrong".
pub fn failed(error: CoreError) -> Response {
    let database_away = matches!(error, CoreError::Store(StoreError::Unavailable(_)));
    let problem = Problem::from(error);
    let status = problem.status();
    if status.is_server_error() {
        let cause = problem.cause().unwrap_or(problem.detail());
        tracing::error!(%status, cause, "console: a service call failed");
    }
    let body = if database_away {
        html! { h1 { "Try again in a moment" } p { "Grantry cannot reach its database right now." } }
    } else {
        html! {
            h1 { (problem.title()) }
            p { (problem.detail()) }
            p { a href="/ui/" { "Back to the console" } }
        }
    };
    layout::public_page(status, problem.title(), body)
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = cookie_token(&parts.headers) else {
            return Err(layout::see_other("/ui/login"));
        };
        match state.grantry.check_console_session(&token).await {
            Ok(SessionCheck::Valid(session)) => Ok(Admin {
                username: session.username,
                csrf: Grantry::csrf_token(&token),
                token,
            }),
            Ok(SessionCheck::Expired) => {
                let mut response = layout::see_other("/ui/login?expired=1");
                response
                    .headers_mut()
                    .insert(header::SET_COOKIE, cleared_cookie());
                Err(response)
            }
            Ok(SessionCheck::Unknown) => Err(layout::see_other("/ui/login")),
            Err(error) => Err(failed(error)),
        }
    }
}

/// A urlencoded form body; repeated names are kept (checkbox groups).
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A field's text, empty when absent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_owned()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Refuses a form without this session's CSRF token.
    fn check_csrf(&self, admin: &Admin) -> Result<(), Response> {
        match self.get("csrf") {
            Some(token) if grantry_crypto::same(token, &admin.csrf) => Ok(()),
            _ => Err(forged()),
        }
    }
}

/// The answer to a form posted without its CSRF token (or with another session's).
pub fn forged() -> Response {
    let body = html! {
        h1 { "This form was not accepted" }
        p role="alert" { "It was stale or was not sent from this console. Go back, reload the page and try again." }
        p { a href="/ui/" { "Back to the console" } }
    };
    layout::public_page(StatusCode::FORBIDDEN, "Refused", body)
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Form(
            url::form_urlencoded::parse(&body).into_owned().collect(),
        ))
    }
}

/// A form a signed-in admin posted, with this session's CSRF token checked: every console
/// handler that changes something takes one, so none can forget the check.
pub struct Posted {
    pub admin: Admin,
    pub form: Form,
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let admin = Admin::from_request_parts(&mut parts, state).await?;
        let form = Form::from_request(Request::from_parts(parts, body), state).await?;
        form.check_csrf(&admin)?;
        Ok(Posted { admin, form })
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use grantry_core::store::StoreError;

    use super::*;

    async fn page(error: CoreError) -> (StatusCode, String) {
        let response = failed(error);
        let status = response.status();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn only_an_unreachable_database_reads_as_one() {
        let (status, html) =
            page(CoreError::Store(StoreError::Unavailable("refused".into()))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(html.contains("Grantry cannot reach its database right now."));

        let (status, html) = page(CoreError::Conflict("a profile named P exists".into())).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(html.contains("a profile named P exists"));
        assert!(!html.contains("database"));

        let (status, html) = page(CoreError::ProviderUnavailable {
            retry_after: 30,
            cause: "connect timeout".into(),
        })
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!html.contains("cannot reach its database"), "{html}");
    }

    #[tokio::test]
    async fn what_went_wrong_inside_stays_in_the_log() {
        let (status, html) = page(CoreError::Store(StoreError::Corrupt(
            "column `secret` holds 3 bytes".into(),
        )))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(html.contains("Something went wrong on our side"));
        assert!(!html.contains("secret"), "{html}");
    }
}
