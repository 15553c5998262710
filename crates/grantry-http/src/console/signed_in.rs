//! Who is signed in to the console, as the pages and handlers see them (the session extractor that
//! makes one is in `session.rs`).

use grantry_core::Actor;

/// A signed-in console admin.
pub struct Admin {
    pub username: String,
    /// The CSRF token this session's forms carry.
    pub csrf: String,
    pub token: String,
}

impl Admin {
    pub fn actor(&self) -> Actor {
        Actor::Admin {
            username: self.username.clone(),
        }
    }
}
