//! What the application-connection pages show, gathered from the services: the list with each
//! profile's connection counts, the Create / Edit panel, a profile's page, and the delete
//! confirmation. No markup here.

use std::collections::HashMap;

use grantry_core::catalog::{CredentialGuide, SetupGuide};
use grantry_core::store::{ConnectionFilter, ConnectionStatus, PageRequest, ProfileRecord};
use grantry_core::{CoreResult, Grantry};
use serde::Deserialize;

use super::form::{Errors, ProfileForm};
use crate::console::connections::data::{ConnectionRow, rows};
use crate::console::layout::Flash;

/// What the list and a profile's page say after a redirect (`?created=1`, `?error=…`).
#[derive(Deserialize, Default)]
pub struct Notice {
    pub created: Option<String>,
    pub saved: Option<String>,
    pub deleted: Option<u64>,
    pub connected: Option<String>,
    pub error: Option<String>,
    pub refreshed: Option<String>,
    pub checked: Option<String>,
    pub removed: Option<String>,
}

impl Notice {
    /// The list's message: a profile deleted, or Edit / Delete without a choice.
    pub fn list_flash(&self) -> Option<Flash> {
        match (self.deleted, self.error.as_deref()) {
            (Some(n), _) => Some(Flash::Ok(format!(
                "Profile deleted, with {n} connection(s) and their tokens."
            ))),
            (None, Some("select")) => Some(Flash::Bad(
                "Select a profile first: choose it at the start of its row, then Edit or Delete."
                    .into(),
            )),
            _ => None,
        }
    }

    /// A profile's page's message, after saving, connecting, or acting on a connection.
    pub fn profile_flash(&self) -> Option<Flash> {
        if let Some(error) = &self.error {
            return Some(Flash::Bad(format!(
                "The account was not connected. {}",
                crate::connect::explain(error)
            )));
        }
        let text = if self.created.is_some() {
            "Saved. Now set it up in Bitbucket with the steps below, then connect an account."
        } else if self.saved.is_some() {
            "Changes saved."
        } else if self.connected.is_some() {
            "Account connected."
        } else if self.refreshed.is_some() {
            "Token refreshed."
        } else if self.checked.is_some() {
            "Checked: the credential is still usable."
        } else if self.removed.is_some() {
            "Connection deleted."
        } else {
            return None;
        };
        Some(Flash::Ok(text.to_owned()))
    }
}

/// Connections by status, for one profile.
pub type Counts = HashMap<ConnectionStatus, u64>;

/// Management > Application connections.
pub struct ProfilesPage {
    pub profiles: Vec<ProfileRecord>,
    /// By profile id; a profile without connections is absent.
    pub counts_by_profile: HashMap<String, Counts>,
    pub flash: Option<Flash>,
}

pub async fn profiles_page(grantry: &Grantry, notice: &Notice) -> CoreResult<ProfilesPage> {
    let profiles = grantry.list_profiles().await?;
    let mut counts_by_profile: HashMap<String, Counts> = HashMap::new();
    for (profile, status, n) in grantry.connection_counts().await? {
        counts_by_profile
            .entry(profile.to_string())
            .or_default()
            .insert(status, n);
    }
    Ok(ProfilesPage {
        profiles,
        counts_by_profile,
        flash: notice.list_flash(),
    })
}

/// The Create / Edit panel: what is typed (or saved), what was wrong, and where it posts.
pub struct ProfilePanel {
    pub form: ProfileForm,
    pub errors: Errors,
    pub action: String,
    /// Editing leaves the secret optional.
    pub editing: bool,
    /// The callback URL to give Bitbucket.
    pub callback_url: String,
}

impl ProfilePanel {
    pub fn new(
        grantry: &Grantry,
        form: ProfileForm,
        errors: Errors,
        action: String,
        editing: bool,
    ) -> ProfilePanel {
        ProfilePanel {
            form,
            errors,
            action,
            editing,
            callback_url: grantry.settings.callback_url(),
        }
    }
}

/// A profile's page: its setup steps, the credential form, and its connections.
pub struct ProfilePage {
    pub profile: ProfileRecord,
    /// The first [`SHOWN`] connections.
    pub connections: Vec<ConnectionRow>,
    /// How many the profile has in all.
    pub total: u64,
    pub setup: SetupGuide,
    pub credential: CredentialGuide,
    /// The setup steps start open: just created, or nothing connected yet.
    pub setup_open: bool,
    /// A credential form sent back with what was wrong (the page answers 422).
    pub refused: Option<Errors>,
    pub flash: Option<Flash>,
}

/// Connections listed on a profile's page; the API and CLI page through all of them.
pub const SHOWN: u32 = 500;

/// How many connections a profile has, from the grouped count the list shows.
async fn count_connections(grantry: &Grantry, profile: &ProfileRecord) -> CoreResult<u64> {
    Ok(grantry
        .connection_counts()
        .await?
        .into_iter()
        .filter(|(id, _, _)| *id == profile.id)
        .map(|(_, _, n)| n)
        .sum())
}

pub async fn profile_page(
    grantry: &Grantry,
    profile: ProfileRecord,
    flash: Option<Flash>,
    created: bool,
    refused: Option<Errors>,
) -> CoreResult<ProfilePage> {
    let filter = ConnectionFilter {
        profile_id: Some(profile.id.clone()),
        ..ConnectionFilter::default()
    };
    let page = PageRequest {
        after: None,
        limit: SHOWN,
    };
    let connections = grantry.list_connections(&filter, &page).await?;
    let connections = rows(grantry, &profile, connections);
    let total = count_connections(grantry, &profile).await?;
    Ok(ProfilePage {
        total,
        setup: grantry.setup_guide(&profile),
        credential: grantry.credential_guide(&profile),
        setup_open: created || connections.is_empty(),
        profile,
        connections,
        refused,
        flash,
    })
}

/// "Delete …?": the profile and how many connections go with it.
pub struct DeletePage {
    pub profile: ProfileRecord,
    /// How many connections (and their tokens) go with it.
    pub connections: u64,
    /// The name typed did not match (the page answers 422).
    pub error: Option<String>,
}

/// The count comes from the same grouped count as the list, not from reading the connections:
/// a confirmation of a deletion must not understate what goes.
pub async fn delete_page(
    grantry: &Grantry,
    profile: ProfileRecord,
    error: Option<String>,
) -> CoreResult<DeletePage> {
    let connections = count_connections(grantry, &profile).await?;
    Ok(DeletePage {
        profile,
        connections,
        error,
    })
}
