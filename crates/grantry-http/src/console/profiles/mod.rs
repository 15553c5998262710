//! Management > Application connections: the list, the Create / Edit panel, a profile's page with
//! its setup steps and connections, connecting an account, and deleting. The handlers are here;
//! what the pages show is gathered in `data.rs` and drawn in `view.rs`, and the Create / Edit
//! form's fields and their checks are in `form.rs`.

pub mod data;
pub mod form;
pub mod view;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::clock::Rfc3339;
use grantry_core::connect::NewSession;
use grantry_core::connections::{NewConnection, NewCredential};
use grantry_core::profiles::{NewProfile, ProfileChanges};
use grantry_core::store::ProfileRecord;
use grantry_core::{CoreError, Grantry};
use secrecy::SecretString;
use serde::Deserialize;

use self::data::{Notice, ProfilePanel};
use self::form::{Errors, ProfileForm};
use super::layout::{self, Flash, Section};
use super::session::{self, Admin, Posted};
use crate::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(notice): Query<Notice>,
) -> Response {
    let page = match data::profiles_page(&state.grantry, &notice).await {
        Ok(page) => page,
        Err(error) => return session::failed(error),
    };
    let body = view::list(&page);
    layout::page(
        &admin,
        Section::Connections,
        "Application connections",
        page.flash,
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

/// The panel again with what was wrong, answering 422.
fn invalid(
    state: &AppState,
    admin: &Admin,
    form: ProfileForm,
    errors: Errors,
    action: &str,
    editing: bool,
) -> Response {
    let panel = ProfilePanel::new(&state.grantry, form, errors, action.to_owned(), editing);
    let mut response = layout::page(
        admin,
        Section::Connections,
        "Application connection",
        None,
        view::panel(admin, &panel),
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
    let panel = ProfilePanel::new(
        &state.grantry,
        form,
        Errors::default(),
        "/ui/profiles".to_owned(),
        false,
    );
    layout::page(
        &admin,
        Section::Connections,
        "Create an application connection",
        None,
        view::panel(&admin, &panel),
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
        Err(errors) => return invalid(&state, &admin, form, errors, action, false),
    };
    let required_scopes = match form.required_scopes(provider) {
        Ok(scopes) => scopes,
        Err(errors) => return invalid(&state, &admin, form, errors, action, false),
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
            Some(errors) => invalid(&state, &admin, form, errors, action, false),
            None => session::failed(error),
        },
    }
}

async fn find(grantry: &Grantry, id: &str) -> Result<ProfileRecord, Response> {
    match grantry.find_profile(id).await {
        Ok(profile) => Ok(profile),
        Err(CoreError::NotFound(_) | CoreError::Invalid { .. }) => Err(layout::not_found(
            "That application connection does not exist.",
        )),
        Err(error) => Err(session::failed(error)),
    }
}

pub async fn edit(State(state): State<AppState>, admin: Admin, Path(id): Path<String>) -> Response {
    let profile = match find(&state.grantry, &id).await {
        Ok(profile) => profile,
        Err(response) => return response,
    };
    let panel = ProfilePanel::new(
        &state.grantry,
        ProfileForm::from_profile(&profile),
        Errors::default(),
        format!("/ui/profiles/{}/edit", profile.id),
        true,
    );
    layout::page(
        &admin,
        Section::Connections,
        "Edit application connection",
        None,
        view::panel(&admin, &panel),
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
        Err(errors) => return invalid(&state, &admin, form, errors, &action, true),
    };
    let required_scopes = match form.required_scopes(provider) {
        Ok(scopes) => scopes,
        Err(errors) => return invalid(&state, &admin, form, errors, &action, true),
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
            Some(errors) => invalid(&state, &admin, form, errors, &action, true),
            None => session::failed(error),
        },
    }
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
    let created = notice.created.is_some();
    render(
        &state,
        &admin,
        profile,
        notice.profile_flash(),
        created,
        None,
    )
    .await
}

/// The profile's page; `refused` is a credential form sent back with what was wrong (422).
async fn render(
    state: &AppState,
    admin: &Admin,
    profile: ProfileRecord,
    flash: Option<Flash>,
    created: bool,
    refused: Option<Errors>,
) -> Response {
    let page = match data::profile_page(&state.grantry, profile, flash, created, refused).await {
        Ok(page) => page,
        Err(error) => return session::failed(error),
    };
    let body = view::profile(admin, &page);
    let refused = page.refused.is_some();
    let mut response = layout::page(
        admin,
        Section::Connections,
        &page.profile.name,
        page.flash,
        body,
    );
    if refused {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

/// Stores an API token or access token from the profile page's form.
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
                return render(&state, &admin, profile, None, false, Some(errors)).await;
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
            render(&state, &admin, profile, None, false, Some(errors)).await
        }
        // The database: the console's usual page for it. Anything else (Bitbucket unreachable,
        // a conflict) is said on the profile's page.
        Err(error @ (CoreError::Store(_) | CoreError::Crypto(_))) => session::failed(error),
        Err(error) => {
            let flash = Flash::Bad(format!("The credential was not stored: {error}"));
            let mut response = render(&state, &admin, profile, Some(flash), false, None).await;
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
        Err(error) => session::failed(error),
    }
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    match find(&state.grantry, &id).await {
        Ok(profile) => delete_page(&state, &admin, profile, None).await,
        Err(response) => response,
    }
}

/// "Delete …?"; `error` (the name typed did not match) answers 422.
async fn delete_page(
    state: &AppState,
    admin: &Admin,
    profile: ProfileRecord,
    error: Option<String>,
) -> Response {
    let page = match data::delete_page(&state.grantry, profile, error).await {
        Ok(page) => page,
        Err(error) => return session::failed(error),
    };
    let mut response = layout::page(
        admin,
        Section::Connections,
        "Delete application connection",
        None,
        view::confirm_delete(admin, &page),
    );
    if page.error.is_some() {
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
        let error = "That is not the profile's name.".to_owned();
        return delete_page(&state, &admin, profile, Some(error)).await;
    }
    match state
        .grantry
        .delete_profile(profile.id.as_str(), &admin.actor())
        .await
    {
        Ok((_, removed)) => layout::see_other(&format!("/ui/profiles?deleted={removed}")),
        Err(error) => session::failed(error),
    }
}
