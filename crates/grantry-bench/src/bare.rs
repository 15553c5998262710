//! `serve-bare-proxy`: the least an HTTP proxy written on Grantry's stack (tokio, hyper and
//! hyper-util's pooled client, mimalloc) can do per call: take the request, add the token header,
//! send it upstream, stream the answer back. No API key, no path checks, no link rewriting, no
//! routing or middleware. `grantry-bench proxy` runs it beside nginx and Grantry, so the figures
//! show how much of the distance to nginx is the stack's and how much is Grantry's own work.

use std::net::SocketAddr;

use anyhow::Context;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Uri};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// How the bare proxy is started.
#[derive(Debug, Clone, clap::Args)]
pub struct BareProxyArgs {
    #[arg(long)]
    pub listen: SocketAddr,
    /// The upstream's origin, `http://host:port`.
    #[arg(long)]
    pub upstream: String,
    /// Sent upstream as `Authorization: Bearer …` on every call.
    #[arg(long)]
    pub token: String,
}

pub async fn serve(args: BareProxyArgs) -> anyhow::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(512)
        .build(connector);
    let authorization = HeaderValue::try_from(format!("Bearer {}", args.token))?;
    let upstream = args.upstream.trim_end_matches('/').to_owned();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("ready");
    loop {
        let (stream, _) = listener.accept().await.context("accepting")?;
        stream.set_nodelay(true)?;
        let (client, authorization, upstream) =
            (client.clone(), authorization.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let (client, authorization) = (client.clone(), authorization.clone());
                let (mut parts, body) = request.into_parts();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                let uri = format!("{upstream}{path}").parse::<Uri>();
                async move {
                    parts.uri = uri?;
                    parts.headers.insert(AUTHORIZATION, authorization);
                    parts.headers.remove(http::header::HOST);
                    client
                        .request(Request::from_parts(parts, body))
                        .await
                        .map_err(anyhow::Error::from)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
