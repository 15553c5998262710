//! Profiles and connections: round trips, uniqueness, cascades, filters and pages.

use grantry_core::ids::ProfileId;
use grantry_core::store::*;

use crate::fixtures::*;

pub async fn profiles_round_trip(store: &dyn Store) {
    let mut stored = stored_profile(store, "Backups").await;
    assert_eq!(
        store.profile(&stored.id).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        store.profile_by_name("Backups").await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(store.profile(&ProfileId::generate()).await.unwrap(), None);

    stored.description = "edited".into();
    stored.required_scopes = vec!["account".into()];
    stored.allowed_return_urls = vec![];
    stored.private = true;
    assert!(store.update_profile(&stored, &[]).await.unwrap());
    assert_eq!(
        store.profile(&stored.id).await.unwrap(),
        Some(stored.clone())
    );

    store
        .set_profile_problem(&stored.id, Some("refused"), now_plus(5), &[])
        .await
        .unwrap();
    let flagged = store.profile(&stored.id).await.unwrap().unwrap();
    assert_eq!(
        (flagged.problem.as_deref(), flagged.problem_at),
        (Some("refused"), Some(now_plus(5)))
    );
    store
        .set_profile_problem(&stored.id, None, now_plus(6), &[])
        .await
        .unwrap();
    let cleared = store.profile(&stored.id).await.unwrap().unwrap();
    assert_eq!((cleared.problem, cleared.problem_at), (None, None));

    stored_profile(store, "Another").await;
    let names: Vec<String> = store
        .profiles()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["Another", "Backups"], "listed by name");
    assert!(!store.update_profile(&profile("gone"), &[]).await.unwrap());
}

pub async fn profile_names_are_unique(store: &dyn Store) {
    stored_profile(store, "Same").await;
    assert!(matches!(
        store.insert_profile(&profile("Same")).await,
        Err(StoreError::Conflict(_))
    ));
    let mut other = stored_profile(store, "Other").await;
    other.name = "Same".into();
    assert!(matches!(
        store.update_profile(&other, &[]).await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn deleting_a_profile_cascades(store: &dyn Store) {
    let doomed = stored_profile(store, "Doomed").await;
    let kept = stored_profile(store, "Kept").await;
    for account in ["a", "b"] {
        store
            .insert_connection(&connection(&doomed, account), &[])
            .await
            .unwrap();
    }
    let survivor = connection(&kept, "c");
    store.insert_connection(&survivor, &[]).await.unwrap();
    store
        .insert_session(&session(&doomed, "digest-1"))
        .await
        .unwrap();

    assert_eq!(store.delete_profile(&doomed.id).await.unwrap(), Some(2));
    assert_eq!(store.delete_profile(&doomed.id).await.unwrap(), None);
    let left = store
        .connections(&ConnectionFilter::default(), &page(10))
        .await
        .unwrap();
    assert_eq!(left, vec![survivor]);
    assert_eq!(store.session_by_token("digest-1").await.unwrap(), None);
}

pub async fn connections_round_trip(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let stored = connection(&profile, "alice");
    store.insert_connection(&stored, &[]).await.unwrap();
    assert_eq!(
        store.connection(&stored.id).await.unwrap(),
        Some(stored.clone())
    );
    let owner = stored.end_user_id.as_deref();
    assert_eq!(
        store
            .connection_by_account(&profile.id, owner, "oauth2:alice")
            .await
            .unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        store
            .connection_by_account(&profile.id, owner, "oauth2:bob")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .connection_by_account(&profile.id, Some("someone-else"), "oauth2:alice")
            .await
            .unwrap(),
        None,
        "another end user's connection of the same account is not theirs"
    );

    let mut needs = connection(&profile, "bob");
    needs.status = ConnectionStatus::NeedsReauth;
    store.insert_connection(&needs, &[]).await.unwrap();
    let mut counts = store.connection_counts().await.unwrap();
    counts.sort_by_key(|(_, status, _)| status.as_str());
    assert_eq!(
        counts,
        vec![
            (profile.id.clone(), ConnectionStatus::Active, 1),
            (profile.id.clone(), ConnectionStatus::NeedsReauth, 1)
        ]
    );

    assert!(store.delete_connection(&stored.id, &[]).await.unwrap());
    assert!(!store.delete_connection(&stored.id, &[]).await.unwrap());
    assert_eq!(store.connection(&stored.id).await.unwrap(), None);
}

/// One connection per profile, end user and account: the same account connected for a second
/// end user is that end user's own connection, never the first one moved.
pub async fn one_connection_per_account_end_user_and_profile(store: &dyn Store) {
    let first = stored_profile(store, "First").await;
    let second = stored_profile(store, "Second").await;
    store
        .insert_connection(&connection(&first, "alice"), &[])
        .await
        .unwrap();
    let again = connection(&first, "alice");
    assert!(matches!(
        store.insert_connection(&again, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    let mut for_someone_else = connection(&first, "alice");
    for_someone_else.end_user_id = Some("someone-else".into());
    store
        .insert_connection(&for_someone_else, &[])
        .await
        .unwrap();
    let mut nobody = connection(&first, "alice");
    nobody.end_user_id = None;
    store.insert_connection(&nobody, &[]).await.unwrap();
    let mut nobody_again = connection(&first, "alice");
    nobody_again.end_user_id = None;
    assert!(
        matches!(
            store.insert_connection(&nobody_again, &[]).await,
            Err(StoreError::Conflict(_))
        ),
        "no end user counts as one end user"
    );
    store
        .insert_connection(&connection(&second, "alice"), &[])
        .await
        .unwrap();
}

pub async fn connections_filter_and_page(store: &dyn Store) {
    let a = stored_profile(store, "A").await;
    let b = stored_profile(store, "B").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let mut c = connection(&a, &format!("user{n}"));
        c.end_user_id = Some(if n % 2 == 0 { "even" } else { "odd" }.into());
        if n == 4 {
            c.status = ConnectionStatus::Failing;
        }
        store.insert_connection(&c, &[]).await.unwrap();
        ids.push(c.id);
    }
    store
        .insert_connection(&connection(&b, "other"), &[])
        .await
        .unwrap();
    let failing_id = ids[4].clone();
    ids.sort(); // ids sort by creation time only to the millisecond

    let by_profile = ConnectionFilter {
        profile_id: Some(a.id.clone()),
        ..Default::default()
    };
    let first = store.connections(&by_profile, &page(2)).await.unwrap();
    assert_eq!(
        first.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        ids[..2]
    );
    let next = PageRequest {
        after: Some(ids[1].to_string()),
        limit: 10,
    };
    let rest = store.connections(&by_profile, &next).await.unwrap();
    assert_eq!(
        rest.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        ids[2..]
    );

    let even = ConnectionFilter {
        end_user_id: Some("even".into()),
        ..Default::default()
    };
    assert_eq!(store.connections(&even, &page(10)).await.unwrap().len(), 3);
    let failing = ConnectionFilter {
        status: Some(ConnectionStatus::Failing),
        ..Default::default()
    };
    assert_eq!(
        store.connections(&failing, &page(10)).await.unwrap()[0].id,
        failing_id
    );
    assert_eq!(
        store
            .connections(&ConnectionFilter::default(), &page(100))
            .await
            .unwrap()
            .len(),
        6
    );
}

pub async fn replacing_a_connection_bumps_its_version(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let original = connection(&profile, "alice");
    store.insert_connection(&original, &[]).await.unwrap();
    store
        .take_lease(&original.id, "someone", now_plus(30), NOW)
        .await
        .unwrap();

    let mut fresh = original.clone();
    fresh.access_token = vec![7; 50];
    fresh.status = ConnectionStatus::InsufficientScopes;
    fresh.failures = 3;
    assert!(store.replace_connection(&fresh, &[]).await.unwrap());
    let stored = store.connection(&original.id).await.unwrap().unwrap();
    assert_eq!(stored.version, original.version + 1);
    assert_eq!(stored.access_token, vec![7; 50]);
    assert_eq!(stored.status, ConnectionStatus::InsufficientScopes);
    assert_eq!(
        (stored.lease_owner, stored.failures),
        (None, 0),
        "a reconnect drops any lease and failure count"
    );
    assert_eq!(stored.created_at, original.created_at);
}
