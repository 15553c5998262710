//! `/metrics` in Prometheus' text format: token reads, refreshes by outcome, provider latency,
//! connections by status, cached tokens, and refresh results waiting for the database.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use grantry_core::store::ConnectionStatus;

use crate::state::AppState;

/// One metric: its help and type lines, then for each sample the name, what follows it
/// (labels, or a suffix such as `_bucket` and labels) and the value.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn plain(value: impl ToString) -> Vec<(String, String)> {
    vec![(String::new(), value.to_string())]
}

fn by(label: &str, counts: Vec<(&'static str, u64)>) -> Vec<(String, String)> {
    counts
        .into_iter()
        .map(|(value, n)| (format!("{{{label}=\"{value}\"}}"), n.to_string()))
        .collect()
}

pub async fn render(State(state): State<AppState>) -> Response {
    let grantry = &state.grantry;
    let metrics = &grantry.metrics;
    let mut out = String::with_capacity(2048);
    let reads = by("outcome", metrics.reads());
    let help = "Token reads, by how they were answered.";
    metric(
        &mut out,
        "grantry_token_reads_total",
        "counter",
        help,
        &reads,
    );
    let refreshes = by("outcome", metrics.refreshes());
    let help = "Refreshes, by outcome.";
    metric(
        &mut out,
        "grantry_refreshes_total",
        "counter",
        help,
        &refreshes,
    );

    let attempts = by("outcome", metrics.webhook_attempts());
    let help = "Webhook delivery attempts made by this node, by outcome.";
    metric(
        &mut out,
        "grantry_webhook_attempts_total",
        "counter",
        help,
        &attempts,
    );

    let (buckets, count, sum) = metrics.latency();
    let name = "grantry_provider_request_duration_seconds";
    let mut samples: Vec<(String, String)> = buckets
        .into_iter()
        .map(|(bound, n)| (format!("_bucket{{le=\"{bound}\"}}"), n.to_string()))
        .collect();
    samples.push(("_bucket{le=\"+Inf\"}".into(), count.to_string()));
    samples.push(("_sum".into(), sum.to_string()));
    samples.push(("_count".into(), count.to_string()));
    let help = "Token calls to the provider.";
    metric(&mut out, name, "histogram", help, &samples);

    let help = "Tokens held in memory.";
    let cached = plain(grantry.cached_tokens());
    metric(
        &mut out,
        "grantry_token_cache_entries",
        "gauge",
        help,
        &cached,
    );
    let help = "Refresh results the database has not taken yet, kept in memory (the node is not ready meanwhile).";
    let pending = plain(grantry.pending_write_count());
    metric(
        &mut out,
        "grantry_pending_token_writes",
        "gauge",
        help,
        &pending,
    );
    let (entries, bytes) = grantry.token_cache_size();
    let help = "Tokens held in memory (the least used go beyond the budget, token_cache_mib).";
    metric(
        &mut out,
        "grantry_token_cache_entries",
        "gauge",
        help,
        &plain(entries as u64),
    );
    let help = "Bytes of tokens held in memory.";
    metric(
        &mut out,
        "grantry_token_cache_bytes",
        "gauge",
        help,
        &plain(bytes),
    );
    let help = "Refresh results the database did not take when they were made.";
    let failures = plain(metrics.token_write_failures());
    let name = "grantry_token_write_failures_total";
    metric(&mut out, name, "counter", help, &failures);
    let help = "Changes announced on PostgreSQL's change feed that reached this node (several nodes only).";
    let heard = plain(metrics.changes_heard());
    metric(
        &mut out,
        "grantry_changes_heard_total",
        "counter",
        help,
        &heard,
    );

    // From the database: left out, not failed, while it does not answer.
    if let Ok(counts) = grantry.connection_counts().await {
        let samples: Vec<(String, String)> = ConnectionStatus::ALL
            .iter()
            .map(|status| {
                let n: u64 = counts
                    .iter()
                    .filter(|(_, s, _)| s == status)
                    .map(|(_, _, n)| n)
                    .sum();
                (format!("{{status=\"{}\"}}", status.as_str()), n.to_string())
            })
            .collect();
        let help = "Connections, by status.";
        metric(&mut out, "grantry_connections", "gauge", help, &samples);
    }
    if let Ok(ending) = grantry.credentials_ending_soon().await {
        let help = "API tokens and access tokens in use that end within the expiry warning period.";
        let samples = [(String::new(), ending.to_string())];
        metric(
            &mut out,
            "grantry_credentials_ending_soon",
            "gauge",
            help,
            &samples,
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
