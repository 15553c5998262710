//! Connect sessions and the credentials they hold until the application confirms them.

use grantry_core::ids::ConnectionId;
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
                now_plus(1)
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .open_session(&s.id, "other-state", "other-browser", None, now_plus(2))
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
        (Some(now_plus(1)), Some(vec![1, 2, 3]))
    );
    assert_eq!(opened.browser_digest.as_deref(), Some("browser-digest"));
    assert_eq!(store.session(&s.id).await.unwrap(), Some(opened.clone()));

    assert!(store.complete_session(&s.id, now_plus(3)).await.unwrap());
    assert!(
        !store.complete_session(&s.id, now_plus(4)).await.unwrap(),
        "completed once"
    );
    assert_eq!(
        store
            .session_by_state("state-digest")
            .await
            .unwrap()
            .unwrap()
            .completed_at,
        Some(now_plus(3))
    );

    let mut old = session(&profile, "old-digest");
    old.expires_at = now_plus(-100_000);
    store.insert_session(&old).await.unwrap();
    assert_eq!(store.purge_sessions(now_plus(-86_400)).await.unwrap(), 1);
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
            .hold_grant(&s.id, "code-digest", &[7, 8, 9], now_plus(600))
            .await
            .unwrap()
    );
    let taken = store
        .take_grant(&s.id, now_plus(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.pending_grant, Some(vec![7, 8, 9]));
    assert_eq!(taken.verification_digest.as_deref(), Some("code-digest"));
    assert_eq!(taken.confirmed_at, Some(now_plus(10)));
    assert_eq!(
        store.take_grant(&s.id, now_plus(11)).await.unwrap(),
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
            .hold_grant(&s.id, "again", &[1], now_plus(600))
            .await
            .unwrap(),
        "a confirmed session holds nothing more"
    );

    let late = session(&profile, "late-digest");
    store.insert_session(&late).await.unwrap();
    store
        .hold_grant(&late.id, "code-digest", &[1, 2], now_plus(600))
        .await
        .unwrap();
    assert_eq!(
        store.take_grant(&late.id, now_plus(601)).await.unwrap(),
        None,
        "too late to confirm"
    );
    assert_eq!(store.drop_unconfirmed(now_plus(601)).await.unwrap(), 1);
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
