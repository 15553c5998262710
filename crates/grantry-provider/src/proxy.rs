//! `/v1/proxy`: an application's call made to the provider's REST API with a connection's
//! credential, at a URL the core checked lies below the REST root. Bodies stream both ways, with
//! a connect timeout and an idle timeout between bytes rather than a cap on the whole call (a
//! large download may take minutes). Only allow-listed headers travel either way, and redirects
//! are not followed (the application gets them, rewritten to point through the proxy).

use futures_util::TryStreamExt;
use grantry_core::provider::{Presented, ProviderFailure};
use grantry_core::proxy::{Answer, Body, Forward, forwarded_response_header};
use reqwest::Method;
use url::Url;

use crate::identity::present;
use crate::transport::network;

pub async fn forward(
    http: &reqwest::Client,
    url: &Url,
    credential: Presented<'_>,
    request: Forward,
) -> Result<Answer, ProviderFailure> {
    let method = Method::from_bytes(request.method.as_bytes()).map_err(|_| {
        ProviderFailure::Protocol(format!("`{}` is no HTTP method", request.method))
    })?;
    // Identity encoding, so JSON answers can have their links rewritten; the application's own
    // Accept-Encoding is not forwarded. (An answer compressed anyway passes through untouched.)
    let mut call = http
        .request(method, url.clone())
        .header(reqwest::header::ACCEPT_ENCODING, "identity");
    for (name, value) in &request.headers {
        call = call.header(name, value);
    }
    call = match request.body {
        Body::Whole(bytes) => call.body(bytes),
        Body::Streaming { stream, length } => {
            if let Some(length) = length {
                call = call.header(reqwest::header::CONTENT_LENGTH, length);
            }
            call.body(reqwest::Body::wrap_stream(stream))
        }
    };
    let response = present(call, &credential)
        .send()
        .await
        .map_err(|e| ProviderFailure::from(network(&e)))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| forwarded_response_header(name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let length = response.content_length();
    let stream = response.bytes_stream().map_err(std::io::Error::other);
    Ok(Answer {
        status,
        headers,
        body: Body::Streaming {
            stream: Box::pin(stream),
            length,
        },
    })
}
