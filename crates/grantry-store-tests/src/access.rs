//! Who may call: API keys, console admins and their passwords, console sessions and settings.

use grantry_core::ids::{AdminId, ApiKeyId};
use grantry_core::store::*;

use crate::fixtures::*;

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
    assert!(store.revoke_api_key(&key.id, now_plus(1)).await.unwrap());
    assert!(!store.revoke_api_key(&key.id, now_plus(2)).await.unwrap());
    assert_eq!(
        store
            .api_key_by_digest("abc")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(now_plus(1))
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
        expires_at: now_plus(3600),
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
        expires_at: now_plus(3600),
    };
    store.insert_console_session(&session).await.unwrap();
    assert_eq!(
        store.console_session("session-digest").await.unwrap(),
        Some(session.clone())
    );
    store
        .touch_console_session("session-digest", now_plus(60))
        .await
        .unwrap();
    assert_eq!(
        store
            .console_session("session-digest")
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        now_plus(60)
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
