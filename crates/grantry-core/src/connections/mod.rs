//! Connections: one authorized account (or stored credential) under a profile.

pub(crate) mod save;
pub(crate) mod service;

pub use save::Saved;
pub use service::{NewConnection, NewCredential};
