//! `/v1/proxy`: applications call the provider's REST API through Grantry with a connection's
//! credential, never holding it, with the clients they already use.
//!
//! - `path`: every call stays below the provider's REST root, whatever the caller writes.
//! - `links`: URLs in answers that point into the REST API are rewritten to point through the
//!   proxy again, so clients that follow `next` or `links.self.href` stay on Grantry.
//! - `service`: the call itself, with one refresh and a repeat when Bitbucket refuses a token
//!   that has lived a while.
//!
//! Bodies stream both ways; only JSON answers that hold links are read whole (to rewrite them).

pub mod links;
pub mod path;
mod service;

use std::pin::Pin;

use bytes::Bytes;
use futures_core::Stream;
use http::{HeaderMap, HeaderName};

pub use path::{PathError, ProxyPath};
pub use service::{PROXY_RETRY_AFTER_AGE, proxied_url};

/// Bytes as they arrive; an error ends the stream (the connection broke, or a limit was hit).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A body: whole in memory (it can be sent twice), or streaming (once).
pub enum Body {
    Whole(Bytes),
    Streaming {
        stream: ByteStream,
        /// As the sender declared it, when it did.
        length: Option<u64>,
    },
}

impl Body {
    pub fn empty() -> Body {
        Body::Whole(Bytes::new())
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Whole(bytes) => write!(f, "Body::Whole({} bytes)", bytes.len()),
            Body::Streaming { length, .. } => write!(f, "Body::Streaming({length:?} bytes)"),
        }
    }
}

/// An application's call: the method, its checked path and query, the headers allowed through
/// (see [`FORWARDED_REQUEST_HEADERS`]) and the body. Headers stay `http`'s types from the
/// application's request to the provider's and back: converting them to strings and parsing them
/// again cost a proxied call several thousand instructions.
#[derive(Debug)]
pub struct ProxyRequest {
    /// An HTTP method name, e.g. `GET`.
    pub method: String,
    /// The path as the application wrote it: in Bitbucket's own layout (`2.0/…`,
    /// `rest/api/1.0/…`) or short, below the REST base (`user`, `projects`).
    pub path: ProxyPath,
    /// The query string as the caller sent it, without `?`.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Body,
}

/// What is sent to the provider for one attempt of a call.
#[derive(Debug)]
pub struct Forward {
    pub method: String,
    pub headers: HeaderMap,
    pub body: Body,
}

/// The provider's answer, with only the headers allowed back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Body,
}

impl Answer {
    /// The first value of a header, if it is text.
    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Headers an application may send through the proxy; everything else, `Authorization` first of
/// all (it carries the caller's Grantry API key), stays behind.
pub const FORWARDED_REQUEST_HEADERS: [&str; 9] = [
    "accept",
    "content-type",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "range",
    "x-atlassian-token",
];

/// Headers of the provider's answer passed back to the application (and any `x-ratelimit-…`).
pub const FORWARDED_RESPONSE_HEADERS: [&str; 17] = [
    "accept-ranges",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-length",
    "content-location",
    "content-range",
    "content-type",
    "etag",
    "last-modified",
    "link",
    "location",
    "retry-after",
    "vary",
    "x-accepted-oauth-scopes",
    "x-ausername",
    "x-oauth-scopes",
];

/// Whether a response header travels back to the application. (A `HeaderName` is lowercase.)
pub fn forwarded_response_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    FORWARDED_RESPONSE_HEADERS.contains(&name) || name.starts_with("x-ratelimit-")
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use super::forwarded_response_header;

    fn forwarded(name: &str) -> bool {
        forwarded_response_header(&HeaderName::from_bytes(name.as_bytes()).unwrap())
    }

    #[test]
    fn answer_headers_travel_back_by_name_in_any_case() {
        for kept in [
            "content-type",
            "Content-Type",
            "ETAG",
            "x-ratelimit-limit",
            "X-RateLimit-NearLimit",
        ] {
            assert!(forwarded(kept), "{kept}");
        }
        for dropped in [
            "set-cookie",
            "Set-Cookie",
            "server",
            "x-ratelimit",
            "x-rate",
        ] {
            assert!(!forwarded(dropped), "{dropped}");
        }
    }
}
