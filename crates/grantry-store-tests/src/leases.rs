//! The refresh lease, guarded token writes, and the refresher's claims.

use grantry_core::store::*;

use crate::fixtures::*;

pub async fn leases_are_exclusive_and_expire(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let c = connection(&profile, "alice");
    store.insert_connection(&c, &[]).await.unwrap();

    let leased = store
        .take_lease(&c.id, "node-a/1", now_plus(30), NOW)
        .await
        .unwrap()
        .expect("free lease");
    assert_eq!(leased.lease_owner.as_deref(), Some("node-a/1"));
    assert_eq!(
        store
            .take_lease(&c.id, "node-b/1", now_plus(31), now_plus(1))
            .await
            .unwrap(),
        None,
        "held by another"
    );
    assert!(
        store
            .take_lease(&c.id, "node-a/1", now_plus(40), now_plus(2))
            .await
            .unwrap()
            .is_some(),
        "re-entrant"
    );

    store.release_lease(&c.id, "node-b/1").await.unwrap();
    assert_eq!(
        store
            .connection(&c.id)
            .await
            .unwrap()
            .unwrap()
            .lease_owner
            .as_deref(),
        Some("node-a/1"),
        "only the owner releases"
    );

    let taken_over = store
        .take_lease(&c.id, "node-b/1", now_plus(100), now_plus(41))
        .await
        .unwrap();
    assert_eq!(
        taken_over.unwrap().lease_owner.as_deref(),
        Some("node-b/1"),
        "an expired lease is free"
    );
    store.release_lease(&c.id, "node-b/1").await.unwrap();
    assert_eq!(
        store.connection(&c.id).await.unwrap().unwrap().lease_owner,
        None
    );
}

/// `claim_due`, checking that every row comes back leased to `owner` until `until`; answers
/// the rows' ids in the order claimed.
async fn claim(
    store: &dyn Store,
    now: Timestamp,
    owner: &str,
    until: Timestamp,
    limit: u32,
) -> Vec<grantry_core::ids::ConnectionId> {
    let claimed = store.claim_due(now, owner, until, limit).await.unwrap();
    for row in &claimed {
        assert_eq!(row.lease_owner.as_deref(), Some(owner), "{} leased", row.id);
        assert_eq!(row.lease_until, Some(until), "{} leased", row.id);
    }
    claimed.into_iter().map(|row| row.id).collect()
}

/// Token writes made at the same moment are committed together, yet each keeps its own guard,
/// answer and announcements: a stale one among them changes nothing and announces nothing.
pub async fn token_writes_at_once_keep_their_own_guards(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let mut rows = Vec::new();
    for n in 0..40 {
        let c = connection(&profile, &format!("user{n}"));
        store.insert_connection(&c, &[]).await.unwrap();
        store
            .take_lease(&c.id, "me", now_plus(30), NOW)
            .await
            .unwrap();
        rows.push(c);
    }
    let writes = rows.iter().enumerate().map(|(n, c)| {
        let mut write = token_write(n as u8);
        write.announce = vec![Announcement {
            event: EventRecord {
                id: grantry_core::ids::EventId::generate(),
                at: NOW,
                kind: "connection.recovered".into(),
                profile_id: Some(c.profile_id.clone()),
                connection_id: Some(c.id.clone()),
                actor: "system".into(),
                detail: format!("write {n}"),
            },
            message: None,
        }];
        // Every third write is stale: its version is one behind.
        let version = if n % 3 == 0 { c.version - 1 } else { c.version };
        async move { store.write_tokens(&c.id, version, "me", &write).await }
    });
    let answers = futures_util::future::join_all(writes).await;
    for (n, (answer, c)) in answers.into_iter().zip(&rows).enumerate() {
        let written = n % 3 != 0;
        assert_eq!(answer.unwrap(), written, "write {n}");
        let stored = store.connection(&c.id).await.unwrap().unwrap();
        let by_connection = EventFilter {
            connection_id: Some(c.id.clone()),
            ..EventFilter::default()
        };
        let events = store.events(&by_connection, &page(10)).await.unwrap();
        if written {
            assert_eq!(stored.version, c.version + 1, "write {n}");
            assert_eq!(stored.access_token, vec![n as u8; 40], "write {n}");
            assert_eq!(stored.lease_owner, None, "write {n} released the lease");
            assert_eq!(events.len(), 1, "write {n} announced once");
            assert_eq!(events[0].detail, format!("write {n}"));
        } else {
            assert_eq!(stored.version, c.version, "stale write {n}");
            assert_eq!(stored.access_token, c.access_token, "stale write {n}");
            assert_eq!(stored.lease_owner.as_deref(), Some("me"), "stale write {n}");
            assert!(events.is_empty(), "stale write {n} announced nothing");
        }
    }
}

pub async fn token_writes_are_guarded_by_version_and_lease(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let c = connection(&profile, "alice");
    store.insert_connection(&c, &[]).await.unwrap();
    store
        .take_lease(&c.id, "me", now_plus(30), NOW)
        .await
        .unwrap();

    assert!(
        !store
            .write_tokens(&c.id, c.version + 1, "me", &token_write(5))
            .await
            .unwrap(),
        "stale version"
    );
    assert!(
        !store
            .write_tokens(&c.id, c.version, "someone-else", &token_write(5))
            .await
            .unwrap(),
        "not the lease owner"
    );
    assert!(
        store
            .write_tokens(&c.id, c.version, "me", &token_write(5))
            .await
            .unwrap()
    );

    let stored = store.connection(&c.id).await.unwrap().unwrap();
    assert_eq!(stored.version, c.version + 1);
    assert_eq!(stored.access_token, vec![5; 40]);
    assert_eq!(
        stored.refresh_token, c.refresh_token,
        "no new refresh token keeps the stored one"
    );
    assert_eq!(
        (stored.lease_owner, stored.lease_until),
        (None, None),
        "the write releases the lease"
    );
    assert_eq!(stored.granted_scopes, vec!["account".to_owned()]);

    store
        .take_lease(&c.id, "me", now_plus(30), NOW)
        .await
        .unwrap();
    let mut rotated = token_write(6);
    rotated.refresh_token = Some(vec![4; 60]);
    assert!(
        store
            .write_tokens(&c.id, stored.version, "me", &rotated)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .connection(&c.id)
            .await
            .unwrap()
            .unwrap()
            .refresh_token,
        Some(vec![4; 60])
    );
    assert!(
        !store
            .write_tokens(&c.id, stored.version, "me", &rotated)
            .await
            .unwrap(),
        "a replay does not apply"
    );
}

pub async fn outcomes_release_the_lease(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let c = connection(&profile, "alice");
    store.insert_connection(&c, &[]).await.unwrap();
    store
        .take_lease(&c.id, "me", now_plus(30), NOW)
        .await
        .unwrap();
    let outcome = OutcomeWrite {
        version: c.version,
        status: ConnectionStatus::NeedsReauth,
        status_reason: Some("refused".into()),
        failures: 1,
        last_error: Some("HTTP 400".into()),
        next_refresh_at: None,
        announce: Vec::new(),
    };
    store
        .record_outcome(&c.id, "someone-else", &outcome)
        .await
        .unwrap();
    assert_eq!(
        store.connection(&c.id).await.unwrap().unwrap().status,
        ConnectionStatus::Active,
        "not the owner"
    );
    store.record_outcome(&c.id, "me", &outcome).await.unwrap();
    let stored = store.connection(&c.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ConnectionStatus::NeedsReauth);
    assert_eq!(stored.status_reason.as_deref(), Some("refused"));
    assert_eq!(
        (stored.failures, stored.next_refresh_at, stored.lease_owner),
        (1, None, None)
    );
}

/// An outcome about a row that was replaced meanwhile (the user reconnected, an admin stored a
/// new credential) is left out: it would mark the new grant with the old one's fate.
pub async fn outcomes_about_a_replaced_row_are_left_out(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let c = connection(&profile, "alice");
    store.insert_connection(&c, &[]).await.unwrap();
    store
        .take_lease(&c.id, "checker", now_plus(30), NOW)
        .await
        .unwrap();
    let mut replaced = c.clone();
    replaced.version = c.version + 1;
    assert!(store.replace_connection(&replaced, &[]).await.unwrap());
    let outcome = OutcomeWrite {
        version: c.version,
        status: ConnectionStatus::NeedsReauth,
        status_reason: Some("the old token was refused".into()),
        failures: 1,
        last_error: None,
        next_refresh_at: None,
        announce: Vec::new(),
    };
    store
        .record_outcome(&c.id, "checker", &outcome)
        .await
        .unwrap();
    let stored = store.connection(&c.id).await.unwrap().unwrap();
    assert_eq!(
        stored.status,
        ConnectionStatus::Active,
        "the new grant stands"
    );
}

pub async fn claiming_shares_out_due_connections(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let mut due = Vec::new();
    for n in 0..5 {
        let mut c = connection(&profile, &format!("due{n}"));
        c.next_refresh_at = Some(now_plus(-10 + n));
        store.insert_connection(&c, &[]).await.unwrap();
        due.push(c.id);
    }
    let mut later = connection(&profile, "later");
    later.next_refresh_at = Some(now_plus(100));
    let mut dead = connection(&profile, "dead");
    dead.next_refresh_at = Some(now_plus(-100));
    dead.status = ConnectionStatus::NeedsReauth;
    let mut static_token = connection(&profile, "static");
    static_token.next_refresh_at = None;
    for c in [&later, &dead, &static_token] {
        store.insert_connection(c, &[]).await.unwrap();
    }
    store
        .take_lease(&due[0], "busy", now_plus(30), NOW)
        .await
        .unwrap();

    let first = claim(store, NOW, "node-a", now_plus(30), 3).await;
    assert_eq!(first, due[1..4], "oldest due first, leased ones skipped");
    let second = claim(store, NOW, "node-b", now_plus(30), 10).await;
    assert_eq!(second, due[4..], "nothing claimed twice");
    for id in &first {
        assert_eq!(
            store
                .connection(id)
                .await
                .unwrap()
                .unwrap()
                .lease_owner
                .as_deref(),
            Some("node-a")
        );
    }
    assert!(
        claim(store, NOW, "node-c", now_plus(30), 10)
            .await
            .is_empty()
    );
    let after_expiry = claim(store, now_plus(31), "node-c", now_plus(61), 10).await;
    assert_eq!(after_expiry.len(), 5, "expired claims are claimable again");
}

/// A lease that ran out without being released means its holder died mid-refresh, perhaps
/// after presenting the refresh token: such a row is claimed first, even when it is not due.
pub async fn abandoned_leases_are_claimed_first(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let mut due = connection(&profile, "due");
    due.next_refresh_at = Some(now_plus(-50));
    let abandoned = connection(&profile, "abandoned");
    let held = connection(&profile, "held");
    let mut dead = connection(&profile, "dead");
    dead.status = ConnectionStatus::NeedsReauth;
    for c in [&due, &abandoned, &held, &dead] {
        store.insert_connection(c, &[]).await.unwrap();
    }
    for c in [&abandoned, &dead] {
        store
            .take_lease(&c.id, "died", now_plus(-10), now_plus(-40))
            .await
            .unwrap();
    }
    store
        .take_lease(&held.id, "alive", now_plus(20), now_plus(-10))
        .await
        .unwrap();

    let first = claim(store, NOW, "node-b", now_plus(30), 1).await;
    assert_eq!(
        first,
        std::slice::from_ref(&abandoned.id),
        "the abandoned lease first"
    );
    let rest = claim(store, NOW, "node-b", now_plus(30), 10).await;
    assert_eq!(
        rest,
        std::slice::from_ref(&due.id),
        "then what is due; never a live lease or a dead grant"
    );
    let row = store.connection(&abandoned.id).await.unwrap().unwrap();
    assert_eq!(row.lease_owner.as_deref(), Some("node-b"));
    assert_eq!(
        claim(store, NOW, "node-c", now_plus(30), 10).await,
        Vec::<grantry_core::ids::ConnectionId>::new(),
        "the new lease holds"
    );
}

pub async fn fixing_a_profile_retries_its_failing_connections(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let mut failing = connection(&profile, "a");
    failing.status = ConnectionStatus::Failing;
    failing.next_refresh_at = Some(now_plus(600));
    let healthy = connection(&profile, "b");
    store.insert_connection(&failing, &[]).await.unwrap();
    store.insert_connection(&healthy, &[]).await.unwrap();
    assert_eq!(store.retry_failing_now(&profile.id, NOW).await.unwrap(), 1);
    assert_eq!(
        store
            .connection(&failing.id)
            .await
            .unwrap()
            .unwrap()
            .next_refresh_at,
        Some(NOW)
    );
    assert_eq!(
        store
            .connection(&healthy.id)
            .await
            .unwrap()
            .unwrap()
            .next_refresh_at,
        healthy.next_refresh_at
    );
}

pub async fn kept_tokens_are_written_by_version_alone(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let c = connection(&profile, "alice");
    store.insert_connection(&c, &[]).await.unwrap();
    store
        .take_lease(&c.id, "someone-now", now_plus(30), NOW)
        .await
        .unwrap();
    assert!(
        store
            .write_pending_tokens(&c.id, c.version, &token_write(3))
            .await
            .unwrap(),
        "whoever holds the lease"
    );
    let stored = store.connection(&c.id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.lease_owner), (c.version + 1, None));
    assert!(
        !store
            .write_pending_tokens(&c.id, c.version, &token_write(4))
            .await
            .unwrap(),
        "but only over the version it came from"
    );
}

/// A lease handed back before its outcome was written leaves the row due by the given time (or
/// earlier, if it already was), and only its holder can hand it back.
pub async fn handed_back_leases_leave_the_row_due(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let later = connection(&profile, "later");
    let mut sooner = connection(&profile, "sooner");
    sooner.next_refresh_at = Some(now_plus(5));
    for c in [&later, &sooner] {
        store.insert_connection(c, &[]).await.unwrap();
        store
            .take_lease(&c.id, "a", now_plus(30), NOW)
            .await
            .unwrap();
    }
    store
        .hand_back(&later.id, "someone-else", now_plus(30))
        .await
        .unwrap();
    let row = store.connection(&later.id).await.unwrap().unwrap();
    assert_eq!(
        row.lease_owner.as_deref(),
        Some("a"),
        "not theirs to hand back"
    );

    for c in [&later, &sooner] {
        store.hand_back(&c.id, "a", now_plus(30)).await.unwrap();
    }
    let later = store.connection(&later.id).await.unwrap().unwrap();
    assert_eq!(
        (later.lease_owner, later.next_refresh_at),
        (None, Some(now_plus(30)))
    );
    let sooner = store.connection(&sooner.id).await.unwrap().unwrap();
    assert_eq!(
        sooner.next_refresh_at,
        Some(now_plus(5)),
        "an earlier time stays"
    );
    let claimed = claim(store, now_plus(31), "b", now_plus(60), 10).await;
    assert_eq!(claimed.len(), 2, "both are claimed once due");
}
