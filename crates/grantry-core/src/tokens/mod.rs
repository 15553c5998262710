//! Tokens: the in-memory cache that answers most reads, single-flight refresh under a lease in the
//! row, and the background refresher.

pub mod cache;
pub mod flight;
mod kept;
pub mod pending;
mod read;
mod refresh;
pub mod refresher;
pub mod schedule;
mod verify;

pub use cache::CachedToken;
pub use refresh::Trigger;
