//! [`HttpProvider`]: Grantry's `ProviderClient` over HTTP.
//!
//! Outbound calls go only to the endpoints the catalog derives from configuration (Cloud's hosts)
//! or from a profile (a Data Center base URL); redirects are never followed; every request has a
//! connect timeout and an overall timeout, which must stay below the refresh lease.

mod identity;
mod oauth;
mod proxy;
mod transport;

use std::time::Duration;

use async_trait::async_trait;
use grantry_core::provider::{
    ApiAnswer, ApiRequest, ApiResponse, Identity, Presented, ProviderClient, ProviderFailure,
    ProviderTarget, TokenGrant,
};
use secrecy::SecretString;

#[derive(Debug, Clone)]
pub struct HttpProvider {
    http: reqwest::Client,
}

/// Outbound HTTP settings.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Extra trusted roots (PEM), for Data Center instances behind a private CA.
    pub extra_root_pem: Option<Vec<u8>>,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
            extra_root_pem: None,
        }
    }
}

impl HttpProvider {
    pub fn new(outbound: &Outbound) -> Result<HttpProvider, String> {
        let http = transport::client(
            outbound.extra_root_pem.as_deref(),
            outbound.connect_timeout,
            outbound.timeout,
        )?;
        Ok(HttpProvider { http })
    }
}

#[async_trait]
impl ProviderClient for HttpProvider {
    async fn exchange_code(
        &self,
        target: &ProviderTarget<'_>,
        code: &str,
        verifier: Option<&str>,
    ) -> Result<TokenGrant, ProviderFailure> {
        oauth::exchange_code(&self.http, target, code, verifier).await
    }

    async fn refresh(
        &self,
        target: &ProviderTarget<'_>,
        refresh_token: &SecretString,
    ) -> Result<TokenGrant, ProviderFailure> {
        oauth::refresh(&self.http, target, refresh_token).await
    }

    async fn client_credentials(
        &self,
        target: &ProviderTarget<'_>,
    ) -> Result<TokenGrant, ProviderFailure> {
        oauth::client_credentials(&self.http, target).await
    }

    async fn identity(
        &self,
        target: &ProviderTarget<'_>,
        credential: Presented<'_>,
    ) -> Result<Identity, ProviderFailure> {
        identity::identity(&self.http, target, credential).await
    }

    async fn probe(
        &self,
        target: &ProviderTarget<'_>,
        credential: Presented<'_>,
    ) -> Result<ApiAnswer, ProviderFailure> {
        identity::probe(&self.http, target, credential).await
    }

    async fn forward(
        &self,
        url: &url::Url,
        credential: Presented<'_>,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ProviderFailure> {
        proxy::forward(&self.http, url, credential, request).await
    }
}
