//! Management > Application connections: the list, the Create / Edit panel, a profile's page with
//! its setup steps and connections, connecting an account, and deleting.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::connect::NewSession;
use grantry_core::profiles::{NewProfile, ProfileChanges};
use grantry_core::store::{ConnectionFilter, ConnectionStatus, PageRequest, ProfileRecord};
use grantry_core::{CoreError, Grantry};
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;

use super::form::{self, Errors, ProfileForm};
use super::layout::{self, Flash, Section, copyable, csrf};
use super::session::{self, Admin, Posted};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct Notice {
    created: Option<String>,
    saved: Option<String>,
    deleted: Option<u64>,
    connected: Option<String>,
    error: Option<String>,
    refreshed: Option<String>,
    removed: Option<String>,
}

fn counts_text(counts: &HashMap<ConnectionStatus, u64>) -> String {
    let words = [
        (ConnectionStatus::Active, "active"),
        (ConnectionStatus::NeedsReauth, "needs reconnecting"),
        (ConnectionStatus::InsufficientScopes, "missing permissions"),
        (ConnectionStatus::Failing, "failing"),
    ];
    let parts: Vec<String> = words
        .iter()
        .filter_map(|(status, word)| counts.get(status).map(|n| format!("{n} {word}")))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(notice): Query<Notice>,
) -> Response {
    let (profiles, counts) = match (
        state.grantry.list_profiles().await,
        state.grantry.connection_counts().await,
    ) {
        (Ok(profiles), Ok(counts)) => (profiles, counts),
        (Err(error), _) => return session::unavailable(error),
        (_, Err(error)) => return session::unavailable(error),
    };
    let mut by_profile: HashMap<String, HashMap<ConnectionStatus, u64>> = HashMap::new();
    for (profile, status, n) in counts {
        by_profile
            .entry(profile.to_string())
            .or_default()
            .insert(status, n);
    }
    let flash = match (notice.deleted, notice.error.as_deref()) {
        (Some(n), _) => Some(Flash::Ok(format!(
            "Profile deleted, with {n} connection(s) and their tokens."
        ))),
        (None, Some("select")) => Some(Flash::Bad(
            "Select a profile first: choose it at the start of its row, then Edit or Delete."
                .into(),
        )),
        _ => None,
    };
    // The action bar acts on the profile chosen in the table: a plain GET form, so it works
    // without JavaScript (`selected` sends the browser on to the Edit panel or the confirmation).
    let body = html! {
        h1 { "Application connections" }
        form #profiles method="get" action="/ui/profiles/selected" {
            div.actions role="toolbar" aria-label="Actions" {
                a.button.primary href="/ui/profiles/new" { "Create" }
                @if !profiles.is_empty() {
                    button type="submit" name="action" value="edit" data-needs-choice { "Edit" }
                    button.danger type="submit" name="action" value="delete" data-needs-choice { "Delete" }
                }
            }
        }
        @if profiles.is_empty() {
            p.muted { "No application connection yet. Create one for each Bitbucket OAuth consumer or Data Center link." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th { span.visually-hidden { "Choose" } } th { "Profile name" } th { "Application" } th { "Description" } th { "Connections" } th { "Last problem" } } }
                    tbody {
                        @for profile in &profiles {
                            tr {
                                td.choose {
                                    input type="radio" form="profiles" name="profile" value=(profile.id)
                                        id={"choose-" (profile.id)};
                                    label.visually-hidden for={"choose-" (profile.id)} { "Choose " (profile.name) }
                                }
                                td { a href={"/ui/profiles/" (profile.id)} { (profile.name) } }
                                td { (profile.provider.spec().display_name) }
                                td { (profile.description) }
                                td { (counts_text(by_profile.get(profile.id.as_str()).unwrap_or(&HashMap::new()))) }
                                td {
                                    @match &profile.problem {
                                        Some(problem) => { span class="status problem" { "Problem" } " " (problem) },
                                        None => span.muted { "none" },
                                    }
                                }
                                                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(
        &admin,
        Section::Connections,
        "Application connections",
        flash,
        body,
    )
}

#[derive(Deserialize)]
pub struct Choice {
    profile: Option<String>,
    action: Option<String>,
}

/// The action bar's Edit and Delete: on to that page for the chosen profile.
pub async fn selected(_admin: Admin, Query(choice): Query<Choice>) -> Response {
    let profile = choice
        .profile
        .as_deref()
        .and_then(|id| grantry_core::ids::ProfileId::parse(id).ok());
    match (profile, choice.action.as_deref()) {
        (Some(id), Some("edit")) => layout::see_other(&format!("/ui/profiles/{id}/edit")),
        (Some(id), Some("delete")) => layout::see_other(&format!("/ui/profiles/{id}/delete")),
        _ => layout::see_other("/ui/profiles?error=select"),
    }
}

fn panel(
    state: &AppState,
    admin: &Admin,
    form: &ProfileForm,
    errors: &Errors,
    action: &str,
    editing: bool,
) -> Markup {
    let title = if editing {
        "Edit application connection"
    } else {
        "Create an application connection"
    };
    html! {
        h1 { (title) }
        (form::render(admin, form, errors, action, &state.grantry.settings.callback_url(), editing))
    }
}

fn invalid(
    state: &AppState,
    admin: &Admin,
    form: &ProfileForm,
    errors: &Errors,
    action: &str,
    editing: bool,
) -> Response {
    let body = panel(state, admin, form, errors, action, editing);
    let mut response = layout::page(
        admin,
        Section::Connections,
        "Application connection",
        None,
        body,
    );
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    response
}

pub async fn new(State(state): State<AppState>, admin: Admin) -> Response {
    let form = ProfileForm {
        provider: "bitbucket-cloud".into(),
        confirm_connections: true,
        ..ProfileForm::default()
    };
    let body = panel(
        &state,
        &admin,
        &form,
        &Errors::default(),
        "/ui/profiles",
        false,
    );
    layout::page(
        &admin,
        Section::Connections,
        "Create an application connection",
        None,
        body,
    )
}

pub async fn create(
    State(state): State<AppState>,
    Posted {
        admin,
        form: posted,
    }: Posted,
) -> Response {
    let form = ProfileForm::from_form(&posted);
    let action = "/ui/profiles";
    let provider = match form.provider() {
        Ok(provider) => provider,
        Err(errors) => return invalid(&state, &admin, &form, &errors, action, false),
    };
    let required_scopes = match form.required_scopes(provider) {
        Ok(scopes) => scopes,
        Err(errors) => return invalid(&state, &admin, &form, &errors, action, false),
    };
    let new = NewProfile {
        name: form.name.clone(),
        description: form.description.clone(),
        provider,
        key: form.key.clone(),
        secret: SecretString::from(posted.text("secret")),
        base_url: form.base_url(provider),
        required_scopes,
        allowed_return_urls: form.return_urls(),
        private: form.private,
        confirm_connections: form.confirm_connections,
    };
    match state.grantry.create_profile(new, &admin.actor()).await {
        Ok(profile) => layout::see_other(&format!("/ui/profiles/{}?created=1", profile.id)),
        Err(error) => match Errors::from_core(&error) {
            Some(errors) => invalid(&state, &admin, &form, &errors, action, false),
            None => session::unavailable(error),
        },
    }
}

async fn find(grantry: &Grantry, id: &str) -> Result<ProfileRecord, Response> {
    match grantry.find_profile(id).await {
        Ok(profile) => Ok(profile),
        Err(CoreError::NotFound(_) | CoreError::Invalid { .. }) => Err(super::not_found(
            "That application connection does not exist.",
        )),
        Err(error) => Err(session::unavailable(error)),
    }
}

pub async fn edit(State(state): State<AppState>, admin: Admin, Path(id): Path<String>) -> Response {
    let profile = match find(&state.grantry, &id).await {
        Ok(profile) => profile,
        Err(response) => return response,
    };
    let action = format!("/ui/profiles/{}/edit", profile.id);
    let body = panel(
        &state,
        &admin,
        &ProfileForm::from_profile(&profile),
        &Errors::default(),
        &action,
        true,
    );
    layout::page(
        &admin,
        Section::Connections,
        "Edit application connection",
        None,
        body,
    )
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted {
        admin,
        form: posted,
    }: Posted,
) -> Response {
    let profile = match find(&state.grantry, &id).await {
        Ok(profile) => profile,
        Err(response) => return response,
    };
    let form = ProfileForm::from_form(&posted);
    let action = format!("/ui/profiles/{}/edit", profile.id);
    let provider = match form.provider() {
        Ok(provider) => provider,
        Err(errors) => return invalid(&state, &admin, &form, &errors, &action, true),
    };
    let required_scopes = match form.required_scopes(provider) {
        Ok(scopes) => scopes,
        Err(errors) => return invalid(&state, &admin, &form, &errors, &action, true),
    };
    let secret = posted.text("secret");
    let changes = ProfileChanges {
        name: Some(form.name.clone()),
        description: Some(form.description.clone()),
        provider: Some(provider),
        key: Some(form.key.clone()),
        secret: (!secret.is_empty()).then(|| SecretString::from(secret)),
        base_url: Some(form.base_url(provider)),
        required_scopes: Some(required_scopes),
        allowed_return_urls: Some(form.return_urls()),
        private: Some(form.private && provider.spec().client_credentials),
        confirm_connections: Some(form.confirm_connections),
    };
    match state
        .grantry
        .update_profile(profile.id.as_str(), changes, &admin.actor())
        .await
    {
        Ok(profile) => layout::see_other(&format!("/ui/profiles/{}?saved=1", profile.id)),
        Err(error) => match Errors::from_core(&error) {
            Some(errors) => invalid(&state, &admin, &form, &errors, &action, true),
            None => session::unavailable(error),
        },
    }
}

fn setup_card(state: &AppState, profile: &ProfileRecord, open: bool) -> Markup {
    let guide = state.grantry.setup_guide(profile);
    html! {
        details.card open[open] {
            summary { strong { "Set it up in Bitbucket" } " — " (guide.location) }
            p { "Callback URL: " (copyable("setup-callback-url", &guide.callback_url)) }
            ol.steps {
                @for step in &guide.steps {
                    li { (step.text) @if let Some(value) = &step.value { " " code { (value) } } }
                }
            }
            @if !guide.tick.is_empty() {
                p { "Boxes to tick: " }
                ul id="boxes-to-tick" { @for label in &guide.tick { li { (label) } } }
            }
            @if !guide.scopes.is_empty() {
                p { "Scopes for the link: " span id="link-scopes" { (guide.scopes.join(", ")) } }
            }
        }
    }
}

fn flash_of(notice: &Notice) -> Option<Flash> {
    if let Some(error) = &notice.error {
        return Some(Flash::Bad(format!(
            "The account was not connected. {}",
            crate::connect::explain(error)
        )));
    }
    let text = if notice.created.is_some() {
        "Saved. Now set it up in Bitbucket with the steps below, then connect an account."
    } else if notice.saved.is_some() {
        "Changes saved."
    } else if notice.connected.is_some() {
        "Account connected."
    } else if notice.refreshed.is_some() {
        "Token refreshed."
    } else if notice.removed.is_some() {
        "Connection deleted."
    } else {
        return None;
    };
    Some(Flash::Ok(text.to_owned()))
}

pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> Response {
    let profile = match find(&state.grantry, &id).await {
        Ok(profile) => profile,
        Err(response) => return response,
    };
    let filter = ConnectionFilter {
        profile_id: Some(profile.id.clone()),
        ..ConnectionFilter::default()
    };
    let page = PageRequest {
        after: None,
        limit: 500,
    };
    let connections = match state.grantry.list_connections(&filter, &page).await {
        Ok(connections) => connections,
        Err(error) => return session::unavailable(error),
    };
    let body = html! {
        h1 { (profile.name) }
        p.muted { (profile.provider.spec().display_name) " · Key " code { (profile.client_id) } @if !profile.description.is_empty() { " · " (profile.description) } }
        @if let Some(problem) = &profile.problem { p.flash.bad role="alert" { strong { "Problem: " } (problem) } }
        div.actions role="toolbar" aria-label="Actions" {
            form method="post" action={"/ui/profiles/" (profile.id) "/connect"} {
                (csrf(&admin))
                button.primary type="submit" { "Connect an account" }
            }
            a.button href={"/ui/profiles/" (profile.id) "/edit"} { "Edit" }
            a.button.danger href={"/ui/profiles/" (profile.id) "/delete"} { "Delete" }
        }
        (setup_card(&state, &profile, notice.created.is_some() || connections.is_empty()))
        h2 { "Connections" }
        (super::connections::table(&state, &admin, &profile, &connections))
    };
    layout::page(
        &admin,
        Section::Connections,
        &profile.name,
        flash_of(&notice),
        body,
    )
}

/// "Connect an account": a connect session whose flow runs in this very browser.
pub async fn connect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { admin, .. }: Posted,
) -> Response {
    let profile = match find(&state.grantry, &id).await {
        Ok(profile) => profile,
        Err(response) => return response,
    };
    let new = NewSession {
        profile: profile.id.to_string(),
        end_user_id: Some(format!("console:{}", admin.username)),
        return_url: Some(format!(
            "{}?profile={}",
            state.grantry.settings.console_return_url(),
            profile.id
        )),
        connection_id: None,
    };
    match state.grantry.create_session(new, &admin.actor()).await {
        Ok(created) => layout::see_other(&created.url),
        Err(error) => session::unavailable(error),
    }
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    match find(&state.grantry, &id).await {
        Ok(profile) => delete_page(&state, &admin, &profile, None).await,
        Err(response) => response,
    }
}

async fn delete_page(
    state: &AppState,
    admin: &Admin,
    profile: &ProfileRecord,
    error: Option<&str>,
) -> Response {
    let filter = ConnectionFilter {
        profile_id: Some(profile.id.clone()),
        ..ConnectionFilter::default()
    };
    let count = state
        .grantry
        .list_connections(
            &filter,
            &PageRequest {
                after: None,
                limit: 10_000,
            },
        )
        .await
        .map_or(0, |c| c.len());
    let body = html! {
        h1 { "Delete " (profile.name) "?" }
        p { "This deletes the application connection " strong { (profile.name) } ", its " strong { (count) " connection(s)" }
            " and their tokens. Applications using them will get “not found”. This cannot be undone." }
        form.stack method="post" action={"/ui/profiles/" (profile.id) "/delete"} {
            (csrf(admin))
            (layout::field("confirm", "Type the profile name to confirm", html! { input type="text" id="confirm" name="confirm" autocomplete="off"; }, None, error))
            div.actions {
                button.danger type="submit" { "Delete" }
                a.button href={"/ui/profiles/" (profile.id)} { "Cancel" }
            }
        }
    };
    let mut response = layout::page(
        admin,
        Section::Connections,
        "Delete application connection",
        None,
        body,
    );
    if error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted {
        admin,
        form: posted,
    }: Posted,
) -> Response {
    let profile = match find(&state.grantry, &id).await {
        Ok(profile) => profile,
        Err(response) => return response,
    };
    if posted.text("confirm").trim() != profile.name {
        return delete_page(
            &state,
            &admin,
            &profile,
            Some("That is not the profile's name."),
        )
        .await;
    }
    match state
        .grantry
        .delete_profile(profile.id.as_str(), &admin.actor())
        .await
    {
        Ok((_, removed)) => layout::see_other(&format!("/ui/profiles?deleted={removed}")),
        Err(error) => session::unavailable(error),
    }
}
