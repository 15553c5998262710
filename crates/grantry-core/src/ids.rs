//! Identifiers: a short prefix naming the kind (`prf_`, `con_`, …) and 26 characters of Crockford
//! base32 holding a millisecond timestamp and 80 random bits, so ids sort by creation time and
//! cursor pagination is a plain `id > cursor`.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BODY_LEN: usize = 26;

/// Which bytes are in [`ALPHABET`]: a table, since ids are checked on every token read.
const IN_ALPHABET: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = true;
        i += 1;
    }
    table
};

fn new_body() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let random: u128 = rand::random::<u128>() & ((1u128 << 80) - 1);
    let value: u128 = (u128::from(millis & ((1 << 48) - 1)) << 80) | random;
    (0..BODY_LEN)
        .rev()
        .map(|i| ALPHABET[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// A malformed id in a request, named for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id (expected `{prefix}` and 26 characters)")]
pub struct BadId {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

macro_rules! id_type {
    ($name:ident, $prefix:literal, $kind:literal) => {
        #[doc = concat!("A ", $kind, " id, `", $prefix, "…`.")]
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> $name {
                $name(format!("{}{}", $prefix, new_body()))
            }

            /// Checks the shape of an id given by a user.
            pub fn parse(value: &str) -> Result<$name, BadId> {
                let body = value.strip_prefix($prefix).unwrap_or_default();
                let ok =
                    body.len() == BODY_LEN && body.bytes().all(|b| IN_ALPHABET[usize::from(b)]);
                if ok {
                    Ok($name(value.to_owned()))
                } else {
                    Err(BadId {
                        kind: $kind,
                        prefix: $prefix,
                        value: value.chars().take(64).collect(),
                    })
                }
            }

            /// Wraps an id read back from the store, trusted as written.
            pub fn from_stored(value: String) -> $name {
                $name(value)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(ProfileId, "prf_", "profile");
id_type!(ConnectionId, "con_", "connection");
id_type!(SessionId, "cs_", "connect session");
id_type!(ApiKeyId, "key_", "API key");
id_type!(EventId, "evt_", "event");
id_type!(AdminId, "adm_", "admin");
id_type!(WebhookId, "wh_", "webhook");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let first = ConnectionId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = ConnectionId::generate();
        assert!(first < second);
        assert_eq!(ConnectionId::parse(first.as_str()).unwrap(), first);
        assert_eq!(first.as_str().len(), 4 + 26);
    }

    #[test]
    fn malformed_ids_are_named() {
        let error = ConnectionId::parse("prf_00000000000000000000000000").unwrap_err();
        assert!(error.to_string().contains("connection id"));
        assert!(ConnectionId::parse("con_short").is_err());
        assert!(ConnectionId::parse("con_0000000000000000000000000U").is_err());
    }
}
