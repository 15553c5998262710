//! Grantry's integration tests, in one binary so a 2-core machine links them once. Each module
//! is one area; `common` holds the `TestApp` harness and the helpers for real processes,
//! throwaway PostgreSQL clusters and a headless browser.

mod common;

mod abandoned_refresh;
mod cli;
mod clients;
mod cluster;
mod connect_attacks;
mod connect_flow;
mod console_browser;
mod files_and_keys;
mod idle_sockets;
mod openapi;
mod outage;
mod postgres;
mod profiles_api;
mod proxy;
mod secrets_never_leak;
mod security;
mod sign_in;
mod static_credentials;
mod tokens;
mod unwritable;
mod webhooks;
