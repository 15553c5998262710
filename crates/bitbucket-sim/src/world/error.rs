//! Why a change to the world was refused.

/// Why a change to the world was refused. The text names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("git: {0}")]
    Git(String),
}

impl WorldError {
    pub fn invalid(field: &str, message: &str) -> WorldError {
        WorldError::Invalid {
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}
