//! The refresh state machine against a scripted provider: what each kind of failure does to the
//! connection, its profile and the audit trail; recovery; one provider call for many readers; a
//! refresh result the database refuses, kept until it takes writes again.
//! No network and no simulator: these run in well under a second. The simulator scenarios in
//! `crates/grantry/tests` remain the end-to-end proof.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use grantry_core::catalog::ProviderKind;
use grantry_core::clock::{Clock, ManualClock};
use grantry_core::connect::{CallbackParams, NewSession};
use grantry_core::ids::ConnectionId;
use grantry_core::profiles::NewProfile;
use grantry_core::provider::{
    ApiAnswer, Identity, Presented, ProviderClient, ProviderFailure, ProviderTarget, TokenGrant,
};
use grantry_core::proxy::{Answer, Forward};
use grantry_core::settings::Settings;
use grantry_core::store::{ConnectionStatus, EventFilter, PageRequest};
use grantry_core::{Actor, CoreError, Grantry};
use grantry_crypto::{KeyStore, Keyring, MasterKey};
use secrecy::{ExposeSecret, SecretString};

/// A provider that answers refreshes (and whose account a code belongs to) from a script, in
/// order, and counts the refreshes.
#[derive(Default)]
struct Scripted {
    refreshes: Mutex<VecDeque<Result<TokenGrant, ProviderFailure>>>,
    /// Who authorizes next; alice when the script is empty.
    accounts: Mutex<VecDeque<&'static str>>,
    calls: AtomicUsize,
    /// How long each refresh takes, so that concurrent readers overlap.
    delay: Duration,
}

impl Scripted {
    fn then(&self, answer: Result<TokenGrant, ProviderFailure>) {
        self.refreshes.lock().unwrap().push_back(answer);
    }
}

fn grant(access: &str) -> TokenGrant {
    TokenGrant {
        access_token: SecretString::from(access.to_owned()),
        refresh_token: Some(SecretString::from(format!("refresh-for-{access}"))),
        expires_in: Some(7200),
        scopes: Some(vec!["account".into()]),
    }
}

fn oauth(error: &str, description: &str) -> ProviderFailure {
    ProviderFailure::OAuth {
        status: 400,
        error: error.into(),
        description: Some(description.into()),
    }
}

#[async_trait]
impl ProviderClient for Scripted {
    async fn exchange_code(
        &self,
        _target: &ProviderTarget<'_>,
        _code: &str,
        _pkce_verifier: Option<&str>,
    ) -> Result<TokenGrant, ProviderFailure> {
        Ok(grant("first"))
    }

    async fn refresh(
        &self,
        _target: &ProviderTarget<'_>,
        _refresh_token: &SecretString,
    ) -> Result<TokenGrant, ProviderFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.refreshes
            .lock()
            .unwrap()
            .pop_front()
            .expect("the script ran out: an unexpected refresh")
    }

    async fn client_credentials(
        &self,
        _target: &ProviderTarget<'_>,
    ) -> Result<TokenGrant, ProviderFailure> {
        unreachable!("not used here")
    }

    async fn identity(
        &self,
        _target: &ProviderTarget<'_>,
        _credential: Presented<'_>,
    ) -> Result<Identity, ProviderFailure> {
        let who = self.accounts.lock().unwrap().pop_front().unwrap_or("alice");
        Ok(Identity {
            account_id: format!("{{{who}}}"),
            username: who.into(),
            display_name: who.into(),
            scopes: None,
        })
    }

    async fn probe(
        &self,
        _target: &ProviderTarget<'_>,
        _credential: Presented<'_>,
    ) -> Result<ApiAnswer, ProviderFailure> {
        unreachable!("not used here")
    }

    async fn forward(
        &self,
        _url: &url::Url,
        _credential: Presented<'_>,
        _request: Forward,
    ) -> Result<Answer, ProviderFailure> {
        unreachable!("not used here")
    }
}

/// Grantry on a SQLite store in a temporary directory, with a scripted provider and a clock the
/// test moves, and one connection (alice, connected through the flow's core calls).
struct World {
    grantry: Arc<Grantry>,
    provider: Arc<Scripted>,
    clock: Arc<ManualClock>,
    connection: ConnectionId,
    master_key: MasterKey,
    dir: tempfile::TempDir,
}

impl World {
    async fn new(delay: Duration) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = grantry_store_sqlite::open_and_migrate(&dir.path().join("grantry.db"))
            .await
            .unwrap();
        let provider = Arc::new(Scripted {
            delay,
            ..Scripted::default()
        });
        let clock = Arc::new(ManualClock::default());
        let master_key = MasterKey::generate().unwrap();
        let grantry = node(store, &provider, &clock, &master_key);
        let profile = NewProfile {
            name: "Backups".into(),
            description: String::new(),
            provider: ProviderKind::BitbucketCloud,
            key: "consumer-key".into(),
            secret: SecretString::from("consumer-secret".to_owned()),
            base_url: None,
            required_scopes: vec!["account".into()],
            allowed_return_urls: vec![],
            private: false,
            confirm_connections: false,
        };
        grantry.create_profile(profile, &Actor::Cli).await.unwrap();
        let connection = connect(&grantry, "user-1", None)
            .await
            .expect("alice connects");
        World {
            grantry,
            provider,
            clock,
            connection,
            master_key,
            dir,
        }
    }

    /// Another node on the same database, provider and clock.
    async fn another_node(&self) -> Arc<Grantry> {
        let store = grantry_store_sqlite::open(&self.dir.path().join("grantry.db"))
            .await
            .unwrap();
        node(store, &self.provider, &self.clock, &self.master_key)
    }

    async fn events(&self) -> Vec<String> {
        let filter = EventFilter {
            connection_id: None,
            profile_id: None,
            kind: None,
        };
        let page = PageRequest {
            after: None,
            limit: 100,
        };
        self.grantry
            .list_events(&filter, &page)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.kind)
            .collect()
    }

    async fn has_event(&self, kind: &str) -> bool {
        self.events().await.iter().any(|event| event == kind)
    }

    async fn status(&self) -> ConnectionStatus {
        self.grantry
            .connection(&self.connection)
            .await
            .unwrap()
            .status
    }
}

/// Runs a connect flow through the core's calls (what the browser and the callback do), for
/// `end_user`, reconnecting `reconnect` if given; answers the connection or the error code the
/// application would be sent back with.
async fn connect(
    grantry: &Grantry,
    end_user: &str,
    reconnect: Option<&ConnectionId>,
) -> Result<ConnectionId, String> {
    let session = grantry
        .create_session(
            NewSession {
                profile: "Backups".into(),
                end_user_id: Some(end_user.into()),
                return_url: None,
                connection_id: reconnect.cloned(),
            },
            &Actor::Cli,
        )
        .await
        .unwrap();
    let link = session.url.rsplit('/').next().unwrap().to_owned();
    let begun = grantry.begin_connect(&link).await.unwrap();
    let state = begun
        .authorize
        .query_pairs()
        .find(|(name, _)| name == "state")
        .unwrap()
        .1
        .into_owned();
    let finished = grantry
        .finish_connect(&CallbackParams {
            state: Some(state),
            code: Some("code".into()),
            browser_cookies: vec![(begun.cookie_name, begun.nonce)],
            ..CallbackParams::default()
        })
        .await
        .unwrap();
    let query = |name: &str| {
        finished
            .url
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    match query("connection_id") {
        Some(id) => Ok(ConnectionId::parse(&id).unwrap()),
        None => Err(query("error").unwrap_or_else(|| finished.url.to_string())),
    }
}

fn node(
    store: impl grantry_core::store::Store + 'static,
    provider: &Arc<Scripted>,
    clock: &Arc<ManualClock>,
    master_key: &MasterKey,
) -> Arc<Grantry> {
    let keys = KeyStore::in_memory(Keyring::new(vec![master_key.clone()]).unwrap());
    let settings = Settings::new("http://127.0.0.1:9/".parse().unwrap());
    Arc::new(Grantry::new(
        Arc::new(store),
        provider.clone(),
        clock.clone(),
        Arc::new(keys),
        settings,
    ))
}

#[tokio::test]
async fn a_dead_refresh_token_asks_for_a_reconnect_and_says_so() {
    let world = World::new(Duration::ZERO).await;
    world
        .provider
        .then(Err(oauth("invalid_request", "Invalid refresh_token")));
    let error = world
        .grantry
        .refresh_now(&world.connection, &Actor::Cli)
        .await
        .unwrap_err();
    assert!(matches!(error, CoreError::NeedsReauth { .. }), "{error}");
    assert_eq!(world.status().await, ConnectionStatus::NeedsReauth);
    assert!(
        world.has_event("connection.needs_reauth").await,
        "connection.needs_reauth"
    );
    // Reads now say what to do instead of serving a dead token; Bitbucket is not asked again.
    let read = world.grantry.token(&world.connection).await.unwrap_err();
    assert!(matches!(read, CoreError::NeedsReauth { .. }), "{read}");
    assert_eq!(world.provider.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_client_flags_the_profile_not_the_users_grant() {
    let world = World::new(Duration::ZERO).await;
    world.provider.then(Err(oauth(
        "unauthorized_client",
        "Invalid OAuth client credentials",
    )));
    let error = world
        .grantry
        .refresh_now(&world.connection, &Actor::Cli)
        .await
        .unwrap_err();
    assert!(
        matches!(error, CoreError::ProfileMisconfigured { .. }),
        "{error}"
    );
    assert_ne!(world.status().await, ConnectionStatus::NeedsReauth);
    let profile = world.grantry.find_profile("Backups").await.unwrap();
    assert!(profile.problem.is_some(), "the profile carries the problem");
    assert!(
        world.has_event("profile.misconfigured").await,
        "profile.misconfigured"
    );
}

#[tokio::test]
async fn an_outage_keeps_serving_the_valid_token_and_backs_off_as_asked() {
    let world = World::new(Duration::ZERO).await;
    let before = world.grantry.token(&world.connection).await.unwrap();
    world.provider.then(Err(ProviderFailure::Http {
        status: 503,
        retry_after: Some(120),
    }));
    let now = world.clock.now();
    let error = world
        .grantry
        .refresh_now(&world.connection, &Actor::Cli)
        .await
        .unwrap_err();
    assert!(
        matches!(error, CoreError::ProviderUnavailable { retry_after, .. } if retry_after >= 120),
        "{error}"
    );
    let row = world.grantry.connection(&world.connection).await.unwrap();
    assert_eq!(row.status, ConnectionStatus::Failing);
    assert!(
        row.next_refresh_at.unwrap() >= now.plus_seconds(120),
        "Retry-After is honoured"
    );
    assert!(
        world.has_event("connection.failing").await,
        "connection.failing"
    );
    let during = world.grantry.token(&world.connection).await.unwrap();
    assert_eq!(
        during.access_token.expose_secret(),
        before.access_token.expose_secret(),
        "the still-valid token keeps being served"
    );

    // Bitbucket back: the next refresh succeeds and the connection recovers, on the record.
    world.provider.then(Ok(grant("second")));
    world
        .grantry
        .refresh_now(&world.connection, &Actor::Cli)
        .await
        .unwrap();
    assert_eq!(world.status().await, ConnectionStatus::Active);
    assert!(
        world.has_event("connection.recovered").await,
        "connection.recovered"
    );
    let after = world.grantry.token(&world.connection).await.unwrap();
    assert_eq!(after.access_token.expose_secret(), "second");
}

#[tokio::test]
async fn a_failure_no_rule_knows_is_retried_never_declared_dead() {
    let world = World::new(Duration::ZERO).await;
    world.provider.then(Err(oauth("slow_down", "")));
    world
        .grantry
        .refresh_now(&world.connection, &Actor::Cli)
        .await
        .unwrap_err();
    assert_eq!(world.status().await, ConnectionStatus::Failing);
    let row = world.grantry.connection(&world.connection).await.unwrap();
    assert!(row.next_refresh_at.is_some(), "it will be tried again");
}

#[tokio::test]
async fn many_readers_of_an_expiring_token_cause_one_refresh() {
    let world = World::new(Duration::from_millis(50)).await;
    world.provider.then(Ok(grant("renewed")));
    // Into the refresh margin (5 minutes before the 2-hour token expires).
    world.clock.advance(7200 - 60);
    let readers = (0..16).map(|_| world.grantry.token(&world.connection));
    let answers = futures_util::future::join_all(readers).await;
    for answer in answers {
        assert_eq!(answer.unwrap().access_token.expose_secret(), "renewed");
    }
    assert_eq!(world.provider.calls.load(Ordering::SeqCst), 1);
}

/// Two nodes: while one holds the lease and waits on Bitbucket, a read on the other inside the
/// margin is answered with the still-valid token instead of a second refresh; once the first
/// node's write lands, the other serves the new token.
#[tokio::test]
async fn a_leased_refresh_is_not_repeated_by_another_node() {
    let world = World::new(Duration::from_millis(200)).await;
    let other = world.another_node().await;
    let before = world.grantry.token(&world.connection).await.unwrap();
    world.provider.then(Ok(grant("renewed")));
    world.clock.advance(7200 - 60);
    let forced = world.grantry.refresh_now(&world.connection, &Actor::Cli);
    let read = async {
        // Let the first node take the lease and call Bitbucket.
        tokio::time::sleep(Duration::from_millis(50)).await;
        other.token(&world.connection).await
    };
    let (forced, read) = tokio::join!(forced, read);
    forced.unwrap();
    assert_eq!(
        read.unwrap().access_token.expose_secret(),
        before.access_token.expose_secret(),
        "the other node served the valid token while the lease was held"
    );
    assert_eq!(world.provider.calls.load(Ordering::SeqCst), 1);
    let after = other.token(&world.connection).await.unwrap();
    assert_eq!(after.access_token.expose_secret(), "renewed");
    assert_eq!(world.provider.calls.load(Ordering::SeqCst), 1);
}

/// Saving what a connect flow acquired: a new account makes a connection; the same account for
/// the same end user updates it (same id); for another end user it is that user's own
/// connection (never moved); a reconnect keeps its id and refuses a different account.
#[tokio::test]
async fn saving_an_acquired_token_keeps_each_connection_with_its_owner() {
    let world = World::new(Duration::ZERO).await;
    let first = world.connection.clone();
    assert!(
        world.has_event("connection.created").await,
        "connection.created"
    );

    let again = connect(&world.grantry, "user-1", None).await.unwrap();
    assert_eq!(
        again, first,
        "the same account and end user: the same connection"
    );
    assert!(
        world.has_event("connection.reconnected").await,
        "connection.reconnected"
    );

    let other_user = connect(&world.grantry, "user-2", None).await.unwrap();
    assert_ne!(
        other_user, first,
        "another end user gets a connection of their own"
    );
    let kept = world.grantry.connection(&first).await.unwrap();
    assert_eq!(kept.end_user_id.as_deref(), Some("user-1"), "never moved");

    world.provider.accounts.lock().unwrap().push_back("mallory");
    let refused = connect(&world.grantry, "user-1", Some(&first)).await;
    assert_eq!(refused, Err("account_mismatch".to_owned()));
    let kept = world.grantry.connection(&first).await.unwrap();
    assert_eq!(kept.account_username.as_deref(), Some("alice"));

    let reconnected = connect(&world.grantry, "user-1", Some(&first))
        .await
        .unwrap();
    assert_eq!(reconnected, first, "a reconnect keeps the id");
}

/// Runs SQL on the world's database file directly, beside Grantry's own connections.
async fn on_database(world: &World, sql: &'static str) {
    use sqlx::ConnectOptions;
    let mut db = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(world.dir.path().join("grantry.db"))
        .connect()
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut db).await.unwrap();
}

/// Bitbucket rotates the refresh token on every refresh, so a refresh result the database will
/// not take (a full disk, a read-only file) must not be lost: it is kept in memory and served,
/// Bitbucket is not asked again, and it is written once the database takes writes again.
#[tokio::test]
async fn a_refresh_the_database_refuses_is_kept_served_and_written_later() {
    let world = World::new(Duration::ZERO).await;
    let before = world.grantry.connection(&world.connection).await.unwrap();
    on_database(
        &world,
        "CREATE TRIGGER refuse_tokens BEFORE UPDATE OF access_token ON connections \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    )
    .await;

    world.provider.then(Ok(grant("second")));
    let error = world
        .grantry
        .refresh_now(&world.connection, &Actor::Cli)
        .await
        .expect_err("an asked-for refresh says it is not saved yet");
    assert!(matches!(error, CoreError::RefreshNotSaved(_)), "{error}");
    assert!(world.grantry.write_pending(&world.connection));
    assert_eq!(world.grantry.pending_write_count(), 1);
    let stored = world.grantry.connection(&world.connection).await.unwrap();
    assert_eq!(stored.version, before.version, "the database took nothing");
    let read = world.grantry.token(&world.connection).await.unwrap();
    assert_eq!(
        read.access_token.expose_secret(),
        "second",
        "reads get the kept token"
    );
    assert_eq!(
        world.grantry.flush_pending_writes().await,
        1,
        "still refused: still kept"
    );

    on_database(&world, "DROP TRIGGER refuse_tokens").await;
    assert_eq!(world.grantry.flush_pending_writes().await, 0);
    assert!(!world.grantry.write_pending(&world.connection));
    let written = world.grantry.connection(&world.connection).await.unwrap();
    assert_eq!(written.version, before.version + 1, "written at last");
    assert_eq!(written.status, ConnectionStatus::Active);
    assert_eq!(
        world.provider.calls.load(Ordering::SeqCst),
        1,
        "the rotated refresh token was presented once"
    );
    // Another node, reading from the database alone, gets the kept token too.
    let other = world.another_node().await;
    let elsewhere = other.token(&world.connection).await.unwrap();
    assert_eq!(elsewhere.access_token.expose_secret(), "second");
}
