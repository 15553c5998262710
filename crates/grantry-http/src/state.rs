//! What every handler can reach: the services and the HTTP settings.

use std::sync::Arc;
use std::time::Duration;

use grantry_core::Grantry;

/// HTTP-specific settings, taken from Grantry's configuration.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest request body accepted by the API, in bytes.
    pub body_limit: usize,
    /// Longest a request may take.
    pub request_timeout: Duration,
    /// Whether the console's cookies get the `Secure` attribute (true behind HTTPS).
    pub secure_cookies: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            secure_cookies: false,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub grantry: Arc<Grantry>,
    pub http: Arc<HttpSettings>,
}
