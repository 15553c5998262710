//! The simulator's settings: the token format mode, every lifetime, and auto-approval.

use serde::{Deserialize, Serialize};

/// Which generation of Bitbucket Cloud's token endpoint to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Mode {
    /// Before 4 May 2026: `scopes` field, one refresh token forever, query-string tokens accepted.
    #[serde(rename = "legacy")]
    Legacy,
    /// Since 4 May 2026: `scope` field, a new refresh token on every refresh (the used one valid
    /// for a grace period), unused refresh tokens expire, no refresh token for client credentials,
    /// access tokens only in the `Authorization: Bearer` header.
    #[default]
    #[serde(rename = "2026")]
    Rotating,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Legacy => "legacy",
            Mode::Rotating => "2026",
        })
    }
}

impl Mode {
    pub fn parse(text: &str) -> Result<Mode, String> {
        match text {
            "legacy" => Ok(Mode::Legacy),
            "2026" => Ok(Mode::Rotating),
            other => Err(format!(
                "unknown mode `{other}`: expected `legacy` or `2026`"
            )),
        }
    }
}

/// Lifetimes are in seconds of the simulator's clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub mode: Mode,
    /// Cloud access token lifetime (Bitbucket: 2 hours).
    pub access_token_ttl: u64,
    /// Cloud authorization code lifetime (not documented by Bitbucket; a setting).
    pub code_ttl: u64,
    /// How long a used refresh token keeps working after its first use (2026 mode).
    pub refresh_grace: u64,
    /// An unused refresh token dies after this long (2026 mode: 3 months).
    pub refresh_idle_expiry: u64,
    /// Length of Cloud access tokens; `None` picks by mode (2026 tokens exceed 2,500 characters).
    pub access_token_length: Option<usize>,
    /// Data Center access token lifetime (default 3,600 s).
    pub dc_access_token_ttl: u64,
    /// Data Center refresh token lifetime (default 90 days).
    pub dc_refresh_token_ttl: u64,
    /// Data Center authorization code lifetime (default 10 s).
    pub dc_code_ttl: u64,
    /// How long a used Data Center refresh token keeps working (rotation there is unconfirmed).
    pub dc_refresh_grace: u64,
    /// A Cloud user who grants every authorization at once, for automated runs.
    pub auto_approve: Option<String>,
    /// The same for Data Center.
    pub dc_auto_approve: Option<String>,
    /// Requests per hour each Cloud access token may make (Bitbucket: 1,000 and more with
    /// paid seats); beyond it, 429.
    pub access_token_rate_limit: u64,
}

pub const DAY: u64 = 24 * 60 * 60;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Rotating,
            access_token_ttl: 7200,
            code_ttl: 300,
            refresh_grace: 600,
            refresh_idle_expiry: 90 * DAY,
            access_token_length: None,
            dc_access_token_ttl: 3600,
            dc_refresh_token_ttl: 90 * DAY,
            dc_code_ttl: 10,
            dc_refresh_grace: 600,
            auto_approve: None,
            dc_auto_approve: None,
            access_token_rate_limit: 1000,
        }
    }
}

impl Settings {
    pub fn cloud_access_token_length(&self) -> usize {
        self.access_token_length.unwrap_or(match self.mode {
            Mode::Legacy => 88,
            Mode::Rotating => 2600,
        })
    }

    /// Checks values a person could get wrong in a seed file or a control request.
    pub fn validate(&self) -> Result<(), String> {
        if self.access_token_ttl == 0 || self.dc_access_token_ttl == 0 {
            return Err("access token lifetimes must be at least 1 second".into());
        }
        if self.code_ttl == 0 || self.dc_code_ttl == 0 || self.dc_code_ttl > 600 {
            return Err("code lifetimes must be 1 s or more (Data Center: at most 600 s)".into());
        }
        if self.access_token_rate_limit == 0 {
            return Err("access_token_rate_limit must be at least 1 request per hour".into());
        }
        if let Some(length) = self.access_token_length
            && !(16..=16_384).contains(&length)
        {
            return Err("access_token_length must be between 16 and 16384".into());
        }
        Ok(())
    }
}
