//! How the control API answers: a refusal naming the problem, JSON bodies parsed with a clear
//! error, and `201 Created`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::world::WorldError;

/// A refused control request: status and a message naming the problem.
#[derive(Debug)]
pub struct ControlError(pub StatusCode, pub String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<WorldError> for ControlError {
    fn from(error: WorldError) -> Self {
        let status = match &error {
            WorldError::Invalid { .. } => StatusCode::BAD_REQUEST,
            WorldError::Duplicate(_) => StatusCode::CONFLICT,
            WorldError::NotFound(_) => StatusCode::NOT_FOUND,
            WorldError::Git(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ControlError(status, error.to_string())
    }
}

pub type Answer = Result<Response, ControlError>;

pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    serde_json::from_slice(body)
        .map_err(|e| ControlError(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

pub fn created(value: impl serde::Serialize) -> Answer {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}
