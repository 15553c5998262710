//! `/v1/proxy`: an application's call made to the provider's REST API with a connection's
//! credential, at a URL the core checked lies below the REST root. Only allow-listed headers
//! travel either way, and redirects are not followed (the client never follows them).

use grantry_core::provider::{
    ApiRequest, ApiResponse, FORWARDED_RESPONSE_HEADERS, Presented, ProviderFailure,
};
use reqwest::Method;

use url::Url;

use crate::identity::present;
use crate::transport::network;

/// The largest answer passed back whole; Bitbucket's pages are far smaller.
const MAX_ANSWER: usize = 32 * 1024 * 1024;

pub async fn forward(
    http: &reqwest::Client,
    url: &Url,
    credential: Presented<'_>,
    request: &ApiRequest,
) -> Result<ApiResponse, ProviderFailure> {
    let method = Method::from_bytes(request.method.as_bytes()).map_err(|_| {
        ProviderFailure::Protocol(format!("`{}` is no HTTP method", request.method))
    })?;
    let mut call = http.request(method, url.clone());
    for (name, value) in &request.headers {
        call = call.header(name, value);
    }
    let mut response = present(call, &credential)
        .body(request.body.clone())
        .send()
        .await
        .map_err(|e| ProviderFailure::from(network(&e)))?;
    let status = response.status().as_u16();
    let headers = FORWARDED_RESPONSE_HEADERS
        .iter()
        .flat_map(|name| {
            response
                .headers()
                .get_all(*name)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .map(|value| ((*name).to_owned(), value.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ProviderFailure::from(network(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(ProviderFailure::Protocol(format!(
                "the answer is larger than {} MiB",
                MAX_ANSWER / (1024 * 1024)
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(ApiResponse {
        status,
        headers,
        body,
    })
}
