//! Fault injection per endpoint group, switchable while the simulator runs.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::Sim;

/// The endpoint groups faults apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Both token endpoints.
    Token,
    /// Cloud `/2.0/` and Data Center `/rest/api/`.
    Rest,
    /// Git over HTTPS.
    Git,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::Token, Group::Rest, Group::Git];

    pub fn parse(name: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Group::Token => "token",
            Group::Rest => "rest",
            Group::Git => "git",
        }
    }

    fn of_path(path: &str) -> Option<Group> {
        if path == "/site/oauth2/access_token" || path == "/dc/rest/oauth2/latest/token" {
            Some(Group::Token)
        } else if path.starts_with("/2.0/")
            || (path.starts_with("/dc/rest/") && !path.starts_with("/dc/rest/oauth2/"))
        {
            Some(Group::Rest)
        } else if path.contains(".git/") {
            Some(Group::Git)
        } else {
            None
        }
    }
}

/// What goes wrong for one group. Shares are between 0 and 1 and are drawn in this order:
/// dropped connection, 500/503, then 429.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultSpec {
    /// Added to every answer.
    pub latency_ms: u64,
    /// Share of answers that are 500 or 503 (half each).
    pub error_rate: f64,
    /// Share of answers that are 429 "Rate limit for this resource has been exceeded."
    pub rate_limit_rate: f64,
    /// `Retry-After` on those 429s, in seconds; `null` leaves the header out.
    pub retry_after: Option<u64>,
    /// Share of requests whose connection is closed without an answer.
    pub drop_rate: f64,
    /// Every request of the group answers 503.
    pub outage: bool,
    /// Answers come gzip-compressed whatever the client accepts, as from an intermediary that
    /// compresses regardless of `Accept-Encoding`.
    pub gzip: bool,
}

impl Default for FaultSpec {
    fn default() -> Self {
        FaultSpec {
            latency_ms: 0,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after: Some(30),
            drop_rate: 0.0,
            outage: false,
            gzip: false,
        }
    }
}

impl FaultSpec {
    pub fn validate(&self) -> Result<(), String> {
        for (name, share) in [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("{name} must be between 0 and 1, got {share}"));
            }
        }
        if self.latency_ms > 120_000 {
            return Err("latency_ms must be at most 120000".into());
        }
        Ok(())
    }

    fn is_quiet(&self) -> bool {
        self.latency_ms == 0
            && self.error_rate == 0.0
            && self.rate_limit_rate == 0.0
            && self.drop_rate == 0.0
            && !self.outage
            && !self.gzip
    }
}

#[derive(Debug, Default)]
pub struct Faults {
    token: RwLock<FaultSpec>,
    rest: RwLock<FaultSpec>,
    git: RwLock<FaultSpec>,
}

impl Faults {
    fn slot(&self, group: Group) -> &RwLock<FaultSpec> {
        match group {
            Group::Token => &self.token,
            Group::Rest => &self.rest,
            Group::Git => &self.git,
        }
    }

    pub fn get(&self, group: Group) -> FaultSpec {
        self.slot(group)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set(&self, group: Group, spec: FaultSpec) {
        *self.slot(group).write().unwrap_or_else(|e| e.into_inner()) = spec;
    }

    pub fn clear(&self) {
        for group in Group::ALL {
            self.set(group, FaultSpec::default());
        }
    }
}

enum Injected {
    Drop,
    Status(StatusCode),
    RateLimited,
}

fn draw(spec: &FaultSpec) -> Option<Injected> {
    if spec.outage {
        return Some(Injected::Status(StatusCode::SERVICE_UNAVAILABLE));
    }
    let mut rng = rand::rng();
    let roll: f64 = rng.random();
    if roll < spec.drop_rate {
        return Some(Injected::Drop);
    }
    if roll < spec.drop_rate + spec.error_rate {
        let status = if rng.random::<bool>() {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Some(Injected::Status(status));
    }
    if roll < spec.drop_rate + spec.error_rate + spec.rate_limit_rate {
        return Some(Injected::RateLimited);
    }
    None
}

/// Middleware: counts the caller by its `User-Agent`, then applies the group's faults before the
/// real handler runs.
pub async fn inject(State(sim): State<Arc<Sim>>, request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/_sim/") {
        let user_agent = request.headers().get(header::USER_AGENT);
        sim.stats
            .saw_user_agent(user_agent.and_then(|ua| ua.to_str().ok()));
    }
    let Some(group) = Group::of_path(request.uri().path()) else {
        return next.run(request).await;
    };
    let spec = sim.faults.get(group);
    if spec.is_quiet() {
        return next.run(request).await;
    }
    if spec.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(spec.latency_ms)).await;
    }
    match draw(&spec) {
        None if spec.gzip => gzipped(next.run(request).await).await,
        None => next.run(request).await,
        Some(Injected::Drop) => {
            sim.stats.count("fault", group.name(), "dropped");
            dropped_connection()
        }
        Some(Injected::Status(status)) => {
            let label = if status == StatusCode::SERVICE_UNAVAILABLE {
                "503"
            } else {
                "500"
            };
            sim.stats.count("fault", group.name(), label);
            let body = if status == StatusCode::SERVICE_UNAVAILABLE {
                "<h1>Service Unavailable</h1>"
            } else {
                "<h1>Server Error (500)</h1>"
            };
            (status, [(header::CONTENT_TYPE, "text/html")], body).into_response()
        }
        Some(Injected::RateLimited) => {
            sim.stats.count("fault", group.name(), "429");
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "text/plain")],
                "Rate limit for this resource has been exceeded.",
            )
                .into_response();
            if let Some(seconds) = spec.retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
    }
}

/// A response whose body fails before its first byte: hyper then closes the connection without
/// completing the answer, which the client sees as a dropped connection.
fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::other("fault: connection dropped"))
    });
    let mut response = Response::new(Body::from_stream(failing));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(1024u32));
    response
}

/// The answer with its body gzip-compressed (`Content-Encoding: gzip`, the length of the
/// compressed body).
async fn gzipped(response: Response) -> Response {
    use std::io::Write;
    let (mut parts, body) = response.into_parts();
    let Ok(plain) = axum::body::to_bytes(body, usize::MAX).await else {
        return dropped_connection();
    };
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let compressed = encoder
        .write_all(&plain)
        .and_then(|()| encoder.finish())
        .unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(compressed.len()));
    Response::from_parts(parts, Body::from(compressed))
}
