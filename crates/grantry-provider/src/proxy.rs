//! `/v1/proxy`: an application's call made to the provider's REST API with a connection's
//! credential, at a URL the core checked lies below the REST root. Bodies stream both ways, with
//! a connect timeout and an idle timeout between bytes rather than a cap on the whole call (a
//! large download may take minutes). Only allow-listed headers travel either way, and redirects
//! are not followed (the application gets them, rewritten to point through the proxy).
//!
//! This is the one hot path that leaves the process, so it uses hyper's pooled client directly
//! rather than reqwest: reqwest's layers for redirects, cookies and retries, none of which a
//! proxied call uses, parse each call's URL three more times and copy its headers (measured with
//! `grantry-bench proxy` and `perf`: about a sixth of the proxy's CPU time per call).
//!
//! When the environment names an outbound proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, in
//! either case), proxied calls go through reqwest like every other outbound call, so that they
//! take the same way out (and `NO_PROXY` is honoured) as token calls do.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use grantry_core::provider::{Presented, ProviderFailure};
use grantry_core::proxy::{Answer, Body, ByteStream, Forward, forwarded_response_header};
use http::header::{ACCEPT_ENCODING, AUTHORIZATION, CONTENT_LENGTH, USER_AGENT};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tower::util::BoxCloneSyncService;
use url::Url;

type OutgoingBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// Connects TCP and then TLS within the connect timeout, both together.
type Connector = BoxCloneSyncService<Uri, MaybeHttpsStream<TokioIo<TcpStream>>, tower::BoxError>;

/// The outbound client of proxied calls: pooled keep-alive connections, TLS with the webpki roots
/// (and an operator's extra roots), a connect timeout, and an idle timeout that bounds the wait
/// for the answer's head and then for each next piece of its body.
#[derive(Debug, Clone)]
pub struct ProxyClient {
    client: Client<Connector, OutgoingBody>,
    idle_timeout: Duration,
    /// reqwest, when the environment names an outbound proxy (which it honours).
    through_outbound_proxy: Option<reqwest::Client>,
}

/// The environment variables that name an outbound proxy (reqwest's).
const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

impl ProxyClient {
    pub fn new(outbound: &crate::Outbound) -> Result<ProxyClient, String> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_keepalive(Some(Duration::from_secs(15)));
        let tls = tls_config(outbound.extra_root_pem.as_deref())?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let connector = BoxCloneSyncService::new(tower::timeout::Timeout::new(
            https,
            outbound.connect_timeout,
        ));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(512)
            .pool_timer(TokioTimer::new())
            .build(connector);
        let named_proxy = PROXY_VARIABLES
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
        let through_outbound_proxy = if named_proxy {
            let roots = outbound.extra_root_pem.as_deref();
            Some(
                crate::transport::client(roots, outbound.connect_timeout, None)?
                    .read_timeout(outbound.idle_timeout)
                    .pool_max_idle_per_host(512)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        Ok(ProxyClient {
            client,
            idle_timeout: outbound.idle_timeout,
            through_outbound_proxy,
        })
    }

    pub async fn forward(
        &self,
        url: &Url,
        credential: Presented<'_>,
        request: Forward,
    ) -> Result<Answer, ProviderFailure> {
        if let Some(http) = &self.through_outbound_proxy {
            return through_reqwest(http, url, credential, request).await;
        }
        let protocol = |what: String| ProviderFailure::Protocol(what);
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| protocol(format!("`{}` is no HTTP method", request.method)))?;
        let uri: Uri = url
            .as_str()
            .parse()
            .map_err(|_| protocol("the proxied URL is no HTTP URI".into()))?;
        // Identity encoding, so JSON answers can have their links rewritten; the application's
        // own Accept-Encoding is not forwarded. (An answer compressed anyway passes untouched.)
        let mut call = Request::builder()
            .method(method)
            .uri(uri)
            .header(USER_AGENT, concat!("grantry/", env!("CARGO_PKG_VERSION")))
            .header(ACCEPT_ENCODING, "identity")
            .header(AUTHORIZATION, authorization(&credential)?);
        for (name, value) in &request.headers {
            call = call.header(name, value);
        }
        let body = match request.body {
            Body::Whole(bytes) => Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync(),
            Body::Streaming { stream, length } => {
                if let Some(length) = length {
                    call = call.header(CONTENT_LENGTH, length);
                }
                StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync()
            }
        };
        let call = call
            .body(body)
            .map_err(|e| protocol(format!("the proxied call could not be built: {e}")))?;
        let response = tokio::time::timeout(self.idle_timeout, self.client.request(call))
            .await
            .map_err(|_| ProviderFailure::Network {
                timeout: true,
                message: "no answer within the idle timeout".into(),
            })?
            .map_err(|e| ProviderFailure::Network {
                timeout: false,
                message: causes(&e),
            })?;
        let (head, incoming) = response.into_parts();
        let headers = answer_headers(&head.headers);
        let length = head
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(Answer {
            status: head.status.as_u16(),
            headers,
            body: Body::Streaming {
                stream: idle_bounded(incoming, self.idle_timeout),
                length,
            },
        })
    }
}

/// The headers of an answer that travel back to the application.
fn answer_headers(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut forwarded = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if forwarded_response_header(name) {
            forwarded.append(name.clone(), value.clone());
        }
    }
    forwarded
}

/// A proxied call through reqwest, which takes the outbound proxy the environment names; its
/// read timeout is the idle timeout.
async fn through_reqwest(
    http: &reqwest::Client,
    url: &Url,
    credential: Presented<'_>,
    request: Forward,
) -> Result<Answer, ProviderFailure> {
    let method = Method::from_bytes(request.method.as_bytes()).map_err(|_| {
        ProviderFailure::Protocol(format!("`{}` is no HTTP method", request.method))
    })?;
    let mut call = http
        .request(method, url.clone())
        .header(ACCEPT_ENCODING, "identity");
    for (name, value) in &request.headers {
        call = call.header(name, value);
    }
    call = match request.body {
        Body::Whole(bytes) => call.body(bytes),
        Body::Streaming { stream, length } => {
            if let Some(length) = length {
                call = call.header(CONTENT_LENGTH, length);
            }
            call.body(reqwest::Body::wrap_stream(stream))
        }
    };
    let response = crate::identity::present(call, &credential)
        .send()
        .await
        .map_err(|e| ProviderFailure::from(crate::transport::network(&e)))?;
    let headers = answer_headers(response.headers());
    Ok(Answer {
        status: response.status().as_u16(),
        headers,
        body: Body::Streaming {
            length: response.content_length(),
            stream: Box::pin(response.bytes_stream().map_err(std::io::Error::other)),
        },
    })
}

/// The `Authorization` header for a credential, marked sensitive (never logged by hyper).
fn authorization(credential: &Presented<'_>) -> Result<HeaderValue, ProviderFailure> {
    let text = match credential {
        Presented::Bearer(token) => format!("Bearer {}", token.expose_secret()),
        Presented::Basic { username, password } => {
            let pair = format!("{username}:{}", password.expose_secret());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
    };
    let mut value = HeaderValue::try_from(text).map_err(|_| {
        ProviderFailure::Protocol("the credential cannot travel in a header".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The answer's body as a stream that fails when no bytes come for `idle` (a download may take
/// any time as long as it keeps moving), and ends after its first error.
fn idle_bounded(body: Incoming, idle: Duration) -> ByteStream {
    let data = body.into_data_stream();
    let stream = futures_util::stream::unfold(Some(data), move |data| async move {
        let mut data = data?;
        match tokio::time::timeout(idle, data.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(data))),
            Ok(None) => None,
            Ok(Some(Err(error))) => Some((Err(std::io::Error::other(error)), None)),
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the answer stopped coming for the idle timeout",
                )),
                None,
            )),
        }
    });
    Box::pin(stream)
}

/// An error and its causes in one line, e.g. `client error (Connect): tcp connect error:
/// Connection refused`. hyper's errors never include a URL, a header or a body.
fn causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// rustls with the webpki roots and the operator's extra roots (a private CA in front of Data
/// Center), on ring like the rest of Grantry's TLS.
fn tls_config(extra_root_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_root_pem {
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate = certificate.map_err(|e| format!("CA bundle: {e}"))?;
            roots
                .add(certificate)
                .map_err(|e| format!("CA bundle: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
