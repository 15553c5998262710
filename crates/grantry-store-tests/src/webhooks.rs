//! Webhook endpoints and their outbox: messages written with the change they report, only for
//! the endpoints that want them, claimed once and in order per connection.

use grantry_core::ids::{EventId, ProfileId, WebhookId};
use grantry_core::store::*;

use crate::fixtures::*;

fn endpoint(kinds: &[&str], profiles: &[&ProfileId], enabled: bool) -> WebhookRecord {
    WebhookRecord {
        id: WebhookId::generate(),
        url: "http://127.0.0.1:9/hook".into(),
        description: String::new(),
        kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
        profiles: profiles.iter().map(|p| (*p).clone()).collect(),
        enabled,
        secret: vec![1; 40],
        previous_secret: None,
        previous_until: None,
        disabled_reason: None,
        failing_since: None,
        created_at: NOW,
        updated_at: NOW,
    }
}

fn announcement(kind: &str, connection: &ConnectionRecord, at: Timestamp) -> Announcement {
    Announcement {
        event: EventRecord {
            id: EventId::generate(),
            at,
            kind: kind.into(),
            profile_id: Some(connection.profile_id.clone()),
            connection_id: Some(connection.id.clone()),
            actor: "system".into(),
            detail: kind.into(),
        },
        message: Some(format!(r#"{{"type":"{kind}"}}"#)),
    }
}

async fn pending(store: &dyn Store, webhook: &WebhookId) -> Vec<DeliveryRecord> {
    let mut all = store.deliveries(webhook, None, 100).await.unwrap();
    all.retain(|d| d.state == DeliveryState::Pending);
    all.reverse();
    all
}

pub async fn announcements_reach_the_endpoints_that_want_them(store: &dyn Store) {
    let p = stored_profile(store, "P").await;
    let other = stored_profile(store, "Q").await;
    let every = endpoint(&[], &[], true);
    let reauth_only = endpoint(&["connection.needs_reauth"], &[], true);
    let other_profile = endpoint(&[], &[&other.id], true);
    let disabled = endpoint(&[], &[], false);
    for w in [&every, &reauth_only, &other_profile, &disabled] {
        store.insert_webhook(w).await.unwrap();
    }
    assert_eq!(
        store.webhook(&every.id).await.unwrap().as_ref(),
        Some(&every)
    );

    let c = connection(&p, "a");
    let created = announcement("connection.created", &c, NOW);
    store
        .insert_connection(&c, std::slice::from_ref(&created))
        .await
        .unwrap();
    assert_eq!(pending(store, &every.id).await.len(), 1);
    assert!(
        pending(store, &reauth_only.id).await.is_empty(),
        "kind not wanted"
    );
    assert!(
        pending(store, &other_profile.id).await.is_empty(),
        "other profile"
    );
    assert!(pending(store, &disabled.id).await.is_empty(), "disabled");
    let events = store
        .events(&EventFilter::default(), &page(10))
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "the audit event is written with it");

    // A guarded write that changes nothing announces nothing.
    let mut outcome = OutcomeWrite {
        version: c.version,
        status: ConnectionStatus::NeedsReauth,
        status_reason: Some("refused".into()),
        failures: 1,
        last_error: None,
        next_refresh_at: None,
        announce: vec![announcement("connection.needs_reauth", &c, now_plus(1))],
    };
    store
        .take_lease(&c.id, "holder", now_plus(30), NOW)
        .await
        .unwrap();
    store
        .record_outcome(&c.id, "not-the-holder", &outcome)
        .await
        .unwrap();
    assert!(pending(store, &reauth_only.id).await.is_empty());
    outcome.announce = vec![announcement("connection.needs_reauth", &c, now_plus(2))];
    store
        .record_outcome(&c.id, "holder", &outcome)
        .await
        .unwrap();
    assert_eq!(pending(store, &reauth_only.id).await.len(), 1);
    assert_eq!(pending(store, &every.id).await.len(), 2);
    let message = &pending(store, &every.id).await[1];
    assert_eq!(message.payload, r#"{"type":"connection.needs_reauth"}"#);
    assert_eq!(message.ordering_key, c.id.as_str());

    assert!(store.delete_webhook(&every.id).await.unwrap());
    assert!(
        store
            .deliveries(&every.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn deliveries_are_claimed_once_and_in_order(store: &dyn Store) {
    let p = stored_profile(store, "P").await;
    let w = endpoint(&[], &[], true);
    store.insert_webhook(&w).await.unwrap();
    let (a, b) = (connection(&p, "a"), connection(&p, "b"));
    let created = |c: &ConnectionRecord| [announcement("connection.created", c, NOW)];
    store.insert_connection(&a, &created(&a)).await.unwrap();
    store.insert_connection(&b, &created(&b)).await.unwrap();
    let deleted = [announcement("connection.deleted", &a, NOW)];
    store.delete_connection(&a.id, &deleted).await.unwrap();
    let claim = |at: Timestamp, owner: &'static str| {
        store.claim_deliveries(at, owner, at.plus_seconds(40), 10)
    };
    let attempt =
        |d: &DeliveryRecord, owner: &str, state, next_attempt_at, status, at| AttemptWrite {
            webhook_id: w.id.clone(),
            seq: d.seq,
            owner: owner.to_owned(),
            state,
            next_attempt_at,
            status: Some(status),
            error: None,
            latency_ms: 3,
            at,
        };

    // One message per connection at a time: a's second waits behind its first.
    let first = claim(NOW, "n1").await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].ordering_key, a.id.as_str());
    assert_eq!(first[0].kind, "connection.created");
    assert!(claim(NOW, "n2").await.unwrap().is_empty(), "leased");

    let (a1, b1) = (&first[0], &first[1]);
    let delivered = |d, owner| attempt(d, owner, DeliveryState::Delivered, NOW, 204, now_plus(1));
    assert!(
        !store.record_attempt(&delivered(a1, "n2")).await.unwrap(),
        "not n2's"
    );
    assert!(store.record_attempt(&delivered(a1, "n1")).await.unwrap());
    assert!(store.record_attempt(&delivered(b1, "n1")).await.unwrap());
    let next = claim(now_plus(1), "n2").await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].kind, "connection.deleted");

    // A retry later: not due before its time; a lease that ran out is claimed again.
    let retry = attempt(
        &next[0],
        "n2",
        DeliveryState::Pending,
        now_plus(60),
        503,
        now_plus(2),
    );
    assert!(store.record_attempt(&retry).await.unwrap());
    let failing = store.webhook(&w.id).await.unwrap().unwrap();
    assert_eq!(failing.failing_since, Some(now_plus(2)));
    assert!(claim(now_plus(59), "n3").await.unwrap().is_empty());
    let again = claim(now_plus(60), "n3").await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    let abandoned = claim(now_plus(101), "n4").await.unwrap();
    assert_eq!(abandoned.len(), 1, "n3 died holding it");
    let ok = attempt(
        &abandoned[0],
        "n4",
        DeliveryState::Delivered,
        NOW,
        200,
        now_plus(102),
    );
    assert!(store.record_attempt(&ok).await.unwrap());
    let healthy = store.webhook(&w.id).await.unwrap().unwrap();
    assert_eq!(healthy.failing_since, None, "a success clears it");

    // Sent again on request, with the same event id; a pending one is not "sent again".
    assert!(
        store
            .redeliver(&w.id, &b1.event_id, now_plus(103))
            .await
            .unwrap()
    );
    assert!(
        !store
            .redeliver(&w.id, &b1.event_id, now_plus(103))
            .await
            .unwrap()
    );

    // A disabled endpoint's messages wait.
    assert!(
        store
            .disable_webhook(&w.id, "410 Gone", now_plus(104))
            .await
            .unwrap()
    );
    assert!(claim(now_plus(300), "n5").await.unwrap().is_empty());
    let disabled = store.webhook(&w.id).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("410 Gone"));

    // Finished messages are purged after a while; pending ones stay.
    assert_eq!(
        store.purge_deliveries(now_plus(1)).await.unwrap(),
        0,
        "not yet"
    );
    assert_eq!(store.purge_deliveries(now_plus(1000)).await.unwrap(), 2);
    let left = store.deliveries(&w.id, None, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].state, DeliveryState::Pending);
}

pub async fn a_profile_turning_misconfigured_is_announced_once(store: &dyn Store) {
    let p = stored_profile(store, "P").await;
    let w = endpoint(&[], &[], true);
    store.insert_webhook(&w).await.unwrap();
    let about = |kind: &str| Announcement {
        event: EventRecord {
            id: EventId::generate(),
            at: NOW,
            kind: kind.into(),
            profile_id: Some(p.id.clone()),
            connection_id: None,
            actor: "system".into(),
            detail: kind.into(),
        },
        message: Some("{}".into()),
    };
    for _ in 0..3 {
        let flagged = [about("profile.misconfigured")];
        store
            .set_profile_problem(&p.id, Some("refused"), NOW, &flagged)
            .await
            .unwrap();
    }
    store
        .set_profile_problem(&p.id, None, NOW, &[about("profile.recovered")])
        .await
        .unwrap();
    store
        .set_profile_problem(&p.id, None, NOW, &[about("profile.recovered")])
        .await
        .unwrap();
    let kinds: Vec<String> = pending(store, &w.id)
        .await
        .into_iter()
        .map(|d| d.kind)
        .collect();
    assert_eq!(kinds, ["profile.misconfigured", "profile.recovered"]);
}

pub async fn expiring_credentials_are_found_and_warned_once(store: &dyn Store) {
    let p = stored_profile(store, "P").await;
    let day = 86_400;
    let mut token = connection(&p, "token");
    token.credential = CredentialKind::AccessToken;
    token.refresh_token = None;
    token.expires_at = Some(now_plus(3 * day));
    let mut later = connection(&p, "later");
    later.credential = CredentialKind::ApiToken;
    later.expires_at = Some(now_plus(30 * day));
    let mut stale = connection(&p, "stale");
    stale.status = ConnectionStatus::Failing;
    stale.refresh_token_at = Some(now_plus(-85 * day));
    let mut fine = connection(&p, "fine");
    fine.refresh_token_at = Some(now_plus(-85 * day));
    for c in [&token, &later, &stale, &fine] {
        store.insert_connection(c, &[]).await.unwrap();
    }
    let ending = |at: Timestamp| store.credentials_ending(at, at.plus_seconds(7 * day));
    assert_eq!(
        ending(NOW).await.unwrap(),
        1,
        "the access token, not the OAuth ones"
    );
    assert_eq!(
        ending(now_plus(25 * day)).await.unwrap(),
        1,
        "then the API token"
    );
    assert_eq!(ending(now_plus(31 * day)).await.unwrap(), 0);
    let lifetime = std::time::Duration::from_secs(90 * 86_400);
    let found = |at: Timestamp| store.expiring(at, at.plus_seconds(7 * day), lifetime, 100);
    let mut ids: Vec<_> = found(NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    let mut expected = vec![token.id.clone(), stale.id.clone()];
    expected.sort();
    assert_eq!(
        ids, expected,
        "the access token and the failing rotating token"
    );

    assert!(
        store
            .mark_expiry_warned(&token.id, token.version, NOW, &[])
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_expiry_warned(&token.id, token.version, NOW, &[])
            .await
            .unwrap(),
        "once"
    );
    assert_eq!(found(NOW).await.unwrap().len(), 1);
    // A new credential is warned about again.
    token.expires_at = Some(now_plus(2 * day));
    store.replace_connection(&token, &[]).await.unwrap();
    assert_eq!(found(NOW).await.unwrap().len(), 2);
}
