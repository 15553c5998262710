//! The control API under `/_sim/` (JSON): build the world, move the clock, revoke grants,
//! inject faults and read statistics.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::control_reply::{Answer, ControlError, created, parse};
use crate::faults::{FaultSpec, Group};
use crate::git_read::{self, Content};
use crate::settings::Settings;
use crate::tokens::Product;
use crate::world::WorldError;
use crate::world::cloud::{ConsumerChanges, NewConsumer, NewRepository, NewUser, NewWorkspace};
use crate::world::dc::{DcPermission, NewDcLink, NewDcProject, NewDcRepository, NewDcUser};
use crate::{Sim, clock, control_credentials};

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/health", get(|| async { "ok" }))
        .route("/_sim/world", get(world))
        .route("/_sim/settings", get(settings).patch(change_settings))
        .route("/_sim/clock", get(now))
        .route("/_sim/clock/advance", post(advance))
        .route("/_sim/users", post(add_user))
        .route("/_sim/workspaces", post(add_workspace))
        .route("/_sim/repositories", post(add_repository))
        .route(
            "/_sim/repositories/{workspace}/{slug}/commits",
            post(add_commit),
        )
        .route("/_sim/consumers", post(add_consumer))
        .route("/_sim/consumers/{key}", get(consumer).patch(edit_consumer))
        .route(
            "/_sim/users/{user}/authorizations/{client}/revoke",
            post(revoke_cloud),
        )
        .route("/_sim/api-tokens", post(control_credentials::add_api_token))
        .route(
            "/_sim/access-tokens",
            post(control_credentials::add_access_token),
        )
        .route(
            "/_sim/access-tokens/{id}/rotate",
            post(control_credentials::rotate),
        )
        .route(
            "/_sim/credentials/{id}/revoke",
            post(control_credentials::revoke),
        )
        .route("/_sim/dc/users", post(add_dc_user))
        .route("/_sim/dc/projects", post(add_dc_project))
        .route("/_sim/dc/repositories", post(add_dc_repository))
        .route("/_sim/dc/permissions", post(add_dc_permission))
        .route("/_sim/dc/links", post(add_dc_link))
        .route("/_sim/dc/links/{client}", get(dc_link))
        .route(
            "/_sim/dc/users/{user}/authorizations/{client}/revoke",
            post(revoke_dc),
        )
        .route("/_sim/faults", get(all_faults).delete(clear_faults))
        .route("/_sim/faults/{group}", get(fault).put(set_fault))
        .route("/_sim/stats", get(stats).delete(reset_stats))
        .route("/_sim/tokens/purge", post(purge))
}

async fn world(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let cloud = sim.world.cloud();
    let dc = sim.world.dc();
    let consumers: Vec<Value> = sim.world.consumers.iter().map(|c| json!(&**c)).collect();
    let links: Vec<Value> = sim.world.links.iter().map(|l| json!(&**l)).collect();
    Json(json!({
        "users": cloud.users.values().collect::<Vec<_>>(),
        "workspaces": cloud.workspaces.values().collect::<Vec<_>>(),
        "repositories": cloud.repositories.values().collect::<Vec<_>>(),
        "consumers": consumers,
        "dc": {
            "users": dc.users.values().collect::<Vec<_>>(),
            "projects": dc.projects.values().collect::<Vec<_>>(),
            "repositories": dc.repositories.values().collect::<Vec<_>>(),
            "links": links,
        },
    }))
}

async fn settings(State(sim): State<Arc<Sim>>) -> Json<Settings> {
    Json(sim.settings().clone())
}

/// Merges the given fields into the settings. The mode is fixed at start.
async fn change_settings(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let changes: serde_json::Map<String, Value> = parse(&body)?;
    let mut merged = serde_json::to_value(sim.settings().clone()).expect("settings serialize");
    for (key, value) in changes {
        if key == "mode" && merged.get("mode") != Some(&value) {
            let message = "mode is chosen at start (--mode) and cannot change while running";
            return Err(ControlError(StatusCode::BAD_REQUEST, message.into()));
        }
        merged[key] = value;
    }
    let updated: Settings = parse(merged.to_string().as_bytes())?;
    updated
        .validate()
        .map_err(|message| ControlError(StatusCode::BAD_REQUEST, message))?;
    sim.replace_settings(updated.clone());
    Ok(Json(updated).into_response())
}

async fn now(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let now = sim.clock.now();
    Json(json!({"now": now, "iso": clock::rfc3339(now)}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: i64,
}

async fn advance(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let Advance { seconds } = parse(&body)?;
    if !(0..=10 * 365 * 86_400).contains(&seconds) {
        let message = "seconds must be between 0 and ten years: the clock only moves forward";
        return Err(ControlError(StatusCode::BAD_REQUEST, message.into()));
    }
    let now = sim.clock.advance(seconds);
    Ok(Json(json!({"now": now, "iso": clock::rfc3339(now)})).into_response())
}

async fn add_user(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let new: NewUser = parse(&body)?;
    let now = sim.clock.now();
    created(sim.world.cloud_mut().add_user(new, now)?)
}

async fn add_workspace(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let new: NewWorkspace = parse(&body)?;
    let now = sim.clock.now();
    created(sim.world.cloud_mut().add_workspace(new, now)?)
}

async fn add_repository(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let new: NewRepository = parse(&body)?;
    let now = sim.clock.now();
    let task = tokio::task::spawn_blocking(move || sim.world.add_repository(new, now));
    let repository = task
        .await
        .map_err(|e| ControlError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    created(repository)
}

/// A commit made through the control API, on a branch created from `from` if it is new.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCommit {
    branch: String,
    #[serde(default = "main_branch")]
    from: String,
    #[serde(default = "default_message")]
    message: String,
    /// Path → text, or `{"size": bytes}` for generated content.
    files: std::collections::BTreeMap<String, Content>,
}

fn main_branch() -> String {
    "main".to_owned()
}

fn default_message() -> String {
    "Change files".to_owned()
}

async fn add_commit(
    State(sim): State<Arc<Sim>>,
    Path((workspace, slug)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let new: NewCommit = parse(&body)?;
    sim.world.cloud().repository(&workspace, &slug)?;
    if new.files.is_empty() {
        return Err(WorldError::invalid("files", "a commit needs at least one file").into());
    }
    let files: Vec<(String, Content)> = new.files.into_iter().collect();
    let path = sim.world.git.path(&workspace, &slug);
    let hash = git_read::commit_files(&path, &new.branch, &new.from, &new.message, &files).await?;
    created(json!({"hash": hash, "branch": new.branch}))
}

async fn add_consumer(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let new: NewConsumer = parse(&body)?;
    created(&*sim.world.add_consumer(new, sim.clock.now())?)
}

async fn consumer(State(sim): State<Arc<Sim>>, Path(key): Path<String>) -> Answer {
    let consumer = sim
        .world
        .consumer(&key)
        .ok_or_else(|| WorldError::NotFound(format!("consumer `{key}`")))?;
    Ok(Json(&*consumer).into_response())
}

async fn edit_consumer(
    State(sim): State<Arc<Sim>>,
    Path(key): Path<String>,
    body: Bytes,
) -> Answer {
    let changes: ConsumerChanges = parse(&body)?;
    Ok(Json(&*sim.world.edit_consumer(&key, changes)?).into_response())
}

async fn revoke_cloud(
    State(sim): State<Arc<Sim>>,
    Path((user, client)): Path<(String, String)>,
) -> Answer {
    sim.world.cloud().user(&user)?;
    let revoked = sim.tokens.revoke(Product::Cloud, &user, &client);
    Ok(Json(json!({"revoked_grants": revoked})).into_response())
}

async fn revoke_dc(
    State(sim): State<Arc<Sim>>,
    Path((user, client)): Path<(String, String)>,
) -> Answer {
    sim.world.dc().user(&user)?;
    let revoked = sim.tokens.revoke(Product::Dc, &user, &client);
    Ok(Json(json!({"revoked_grants": revoked})).into_response())
}

async fn add_dc_user(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let new: NewDcUser = parse(&body)?;
    created(sim.world.dc_mut().add_user(new)?)
}

async fn add_dc_project(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let new: NewDcProject = parse(&body)?;
    created(sim.world.dc_mut().add_project(new)?)
}

async fn add_dc_repository(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let new: NewDcRepository = parse(&body)?;
    let task = tokio::task::spawn_blocking(move || sim.world.add_dc_repository(new));
    let repository = task
        .await
        .map_err(|e| ControlError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    created(repository)
}

async fn add_dc_permission(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let grant: DcPermission = parse(&body)?;
    sim.world.dc_mut().add_permission(grant.clone())?;
    created(grant)
}

async fn add_dc_link(State(sim): State<Arc<Sim>>, body: Bytes) -> Answer {
    let new: NewDcLink = parse(&body)?;
    created(&*sim.world.add_link(new)?)
}

async fn dc_link(State(sim): State<Arc<Sim>>, Path(client): Path<String>) -> Answer {
    let link = sim
        .world
        .link(&client)
        .ok_or_else(|| WorldError::NotFound(format!("link `{client}`")))?;
    Ok(Json(&*link).into_response())
}

fn group(name: &str) -> Result<Group, ControlError> {
    Group::parse(name).ok_or_else(|| {
        let message = format!("unknown fault group `{name}`: expected token, rest or git");
        ControlError(StatusCode::NOT_FOUND, message)
    })
}

async fn all_faults(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let all: serde_json::Map<String, Value> = Group::ALL
        .iter()
        .map(|g| (g.name().to_owned(), json!(sim.faults.get(*g))))
        .collect();
    Json(Value::Object(all))
}

async fn clear_faults(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.faults.clear();
    StatusCode::NO_CONTENT
}

async fn fault(State(sim): State<Arc<Sim>>, Path(name): Path<String>) -> Answer {
    Ok(Json(sim.faults.get(group(&name)?)).into_response())
}

async fn set_fault(State(sim): State<Arc<Sim>>, Path(name): Path<String>, body: Bytes) -> Answer {
    let group = group(&name)?;
    let spec: FaultSpec = parse(&body)?;
    spec.validate()
        .map_err(|message| ControlError(StatusCode::BAD_REQUEST, message))?;
    sim.faults.set(group, spec.clone());
    Ok(Json(spec).into_response())
}

async fn stats(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let (codes, access, refresh) = sim.tokens.counts();
    Json(json!({
        "counts": sim.stats.snapshot(),
        "user_agents": sim.stats.user_agents(),
        "refresh_token_reuse": sim.tokens.reuses(),
        "live": {"codes": codes, "access_tokens": access, "refresh_tokens": refresh},
    }))
}

async fn reset_stats(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.stats.reset();
    sim.tokens.forget_reuses();
    StatusCode::NO_CONTENT
}

async fn purge(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.tokens.purge(sim.clock.now());
    StatusCode::NO_CONTENT
}
