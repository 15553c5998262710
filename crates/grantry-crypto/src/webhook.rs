//! Standard Webhooks signing (<https://www.standardwebhooks.com>): a secret is `whsec_` and the
//! base64 of random bytes; a signature is `v1,` and the base64 of
//! HMAC-SHA256(secret bytes, `{webhook-id}.{webhook-timestamp}.{body}`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::CryptoError;

/// How a webhook signing secret begins.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_webhook_secret() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .expect("the operating system's random number generator works");
    Zeroizing::new(format!(
        "{WEBHOOK_SECRET_PREFIX}{}",
        STANDARD.encode(bytes.as_ref())
    ))
}

/// The `v1,…` signature of one message with one secret.
pub fn webhook_signature(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &str,
) -> Result<String, CryptoError> {
    let encoded = secret
        .strip_prefix(WEBHOOK_SECRET_PREFIX)
        .ok_or(CryptoError::Malformed)?;
    let bytes = Zeroizing::new(
        STANDARD
            .decode(encoded)
            .map_err(|_| CryptoError::Malformed)?,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
    let mut context = hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body.as_bytes());
    Ok(format!("v1,{}", STANDARD.encode(context.sign().as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_the_specifications_example() {
        let signature = webhook_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_secret_without_its_prefix_is_refused() {
        assert!(webhook_signature("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "{}").is_err());
        assert!(new_webhook_secret().starts_with(WEBHOOK_SECRET_PREFIX));
    }
}
