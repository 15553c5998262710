//! Connect sessions, API keys, admins, events and re-sealing.

use grantry_core::ids::{AdminId, ApiKeyId, ConnectionId, EventId};
use grantry_core::store::*;

use crate::fixtures::*;

pub async fn sessions_open_and_complete_once(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let mut s = session(&profile, "token-digest");
    s.connection_id = Some(ConnectionId::generate());
    store.insert_session(&s).await.unwrap();
    assert_eq!(
        store.session_by_token("token-digest").await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(store.session_by_state("state-digest").await.unwrap(), None);

    assert!(
        store
            .open_session(
                &s.id,
                "state-digest",
                "browser-digest",
                Some(&[1, 2, 3]),
                NOW + 1
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .open_session(&s.id, "other-state", "other-browser", None, NOW + 2)
            .await
            .unwrap(),
        "opened once"
    );
    let opened = store
        .session_by_state("state-digest")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (opened.opened_at, opened.pkce_verifier.clone()),
        (Some(NOW + 1), Some(vec![1, 2, 3]))
    );
    assert_eq!(opened.browser_digest.as_deref(), Some("browser-digest"));
    assert_eq!(store.session(&s.id).await.unwrap(), Some(opened.clone()));

    assert!(store.complete_session(&s.id, NOW + 3).await.unwrap());
    assert!(
        !store.complete_session(&s.id, NOW + 4).await.unwrap(),
        "completed once"
    );
    assert_eq!(
        store
            .session_by_state("state-digest")
            .await
            .unwrap()
            .unwrap()
            .completed_at,
        Some(NOW + 3)
    );

    let mut old = session(&profile, "old-digest");
    old.expires_at = NOW - 100_000;
    store.insert_session(&old).await.unwrap();
    assert_eq!(store.purge_sessions(NOW - 86_400).await.unwrap(), 1);
    assert!(
        store
            .session_by_token("token-digest")
            .await
            .unwrap()
            .is_some()
    );
}

/// A credential held for confirmation is taken once, before its deadline, and dropped after.
pub async fn held_credentials_are_taken_once_and_expire(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let s = session(&profile, "token-digest");
    store.insert_session(&s).await.unwrap();
    assert_eq!(
        store.take_grant(&s.id, NOW).await.unwrap(),
        None,
        "nothing held yet"
    );
    assert!(
        store
            .hold_grant(&s.id, "code-digest", &[7, 8, 9], NOW + 600)
            .await
            .unwrap()
    );
    let taken = store.take_grant(&s.id, NOW + 10).await.unwrap().unwrap();
    assert_eq!(taken.pending_grant, Some(vec![7, 8, 9]));
    assert_eq!(taken.verification_digest.as_deref(), Some("code-digest"));
    assert_eq!(taken.confirmed_at, Some(NOW + 10));
    assert_eq!(
        store.take_grant(&s.id, NOW + 11).await.unwrap(),
        None,
        "taken once"
    );
    let after = store.session(&s.id).await.unwrap().unwrap();
    assert_eq!(
        (after.pending_grant, after.verification_digest),
        (None, None)
    );
    assert!(
        !store
            .hold_grant(&s.id, "again", &[1], NOW + 600)
            .await
            .unwrap(),
        "a confirmed session holds nothing more"
    );

    let late = session(&profile, "late-digest");
    store.insert_session(&late).await.unwrap();
    store
        .hold_grant(&late.id, "code-digest", &[1, 2], NOW + 600)
        .await
        .unwrap();
    assert_eq!(
        store.take_grant(&late.id, NOW + 601).await.unwrap(),
        None,
        "too late to confirm"
    );
    assert_eq!(store.drop_unconfirmed(NOW + 601).await.unwrap(), 1);
    assert_eq!(
        store
            .session(&late.id)
            .await
            .unwrap()
            .unwrap()
            .pending_grant,
        None,
        "the unconfirmed credential is gone"
    );
}

pub async fn api_keys_and_admins(store: &dyn Store) {
    let key = ApiKeyRecord {
        id: ApiKeyId::generate(),
        name: "ci".into(),
        role: Role::App,
        digest: "abc".into(),
        hint: "gry_abcd…".into(),
        created_at: NOW,
        revoked_at: None,
    };
    store.insert_api_key(&key).await.unwrap();
    assert_eq!(
        store.api_key_by_digest("abc").await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(store.api_keys().await.unwrap(), vec![key.clone()]);
    assert!(store.revoke_api_key(&key.id, NOW + 1).await.unwrap());
    assert!(!store.revoke_api_key(&key.id, NOW + 2).await.unwrap());
    assert_eq!(
        store
            .api_key_by_digest("abc")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 1)
    );

    assert_eq!(store.admin_count().await.unwrap(), 0);
    let admin = AdminRecord {
        id: AdminId::generate(),
        username: "root".into(),
        password_hash: "$argon2id$…".into(),
        created_at: NOW,
    };
    store.insert_admin(&admin).await.unwrap();
    assert_eq!(
        store.admin_by_username("root").await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(store.admin_count().await.unwrap(), 1);
    assert_eq!(store.admins().await.unwrap(), vec![admin.clone()]);
    let twin = AdminRecord {
        id: AdminId::generate(),
        ..admin
    };
    assert!(matches!(
        store.insert_admin(&twin).await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn events_filter_and_page_newest_first(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let connection = ConnectionId::generate();
    let mut ids = Vec::new();
    for (n, kind) in [
        "profile.created",
        "connection.created",
        "connection.refreshed",
        "api_key.created",
    ]
    .iter()
    .enumerate()
    {
        let event = EventRecord {
            id: EventId::generate(),
            at: NOW + n as i64,
            kind: (*kind).into(),
            profile_id: (n < 3).then(|| profile.id.clone()),
            connection_id: (1..3).contains(&n).then(|| connection.clone()),
            actor: "cli".into(),
            detail: format!("event {n}"),
        };
        store.insert_event(&event).await.unwrap();
        ids.push(event.id);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let all = store
        .events(&EventFilter::default(), &page(10))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.id.clone()).rev().collect::<Vec<_>>(),
        ids,
        "newest first"
    );

    let by_connection = EventFilter {
        connection_id: Some(connection.clone()),
        ..Default::default()
    };
    assert_eq!(
        store.events(&by_connection, &page(10)).await.unwrap().len(),
        2
    );
    let prefix = EventFilter {
        kind: Some("connection.".into()),
        ..Default::default()
    };
    assert_eq!(store.events(&prefix, &page(10)).await.unwrap().len(), 2);
    let exact = EventFilter {
        kind: Some("profile.created".into()),
        profile_id: Some(profile.id.clone()),
        ..Default::default()
    };
    assert_eq!(store.events(&exact, &page(10)).await.unwrap()[0].id, ids[0]);

    let first = store
        .events(&EventFilter::default(), &page(2))
        .await
        .unwrap();
    let next = PageRequest {
        after: Some(first[1].id.to_string()),
        limit: 10,
    };
    let rest = store.events(&EventFilter::default(), &next).await.unwrap();
    assert_eq!(
        rest.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![ids[1].clone(), ids[0].clone()]
    );
}

/// The master keys a database needs, read from the headers of its sealed values.
pub async fn sealed_values_name_their_keys(store: &dyn Store) {
    let sealed = |key: u8| {
        let mut value = vec![1, key, key, key, key];
        value.extend([0u8; 40]);
        value
    };
    let mut p = profile("P");
    p.client_secret = sealed(9);
    store.insert_profile(&p).await.unwrap();
    let mut c = connection(&p, "alice");
    c.access_token = sealed(7);
    c.refresh_token = Some(sealed(7));
    store.insert_connection(&c).await.unwrap();
    let mut ids = store.sealed_key_ids().await.unwrap();
    ids.sort();
    assert_eq!(ids, vec![[7; 4], [9; 4]]);
}

pub async fn resealing_replaces_only_unchanged_values(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let c = connection(&profile, "alice");
    store.insert_connection(&c).await.unwrap();
    let mut no_refresh = connection(&profile, "bob");
    no_refresh.refresh_token = None;
    store.insert_connection(&no_refresh).await.unwrap();

    let cells = store
        .sealed_cells(SealedColumn::RefreshToken, None, 10)
        .await
        .unwrap();
    assert_eq!(
        cells,
        vec![SealedCell {
            row_id: c.id.to_string(),
            value: vec![8; 40]
        }],
        "NULLs are skipped"
    );
    let first = store
        .sealed_cells(SealedColumn::AccessToken, None, 1)
        .await
        .unwrap();
    assert_eq!(first.len(), 1, "the limit holds");
    let after = store
        .sealed_cells(SealedColumn::AccessToken, Some(&first[0].row_id), 10)
        .await
        .unwrap();
    assert_eq!(after.len(), 1, "the rest, after the cursor");
    assert_ne!(after[0].row_id, first[0].row_id);

    assert!(
        !store
            .reseal(SealedColumn::RefreshToken, c.id.as_str(), &[0; 3], &[1; 3])
            .await
            .unwrap(),
        "changed meanwhile"
    );
    assert!(
        store
            .reseal(
                SealedColumn::RefreshToken,
                c.id.as_str(),
                &[8; 40],
                &[3; 41]
            )
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
        Some(vec![3; 41])
    );
    assert!(
        store
            .reseal(
                SealedColumn::ProfileSecret,
                profile.id.as_str(),
                &[1, 0, 2, 255],
                &[6]
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .profile(&profile.id)
            .await
            .unwrap()
            .unwrap()
            .client_secret,
        vec![6]
    );
}

pub async fn sealed_bytes_and_long_tokens_round_trip(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let mut c = connection(&profile, "alice");
    c.access_token = (0..=255u8).cycle().take(8_000).collect();
    c.refresh_token = Some(vec![0; 3_000]);
    store.insert_connection(&c).await.unwrap();
    let stored = store.connection(&c.id).await.unwrap().unwrap();
    assert_eq!(
        stored.access_token, c.access_token,
        "no length limit, every byte kept"
    );
    assert_eq!(stored.refresh_token, c.refresh_token);
}

pub async fn admin_passwords_change_and_admins_leave(store: &dyn Store) {
    let admin = |name: &str| AdminRecord {
        id: AdminId::generate(),
        username: name.into(),
        password_hash: format!("$argon2id$…{name}"),
        created_at: NOW,
    };
    let session = |digest: &str, admin: &AdminRecord| ConsoleSessionRecord {
        digest: digest.into(),
        admin_id: admin.id.clone(),
        username: admin.username.clone(),
        created_at: NOW,
        last_seen_at: NOW,
        expires_at: NOW + 3600,
    };
    let (alice, bob) = (admin("alice"), admin("bob"));
    for a in [&alice, &bob] {
        store.insert_admin(a).await.unwrap();
    }
    for (digest, a) in [("alice-1", &alice), ("alice-2", &alice), ("bob-1", &bob)] {
        store
            .insert_console_session(&session(digest, a))
            .await
            .unwrap();
    }

    assert!(
        store
            .set_admin_password(&alice.id, "$argon2id$new")
            .await
            .unwrap()
    );
    let changed = store.admin_by_username("alice").await.unwrap().unwrap();
    assert_eq!(changed.password_hash, "$argon2id$new");
    for digest in ["alice-1", "alice-2"] {
        assert_eq!(
            store.console_session(digest).await.unwrap(),
            None,
            "a new password signs the admin out everywhere"
        );
    }
    assert!(
        store.console_session("bob-1").await.unwrap().is_some(),
        "other admins stay signed in"
    );
    assert!(
        !store
            .set_admin_password(&AdminId::generate(), "$argon2id$x")
            .await
            .unwrap()
    );

    assert_eq!(
        store.delete_admin(&bob.id).await.unwrap(),
        AdminRemoval::Removed
    );
    assert_eq!(store.console_session("bob-1").await.unwrap(), None);
    assert_eq!(store.admin_by_username("bob").await.unwrap(), None);
    assert_eq!(store.admins().await.unwrap(), vec![changed]);
    assert_eq!(
        store.delete_admin(&bob.id).await.unwrap(),
        AdminRemoval::NotFound,
        "deleting twice finds nothing"
    );
    assert_eq!(
        store.delete_admin(&alice.id).await.unwrap(),
        AdminRemoval::LastAdmin,
        "the last admin stays"
    );
    assert_eq!(store.admin_count().await.unwrap(), 1);
}

pub async fn console_sessions_and_settings(store: &dyn Store) {
    let admin = AdminRecord {
        id: AdminId::generate(),
        username: "root".into(),
        password_hash: "$argon2id$…".into(),
        created_at: NOW,
    };
    store.insert_admin(&admin).await.unwrap();
    let session = ConsoleSessionRecord {
        digest: "session-digest".into(),
        admin_id: admin.id.clone(),
        username: "root".into(),
        created_at: NOW,
        last_seen_at: NOW,
        expires_at: NOW + 3600,
    };
    store.insert_console_session(&session).await.unwrap();
    assert_eq!(
        store.console_session("session-digest").await.unwrap(),
        Some(session.clone())
    );
    store
        .touch_console_session("session-digest", NOW + 60)
        .await
        .unwrap();
    assert_eq!(
        store
            .console_session("session-digest")
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        NOW + 60
    );
    store
        .delete_console_session("session-digest")
        .await
        .unwrap();
    assert_eq!(store.console_session("session-digest").await.unwrap(), None);

    assert_eq!(store.meta("setup").await.unwrap(), None);
    store.put_meta("setup", Some("one")).await.unwrap();
    store.put_meta("setup", Some("two")).await.unwrap();
    assert_eq!(store.meta("setup").await.unwrap().as_deref(), Some("two"));
    store.put_meta("setup", None).await.unwrap();
    assert_eq!(store.meta("setup").await.unwrap(), None);
}
