//! What the OpenAPI document says of answers shared by many operations: the problem every
//! error is, its codes, and the sets of refusals the operations list (see `openapi.rs`).

use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

/// Every error answer: an RFC 9457 problem, as `application/problem+json`. The example is a
/// real answer.
#[derive(Serialize, ToSchema)]
#[schema(as = Problem, example = json!({"type": "urn:grantry:problem:needs-reauth", "title": "The user must reconnect",
    "status": 409, "detail": "The provider no longer accepts this connection's grant. Send the user through a connect session with connection_id `con_01m98yxhxgscse16wks9p4tdmm` to reconnect it (it keeps its id).",
    "code": "needs-reauth", "connection_id": "con_01m98yxhxgscse16wks9p4tdmm",
    "reason": "Bitbucket Cloud refused the refresh token (invalid_grant: Invalid refresh_token); the user must reconnect"}))]
pub struct ProblemDoc {
    /// `urn:grantry:problem:{code}`.
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    /// What happened and what to do, in a sentence.
    detail: String,
    code: ProblemCode,
    /// `invalid-field`: the request field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// `needs-reauth`: the connection and why its user must reconnect.
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The stable codes of problems, each with its status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemCode {
    /// 400: the request is malformed in a way no field names.
    BadRequest,
    /// 400: the body is not the JSON this operation takes.
    InvalidJson,
    /// 400: the query string does not parse.
    InvalidQuery,
    /// 400: a path parameter does not parse.
    InvalidPath,
    /// 400: an id of the wrong kind or shape (`con_…`, `prf_…`, …).
    InvalidId,
    /// 400: a proxied path that would leave Bitbucket's REST API.
    InvalidProxyPath,
    /// 401: no valid API key.
    Unauthorized,
    /// 403: the key's role may not do this.
    Forbidden,
    /// 403: a connect session confirmed for another end user, or with a wrong code.
    ConfirmationRefused,
    /// 404: no such profile, connection, key, webhook or event.
    NotFound,
    /// 405: the path takes other methods.
    MethodNotAllowed,
    /// 408: the request did not arrive in time.
    RequestTimeout,
    /// 409: a name taken, or a state that does not allow it.
    Conflict,
    /// 409: the connection's user must reconnect; `reason` says why.
    NeedsReauth,
    /// 413: the body is larger than this operation takes.
    TooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: a field's value is refused; `field` names it.
    InvalidField,
    /// 429: too many attempts; wait `Retry-After` seconds.
    Throttled,
    /// 500: Grantry failed; the cause is logged, never shown.
    Internal,
    /// 502: Bitbucket refused the profile's OAuth client.
    ProfileMisconfigured,
    /// 502: Bitbucket answered something Grantry cannot use.
    ProviderError,
    /// 503: Bitbucket is unreachable or rate-limiting; `Retry-After` says when to try again.
    ProviderUnavailable,
    /// 503: the database does not answer; `Retry-After` says when to try again.
    DatabaseUnavailable,
    /// 503: Bitbucket rotated the token but the database did not take it; it is kept, served
    /// from memory and written later.
    RefreshNotSaved,
    /// 503: every slot for this work is taken; try again shortly.
    Busy,
}

/// What any `/v1` call may be refused with.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Refused {
    /// Malformed: `bad-request`, `invalid-json`, `invalid-query`, `invalid-path`, `invalid-id`.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(ProblemDoc),
    /// `unauthorized`: no valid API key.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(ProblemDoc),
    /// `database-unavailable` or `busy`, with `Retry-After`.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(ProblemDoc),
}

/// What an admin-only call may also be refused with.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum AdminOnly {
    /// `forbidden`: an `app` key.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(ProblemDoc),
}

/// What a call with a JSON body may also be refused with.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyRefused {
    /// `too-large`.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(ProblemDoc),
    /// `unsupported-media-type`: send `Content-Type: application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(ProblemDoc),
    /// `invalid-field`: `field` names the field at fault.
    #[response(status = 422, content_type = "application/problem+json")]
    InvalidField(ProblemDoc),
}

/// `not-found`.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Missing {
    /// `not-found`: no such thing.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(ProblemDoc),
}

/// `conflict`.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Conflicting {
    /// `conflict`: a name already taken, or a state that does not allow it.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(ProblemDoc),
}

/// What a call that may reach Bitbucket for a token may also be refused with.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum TokenRefused {
    /// `needs-reauth` (the user must reconnect; `reason` says why) or `conflict` (another
    /// refresh is running).
    #[response(status = 409, content_type = "application/problem+json")]
    NeedsReauth(ProblemDoc),
    /// `profile-misconfigured` or `provider-error`.
    #[response(status = 502, content_type = "application/problem+json")]
    BadGateway(ProblemDoc),
}
