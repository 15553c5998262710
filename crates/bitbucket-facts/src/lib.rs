//! How Bitbucket Cloud and Data Center behave, written down as data.
//!
//! Both the simulator (`bitbucket-sim`) and the broker's provider catalog read these facts, so the
//! scope vocabulary, the implications between scopes, the consumer form's checkboxes and the scope
//! each REST operation needs are stated once. Sources: `../shared/bitbucket/FACTS.md` and Bitbucket
//! Cloud's published OpenAPI document (`data/operation-scopes.tsv`).

pub mod api_tokens;
pub mod cloud;
pub mod datacenter;
pub mod operations;
pub mod scopes;

pub use scopes::{ScopeError, ScopeSet, Vocabulary};
