//! Activity: the audit trail, filtered by profile, connection and kind. The handler is here;
//! what the page shows is gathered in `data.rs` and drawn in `view.rs`.

pub mod data;
pub mod view;

use axum::extract::{Query, State};
use axum::response::Response;

use self::data::Filters;
use super::layout::{self, Section};
use super::session::{self, Admin};
use crate::state::AppState;

pub async fn page(
    State(state): State<AppState>,
    admin: Admin,
    Query(filters): Query<Filters>,
) -> Response {
    let page = match data::activity_page(&state.grantry, &filters).await {
        Ok(page) => page,
        Err(error) => return session::failed(error),
    };
    let body = view::page(&page);
    layout::page(&admin, Section::Activity, "Activity", page.flash, body)
}
