//! Sealing: AES-256-GCM under a master key, each sealed value carrying its key id and bound to the
//! table, column and row it is stored in.
//!
//! A sealed value is `version (1 byte) | key id (4) | nonce (12) | ciphertext | tag (16)`.
//! The associated data is the header plus `table`, `column` and `row id`, so a sealed value copied
//! to another row, column or table, or relabelled with another key id, does not open.

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const TAG_LEN: usize = 16;

/// Where a sealed value lives; it opens only there.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row_id: &'a str,
}

impl<'a> Binding<'a> {
    pub fn new(table: &'a str, column: &'a str, row_id: &'a str) -> Binding<'a> {
        Binding {
            table,
            column,
            row_id,
        }
    }

    fn associated_data(&self, header: &[u8]) -> Vec<u8> {
        let mut ad = Vec::with_capacity(header.len() + 64);
        ad.extend_from_slice(b"grantry-seal\0");
        ad.extend_from_slice(header);
        for part in [self.table, self.column, self.row_id] {
            ad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            ad.extend_from_slice(part.as_bytes());
        }
        ad
    }
}

/// The first four bytes of SHA-256 over the key: names a key without revealing it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 4]);

impl KeyId {
    pub fn as_bytes(&self) -> [u8; 4] {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why sealing or opening failed. Never carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("a master key must be 32 bytes of base64 (got {0} bytes)")]
    BadKeyLength(usize),
    #[error("a master key is not valid base64")]
    BadKeyEncoding,
    #[error("no master key given")]
    NoKeys,
    #[error("sealed value is malformed or of an unknown version")]
    Malformed,
    #[error("sealed value is under key {0}, which the keyring does not hold")]
    UnknownKey(KeyId),
    #[error("sealed value does not open: tampered with, or moved from another row or column")]
    Tampered,
    #[error("the system random number generator failed")]
    Random,
}

/// One master key.
pub struct MasterKey {
    id: KeyId,
    key: LessSafeKey,
    material: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    pub fn from_bytes(material: Zeroizing<[u8; 32]>) -> MasterKey {
        let digest = Sha256::digest(material.as_slice());
        let id = KeyId([digest[0], digest[1], digest[2], digest[3]]);
        let unbound = UnboundKey::new(&AES_256_GCM, material.as_slice())
            .expect("AES-256-GCM takes 32-byte keys");
        MasterKey {
            id,
            key: LessSafeKey::new(unbound),
            material,
        }
    }

    /// A fresh random key.
    pub fn generate() -> Result<MasterKey, CryptoError> {
        let mut material = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(material.as_mut_slice())
            .map_err(|_| CryptoError::Random)?;
        Ok(MasterKey::from_bytes(material))
    }

    /// Parses base64 (standard or URL-safe, padding optional).
    pub fn from_base64(text: &str) -> Result<MasterKey, CryptoError> {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let trimmed = text.trim();
        let bytes = Zeroizing::new(
            STANDARD
                .decode(trimmed)
                .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('=')))
                .map_err(|_| CryptoError::BadKeyEncoding)?,
        );
        let material: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::BadKeyLength(bytes.len()))?;
        Ok(MasterKey::from_bytes(Zeroizing::new(material)))
    }

    /// Standard base64, for key files and `GRANTRY_MASTER_KEY`.
    pub fn to_base64(&self) -> Zeroizing<String> {
        use base64::Engine;
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.material.as_slice()))
    }

    pub fn id(&self) -> KeyId {
        self.id
    }
}

impl Clone for MasterKey {
    fn clone(&self) -> MasterKey {
        MasterKey::from_bytes(self.material.clone())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, [redacted])", self.id)
    }
}

/// Master keys, the first of which seals; any of them opens.
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<MasterKey>,
}

impl Keyring {
    pub fn new(keys: Vec<MasterKey>) -> Result<Keyring, CryptoError> {
        if keys.is_empty() {
            return Err(CryptoError::NoKeys);
        }
        Ok(Keyring { keys })
    }

    /// Keys separated by newlines or commas, primary first; `#` starts a comment line.
    pub fn parse(text: &str) -> Result<Keyring, CryptoError> {
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(MasterKey::from_base64)
            .collect::<Result<Vec<_>, _>>()?;
        Keyring::new(keys)
    }

    pub fn primary(&self) -> &MasterKey {
        &self.keys[0]
    }

    pub fn keys(&self) -> &[MasterKey] {
        &self.keys
    }

    pub fn holds(&self, id: KeyId) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// Seals under the primary key.
    pub fn seal(&self, plaintext: &[u8], binding: Binding<'_>) -> Result<Vec<u8>, CryptoError> {
        let key = self.primary();
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Random)?;
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&key.id.0);
        out.extend_from_slice(&nonce);
        let ad = binding.associated_data(&out);
        let mut body = plaintext.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&ad),
                &mut body,
            )
            .map_err(|_| CryptoError::Malformed)?;
        out.extend_from_slice(&body);
        body.fill(0);
        Ok(out)
    }

    /// Opens a value sealed under any key of the ring, at the same binding.
    pub fn open(
        &self,
        sealed: &[u8],
        binding: Binding<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let id = key_id_of(sealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(CryptoError::UnknownKey(id))?;
        let (header, body) = sealed.split_at(HEADER_LEN);
        let nonce: [u8; NONCE_LEN] = header[5..].try_into().map_err(|_| CryptoError::Malformed)?;
        let ad = binding.associated_data(header);
        let mut buffer = Zeroizing::new(body.to_vec());
        let plain_len = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&ad),
                &mut buffer,
            )
            .map_err(|_| CryptoError::Tampered)?
            .len();
        buffer.truncate(plain_len);
        Ok(buffer)
    }
}

/// The key a sealed value was sealed under.
pub fn key_id_of(sealed: &[u8]) -> Result<KeyId, CryptoError> {
    if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != VERSION {
        return Err(CryptoError::Malformed);
    }
    Ok(KeyId([sealed[1], sealed[2], sealed[3], sealed[4]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new(vec![MasterKey::generate().unwrap()]).unwrap()
    }

    const HERE: Binding<'static> = Binding {
        table: "connections",
        column: "refresh_token",
        row_id: "con_1",
    };

    #[test]
    fn seals_and_opens_at_the_same_binding() {
        let keyring = ring();
        let sealed = keyring.seal(b"secret token", HERE).unwrap();
        assert_eq!(key_id_of(&sealed).unwrap(), keyring.primary().id());
        assert_eq!(
            keyring.open(&sealed, HERE).unwrap().as_slice(),
            b"secret token"
        );
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn a_value_moved_elsewhere_does_not_open() {
        let keyring = ring();
        let sealed = keyring.seal(b"secret", HERE).unwrap();
        for other in [
            Binding::new("connections", "refresh_token", "con_2"),
            Binding::new("connections", "access_token", "con_1"),
            Binding::new("profiles", "refresh_token", "con_1"),
        ] {
            assert_eq!(keyring.open(&sealed, other), Err(CryptoError::Tampered));
        }
    }

    #[test]
    fn flipped_bits_and_foreign_keys_are_refused() {
        let keyring = ring();
        let mut sealed = keyring.seal(b"secret", HERE).unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(keyring.open(&sealed, HERE), Err(CryptoError::Tampered));

        let other = ring();
        let foreign = other.seal(b"secret", HERE).unwrap();
        assert!(matches!(
            keyring.open(&foreign, HERE),
            Err(CryptoError::UnknownKey(_))
        ));
        assert_eq!(keyring.open(b"short", HERE), Err(CryptoError::Malformed));
    }

    #[test]
    fn older_keys_still_open_after_rotation() {
        let old = MasterKey::generate().unwrap();
        let old_text = old.to_base64();
        let before = Keyring::new(vec![old]).unwrap();
        let sealed = before.seal(b"v", HERE).unwrap();
        let new = MasterKey::generate().unwrap();
        let after = Keyring::parse(&format!(
            "{}\n{}",
            new.to_base64().as_str(),
            old_text.as_str()
        ))
        .unwrap();
        assert_eq!(after.open(&sealed, HERE).unwrap().as_slice(), b"v");
        assert_ne!(
            key_id_of(&after.seal(b"v", HERE).unwrap()).unwrap(),
            key_id_of(&sealed).unwrap()
        );
    }

    #[test]
    fn bad_keys_are_named() {
        assert_eq!(
            MasterKey::from_base64("abc").unwrap_err(),
            CryptoError::BadKeyLength(2)
        );
        assert_eq!(
            MasterKey::from_base64("!!!").unwrap_err(),
            CryptoError::BadKeyEncoding
        );
        assert_eq!(
            Keyring::parse("# nothing\n").unwrap_err(),
            CryptoError::NoKeys
        );
        let debug = format!("{:?}", MasterKey::generate().unwrap());
        assert!(debug.contains("redacted"));
    }
}
