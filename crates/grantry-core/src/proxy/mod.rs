//! `/v1/proxy`: applications call the provider's REST API through Grantry with a connection's
//! credential, never holding it. `path` keeps every call below the provider's REST root.

pub mod path;
mod service;

pub use path::{PathError, ProxyPath};
pub use service::{PROXY_RETRY_AFTER_AGE, proxied_url};
