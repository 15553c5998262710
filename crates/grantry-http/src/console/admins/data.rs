//! What the Admins page shows, gathered from the services: the admins, and the forms' errors and
//! typed user name when one was refused. No markup here.

use grantry_core::store::AdminRecord;
use grantry_core::{CoreResult, Grantry};

use crate::console::layout::Flash;

/// Errors to show next to the forms' fields.
#[derive(Default)]
pub struct Errors {
    pub current: Option<String>,
    pub new_password: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Errors {
    pub fn any(&self) -> bool {
        self.current.is_some()
            || self.new_password.is_some()
            || self.username.is_some()
            || self.password.is_some()
    }
}

/// Admins: the password form, the form to add one, and the list.
pub struct AdminsPage {
    pub admins: Vec<AdminRecord>,
    /// Any error answers 422.
    pub errors: Errors,
    /// The user name typed in a refused "Add an admin".
    pub typed_username: String,
    pub flash: Option<Flash>,
}

pub async fn admins_page(
    grantry: &Grantry,
    flash: Option<Flash>,
    errors: Errors,
    typed_username: &str,
) -> CoreResult<AdminsPage> {
    Ok(AdminsPage {
        admins: grantry.list_admins().await?,
        errors,
        typed_username: typed_username.to_owned(),
        flash,
    })
}
