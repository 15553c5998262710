//! Management > Application connections: the list, the Create / Edit panel, a profile's page with
//! its setup steps and connections, connecting an account, and deleting.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::clock::Rfc3339;
use grantry_core::connect::NewSession;
use grantry_core::connections::{NewConnection, NewCredential};
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
    checked: Option<String>,
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
    } else if notice.checked.is_some() {
        "Checked: the credential is still usable."
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
    let open = notice.created.is_some();
    render(&state, &admin, &profile, flash_of(&notice), open, None).await
}

/// The profile's page; `refused` is a credential form sent back with what was wrong.
async fn render(
    state: &AppState,
    admin: &Admin,
    profile: &ProfileRecord,
    flash: Option<Flash>,
    created: bool,
    refused: Option<&Errors>,
) -> Response {
    let filter = ConnectionFilter {
        profile_id: Some(profile.id.clone()),
        ..ConnectionFilter::default()
    };
    let page = PageRequest {
        after: None,
        limit: 500,
    };
    let connections = match state.grantry.list_connections(&filter, &page).await {
        Ok(connections) => super::connections::data::rows(&state.grantry, profile, connections),
        Err(error) => return session::unavailable(error),
    };
    let body = html! {
        h1 { (profile.name) }
        p.muted { (profile.provider.spec().display_name) " · Key " code { (profile.client_id) } @if !profile.description.is_empty() { " · " (profile.description) } }
        @if let Some(problem) = &profile.problem { p.flash.bad role="alert" { strong { "Problem: " } (problem) } }
        div.actions role="toolbar" aria-label="Actions" {
            form method="post" action={"/ui/profiles/" (profile.id) "/connect"} {
                (csrf(admin))
                button.primary type="submit" { "Connect an account" }
            }
            a.button href={"/ui/profiles/" (profile.id) "/edit"} { "Edit" }
            a.button.danger href={"/ui/profiles/" (profile.id) "/delete"} { "Delete" }
        }
        (setup_card(state, profile, created || connections.is_empty()))
        (credential_card(state, admin, profile, refused))
        h2 { "Connections" }
        (super::connections::view::table(admin, &connections))
    };
    let mut response = layout::page(admin, Section::Connections, &profile.name, flash, body);
    if refused.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

/// "Add an API token or access token": how to make one in Bitbucket for this profile's needs,
/// and the form to store it.
fn credential_card(
    state: &AppState,
    admin: &Admin,
    profile: &ProfileRecord,
    refused: Option<&Errors>,
) -> Markup {
    let guide = state.grantry.credential_guide(profile);
    let error = |field: &str| refused.and_then(|errors| errors.get(field));
    let date = |name: &str| html! { input type="date" id=(name) name=(name); };
    html! {
        details.card id="add-credential" open[refused.is_some()] {
            summary { strong { "Add an API token or access token" } " — for scripts and services without a browser" }
            @if let Some(steps) = &guide.api_token {
                h3 { "An API token (an account's)" }
                ol.steps { @for step in steps { li { (step.text) } } }
                @if !guide.api_token_scopes.is_empty() {
                    p { "API token scopes: " span id="api-token-scopes" { (guide.api_token_scopes.join(", ")) } }
                }
            }
            h3 { "An access token (a repository's, project's or workspace's)" }
            ol.steps { @for step in &guide.access_token { li { (step.text) } } }
            form.stack method="post" action={"/ui/profiles/" (profile.id) "/credentials"} {
                (csrf(admin))
                fieldset {
                    legend { "Kind" }
                    @if guide.api_token.is_some() {
                        label.check { input type="radio" name="kind" value="api_token" checked; " API token" }
                        label.check { input type="radio" name="kind" value="access_token"; " Access token" }
                    } @else {
                        label.check { input type="radio" name="kind" value="access_token" checked; " HTTP access token" }
                    }
                }
                @if guide.api_token.is_some() {
                    (layout::field("email", "Atlassian e-mail (API tokens only)", html! { input type="email" id="email" name="email" autocomplete="off"; }, None, error("email")))
                }
                (layout::field("token", "Token", html! { input type="password" id="token" name="token" autocomplete="off" required; }, Some("Checked with Bitbucket before it is stored (API tokens), sealed at rest, never shown again."), error("token")))
                (layout::field("expires_on", "Expires on (UTC)", date("expires_on"), Some("Grantry warns seven days ahead and stops serving it then."), error("expires_at")))
                (layout::field("end_user_id", "End user id (optional)", html! { input type="text" id="end_user_id" name="end_user_id" autocomplete="off"; }, Some("Your own id for whoever uses it."), error("end_user_id")))
                button.primary type="submit" { "Add credential" }
            }
        }
    }
}

/// Stores an API token or access token from the form above.
pub async fn add_credential(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { admin, form }: Posted,
) -> Response {
    let profile = match find(&state.grantry, &id).await {
        Ok(profile) => profile,
        Err(response) => return response,
    };
    let token = SecretString::from(form.text("token").trim().to_owned());
    let expires_on = form.text("expires_on");
    let expires_at = if expires_on.is_empty() {
        None
    } else {
        match Rfc3339::parse(&format!("{expires_on}T00:00:00Z")) {
            Some(at) => Some(at.0),
            None => {
                let errors = Errors::one("expires_at", "a date such as 2027-06-01");
                return render(&state, &admin, &profile, None, false, Some(&errors)).await;
            }
        }
    };
    let credential = match form.get("kind") {
        Some("api_token") => NewCredential::ApiToken {
            email: form.text("email"),
            token,
            expires_at,
        },
        _ => NewCredential::AccessToken { token, expires_at },
    };
    let end_user = form.text("end_user_id");
    let new = NewConnection {
        profile: profile.id.to_string(),
        end_user_id: (!end_user.trim().is_empty()).then_some(end_user),
        credential,
    };
    match state.grantry.create_connection(new, &admin.actor()).await {
        Ok(_) => layout::see_other(&format!("/ui/profiles/{}?connected=1", profile.id)),
        Err(CoreError::Invalid { field, message }) => {
            let field = match field.as_str() {
                "email" => "email",
                "expires_at" => "expires_at",
                "end_user_id" => "end_user_id",
                _ => "token",
            };
            let errors = Errors::one(field, &message);
            render(&state, &admin, &profile, None, false, Some(&errors)).await
        }
        // The database: the console's usual page for it. Anything else (Bitbucket unreachable,
        // a conflict) is said on the profile's page.
        Err(error @ (CoreError::Store(_) | CoreError::Crypto(_))) => session::unavailable(error),
        Err(error) => {
            let flash = Flash::Bad(format!("The credential was not stored: {error}"));
            let mut response = render(&state, &admin, &profile, Some(flash), false, None).await;
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    }
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
