//! The web console under `/ui/`: server-rendered pages, every asset inside the binary, working
//! without JavaScript (a little of our own improves it). It calls the same services as the API
//! and the CLI, so every action leaves the same audit trail.
//!
//! Each area (`profiles`, `connections`, `webhooks`, `admins`, `keys`, `activity`) is a directory
//! of three parts: `mod.rs`, the axum handlers (extractors, then the data step, then the view,
//! and `CoreError` mapped to the console's responses); `data.rs`, plain structs of what a page
//! shows, built by functions that call the `Grantry` services (never the store); `view.rs`, pure
//! functions from those structs to markup. `reference` and `auth` are one file each: they have no
//! data step. Shared: `layout` (the page shell, small pieces and the 404), `session` (the
//! signed-in admin extractor, CSRF-checked forms, the 503 page) and `signed_in` (the admin).

mod activity;
mod admins;
mod auth;
mod connections;
#[cfg(test)]
mod fixtures;
mod keys;
mod layout;
mod profiles;
mod reference;
mod session;
mod signed_in;
mod webhooks;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { layout::see_other("/ui/profiles") }))
        .route("/ui/", get(|| async { layout::see_other("/ui/profiles") }))
        .route("/ui/assets/console.css", get(layout::css))
        .route("/ui/assets/console.js", get(layout::js))
        .route("/ui/login", get(auth::login_page).post(auth::login))
        .route("/ui/logout", post(auth::logout))
        .route("/ui/setup/{token}", get(auth::setup_page).post(auth::setup))
        .route("/ui/profiles", get(profiles::list).post(profiles::create))
        .route("/ui/profiles/new", get(profiles::new))
        .route("/ui/profiles/selected", get(profiles::selected))
        .route("/ui/profiles/{id}", get(profiles::show))
        .route(
            "/ui/profiles/{id}/edit",
            get(profiles::edit).post(profiles::update),
        )
        .route(
            "/ui/profiles/{id}/delete",
            get(profiles::confirm_delete).post(profiles::delete),
        )
        .route("/ui/profiles/{id}/connect", post(profiles::connect))
        .route(
            "/ui/profiles/{id}/credentials",
            post(profiles::add_credential),
        )
        .route("/ui/connected", get(connections::landed))
        .route("/ui/connected/confirm", get(connections::confirm))
        .route("/ui/connections/{id}/test", post(connections::test))
        .route("/ui/connections/{id}/refresh", post(connections::refresh))
        .route(
            "/ui/connections/{id}/delete",
            get(connections::confirm_delete).post(connections::delete),
        )
        .route("/ui/activity", get(activity::page))
        .route("/ui/api-keys", get(keys::page).post(keys::create))
        .route("/ui/api-keys/{id}/revoke", post(keys::revoke))
        .route("/ui/webhooks", get(webhooks::page).post(webhooks::create))
        .route("/ui/webhooks/{id}", get(webhooks::show))
        .route("/ui/webhooks/{id}/{action}", post(webhooks::act))
        .route(
            "/ui/webhooks/{id}/deliveries/{event}/redeliver",
            post(webhooks::redeliver),
        )
        .route("/ui/admins", get(admins::page).post(admins::create))
        .route("/ui/api", get(reference::page))
        .route("/ui/admins/password", post(admins::change_password))
        .route("/ui/admins/{username}/remove", post(admins::remove))
}
