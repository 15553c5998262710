//! Grantry's domain and services, with no web framework, HTTP client or SQL (the proxy's
//! headers are the `http` crate's plain types, so they cross no conversion at either edge).
//!
//! The services live on [`Grantry`], which holds a [`store::Store`], a
//! [`provider::ProviderClient`], a [`clock::Clock`] and the key store. Each feature adds its
//! methods in its own module: [`profiles`], [`connect`], [`connections`], [`tokens`],
//! [`api_keys`], [`events`], [`keys`]. The provider [`catalog`] holds what differs between
//! Bitbucket Cloud and Data Center, as data.

pub mod admins;
pub mod api_keys;
pub mod app;
pub mod catalog;
pub mod changes;
pub mod clock;
pub mod connect;
pub mod connections;
pub mod error;
pub mod events;
pub mod ids;
pub mod json;
pub mod keys;
pub mod metrics;
pub mod profiles;
pub mod provider;
pub mod proxy;
pub mod settings;
pub mod store;
pub mod tokens;
pub mod webhooks;

pub use app::{Actor, Grantry};
pub use error::{CoreError, CoreResult};
pub use settings::{RefreshSettings, Settings};
