//! What the API keys page shows, gathered from the services: the keys, and a new key shown once.
//! No markup here.

use grantry_core::store::ApiKeyRecord;
use grantry_core::{CoreResult, Grantry};

use crate::console::layout::Flash;

/// A key just created: its name and the key itself, shown this once.
pub struct NewKey {
    pub name: String,
    pub key: String,
}

/// API keys: the form to create one, and the list.
pub struct KeysPage {
    pub keys: Vec<ApiKeyRecord>,
    pub created: Option<NewKey>,
    /// Why the name was refused (the page answers 422).
    pub error: Option<String>,
    pub flash: Option<Flash>,
}

pub async fn keys_page(
    grantry: &Grantry,
    flash: Option<Flash>,
    created: Option<NewKey>,
    error: Option<String>,
) -> CoreResult<KeysPage> {
    Ok(KeysPage {
        keys: grantry.list_api_keys().await?,
        created,
        error,
        flash,
    })
}
