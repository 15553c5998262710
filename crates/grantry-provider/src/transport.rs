//! The HTTP transport under the `oauth2` crate: reqwest with no redirects, no retries and
//! timeouts, turning answers that are not OAuth errors (5xx, 429, an HTML 401, …) into a
//! transport error that keeps the status and `Retry-After`, so the catalog can classify them.

use std::time::Duration;

use grantry_core::provider::ProviderFailure;
use oauth2::{HttpRequest, HttpResponse};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

/// Why a token call got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    #[error("{0}")]
    Network(String),
    #[error("timed out")]
    Timeout,
    #[error("invalid request: {0}")]
    Build(String),
}

impl From<TransportError> for ProviderFailure {
    fn from(error: TransportError) -> Self {
        match error {
            TransportError::Status {
                status,
                retry_after,
            } => ProviderFailure::Http {
                status,
                retry_after,
            },
            TransportError::Timeout => ProviderFailure::Network {
                timeout: true,
                message: "timed out".into(),
            },
            TransportError::Network(message) => ProviderFailure::Network {
                timeout: false,
                message,
            },
            TransportError::Build(message) => ProviderFailure::Protocol(message),
        }
    }
}

pub fn network(error: &reqwest::Error) -> TransportError {
    if error.is_timeout() {
        TransportError::Timeout
    } else {
        // reqwest's messages name the URL, never headers or bodies.
        TransportError::Network(error.without_url_text())
    }
}

trait WithoutUrl {
    fn without_url_text(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_text(&self) -> String {
        let mut message = self.to_string();
        if let Some(url) = self.url() {
            message = message.replace(url.as_str(), "<url>");
        }
        message
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare enough to treat as absent).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

fn is_json(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"))
}

/// The `oauth2` crate's view of the outbound client.
pub struct Transport<'a>(pub &'a reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for Transport<'_> {
    type Error = TransportError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, TransportError>> + Send + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send(self.0, request))
    }
}

/// Sends one token request.
pub async fn send(
    http: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, TransportError> {
    let request =
        reqwest::Request::try_from(request).map_err(|e| TransportError::Build(e.to_string()))?;
    let response = http.execute(request).await.map_err(|e| network(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let oauth_error =
        status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS && is_json(&headers);
    if !status.is_success() && !oauth_error {
        return Err(TransportError::Status {
            status: status.as_u16(),
            retry_after: retry_after(&headers),
        });
    }
    let body = response.bytes().await.map_err(|e| network(&e))?;
    let mut builder = oauth2::http::Response::builder().status(status.as_u16());
    for (name, value) in &headers {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    builder
        .body(body.to_vec())
        .map_err(|e| TransportError::Build(e.to_string()))
}

/// An outbound client: no redirects (a token endpoint that redirects is misconfigured or
/// hostile), a timeout on connecting and, when given, on the whole request.
pub fn client(
    extra_root_pem: Option<&[u8]>,
    connect_timeout: Duration,
    timeout: Option<Duration>,
) -> Result<reqwest::ClientBuilder, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // Retrying is the caller's decision (the refresher backs off; the proxy repeats a call
        // only after a refresh). reqwest's own retries only cover HTTP/2, which is not built in,
        // yet its policy would copy every request's headers to keep a replay ready.
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .connect_timeout(connect_timeout)
        .user_agent(concat!("grantry/", env!("CARGO_PKG_VERSION")));
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(pem) = extra_root_pem {
        for certificate in
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("CA bundle: {e}"))?
        {
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder)
}
