//! RFC 9457 problem details: every error the API answers, with a stable `type` and `code`, a
//! status, and a message a user can act on. 5xx bodies stay generic; their cause travels in the
//! response's extensions to the logging middleware, which logs it once.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use grantry_core::CoreError;
use grantry_core::ids::BadId;
use grantry_core::store::StoreError;
use serde_json::{Map, Value, json};

/// The cause of a 5xx, for the log only.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    extensions: Map<String, Value>,
    retry_after: Option<u64>,
    /// The methods a 405 names in its `Allow` header.
    allow: Option<&'static str>,
    cause: Option<String>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            code,
            title,
            detail: detail.into(),
            extensions: Map::new(),
            retry_after: None,
            allow: None,
            cause: None,
        }
    }

    /// A 405's `Allow` header.
    pub fn allow(mut self, methods: &'static str) -> Problem {
        self.allow = Some(methods);
        self
    }

    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Problem {
        self.extensions.insert(name.to_owned(), value.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Problem {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// A 500 whose cause is logged, never shown.
    pub fn internal(cause: impl std::fmt::Display) -> Problem {
        let mut problem = Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "Something went wrong on our side; it has been logged.",
        );
        problem.cause = Some(cause.to_string());
        problem
    }

    pub fn unauthorized(detail: &str) -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    pub fn forbidden(detail: &str) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// The sentence a person reads.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The short summary (`Not found`, `Conflict`, …).
    pub fn title(&self) -> &'static str {
        self.title
    }

    /// What went wrong inside, for the log only: never shown.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:grantry:problem:{}", self.code),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        if let Value::Object(map) = &mut body {
            map.extend(self.extensions);
        }
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(methods) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(methods));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"grantry\""),
            );
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(InternalCause(cause));
        }
        response
    }
}

impl From<CoreError> for Problem {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::NotFound(what) => Problem::not_found(format!("{what} not found")),
            CoreError::Invalid { field, message } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "Invalid field",
                format!("{field}: {message}"),
            )
            .with("field", field),
            CoreError::Conflict(detail) => Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail),
            CoreError::Busy { retry_after } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Too busy right now",
                "Grantry is doing as much of this as it allows at once; try again in a moment.",
            )
            .retry_after(retry_after),
            CoreError::Throttled { retry_after } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                "Too many attempts",
                format!("Too many failed attempts; try again in {retry_after} s."),
            )
            .retry_after(retry_after),
            CoreError::ConfirmationRefused(detail) => Problem::new(
                StatusCode::FORBIDDEN,
                "confirmation-refused",
                "The connection was not confirmed",
                detail,
            ),
            CoreError::NeedsReauth { connection, reason } => Problem::new(
                StatusCode::CONFLICT,
                "needs-reauth",
                "The user must reconnect",
                format!(
                    "The provider no longer accepts this connection's grant. Send the user through a \
                     connect session with connection_id `{connection}` to reconnect it (it keeps its id)."
                ),
            )
            .with("connection_id", connection.to_string())
            .with("reason", reason),
            CoreError::ProfileMisconfigured { profile, problem } => Problem::new(
                StatusCode::BAD_GATEWAY,
                "profile-misconfigured",
                "The profile's OAuth client is refused",
                format!("{problem}. An admin must fix the profile's key and secret."),
            )
            .with("profile_id", profile.to_string()),
            CoreError::ProviderUnavailable { retry_after, cause } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "provider-unavailable",
                "The provider is unavailable",
                format!("The provider is not answering ({cause}); try again shortly."),
            )
            .retry_after(retry_after),
            CoreError::Provider(failure) => Problem::new(
                StatusCode::BAD_GATEWAY,
                "provider-error",
                "The provider refused",
                failure.to_string(),
            ),
            CoreError::RefreshNotSaved(connection) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "refresh-not-saved",
                "The refresh could not be saved yet",
                "Bitbucket renewed the token, but the database did not take it. Grantry serves the \
                 new token from memory and writes it as soon as the database takes writes again; \
                 until then this node reports itself not ready.",
            )
            .with("connection_id", connection.to_string())
            .retry_after(5),
            CoreError::ProxyPath(error) => Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-proxy-path",
                "Invalid proxied path",
                error.to_string(),
            ),
            CoreError::Store(error) => error.into(),
            CoreError::Crypto(error) => Problem::internal(format!("sealed value: {error}")),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => {
                let mut problem = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database-unavailable",
                    "The database is unavailable",
                    "Grantry cannot reach its database right now; try again shortly.",
                )
                .retry_after(5);
                problem.cause = Some(cause);
                problem
            }
            StoreError::Conflict(detail) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
            }
            other => Problem::internal(other),
        }
    }
}

impl From<BadId> for Problem {
    fn from(error: BadId) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-id",
            "Invalid id",
            error.to_string(),
        )
    }
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            StatusCode::PAYLOAD_TOO_LARGE => "too-large",
            _ => "invalid-json",
        };
        Problem::new(status, code, "Invalid request body", rejection.body_text())
    }
}

impl From<QueryRejection> for Problem {
    fn from(rejection: QueryRejection) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "Invalid query",
            rejection.body_text(),
        )
    }
}

impl From<PathRejection> for Problem {
    fn from(rejection: PathRejection) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-path",
            "Invalid path",
            rejection.body_text(),
        )
    }
}
