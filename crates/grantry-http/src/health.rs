//! `/healthz` (the process answers) and `/readyz` (and its database does).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use crate::state::AppState;

pub async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

fn not_ready(detail: &str) -> Response {
    let body = json!({"status": "unavailable", "detail": detail});
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [("retry-after", "5")],
        Json(body),
    )
        .into_response()
}

/// Ready when the database answers and has taken every refresh result: a node holding new
/// tokens only in memory must not look healthy (they would be lost with it).
pub async fn ready(State(state): State<AppState>) -> Response {
    if let Err(error) = state.grantry.database_answers().await {
        tracing::warn!(%error, "not ready: the database does not answer");
        return not_ready("the database does not answer");
    }
    let waiting = state.grantry.pending_write_count();
    if waiting > 0 {
        return not_ready(&format!(
            "{waiting} refresh result(s) wait in memory for the database to take them"
        ));
    }
    Json(json!({"status": "ready"})).into_response()
}
