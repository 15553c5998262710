//! The services' error type. The HTTP layer maps each variant to a problem+json answer.

use grantry_crypto::CryptoError;

use crate::ids::{BadId, ConnectionId, ProfileId};
use crate::provider::ProviderFailure;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{0} not found")]
    NotFound(String),
    /// Bad input, naming the field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    /// Too much at once (every password slot busy): try again in a moment.
    #[error("too busy right now; try again in {retry_after} s")]
    Busy { retry_after: u64 },
    /// Too many failed sign-ins from this address or for this user name.
    #[error("too many failed sign-ins; try again in {retry_after} s")]
    Throttled { retry_after: u64 },
    /// A connect session's confirmation named another end user or a wrong code.
    #[error("the connection was not confirmed: {0}")]
    ConfirmationRefused(String),
    /// The provider refused the grant: the end user has to reconnect.
    #[error("connection {connection} must be reconnected: {reason}")]
    NeedsReauth {
        connection: ConnectionId,
        reason: String,
    },
    /// The provider refused the profile's OAuth client.
    #[error("the OAuth client of profile {profile} is refused by the provider: {problem}")]
    ProfileMisconfigured { profile: ProfileId, problem: String },
    /// The provider cannot be reached or is overloaded, and no valid token is at hand.
    #[error("the provider is unavailable ({cause}); try again in {retry_after} s")]
    ProviderUnavailable { retry_after: u64, cause: String },
    /// The provider answered something other than what was needed (e.g. the Test call).
    #[error("the provider answered: {0}")]
    Provider(ProviderFailure),
    /// Bitbucket answered a refresh but the database did not take the new tokens: they are
    /// served from memory and written when it takes writes again, but not saved yet.
    #[error("connection {0} was refreshed, but the database has not taken the new tokens yet")]
    RefreshNotSaved(ConnectionId),
    /// A proxied path that would leave the provider's REST API.
    #[error(transparent)]
    ProxyPath(#[from] crate::proxy::PathError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed value did not open: a wrong key or tampering. Never shown to clients in detail.
    #[error("a sealed value could not be opened: {0}")]
    Crypto(#[from] CryptoError),
}

impl CoreError {
    pub fn invalid(field: &str, message: impl Into<String>) -> CoreError {
        CoreError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<BadId> for CoreError {
    fn from(error: BadId) -> Self {
        CoreError::invalid("id", error.to_string())
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
