//! Small helpers: random identifiers in Bitbucket's shapes, fingerprints, Python-style JSON.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use rand::distr::Alphanumeric;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Letters and digits, like Bitbucket's consumer keys, secrets and codes.
pub fn alnum(length: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

/// URL-safe token characters, for access and refresh tokens.
pub fn token(length: usize) -> String {
    let mut bytes = vec![0u8; length.div_ceil(4) * 3];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    let mut text = URL_SAFE_NO_PAD.encode(bytes);
    text.truncate(length);
    text
}

/// A braced UUID, the form Bitbucket Cloud uses for `uuid` fields.
pub fn braced_uuid() -> String {
    let hex = hex::encode(rand::random::<[u8; 16]>());
    format!(
        "{{{}-{}-{}-{}-{}}}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A short, stable name for a secret that can be shown without revealing it.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    format!("sha256:{}", hex::encode(&digest[..8]))
}

/// Serializes the way Bitbucket Cloud's Python services do: `{"a": 1, "b": 2}`.
pub fn python_json<T: Serialize>(value: &T) -> String {
    let mut out = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value
        .serialize(&mut serializer)
        .expect("serializing to memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// Escapes text for HTML.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_spacing() {
        #[derive(Serialize)]
        struct Body {
            error_description: &'static str,
            error: [&'static str; 2],
        }
        let value = Body {
            error_description: "x",
            error: ["a", "b"],
        };
        assert_eq!(
            python_json(&value),
            r#"{"error_description": "x", "error": ["a", "b"]}"#
        );
    }

    #[test]
    fn identifiers_have_their_shapes() {
        assert_eq!(alnum(32).len(), 32);
        assert_eq!(braced_uuid().len(), 38);
        assert!(
            token(100)
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        );
    }
}
