//! The `Store`: everything Grantry keeps, behind narrow async traits, one per kind of thing
//! kept. One implementation serves both databases (`grantry-store-sql`, with a small engine per
//! database in `grantry-store-sqlite` and `grantry-store-postgres`), and one contract test suite
//! (`grantry-store-tests`) holds every backend to the same behaviour.
//!
//! The services hold an `Arc<dyn Store>`; `Store` is every trait below together, so a method of
//! any of them can be called on it.

mod records;
mod webhooks;

use std::fmt;

use async_trait::async_trait;

pub use records::*;
pub use webhooks::*;

use crate::clock::Timestamp;
use crate::ids::{AdminId, ApiKeyId, ConnectionId, ProfileId, SessionId};

/// A store failure. `Unavailable` means try again later (the database is unreachable or busy).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(String),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("the database holds data this version cannot read: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything Grantry keeps.
#[async_trait]
pub trait Store:
    ProfileStore
    + ConnectionStore
    + RefreshStore
    + SessionStore
    + ApiKeyStore
    + ConsoleStore
    + EventStore
    + SealedStore
    + WebhookStore
    + Send
    + Sync
    + fmt::Debug
{
    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;
}

/// Application connection profiles. Deleting one takes its connections and sessions along.
#[async_trait]
pub trait ProfileStore {
    async fn insert_profile(&self, profile: &ProfileRecord) -> StoreResult<()>;
    /// Replaces a profile's fields (and writes `announce` with them); false when it no longer
    /// exists.
    async fn update_profile(
        &self,
        profile: &ProfileRecord,
        announce: &[Announcement],
    ) -> StoreResult<bool>;
    async fn profile(&self, id: &ProfileId) -> StoreResult<Option<ProfileRecord>>;
    async fn profile_by_name(&self, name: &str) -> StoreResult<Option<ProfileRecord>>;
    async fn profiles(&self) -> StoreResult<Vec<ProfileRecord>>;
    /// Deletes a profile with its connections and sessions; answers how many connections went.
    async fn delete_profile(&self, id: &ProfileId) -> StoreResult<Option<u64>>;
    /// Sets or clears the profile's problem; `announce` is written only when the profile turns
    /// misconfigured or recovers.
    async fn set_profile_problem(
        &self,
        id: &ProfileId,
        problem: Option<&str>,
        at: Timestamp,
        announce: &[Announcement],
    ) -> StoreResult<()>;
}

/// Connections as a whole: made, replaced on reconnect, listed, deleted. Each change can carry
/// [`Announcement`]s, written in its transaction.
#[async_trait]
pub trait ConnectionStore {
    async fn insert_connection(
        &self,
        connection: &ConnectionRecord,
        announce: &[Announcement],
    ) -> StoreResult<()>;
    /// Rewrites a connection wholesale after a (re)connect; bumps its version and drops any lease.
    async fn replace_connection(
        &self,
        connection: &ConnectionRecord,
        announce: &[Announcement],
    ) -> StoreResult<bool>;
    async fn connection(&self, id: &ConnectionId) -> StoreResult<Option<ConnectionRecord>>;
    /// The connection of one end user's account under a profile (each end user who connects
    /// the same account has a connection of their own).
    async fn connection_by_account(
        &self,
        profile: &ProfileId,
        end_user_id: Option<&str>,
        account_key: &str,
    ) -> StoreResult<Option<ConnectionRecord>>;
    async fn connections(
        &self,
        filter: &ConnectionFilter,
        page: &PageRequest,
    ) -> StoreResult<Vec<ConnectionRecord>>;
    async fn delete_connection(
        &self,
        id: &ConnectionId,
        announce: &[Announcement],
    ) -> StoreResult<bool>;
    /// Connections whose credential Grantry cannot renew dies between `now` and `warn_until`,
    /// not yet warned about: API and access tokens with an expiry, and rotating refresh tokens
    /// (dying `refresh_token_lifetime` after issue) of failing connections, whose keep-alive
    /// refresh did not go through.
    async fn expiring(
        &self,
        now: Timestamp,
        warn_until: Timestamp,
        refresh_token_lifetime: std::time::Duration,
        limit: u32,
    ) -> StoreResult<Vec<ConnectionRecord>>;
    /// Marks the credential at `version` warned about, with `announce`; false when it was
    /// already (by another node) or has changed since.
    async fn mark_expiry_warned(
        &self,
        id: &ConnectionId,
        version: i64,
        now: Timestamp,
        announce: &[Announcement],
    ) -> StoreResult<bool>;
    /// `(profile, status, count)` for every profile with connections.
    async fn connection_counts(&self) -> StoreResult<Vec<(ProfileId, ConnectionStatus, u64)>>;
    /// How many API tokens and access tokens still in use end after `now` and by `until`.
    async fn credentials_ending(&self, now: Timestamp, until: Timestamp) -> StoreResult<u64>;
}

/// Refreshing: the lease that makes a refresh happen once, guarded token writes, outcomes and
/// the background refresher's claims.
#[async_trait]
pub trait RefreshStore {
    /// Takes the refresh lease if it is free, expired or already `owner`'s, and answers the row
    /// as it is now; `None` when another owner holds it (or the connection is gone).
    async fn take_lease(
        &self,
        id: &ConnectionId,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<ConnectionRecord>>;
    async fn release_lease(&self, id: &ConnectionId, owner: &str) -> StoreResult<()>;
    /// Releases the lease and makes the row due by `due_by` at the latest: for a holder that
    /// stops before its outcome is written, when the refresh token may already have been
    /// presented (or the row was claimed because it was), so that some node refreshes again
    /// inside Bitbucket's grace even if this one dies.
    async fn hand_back(&self, id: &ConnectionId, owner: &str, due_by: Timestamp)
    -> StoreResult<()>;
    /// Writes new tokens if the row is still at `version` and leased by `owner`; bumps the
    /// version and releases the lease. False: someone else wrote first.
    async fn write_tokens(
        &self,
        id: &ConnectionId,
        version: i64,
        owner: &str,
        write: &TokenWrite,
    ) -> StoreResult<bool>;
    /// Writes tokens kept through a database outage if the row is still at `version` (whoever
    /// holds the lease now: this write carries the newest refresh token); releases any lease.
    async fn write_pending_tokens(
        &self,
        id: &ConnectionId,
        version: i64,
        write: &TokenWrite,
    ) -> StoreResult<bool>;
    /// Records a failed or skipped refresh and releases `owner`'s lease.
    async fn record_outcome(
        &self,
        id: &ConnectionId,
        owner: &str,
        outcome: &OutcomeWrite,
    ) -> StoreResult<()>;
    /// Makes a profile's failing connections due now (its client was fixed: stop backing off).
    async fn retry_failing_now(&self, profile: &ProfileId, now: Timestamp) -> StoreResult<u64>;
    /// Leases up to `limit` connections to the refresher's `owner` and answers them as leased:
    /// those due (`next_refresh_at <= now`, lease free or expired) and, first of all, those whose
    /// lease ran out unreleased (their holder died mid-refresh, perhaps after presenting the
    /// refresh token), never those needing reauthorization.
    async fn claim_due(
        &self,
        now: Timestamp,
        owner: &str,
        until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<ConnectionRecord>>;
}

/// Connect sessions: created by an application, opened once by the browser, completed once by
/// the callback.
#[async_trait]
pub trait SessionStore {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    async fn session_by_token(&self, digest: &str) -> StoreResult<Option<SessionRecord>>;
    async fn session_by_state(&self, digest: &str) -> StoreResult<Option<SessionRecord>>;
    async fn session(&self, id: &SessionId) -> StoreResult<Option<SessionRecord>>;
    /// Marks a session opened with its state, the digest of the nonce given to the browser and
    /// the PKCE verifier; false if it was opened before.
    async fn open_session(
        &self,
        id: &SessionId,
        state_digest: &str,
        browser_digest: &str,
        pkce_verifier: Option<&[u8]>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Marks a session completed; false if it was completed before (a replayed callback).
    async fn complete_session(&self, id: &SessionId, now: Timestamp) -> StoreResult<bool>;
    /// Keeps a completed session's credential (sealed) until the application confirms it with
    /// the code whose digest is given, before `confirm_by`; false if the session is gone.
    async fn hold_grant(
        &self,
        id: &SessionId,
        verification_digest: &str,
        grant: &[u8],
        confirm_by: Timestamp,
    ) -> StoreResult<bool>;
    /// Takes a held credential out of its session, once and before `confirm_by`, marking the
    /// session confirmed: the caller then checks the code and the end user, so a wrong answer
    /// spends it. `None` when there is none to take (never held, taken, or expired).
    async fn take_grant(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>>;
    /// Drops held credentials whose confirmation time passed; answers how many.
    async fn drop_unconfirmed(&self, now: Timestamp) -> StoreResult<u64>;
    /// Deletes sessions that expired before `before`; answers how many.
    async fn purge_sessions(&self, before: Timestamp) -> StoreResult<u64>;
}

/// API keys, stored as digests.
#[async_trait]
pub trait ApiKeyStore {
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    async fn api_key_by_digest(&self, digest: &str) -> StoreResult<Option<ApiKeyRecord>>;
    async fn api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>>;
    /// False when there is no such key or it was already revoked.
    async fn revoke_api_key(&self, id: &ApiKeyId, at: Timestamp) -> StoreResult<bool>;
}

/// The web console: admins, their sessions, and small settings (the one-time setup link).
#[async_trait]
pub trait ConsoleStore {
    async fn insert_admin(&self, admin: &AdminRecord) -> StoreResult<()>;
    async fn admin_by_username(&self, username: &str) -> StoreResult<Option<AdminRecord>>;
    /// Every admin, by user name.
    async fn admins(&self) -> StoreResult<Vec<AdminRecord>>;
    async fn admin_count(&self) -> StoreResult<u64>;
    /// Replaces an admin's password hash and ends all their console sessions, in one
    /// transaction; false if there is no such admin.
    async fn set_admin_password(&self, id: &AdminId, password_hash: &str) -> StoreResult<bool>;
    /// Deletes an admin and all their console sessions, unless they are the last admin: the
    /// check and the delete are one transaction, so two admins removing each other at once
    /// cannot leave none.
    async fn delete_admin(&self, id: &AdminId) -> StoreResult<AdminRemoval>;

    async fn insert_console_session(&self, session: &ConsoleSessionRecord) -> StoreResult<()>;
    async fn console_session(&self, digest: &str) -> StoreResult<Option<ConsoleSessionRecord>>;
    async fn touch_console_session(&self, digest: &str, at: Timestamp) -> StoreResult<()>;
    async fn delete_console_session(&self, digest: &str) -> StoreResult<()>;
    /// Sets (or, with `None`, removes) a small setting.
    async fn put_meta(&self, key: &str, value: Option<&str>) -> StoreResult<()>;
    async fn meta(&self, key: &str) -> StoreResult<Option<String>>;
}

/// The audit trail.
#[async_trait]
pub trait EventStore {
    /// Records an event that goes with no other change (and its webhook messages, if any).
    async fn insert_event(&self, announce: &Announcement) -> StoreResult<()>;
    /// Newest first; `page.after` is an event id to continue after.
    async fn events(
        &self,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> StoreResult<Vec<EventRecord>>;
}

/// Sealed values, read and replaced for master key rotation.
#[async_trait]
pub trait SealedStore {
    /// The distinct key ids of every sealed value (bytes 2 to 5 of each): which master keys the
    /// database needs.
    async fn sealed_key_ids(&self) -> StoreResult<Vec<[u8; 4]>>;
    async fn sealed_cells(
        &self,
        column: SealedColumn,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<SealedCell>>;
    /// Replaces a sealed value if it still holds `old`.
    async fn reseal(
        &self,
        column: SealedColumn,
        row_id: &str,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool>;
}
