//! `Grantry::proxy`: one application call, made with the connection's credential.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::HeaderValue;
use http::header::{
    CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_TYPE, LINK, LOCATION,
};
use url::Url;

use super::links::{MAX_REWRITTEN, Rewrite};
use super::{Answer, Body, Forward, ProxyPath, ProxyRequest};
use crate::app::{Actor, Grantry};
use crate::catalog::{Endpoints, ProviderSpec};
use crate::clock::Timestamp;
use crate::connections::service::presented;
use crate::error::{CoreError, CoreResult};
use crate::ids::ConnectionId;
use crate::provider::ProviderFailure;
use crate::tokens::CachedToken;

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

/// A proxied call that got no answer (refused, reset, timed out between bytes): the provider is
/// unavailable, try again shortly.
fn no_answer(failure: ProviderFailure) -> CoreError {
    match failure {
        ProviderFailure::Network { .. } => CoreError::ProviderUnavailable {
            retry_after: 5,
            cause: failure.to_string(),
        },
        other => CoreError::Provider(other),
    }
}

/// Whether a 401 to this token is worth one refresh: it has lived a while (a token refreshed a
/// moment ago and refused again would only turn every call into a refresh).
fn worth_a_refresh(token: &CachedToken, now: Timestamp) -> bool {
    let age = token.issued_at.map(|at| now - at);
    token.credential.renewable() && age.is_some_and(|age| age >= PROXY_RETRY_AFTER_AGE)
}

impl Grantry {
    /// Makes an application's call to the provider's REST API with the connection's credential
    /// (`/v1/proxy`). Needs no database once the connection's token and profile are in memory.
    /// A 401 to a token older than `PROXY_RETRY_AFTER_AGE` is taken as a token Bitbucket stopped
    /// honouring early: it is refreshed and the call made once more (when its body was small
    /// enough to keep; a streamed body cannot be sent twice, so its 401 comes back).
    pub async fn proxy(
        &self,
        id: &ConnectionId,
        request: ProxyRequest,
        actor: &Actor,
    ) -> CoreResult<Answer> {
        let token = self.token(id).await?;
        let profile = self.profile_for(&token.profile_id).await?;
        let spec = profile.record.provider.spec();
        let endpoints = &profile.endpoints;
        let query = request.query.as_deref();
        let url = proxied_url(spec, endpoints, &request.path, query)?;
        let request_path = request.path.as_str().to_owned();
        let ProxyRequest {
            method,
            headers,
            body,
            ..
        } = request;
        let kept = match &body {
            Body::Whole(bytes) => Some(bytes.clone()),
            Body::Streaming { .. } => None,
        };
        let first = Forward {
            method: method.clone(),
            headers: headers.clone(),
            body,
        };
        let mut answer = self
            .provider
            .forward(&url, presented(&token), first)
            .await
            .map_err(no_answer)?;
        if answer.status == 401
            && worth_a_refresh(&token, self.clock.now())
            && let Some(bytes) = kept
        {
            tracing::info!(connection.id = %id, "the provider refused a proxied call's token; refreshing once");
            let fresh = self.force_refresh(id, actor).await?;
            let again = Forward {
                method,
                headers,
                body: Body::Whole(bytes),
            };
            answer = self
                .provider
                .forward(&url, presented(&fresh), again)
                .await
                .map_err(no_answer)?;
        }
        if answer.status == 401 && !token.credential.renewable() {
            // Bitbucket refused an API token or access token: the connection turns needs_reauth
            // (an API token after one more check) and no dead credential is served again.
            let body = match &answer.body {
                Body::Whole(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                Body::Streaming { .. } => String::new(),
            };
            // An access token's own ground: its repositories (Cloud), its projects (Data Center).
            let path = request_path.as_str();
            let on_own_ground = [
                "2.0/repositories/",
                "repositories/",
                "rest/api/",
                "projects/",
            ]
            .iter()
            .any(|prefix| path.starts_with(prefix))
                && !path.contains("/users");
            let refused = match self.connection_row(id).await {
                Ok(row) => self.proxied_call_refused(&row, on_own_ground, &body).await,
                Err(error) => Err(error),
            };
            if let Err(error) = refused {
                tracing::warn!(connection.id = %id, %error, "a proxied call's credential was refused");
            }
        }
        let rewrite = Rewrite::new(
            endpoints.rest.to_string(),
            self.settings.proxy_url(id, spec.rest_layout),
        );
        Ok(rewrite_answer(answer, &rewrite).await)
    }
}

/// Points the answer's links back through the proxy: its link headers always, its body when it
/// is JSON (plain or gzipped) of a sensible size (anything else streams through untouched).
async fn rewrite_answer(mut answer: Answer, rewrite: &Rewrite) -> Answer {
    for (name, value) in answer.headers.iter_mut() {
        let Ok(text) = value.to_str() else { continue };
        let rewritten = if name == LOCATION || name == CONTENT_LOCATION {
            rewrite.url(text)
        } else if name == LINK {
            Some(rewrite.link_header(text))
        } else {
            None
        };
        if let Some(rewritten) = rewritten.and_then(|r| HeaderValue::try_from(r).ok()) {
            *value = rewritten;
        }
    }
    let json = answer
        .header(CONTENT_TYPE)
        .is_some_and(|t| is_json(t.as_bytes()));
    // Grantry asks for identity; an answer gzipped anyway (an intermediary that compresses
    // regardless) is read, rewritten and sent on as identity. Other encodings pass untouched.
    let encoding = answer.headers.get(CONTENT_ENCODING);
    let gzipped = encoding
        .and_then(|e| e.to_str().ok())
        .is_some_and(|e| e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip"));
    let length = answer
        .header(CONTENT_LENGTH)
        .and_then(|n| n.parse::<usize>().ok());
    if !json || (encoding.is_some() && !gzipped) || length.is_some_and(|n| n > MAX_REWRITTEN) {
        return answer;
    }
    let (whole, rest) = match answer.body {
        Body::Whole(bytes) => (bytes, None),
        Body::Streaming { stream, length } => read_up_to(stream, length).await,
    };
    if let Some(stream) = rest {
        // Larger than we rewrite: what was read goes first, the rest follows as it comes.
        let first = futures_util::stream::once(async move { Ok(whole) });
        answer.body = Body::Streaming {
            stream: Box::pin(first.chain(stream)),
            length: None,
        };
        return answer;
    }
    let plain = if gzipped {
        match gunzip(&whole) {
            Some(plain) => {
                answer.headers.remove(CONTENT_ENCODING);
                Bytes::from(plain)
            }
            // Corrupt, or larger than we rewrite once inflated: passed on as it came.
            None => {
                answer.body = Body::Whole(whole);
                return answer;
            }
        }
    } else {
        whole
    };
    let changed = match rewrite.json(&plain) {
        Some(rewritten) => {
            answer.body = Body::Whole(Bytes::from(rewritten));
            true
        }
        None => {
            answer.body = Body::Whole(plain);
            gzipped
        }
    };
    if changed {
        answer.headers.remove(CONTENT_LENGTH);
    }
    answer
}

/// Whether a content type is JSON: `application/json` or any `…+json`, in any case.
fn is_json(content_type: &[u8]) -> bool {
    const JSON: &[u8] = b"application/json";
    content_type
        .get(..JSON.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(JSON))
        || content_type
            .windows(5)
            .any(|five| five.eq_ignore_ascii_case(b"+json"))
}

/// A gzip body inflated, if it is valid and inflates to at most `MAX_REWRITTEN` bytes (a small
/// body must not become a huge one in memory).
fn gunzip(compressed: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut plain = Vec::with_capacity(compressed.len() * 4);
    flate2::read::MultiGzDecoder::new(compressed)
        .take(MAX_REWRITTEN as u64 + 1)
        .read_to_end(&mut plain)
        .ok()?;
    (plain.len() <= MAX_REWRITTEN).then_some(plain)
}

/// Reads a stream whole if it ends within `MAX_REWRITTEN`; otherwise answers what was read and
/// the rest of the stream. A broken stream ends what was read.
async fn read_up_to(
    mut stream: super::ByteStream,
    length: Option<u64>,
) -> (Bytes, Option<super::ByteStream>) {
    let capacity = length.map_or(16 * 1024, |n| n as usize).min(MAX_REWRITTEN);
    let mut whole = BytesMut::with_capacity(capacity);
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        whole.extend_from_slice(&chunk);
        if whole.len() > MAX_REWRITTEN {
            return (whole.freeze(), Some(stream));
        }
    }
    (whole.freeze(), None)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(plain: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(plain).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn json_is_known_by_its_content_type_in_any_case() {
        for json in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            "application/problem+json",
            "application/vnd.api+JSON",
        ] {
            assert!(is_json(json.as_bytes()), "{json}");
        }
        for other in ["text/plain", "text/html", "application/octet-stream", ""] {
            assert!(!is_json(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn gzipped_bodies_inflate_only_within_the_rewrite_limit() {
        assert_eq!(
            gunzip(&gzip(b"{\"a\": 1}")).as_deref(),
            Some(&b"{\"a\": 1}"[..])
        );
        assert_eq!(gunzip(b"not gzip"), None, "corrupt");
        // A few kilobytes that would inflate past the limit stay compressed.
        let bomb = gzip(&vec![b' '; MAX_REWRITTEN + 1]);
        assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
        assert_eq!(gunzip(&bomb), None, "over the limit once inflated");
    }
}
