//! [`HttpProvider`]: Grantry's `ProviderClient` over HTTP.
//!
//! Outbound calls go only to the endpoints the catalog derives from configuration (Cloud's hosts)
//! or from a profile (a Data Center base URL); redirects are never followed; every request has a
//! connect timeout and an overall timeout, which must stay below the refresh lease.

mod identity;
mod oauth;
mod proxy;
mod transport;
mod webhooks;

pub use webhooks::HttpWebhooks;

use std::time::Duration;

use async_trait::async_trait;
use grantry_core::provider::{
    ApiAnswer, Identity, Presented, ProviderClient, ProviderFailure, ProviderTarget, TokenGrant,
};
use grantry_core::proxy::{Answer, Forward};
use secrecy::SecretString;

#[derive(Debug, Clone)]
pub struct HttpProvider {
    /// Token calls and identity lookups: short, with a timeout on the whole call.
    http: reqwest::Client,
    /// Proxied calls: streamed, with an idle timeout between bytes instead.
    proxy: proxy::ProxyClient,
}

/// Outbound HTTP settings.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Proxied calls: the longest wait for the next bytes of an answer.
    pub idle_timeout: Duration,
    /// Extra trusted roots (PEM), for Data Center instances behind a private CA.
    pub extra_root_pem: Option<Vec<u8>>,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(30),
            extra_root_pem: None,
        }
    }
}

impl HttpProvider {
    pub fn new(outbound: &Outbound) -> Result<HttpProvider, String> {
        let roots = outbound.extra_root_pem.as_deref();
        let http = transport::client(roots, outbound.connect_timeout, Some(outbound.timeout))
            .and_then(|b| b.build().map_err(|e| e.to_string()))?;
        let proxy = proxy::ProxyClient::new(outbound)?;
        Ok(HttpProvider { http, proxy })
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
        request: Forward,
    ) -> Result<Answer, ProviderFailure> {
        self.proxy.forward(url, credential, request).await
    }
}
