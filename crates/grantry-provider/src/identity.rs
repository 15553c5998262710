//! Who a credential belongs to: Cloud's `GET /2.0/user`; Data Center's `X-AUSERNAME` on any
//! authenticated answer, then `GET /rest/api/latest/users/{slug}`.

use grantry_core::catalog::{Endpoints, IdentityLookup};
use grantry_core::provider::{ApiAnswer, Identity, Presented, ProviderFailure, ProviderTarget};
use reqwest::header::HeaderMap;
use secrecy::ExposeSecret;
use serde::Deserialize;
use url::Url;

use crate::transport::{network, retry_after};

#[derive(Deserialize)]
struct CloudUser {
    uuid: String,
    username: Option<String>,
    nickname: Option<String>,
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DcUser {
    id: u64,
    slug: String,
    display_name: Option<String>,
}

/// An answer read in full, with its status and headers.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

async fn get(
    http: &reqwest::Client,
    url: Url,
    credential: &Presented<'_>,
) -> Result<Answer, ProviderFailure> {
    let response = present(http.get(url), credential)
        .send()
        .await
        .map_err(|e| ProviderFailure::from(network(&e)))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| ProviderFailure::from(network(&e)))?;
    Ok(Answer {
        status,
        headers,
        body: body.to_vec(),
    })
}

/// Adds the credential's Authorization header.
pub(crate) fn present(
    request: reqwest::RequestBuilder,
    credential: &Presented<'_>,
) -> reqwest::RequestBuilder {
    match credential {
        Presented::Bearer(token) => request.bearer_auth(token.expose_secret()),
        Presented::Basic { username, password } => {
            request.basic_auth(username, Some(password.expose_secret()))
        }
    }
}

fn failed(answer: &Answer) -> ProviderFailure {
    ProviderFailure::Http {
        status: answer.status,
        retry_after: retry_after(&answer.headers),
    }
}

fn api(target: &ProviderTarget<'_>, segments: &[&str]) -> Url {
    api_url(target.endpoints, segments)
}

/// The REST base plus `segments`, each percent-encoded: never another host.
pub(crate) fn api_url(endpoints: &Endpoints, segments: &[&str]) -> Url {
    let mut url = endpoints.api.clone();
    url.path_segments_mut()
        .expect("API bases are http(s) URLs")
        .pop_if_empty()
        .extend(segments);
    url
}

fn parse<T: for<'de> Deserialize<'de>>(answer: &Answer, what: &str) -> Result<T, ProviderFailure> {
    serde_json::from_slice(&answer.body)
        .map_err(|_| ProviderFailure::Protocol(format!("{what} is not the expected JSON")))
}

/// The two calls of the Data Center lookup: the user's slug from the header, then the user.
async fn dc_user(
    http: &reqwest::Client,
    target: &ProviderTarget<'_>,
    credential: &Presented<'_>,
) -> Result<Answer, ProviderFailure> {
    let first = get(http, api(target, &["application-properties"]), credential).await?;
    let slug = first
        .headers
        .get("x-ausername")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(slug) = slug else {
        return Err(if first.status >= 400 {
            failed(&first)
        } else {
            ProviderFailure::Protocol("the answer named no user (X-AUSERNAME)".into())
        });
    };
    get(http, api(target, &["users", &slug]), credential).await
}

pub async fn identity(
    http: &reqwest::Client,
    target: &ProviderTarget<'_>,
    credential: Presented<'_>,
) -> Result<Identity, ProviderFailure> {
    match target.spec.identity {
        IdentityLookup::CurrentUser => {
            let answer = get(http, api(target, &["user"]), &credential).await?;
            if answer.status != 200 {
                return Err(failed(&answer));
            }
            let user: CloudUser = parse(&answer, "the user")?;
            let scopes = answer
                .headers
                .get("x-oauth-scopes")
                .and_then(|v| v.to_str().ok())
                .map(|text| {
                    text.split([',', ' '])
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                });
            let username = user
                .username
                .or(user.nickname)
                .unwrap_or_else(|| user.uuid.clone());
            Ok(Identity {
                display_name: user.display_name.unwrap_or_else(|| username.clone()),
                account_id: user.uuid,
                username,
                scopes,
            })
        }
        IdentityLookup::UsernameHeaderThenUser => {
            let answer = dc_user(http, target, &credential).await?;
            if answer.status != 200 {
                return Err(failed(&answer));
            }
            let user: DcUser = parse(&answer, "the user")?;
            Ok(Identity {
                account_id: user.id.to_string(),
                display_name: user.display_name.unwrap_or_else(|| user.slug.clone()),
                username: user.slug,
                scopes: None,
            })
        }
    }
}

/// The identity endpoint's raw answer (first 4 KiB), for a person to read.
pub async fn probe(
    http: &reqwest::Client,
    target: &ProviderTarget<'_>,
    credential: Presented<'_>,
) -> Result<ApiAnswer, ProviderFailure> {
    let answer = match target.spec.identity {
        IdentityLookup::CurrentUser => get(http, api(target, &["user"]), &credential).await?,
        IdentityLookup::UsernameHeaderThenUser => dc_user(http, target, &credential).await?,
    };
    let mut body = String::from_utf8_lossy(&answer.body).into_owned();
    if body.len() > 4096 {
        let mut cut = 4096;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
        body.push('…');
    }
    Ok(ApiAnswer {
        status: answer.status,
        body,
    })
}
