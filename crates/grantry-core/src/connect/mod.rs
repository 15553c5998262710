//! Connecting accounts: the application's backend creates a connect session; the end user's
//! browser follows its single-use link to the provider and comes back to `/oauth/callback`.
//!
//! Two things keep an account from being connected under someone else's end-user id. The
//! callback is accepted only from the browser that opened the link (a nonce in a cookie,
//! `begin`). And where the application gave a return URL, the credential waits in the session
//! until the application's backend confirms, with the one-time verification code the browser
//! brought back, that this browser is its signed-in end user (`confirm`), unless the profile
//! turned confirmation off.

mod begin;
mod callback;
mod confirm;
pub(crate) mod session;

pub use begin::Begun;
pub use callback::{CallbackParams, Finished};
pub use session::{CreatedSession, NewSession};

use crate::ids::SessionId;

/// The name of the cookie binding a session's flow to the browser that opened its link.
pub fn browser_cookie(session: &SessionId) -> String {
    format!("{BROWSER_COOKIE_PREFIX}{session}")
}

/// Every browser-binding cookie's name starts so.
pub const BROWSER_COOKIE_PREFIX: &str = "grantry_connect_";

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
    #[error(
        "This authorization was finished in a browser that did not open the connect link, so \
         nothing was connected. If someone sent you a link to authorize, do not use it; to \
         connect your own account, start from the application."
    )]
    OtherBrowser,
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
