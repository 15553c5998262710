//! Console admins: accounts with argon2id passwords, sessions that expire when idle and after a
//! fixed time, CSRF tokens derived from the session, and the one-time setup link shown while no
//! admin exists. Signing in goes through the [`guard`]: bounded password work, throttling.

pub(crate) mod guard;

use std::net::IpAddr;

use secrecy::{ExposeSecret, SecretString};

use crate::app::{Actor, Grantry};
use crate::clock::{Timestamp, seconds};
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::ids::AdminId;
use zeroize::Zeroizing;

use crate::store::{AdminRecord, AdminRemoval, ConsoleSessionRecord, StoreError};

const SETUP_KEY: &str = "console_setup";
/// Console sessions update their last-seen time at most this often, sparing a write per page.
const TOUCH_EVERY: i64 = 60;

/// A fresh console session: the cookie's token and who it is for.
pub struct SignedIn {
    pub token: SecretString,
    pub username: String,
}

/// What a session cookie turned out to be.
#[derive(Debug)]
pub enum SessionCheck {
    Valid(ConsoleSessionRecord),
    Expired,
    Unknown,
}

fn check_username(username: &str) -> CoreResult<String> {
    let username = username.trim();
    let ok = (1..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if ok {
        Ok(username.to_owned())
    } else {
        Err(CoreError::invalid(
            "username",
            "1 to 64 of letters, digits, '.', '_', '@', '-'",
        ))
    }
}

fn check_password(password: &str) -> CoreResult<()> {
    let length = password.chars().count();
    if !(12..=256).contains(&length) {
        return Err(CoreError::invalid(
            "password",
            "at least 12 characters (and at most 256)",
        ));
    }
    Ok(())
}

/// A user name as it may appear in the log and the audit trail: what a person typed on the
/// sign-in form, so kept short and to printable characters.
fn shown_name(username: &str) -> String {
    username
        .trim()
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

impl Grantry {
    pub async fn create_admin(
        &self,
        username: &str,
        password: &SecretString,
        actor: &Actor,
    ) -> CoreResult<AdminRecord> {
        let username = check_username(username)?;
        check_password(password.expose_secret())?;
        let hash = self.hash_password(password).await?;
        let admin = AdminRecord {
            id: AdminId::generate(),
            username,
            password_hash: hash,
            created_at: self.clock.now(),
        };
        match self.store.insert_admin(&admin).await {
            Err(StoreError::Conflict(_)) => {
                return Err(CoreError::Conflict(format!(
                    "an admin named `{}` already exists",
                    admin.username
                )));
            }
            other => other?,
        }
        let detail = format!("Console admin `{}` created", admin.username);
        self.record(EventKind::AdminCreated, None, None, actor, detail)
            .await;
        Ok(admin)
    }

    /// Every console admin, by user name.
    pub async fn list_admins(&self) -> CoreResult<Vec<AdminRecord>> {
        Ok(self.store.admins().await?)
    }

    async fn admin_named(&self, username: &str) -> CoreResult<AdminRecord> {
        self.store
            .admin_by_username(username.trim())
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("admin `{}`", username.trim())))
    }

    /// Sets a new password and signs the admin out of every console session, so a password
    /// that leaked stops working at once, cookies included.
    pub async fn change_admin_password(
        &self,
        username: &str,
        password: &SecretString,
        actor: &Actor,
    ) -> CoreResult<()> {
        check_password(password.expose_secret())?;
        let admin = self.admin_named(username).await?;
        let hash = self.hash_password(password).await?;
        if !self.store.set_admin_password(&admin.id, &hash).await? {
            return Err(CoreError::NotFound(format!("admin `{}`", admin.username)));
        }
        let detail = format!(
            "Password of console admin `{}` changed; their sessions ended",
            admin.username
        );
        self.record(EventKind::AdminPasswordChanged, None, None, actor, detail)
            .await;
        Ok(())
    }

    /// Removes an admin and ends their console sessions. The last admin cannot be removed:
    /// the console would be left to whoever next sees a setup link.
    pub async fn remove_admin(&self, username: &str, actor: &Actor) -> CoreResult<()> {
        let admin = self.admin_named(username).await?;
        match self.store.delete_admin(&admin.id).await? {
            AdminRemoval::Removed => {}
            AdminRemoval::NotFound => {
                return Err(CoreError::NotFound(format!("admin `{}`", admin.username)));
            }
            AdminRemoval::LastAdmin => {
                return Err(CoreError::Conflict(format!(
                    "`{}` is the only admin; create another before removing this one, or \
                     change its password with `grantry admin password`",
                    admin.username
                )));
            }
        }
        let detail = format!(
            "Console admin `{}` removed; their sessions ended",
            admin.username
        );
        self.record(EventKind::AdminRemoved, None, None, actor, detail)
            .await;
        Ok(())
    }

    async fn hash_password(&self, password: &SecretString) -> CoreResult<String> {
        let plain = Zeroizing::new(password.expose_secret().to_owned());
        let hashed = self
            .sign_in_guard
            .with_password_work(true, move |work| work.hash(&plain))
            .await?;
        Ok(hashed?)
    }

    /// The admin whose user name and password these are; a wrong name costs as much time as a
    /// wrong password. `wait`: queue for a password slot rather than be refused when all are busy.
    async fn verified_admin(
        &self,
        username: &str,
        password: &SecretString,
        wait: bool,
    ) -> CoreResult<Option<AdminRecord>> {
        let admin = self.store.admin_by_username(username.trim()).await?;
        let hash = admin.as_ref().map_or_else(
            || grantry_crypto::decoy_password_hash().to_owned(),
            |a| a.password_hash.clone(),
        );
        let plain = Zeroizing::new(password.expose_secret().to_owned());
        let verified = self
            .sign_in_guard
            .with_password_work(wait, move |work| work.verify(&plain, &hash))
            .await?;
        Ok(admin.filter(|_| verified))
    }

    /// Checks a signed-in admin's current password (changing one's own password).
    pub async fn check_admin_password(
        &self,
        username: &str,
        password: &SecretString,
    ) -> CoreResult<Option<AdminRecord>> {
        self.verified_admin(username, password, true).await
    }

    /// Signs in with a user name and password from `address`: a new console session, or None.
    /// Throttled per name and address, and refused at once when every password slot is busy.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &SecretString,
        address: Option<IpAddr>,
    ) -> CoreResult<Option<SignedIn>> {
        let guard = &self.sign_in_guard;
        let locked = guard.locked(username.trim(), address, self.clock.now());
        if locked > 0 {
            return Err(CoreError::Throttled {
                retry_after: locked as u64,
            });
        }
        match self.verified_admin(username, password, false).await? {
            Some(admin) => {
                guard.succeeded(username.trim(), address);
                Ok(Some(self.open_console_session(&admin).await?))
            }
            None => {
                self.sign_in_failed(username, address).await;
                Ok(None)
            }
        }
    }

    async fn sign_in_failed(&self, username: &str, address: Option<IpAddr>) {
        let began = (self.sign_in_guard).failed(username.trim(), address, self.clock.now());
        let name = shown_name(username);
        let from = address.map_or_else(|| "an unknown address".to_owned(), |a| a.to_string());
        tracing::warn!(admin.username = %name, client.address = %from, locking = began, "console sign-in failed");
        let detail = format!("Sign-in as `{name}` failed from {from}");
        self.record(
            EventKind::AdminSignInFailed,
            None,
            None,
            &Actor::System,
            detail,
        )
        .await;
    }

    async fn open_console_session(&self, admin: &AdminRecord) -> CoreResult<SignedIn> {
        let token = grantry_crypto::random_token(32);
        let now = self.clock.now();
        let session = ConsoleSessionRecord {
            digest: grantry_crypto::sha256_hex(&token),
            admin_id: admin.id.clone(),
            username: admin.username.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.settings.console.max_age,
        };
        self.store.insert_console_session(&session).await?;
        Ok(SignedIn {
            token: SecretString::from(token),
            username: admin.username.clone(),
        })
    }

    pub async fn check_console_session(&self, token: &str) -> CoreResult<SessionCheck> {
        let digest = grantry_crypto::sha256_hex(token);
        let Some(session) = self.store.console_session(&digest).await? else {
            return Ok(SessionCheck::Unknown);
        };
        let now = self.clock.now();
        let idle = now - session.last_seen_at > seconds(self.settings.console.idle_timeout);
        if idle || now >= session.expires_at {
            self.store.delete_console_session(&digest).await?;
            return Ok(SessionCheck::Expired);
        }
        if now - session.last_seen_at >= TOUCH_EVERY {
            self.store.touch_console_session(&digest, now).await?;
        }
        Ok(SessionCheck::Valid(session))
    }

    pub async fn sign_out(&self, token: &str) -> CoreResult<()> {
        Ok(self
            .store
            .delete_console_session(&grantry_crypto::sha256_hex(token))
            .await?)
    }

    /// The CSRF token for forms of the session whose cookie holds `token`.
    pub fn csrf_token(token: &str) -> String {
        grantry_crypto::sha256_hex(&format!("csrf\0{token}"))
    }

    pub async fn admin_exists(&self) -> CoreResult<bool> {
        Ok(self.store.admin_count().await? > 0)
    }

    /// While no admin exists, a new one-time link to create the first (replacing any earlier one).
    pub async fn setup_link(&self) -> CoreResult<Option<String>> {
        if self.admin_exists().await? {
            return Ok(None);
        }
        let token = grantry_crypto::random_token(32);
        let expires_at = self.clock.now() + self.settings.console.setup_link_ttl;
        let value = format!(
            "{} {}",
            grantry_crypto::sha256_hex(&token),
            expires_at.unix()
        );
        self.store.put_meta(SETUP_KEY, Some(&value)).await?;
        Ok(Some(format!(
            "{}/ui/setup/{token}",
            self.settings.public_url.as_str().trim_end_matches('/')
        )))
    }

    /// Whether a setup link's token is the current, unexpired one and no admin exists yet.
    pub async fn setup_link_valid(&self, token: &str) -> CoreResult<bool> {
        if self.admin_exists().await? {
            return Ok(false);
        }
        let Some(value) = self.store.meta(SETUP_KEY).await? else {
            return Ok(false);
        };
        let (digest, expires_at) = value.split_once(' ').unwrap_or_default();
        let expires_at = Timestamp::from_unix(expires_at.parse().unwrap_or(0));
        Ok(
            grantry_crypto::same(digest, &grantry_crypto::sha256_hex(token))
                && self.clock.now() < expires_at,
        )
    }

    /// Creates the first admin through the setup link and signs them in.
    pub async fn finish_setup(
        &self,
        token: &str,
        username: &str,
        password: &SecretString,
    ) -> CoreResult<SignedIn> {
        if !self.setup_link_valid(token).await? {
            return Err(CoreError::Conflict(
                "this setup link is no longer valid (used, expired, or an admin exists); restart the server for a new one".into(),
            ));
        }
        let admin = self
            .create_admin(username, password, &Actor::System)
            .await?;
        self.store.put_meta(SETUP_KEY, None).await?;
        self.open_console_session(&admin).await
    }
}
