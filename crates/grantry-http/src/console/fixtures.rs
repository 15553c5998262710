//! Hand-made records for the views' unit tests.

use grantry_core::catalog::ProviderKind;
use grantry_core::clock::Timestamp;
use grantry_core::ids::{ConnectionId, ProfileId};
use grantry_core::store::{ConnectionRecord, ConnectionStatus, CredentialKind, ProfileRecord};

use super::signed_in::Admin;

pub const PROFILE_ID: &str = "prf_00000000000000000000000001";
pub const CONNECTION_ID: &str = "con_00000000000000000000000001";

/// 2026-11-24 09:12:00 UTC.
pub const NOW: Timestamp = Timestamp::from_unix(1_795_511_520);

pub fn admin() -> Admin {
    Admin {
        username: "ada".into(),
        csrf: "csrf-token".into(),
        token: "session-token".into(),
    }
}

pub fn profile(name: &str) -> ProfileRecord {
    ProfileRecord {
        id: ProfileId::parse(PROFILE_ID).unwrap(),
        name: name.into(),
        description: String::new(),
        provider: ProviderKind::BitbucketCloud,
        client_id: "key123".into(),
        client_secret: Vec::new(),
        base_url: None,
        required_scopes: vec!["repository".into()],
        allowed_return_urls: Vec::new(),
        private: false,
        confirm_connections: true,
        problem: None,
        problem_at: None,
        created_at: NOW,
        updated_at: NOW,
    }
}

pub fn connection(status: ConnectionStatus) -> ConnectionRecord {
    ConnectionRecord {
        id: ConnectionId::parse(CONNECTION_ID).unwrap(),
        profile_id: ProfileId::parse(PROFILE_ID).unwrap(),
        end_user_id: None,
        credential: CredentialKind::Oauth2,
        account_key: "{a-b}".into(),
        account_id: Some("{a-b}".into()),
        account_username: Some("alice".into()),
        account_display_name: Some("Alice <Liddell>".into()),
        login: None,
        status,
        status_reason: None,
        granted_scopes: vec!["account".into(), "repository".into()],
        access_token: Vec::new(),
        refresh_token: None,
        expires_at: Some(NOW.plus_seconds(3600)),
        refreshed_at: Some(NOW),
        refresh_token_at: None,
        next_refresh_at: None,
        failures: 0,
        last_error: None,
        version: 1,
        lease_owner: None,
        lease_until: None,
        created_at: NOW,
        updated_at: NOW,
    }
}
