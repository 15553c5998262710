//! `/metrics` in Prometheus' text format: token reads, refreshes by outcome, provider latency,
//! connections by status, cached tokens.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use grantry_core::store::ConnectionStatus;

use crate::problem::Problem;
use crate::state::AppState;

pub async fn render(State(state): State<AppState>) -> Result<Response, Problem> {
    let metrics = &state.grantry.metrics;
    let mut out = String::with_capacity(2048);
    let _ = writeln!(
        out,
        "# HELP grantry_token_reads_total Token reads, by how they were answered."
    );
    let _ = writeln!(out, "# TYPE grantry_token_reads_total counter");
    for (outcome, n) in metrics.reads() {
        let _ = writeln!(
            out,
            "grantry_token_reads_total{{outcome=\"{outcome}\"}} {n}"
        );
    }
    let _ = writeln!(out, "# HELP grantry_refreshes_total Refreshes, by outcome.");
    let _ = writeln!(out, "# TYPE grantry_refreshes_total counter");
    for (outcome, n) in metrics.refreshes() {
        let _ = writeln!(out, "grantry_refreshes_total{{outcome=\"{outcome}\"}} {n}");
    }
    let (buckets, count, sum) = metrics.latency();
    let _ = writeln!(
        out,
        "# HELP grantry_provider_request_duration_seconds Token calls to the provider."
    );
    let _ = writeln!(
        out,
        "# TYPE grantry_provider_request_duration_seconds histogram"
    );
    for (bound, n) in buckets {
        let _ = writeln!(
            out,
            "grantry_provider_request_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "grantry_provider_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(out, "grantry_provider_request_duration_seconds_sum {sum}");
    let _ = writeln!(
        out,
        "grantry_provider_request_duration_seconds_count {count}"
    );
    let _ = writeln!(out, "# HELP grantry_connections Connections, by status.");
    let _ = writeln!(out, "# TYPE grantry_connections gauge");
    let counts = state.grantry.store.connection_counts().await?;
    for status in ConnectionStatus::ALL {
        let n: u64 = counts
            .iter()
            .filter(|(_, s, _)| *s == status)
            .map(|(_, _, n)| n)
            .sum();
        let _ = writeln!(
            out,
            "grantry_connections{{status=\"{}\"}} {n}",
            status.as_str()
        );
    }
    let _ = writeln!(
        out,
        "# HELP grantry_token_cache_entries Tokens held in memory."
    );
    let _ = writeln!(out, "# TYPE grantry_token_cache_entries gauge");
    let _ = writeln!(
        out,
        "grantry_token_cache_entries {}",
        state.grantry.cached_tokens()
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
