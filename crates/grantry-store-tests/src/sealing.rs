//! Sealed values: which key sealed them, re-sealing for rotation, long tokens and bytes.

use grantry_core::store::*;

use crate::fixtures::*;

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
    store.insert_connection(&c, &[]).await.unwrap();
    let mut ids = store.sealed_key_ids().await.unwrap();
    ids.sort();
    assert_eq!(ids, vec![[7; 4], [9; 4]]);
}

pub async fn resealing_replaces_only_unchanged_values(store: &dyn Store) {
    let profile = stored_profile(store, "P").await;
    let c = connection(&profile, "alice");
    store.insert_connection(&c, &[]).await.unwrap();
    let mut no_refresh = connection(&profile, "bob");
    no_refresh.refresh_token = None;
    store.insert_connection(&no_refresh, &[]).await.unwrap();

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
    store.insert_connection(&c, &[]).await.unwrap();
    let stored = store.connection(&c.id).await.unwrap().unwrap();
    assert_eq!(
        stored.access_token, c.access_token,
        "no length limit, every byte kept"
    );
    assert_eq!(stored.refresh_token, c.refresh_token);
}
