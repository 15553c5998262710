//! Console passwords: argon2id, computed in memory that is allocated once and reused.
//!
//! argon2id's default parameters need 19 MiB per hash. Allocating that for every sign-in, on
//! whichever blocking thread runs it, let a flood of wrong passwords grow a server to gigabytes
//! (the allocator kept the freed blocks per thread). A [`PasswordWork`] owns its blocks for its
//! whole life; the services keep a small, fixed number of them.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

use crate::CryptoError;

/// The memory for one argon2 computation at a time, reused across them.
pub struct PasswordWork {
    blocks: Vec<Block>,
}

impl std::fmt::Debug for PasswordWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PasswordWork({} blocks)", self.blocks.len())
    }
}

impl Default for PasswordWork {
    fn default() -> Self {
        PasswordWork::new()
    }
}

impl PasswordWork {
    /// Allocates the memory argon2id's default parameters need (19 MiB).
    pub fn new() -> PasswordWork {
        PasswordWork {
            blocks: vec![Block::default(); Params::default().block_count()],
        }
    }

    /// The blocks for `params`; grown (once) when a stored hash asks for more.
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.blocks.len() < needed {
            self.blocks.resize(needed, Block::default());
        }
        &mut self.blocks[..needed]
    }

    /// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes), as a PHC string.
    pub fn hash(&mut self, password: &str) -> Result<String, CryptoError> {
        let params = Params::default();
        let mut salt = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
            .map_err(|_| CryptoError::Random)?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                &salt,
                &mut out,
                self.blocks(&params),
            )
            .map_err(|_| CryptoError::Random)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|_| CryptoError::Random)?,
            salt: Some(Salt::new(&salt).map_err(|_| CryptoError::Random)?),
            hash: Some(Output::new(&out).map_err(|_| CryptoError::Random)?),
        };
        Ok(phc.to_string())
    }

    /// Checks a password against a PHC string, in constant time. An unparsable hash, or one
    /// asking for more than 64 MiB, never verifies.
    pub fn verify(&mut self, password: &str, phc: &str) -> bool {
        self.try_verify(password, phc).unwrap_or(false)
    }

    fn try_verify(&mut self, password: &str, phc: &str) -> Option<bool> {
        let hash = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(hash.algorithm.as_str()).ok()?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::V0x13,
        };
        let params = Params::try_from(&hash).ok()?;
        if params.m_cost() > 64 * 1024 {
            return None;
        }
        let expected = hash.hash?;
        let salt = hash.salt?;
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt.as_ref(),
                &mut out,
                self.blocks(&params),
            )
            .ok()?;
        Some(out.ct_eq(expected.as_bytes()).into())
    }
}
