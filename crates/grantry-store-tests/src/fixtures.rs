//! Records to store, filled with plausible values.

use grantry_core::catalog::ProviderKind;
pub use grantry_core::clock::Timestamp;
use grantry_core::ids::{ConnectionId, ProfileId, SessionId};
use grantry_core::store::*;

/// The moment the contract tests happen at.
pub const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

/// `seconds` after [`NOW`] (before it when negative).
pub const fn now_plus(seconds: i64) -> Timestamp {
    NOW.plus_seconds(seconds)
}

pub fn profile(name: &str) -> ProfileRecord {
    ProfileRecord {
        id: ProfileId::generate(),
        name: name.to_owned(),
        description: "for tests".to_owned(),
        provider: ProviderKind::BitbucketCloud,
        client_id: "key".to_owned(),
        client_secret: vec![1, 0, 2, 255],
        base_url: None,
        required_scopes: vec!["account".into(), "repository".into()],
        allowed_return_urls: vec!["https://app.example.com/done".into()],
        private: false,
        confirm_connections: true,
        problem: None,
        problem_at: None,
        created_at: NOW,
        updated_at: NOW,
    }
}

pub fn connection(profile: &ProfileRecord, account: &str) -> ConnectionRecord {
    ConnectionRecord {
        id: ConnectionId::generate(),
        profile_id: profile.id.clone(),
        end_user_id: Some(format!("user-{account}")),
        credential: CredentialKind::Oauth2,
        account_key: format!("oauth2:{account}"),
        account_id: Some(account.to_owned()),
        account_username: Some(account.to_owned()),
        account_display_name: Some(account.to_uppercase()),
        login: None,
        status: ConnectionStatus::Active,
        status_reason: None,
        granted_scopes: vec!["account".into(), "repository".into()],
        access_token: vec![9; 40],
        refresh_token: Some(vec![8; 40]),
        expires_at: Some(now_plus(7200)),
        refreshed_at: Some(NOW),
        refresh_token_at: Some(NOW),
        next_refresh_at: Some(now_plus(6600)),
        failures: 0,
        last_error: None,
        version: 1,
        lease_owner: None,
        lease_until: None,
        created_at: NOW,
        updated_at: NOW,
    }
}

pub fn session(profile: &ProfileRecord, token_digest: &str) -> SessionRecord {
    SessionRecord {
        id: SessionId::generate(),
        token_digest: token_digest.to_owned(),
        profile_id: profile.id.clone(),
        end_user_id: Some("user-1".into()),
        return_url: "https://app.example.com/done".into(),
        connection_id: None,
        state_digest: None,
        pkce_verifier: None,
        browser_digest: None,
        verification_digest: None,
        pending_grant: None,
        confirm_by: None,
        created_at: NOW,
        expires_at: now_plus(600),
        opened_at: None,
        completed_at: None,
        confirmed_at: None,
    }
}

pub fn token_write(access: u8) -> TokenWrite {
    TokenWrite {
        access_token: vec![access; 40],
        refresh_token: None,
        refresh_token_at: Some(NOW),
        expires_at: Some(now_plus(7200)),
        granted_scopes: vec!["account".into()],
        status: ConnectionStatus::Active,
        status_reason: None,
        refreshed_at: now_plus(1),
        next_refresh_at: Some(now_plus(6600)),
        announce: Vec::new(),
    }
}

pub fn page(limit: u32) -> PageRequest {
    PageRequest { after: None, limit }
}

/// Stores a profile and answers it.
pub async fn stored_profile(store: &dyn Store, name: &str) -> ProfileRecord {
    let profile = profile(name);
    store
        .insert_profile(&profile)
        .await
        .expect("insert profile");
    profile
}
