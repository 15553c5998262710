//! The `grantry` binary's parts, as a library so integration tests drive the real thing:
//! configuration, building the services, serving, the demo and the command line.

pub mod cli;
pub mod config;
pub mod data_dir;
pub mod demo;
pub mod git_credential;
pub mod logging;
pub mod migrate_store;
pub mod runtime;
pub mod serve;
