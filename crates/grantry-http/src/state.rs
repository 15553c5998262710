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
    /// Whether cookies get the `Secure` attribute (true when the public URL is https).
    pub secure_cookies: bool,
    /// Take the client's address from `X-Forwarded-For` (behind a reverse proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Largest request body the proxy forwards, in bytes.
    pub proxy_body_limit: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            secure_cookies: false,
            trust_forwarded_for: false,
            proxy_body_limit: 1024 * 1024 * 1024,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub grantry: Arc<Grantry>,
    pub http: Arc<HttpSettings>,
}
