//! Connecting accounts: the application's backend creates a connect session; the end user's
//! browser follows its single-use link to the provider and comes back to `/oauth/callback`.

mod begin;
mod callback;
pub(crate) mod session;

pub use callback::CallbackParams;
pub use session::{CreatedSession, NewSession};

/// What the browser is shown instead of a redirect. Nothing is stored when these happen.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("This connect link is not valid. Ask the application for a new one.")]
    UnknownLink,
    #[error("This connect link was already used. Ask the application for a new one.")]
    UsedLink,
    #[error("This connect link has expired. Ask the application for a new one.")]
    ExpiredLink,
    #[error("This authorization response does not belong to any connect session.")]
    UnknownState,
    #[error("This authorization response was already used.")]
    ReplayedState,
    #[error("This connect session has expired. Start again from the application.")]
    ExpiredState,
    #[error("The application connection profile no longer exists.")]
    ProfileGone,
    #[error("Grantry cannot complete this right now: {0}")]
    Unavailable(#[from] crate::error::CoreError),
}

impl From<crate::store::StoreError> for ConnectError {
    fn from(error: crate::store::StoreError) -> Self {
        ConnectError::Unavailable(error.into())
    }
}
