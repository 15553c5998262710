//! `Grantry::proxy`: one application call, made with the connection's credential.

use url::Url;

use super::ProxyPath;
use crate::app::{Actor, Grantry};
use crate::catalog::{Endpoints, ProviderSpec};
use crate::connections::service::presented;
use crate::error::{CoreError, CoreResult};
use crate::ids::ConnectionId;
use crate::provider::{ApiRequest, ApiResponse};

/// Seconds a token must have lived before a 401 to a proxied call makes Grantry refresh it.
pub const PROXY_RETRY_AFTER_AGE: i64 = 60;

/// The URL a proxied path addresses: Bitbucket's own layout (`2.0/…`, `rest/api/1.0/…`) or the
/// short form below the REST base (`user`, `projects`), always below the REST root.
pub fn proxied_url(
    spec: &ProviderSpec,
    endpoints: &Endpoints,
    path: &ProxyPath,
    query: Option<&str>,
) -> CoreResult<Url> {
    let below_root = path
        .strip_prefix(spec.rest_layout)
        .unwrap_or_else(|| path.under(spec.rest_short));
    below_root
        .url(&endpoints.rest, query)
        .map_err(CoreError::ProxyPath)
}

impl Grantry {
    /// Makes an application's call to the provider's REST API with the connection's credential
    /// (`/v1/proxy`). A 401 to a token older than `PROXY_RETRY_AFTER_AGE` is taken as a token
    /// Bitbucket stopped honouring early: it is refreshed and the call made once more. Younger
    /// tokens are not refreshed again, so a connection whose fresh tokens are refused cannot turn
    /// every proxied call into a refresh.
    pub async fn proxy(
        &self,
        id: &ConnectionId,
        request: &ApiRequest,
        actor: &Actor,
    ) -> CoreResult<ApiResponse> {
        let token = self.token(id).await?;
        // Only where to send it: the client secret is not needed, so not opened.
        let profile = self.profile_of(&token).await?;
        let endpoints = self.endpoints(&profile)?;
        let url = proxied_url(
            profile.provider.spec(),
            &endpoints,
            &request.path,
            request.query.as_deref(),
        )?;
        let answer = self
            .provider
            .forward(&url, presented(&token), request)
            .await
            .map_err(CoreError::Provider)?;
        let age = token.issued_at.map(|at| self.clock.now() - at);
        let worth_a_refresh =
            token.credential.renewable() && age.is_some_and(|age| age >= PROXY_RETRY_AFTER_AGE);
        if answer.status != 401 || !worth_a_refresh {
            return Ok(answer);
        }
        tracing::info!(connection.id = %id, "the provider refused a proxied call's token; refreshing once");
        let fresh = self.force_refresh(id, actor).await?;
        self.provider
            .forward(&url, presented(&fresh), request)
            .await
            .map_err(CoreError::Provider)
    }
}
