//! Token calls with the `oauth2` crate: the authorization code (with PKCE where the provider
//! takes it), refresh and client credentials grants.

use grantry_core::catalog::ClientAuth;
use grantry_core::provider::{ProviderFailure, ProviderTarget, TokenGrant};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthorizationCode, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::transport::{Transport, TransportError};

/// Bitbucket Cloud's answers before May 2026 name the granted scopes `scopes`, not `scope`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct BitbucketFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scopes: Option<String>,
}

impl ExtraTokenFields for BitbucketFields {}

type TokenAnswer = StandardTokenResponse<BitbucketFields, BasicTokenType>;

type OAuthClient = Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

fn client(target: &ProviderTarget<'_>) -> Result<OAuthClient, ProviderFailure> {
    let redirect = RedirectUrl::new(target.redirect_uri.to_owned())
        .map_err(|e| ProviderFailure::Protocol(format!("callback URL: {e}")))?;
    let auth_type = match target.spec.client_auth {
        ClientAuth::Basic => AuthType::BasicAuth,
        ClientAuth::Form => AuthType::RequestBody,
    };
    Ok(Client::new(ClientId::new(target.client_id.to_owned()))
        .set_client_secret(ClientSecret::new(
            target.client_secret.expose_secret().to_owned(),
        ))
        .set_token_uri(TokenUrl::from_url(target.endpoints.token.clone()))
        .set_redirect_uri(redirect)
        .set_auth_type(auth_type))
}

fn grant(answer: TokenAnswer) -> TokenGrant {
    let scopes = answer
        .scopes()
        .map(|scopes| scopes.iter().map(|s| s.to_string()).collect())
        .or_else(|| {
            answer.extra_fields().scopes.as_deref().map(|text| {
                text.split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
        });
    TokenGrant {
        access_token: SecretString::from(answer.access_token().secret().clone()),
        refresh_token: answer
            .refresh_token()
            .map(|token| SecretString::from(token.secret().clone())),
        expires_in: answer.expires_in().map(|d| d.as_secs()),
        scopes,
    }
}

fn failure(error: RequestTokenError<TransportError, BasicErrorResponse>) -> ProviderFailure {
    match error {
        RequestTokenError::ServerResponse(answer) => ProviderFailure::OAuth {
            status: 400,
            error: answer.error().to_string(),
            description: answer.error_description().cloned(),
        },
        RequestTokenError::Request(transport) => transport.into(),
        // Only the path: serde's message could quote a token from the body.
        RequestTokenError::Parse(error, _) => ProviderFailure::Protocol(format!(
            "the token answer could not be read at `{}`",
            error.path()
        )),
        RequestTokenError::Other(message) => ProviderFailure::Protocol(message),
    }
}

pub async fn exchange_code(
    http: &reqwest::Client,
    target: &ProviderTarget<'_>,
    code: &str,
    verifier: Option<&str>,
) -> Result<TokenGrant, ProviderFailure> {
    let call = Transport(http);
    let client = client(target)?;
    let mut request = client.exchange_code(AuthorizationCode::new(code.to_owned()));
    if let Some(verifier) = verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
    }
    request
        .request_async(&call)
        .await
        .map(grant)
        .map_err(failure)
}

pub async fn refresh(
    http: &reqwest::Client,
    target: &ProviderTarget<'_>,
    refresh_token: &SecretString,
) -> Result<TokenGrant, ProviderFailure> {
    let call = Transport(http);
    let client = client(target)?;
    let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
    let mut request = client.exchange_refresh_token(&token);
    if target.spec.redirect_uri_on_refresh {
        request = request.add_extra_param("redirect_uri", target.redirect_uri);
    }
    request
        .request_async(&call)
        .await
        .map(grant)
        .map_err(failure)
}

pub async fn client_credentials(
    http: &reqwest::Client,
    target: &ProviderTarget<'_>,
) -> Result<TokenGrant, ProviderFailure> {
    let call = Transport(http);
    let client = client(target)?;
    client
        .exchange_client_credentials()
        .request_async(&call)
        .await
        .map(grant)
        .map_err(failure)
}
