//! Posting webhook messages: reqwest, no redirects followed, the attempt's timeout on the whole
//! call, `Retry-After` read from 429 and 503 answers. The answer's body is not read.

use std::time::Duration;

use async_trait::async_trait;
use grantry_core::webhooks::delivery::{Sent, WebhookRequest, WebhookSender};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use crate::Outbound;
use crate::transport;

#[derive(Debug, Clone)]
pub struct HttpWebhooks {
    client: reqwest::Client,
}

impl HttpWebhooks {
    pub fn new(outbound: &Outbound) -> Result<HttpWebhooks, String> {
        let client = transport::client(
            outbound.extra_root_pem.as_deref(),
            outbound.connect_timeout,
            None,
        )?
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;
        Ok(HttpWebhooks { client })
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from receivers and is ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

#[async_trait]
impl WebhookSender for HttpWebhooks {
    async fn send(&self, request: WebhookRequest<'_>) -> Sent {
        let mut builder = self
            .client
            .post(request.url)
            .timeout(request.timeout)
            .header(CONTENT_TYPE, "application/json")
            .body(request.body.to_owned());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        match builder.send().await {
            Ok(response) => Sent::Answered {
                status: response.status().as_u16(),
                retry_after: retry_after(response.headers()),
            },
            Err(error) => Sent::NoAnswer(transport::network(&error).to_string()),
        }
    }
}
