//! The audit trail.

use grantry_core::ids::{ConnectionId, EventId};
use grantry_core::store::*;

use crate::fixtures::*;

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
            at: now_plus(n as i64),
            kind: (*kind).into(),
            profile_id: (n < 3).then(|| profile.id.clone()),
            connection_id: (1..3).contains(&n).then(|| connection.clone()),
            actor: "cli".into(),
            detail: format!("event {n}"),
        };
        let announce = Announcement {
            event: event.clone(),
            message: None,
        };
        store.insert_event(&announce).await.unwrap();
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
