//! Grantry's cryptography, kept small and in one place:
//!
//! - [`keyring`]: sealing secrets at rest (AES-256-GCM from `ring`), each sealed value carrying its
//!   key id and bound to its table, column and row id;
//! - [`keystore`]: where master keys come from (environment or a 0600 key file) and their rotation;
//! - [`webhook`]: Standard Webhooks signing secrets and signatures;
//! - API keys, opaque random tokens and their SHA-256 digests, compared in constant time.

pub mod keyring;
pub mod keystore;
pub mod password;
pub mod webhook;

pub use keyring::{Binding, CryptoError, KeyId, Keyring, MasterKey, key_id_of};
pub use keystore::{KeyError, KeySource, KeyStore, Opened};
pub use password::PasswordWork;
pub use webhook::{WEBHOOK_SECRET_PREFIX, new_webhook_secret, webhook_signature};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix that makes a Grantry API key recognisable (in logs a scanner can flag, in configs).
pub const API_KEY_PREFIX: &str = "gry_";

/// `bytes` random bytes from the operating system, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buffer)
        .expect("the operating system's random number generator works");
    let token = URL_SAFE_NO_PAD.encode(&buffer);
    buffer.fill(0);
    token
}

/// Lowercase hex SHA-256: how API keys, connect-session tokens and OAuth `state` are stored.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(sha256(text))
}

/// SHA-256, as bytes.
pub fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The PKCE S256 challenge for a verifier: base64url(SHA-256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Constant-time equality for secrets and their digests.
pub fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Hashes a console password with argon2id, in memory of its own (see [`PasswordWork`]).
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    PasswordWork::new().hash(password)
}

/// Checks a password against a PHC string, in memory of its own (see [`PasswordWork`]).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordWork::new().verify(password, phc)
}

/// A valid hash of nothing anyone types, verified against when a user name is unknown so that
/// a wrong name takes as long as a wrong password.
pub fn decoy_password_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$ZGVjb3ktc2FsdC0xMjM0NQ$TgpmQyuxKzjxU9pvDNwbHkW5p3vtJpZSDHxg2L8JNuI"
}

/// A freshly made API key: shown once, then only its digest is kept.
pub struct NewApiKey {
    pub secret: SecretString,
    pub digest: String,
    /// The first characters, safe to show in listings (`gry_AbCd…`).
    pub hint: String,
}

/// A new API key: `gry_` and 32 random bytes.
pub fn new_api_key() -> NewApiKey {
    let key = format!("{API_KEY_PREFIX}{}", random_token(32));
    let digest = sha256_hex(&key);
    let hint = format!("{}…", &key[..API_KEY_PREFIX.len() + 4]);
    NewApiKey {
        secret: SecretString::from(key),
        digest,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn api_keys_are_prefixed_random_and_stored_as_digests() {
        let a = new_api_key();
        let b = new_api_key();
        assert!(a.secret.expose_secret().starts_with("gry_"));
        assert_eq!(a.secret.expose_secret().len(), 4 + 43);
        assert_ne!(a.digest, b.digest);
        assert_eq!(a.digest, sha256_hex(a.secret.expose_secret()));
        assert!(!format!("{:?}", a.secret).contains("gry_"));
    }

    #[test]
    fn reused_memory_hashes_and_verifies_like_the_crate() {
        use argon2::password_hash::PasswordVerifier;
        let mut work = PasswordWork::new();
        let ours = work.hash("correct horse battery staple").unwrap();
        let parsed = argon2::password_hash::phc::PasswordHash::new(&ours).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok(),
            "the argon2 crate verifies our hashes"
        );
        assert!(work.verify("correct horse battery staple", &ours));
        assert!(!work.verify("correct horse battery stable", &ours));
        assert!(!work.verify("", decoy_password_hash()));
        let huge = "$argon2id$v=19$m=4000000,t=2,p=1$ZGVjb3ktc2FsdC0xMjM0NQ$TgpmQyuxKzjxU9pvDNwbHkW5p3vtJpZSDHxg2L8JNuI";
        assert!(
            !work.verify("x", huge),
            "a hash asking for gigabytes never verifies"
        );
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery staple", &hash));
        assert!(!verify_password("correct horse battery stable", &hash));
        assert!(!verify_password("anything", "not a hash"));
        assert!(!verify_password("", decoy_password_hash()));
        let decoy = argon2::password_hash::phc::PasswordHash::new(decoy_password_hash());
        assert!(
            decoy.is_ok(),
            "the decoy must parse, or unknown users would answer faster"
        );
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_carry_the_entropy_asked_for() {
        assert_eq!(random_token(32).len(), 43, "256 bits");
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
