//! Where master keys come from: `GRANTRY_MASTER_KEY` or a key file (mode 0600), never the
//! database. A key file is created on first start when neither exists; `grantry keys rotate`
//! puts a new primary key at its top. A running server that meets a value sealed under a key it
//! does not hold re-reads the file once, so rotation works while it runs.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use zeroize::Zeroizing;

use crate::keyring::{Binding, CryptoError, KeyId, Keyring, MasterKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the master key file {path} does not exist, but the database holds values sealed under \
         master keys; restore the key file from your backup (or give the keys in GRANTRY_MASTER_KEY). \
         A new key would open nothing"
    )]
    Missing { path: PathBuf },
    #[error("master key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "master key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("master key file {path}: {source}")]
    BadFile { path: PathBuf, source: CryptoError },
    #[error("GRANTRY_MASTER_KEY: {0}")]
    BadEnv(CryptoError),
    #[error(
        "keys come from GRANTRY_MASTER_KEY, which Grantry cannot edit: put a new key first \
         (`new,old`), restart, then run `grantry keys rotate` to re-seal under it"
    )]
    EnvCannotRotate,
    #[error(
        "keys come from GRANTRY_MASTER_KEY, which Grantry cannot edit: drop the older keys from \
         the variable once `grantry keys status` shows no value sealed under them"
    )]
    EnvCannotRetire,
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Where the keys are read from.
#[derive(Clone)]
pub enum KeySource {
    /// The text of `GRANTRY_MASTER_KEY`: base64 keys separated by commas, primary first.
    Env(Zeroizing<String>),
    File(PathBuf),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env(_) => f.write_str("KeySource::Env([redacted])"),
            KeySource::File(path) => write!(f, "KeySource::File({})", path.display()),
        }
    }
}

/// What opening the key store did, so the caller can tell the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    Existing,
    /// A new key file was written: the operator must back it up.
    CreatedKeyFile,
}

/// The keyring in use, reloadable.
#[derive(Debug)]
pub struct KeyStore {
    source: KeySource,
    current: RwLock<Arc<Keyring>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_file(path: &Path) -> Result<Keyring, KeyError> {
    let metadata = fs::metadata(path).map_err(io(path))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(io(path))?);
    Keyring::parse(&text).map_err(|source| KeyError::BadFile {
        path: path.to_owned(),
        source,
    })
}

/// Writes a key file atomically with mode 0600.
fn write_file(path: &Path, keys: &[MasterKey]) -> Result<(), KeyError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut text = Zeroizing::new(String::from(
        "# Grantry master keys, newest (primary) first. Back this file up; without it nothing\n\
         # sealed in the database can be opened. Keep it out of the database's backups.\n",
    ));
    for key in keys {
        text.push_str(&key.to_base64());
        text.push('\n');
    }
    let temporary = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io(&temporary))?;
    file.write_all(text.as_bytes()).map_err(io(&temporary))?;
    file.sync_all().map_err(io(&temporary))?;
    fs::rename(&temporary, path).map_err(io(path))
}

impl KeyStore {
    /// Loads the keys; creates a key file if the source is a file that does not exist yet.
    pub fn load(source: KeySource) -> Result<(KeyStore, Opened), KeyError> {
        KeyStore::load_with(source, true)
    }

    /// Loads the keys; creates a missing key file only when `may_create` (a database that holds
    /// sealed values needs the keys it was sealed with, not a new one).
    pub fn load_with(source: KeySource, may_create: bool) -> Result<(KeyStore, Opened), KeyError> {
        let (keyring, opened) = match &source {
            KeySource::Env(text) => (
                Keyring::parse(text).map_err(KeyError::BadEnv)?,
                Opened::Existing,
            ),
            KeySource::File(path) if !path.exists() && !may_create => {
                return Err(KeyError::Missing { path: path.clone() });
            }
            KeySource::File(path) if !path.exists() => {
                let key = MasterKey::generate()?;
                write_file(path, std::slice::from_ref(&key))?;
                (Keyring::new(vec![key])?, Opened::CreatedKeyFile)
            }
            KeySource::File(path) => (read_file(path)?, Opened::Existing),
        };
        let store = KeyStore {
            source,
            current: RwLock::new(Arc::new(keyring)),
        };
        Ok((store, opened))
    }

    /// A key store over keys held in memory (tests, `grantry demo`).
    pub fn in_memory(keyring: Keyring) -> KeyStore {
        KeyStore {
            source: KeySource::Env(Zeroizing::new(String::new())),
            current: RwLock::new(Arc::new(keyring)),
        }
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    pub fn keyring(&self) -> Arc<Keyring> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn primary_id(&self) -> KeyId {
        self.keyring().primary().id()
    }

    /// Re-reads the key file (a no-op for keys from the environment).
    pub fn reload(&self) -> Result<(), KeyError> {
        if let KeySource::File(path) = &self.source {
            let keyring = read_file(path)?;
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keyring);
        }
        Ok(())
    }

    pub fn seal(&self, plaintext: &[u8], binding: Binding<'_>) -> Result<Vec<u8>, CryptoError> {
        self.keyring().seal(plaintext, binding)
    }

    /// Opens a sealed value; a value under an unknown key triggers one reload of the key file.
    pub fn open(
        &self,
        sealed: &[u8],
        binding: Binding<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match self.keyring().open(sealed, binding) {
            Err(CryptoError::UnknownKey(id)) => {
                if self.reload().is_ok() && self.keyring().holds(id) {
                    self.keyring().open(sealed, binding)
                } else {
                    Err(CryptoError::UnknownKey(id))
                }
            }
            other => other,
        }
    }

    /// Generates a new primary key and writes it at the top of the key file.
    pub fn add_primary(&self) -> Result<KeyId, KeyError> {
        let KeySource::File(path) = &self.source else {
            return Err(KeyError::EnvCannotRotate);
        };
        let current = read_file(path)?;
        let new = MasterKey::generate()?;
        let id = new.id();
        let mut keys = vec![new];
        for key in current.keys() {
            keys.push(key.clone());
        }
        write_file(path, &keys)?;
        self.reload()?;
        Ok(id)
    }

    /// Removes the older keys `unused` names from the key file (never the primary) and answers
    /// the keys removed, so a caller who finds one still in use can put it back with `restore`.
    pub fn retire(&self, unused: &[KeyId]) -> Result<Vec<MasterKey>, KeyError> {
        let KeySource::File(path) = &self.source else {
            return Err(KeyError::EnvCannotRetire);
        };
        let current = read_file(path)?;
        let primary = current.primary().id();
        let (mut kept, mut removed) = (Vec::new(), Vec::new());
        for key in current.keys() {
            let copy = key.clone();
            if key.id() != primary && unused.contains(&key.id()) {
                removed.push(copy);
            } else {
                kept.push(copy);
            }
        }
        if !removed.is_empty() {
            write_file(path, &kept)?;
            self.reload()?;
        }
        Ok(removed)
    }

    /// Puts keys `retire` removed back at the end of the key file.
    pub fn restore(&self, keys: &[MasterKey]) -> Result<(), KeyError> {
        let KeySource::File(path) = &self.source else {
            return Err(KeyError::EnvCannotRetire);
        };
        let current = read_file(path)?;
        let mut all = Vec::new();
        for key in current.keys().iter().chain(keys) {
            if !all.iter().any(|k: &MasterKey| k.id() == key.id()) {
                all.push(key.clone());
            }
        }
        write_file(path, &all)?;
        self.reload()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: Binding<'static> = Binding {
        table: "t",
        column: "c",
        row_id: "r",
    };

    #[test]
    fn creates_a_private_key_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("master.key");
        let (store, opened) = KeyStore::load(KeySource::File(path.clone())).unwrap();
        assert_eq!(opened, Opened::CreatedKeyFile);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (again, opened) = KeyStore::load(KeySource::File(path)).unwrap();
        assert_eq!(opened, Opened::Existing);
        assert_eq!(store.primary_id(), again.primary_id());
    }

    #[test]
    fn refuses_a_key_file_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        KeyStore::load(KeySource::File(path.clone())).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let error = KeyStore::load(KeySource::File(path)).unwrap_err();
        assert!(matches!(error, KeyError::TooOpen { .. }), "{error}");
    }

    #[test]
    fn a_second_store_sees_a_rotation_when_it_meets_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (server, _) = KeyStore::load(KeySource::File(path.clone())).unwrap();
        let (admin, _) = KeyStore::load(KeySource::File(path)).unwrap();
        let old = server.primary_id();
        let new = admin.add_primary().unwrap();
        assert_ne!(old, new);
        let sealed = admin.seal(b"x", HERE).unwrap();
        assert_eq!(server.open(&sealed, HERE).unwrap().as_slice(), b"x");
        assert_eq!(
            server.primary_id(),
            new,
            "the reload also moved the primary"
        );
    }

    #[test]
    fn keys_from_the_environment_cannot_be_rotated_in_place() {
        let key = MasterKey::generate().unwrap();
        let (store, _) = KeyStore::load(KeySource::Env(key.to_base64())).unwrap();
        assert!(matches!(
            store.add_primary(),
            Err(KeyError::EnvCannotRotate)
        ));
        assert!(matches!(
            KeyStore::load(KeySource::Env(Zeroizing::new("nope".into()))),
            Err(KeyError::BadEnv(_))
        ));
    }

    #[test]
    fn retiring_removes_only_older_unused_keys_and_can_be_undone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (store, _) = KeyStore::load(KeySource::File(path.clone())).unwrap();
        let oldest = store.primary_id();
        let sealed = store.seal(b"kept", HERE).unwrap();
        let older = store.add_primary().unwrap();
        let primary = store.add_primary().unwrap();

        let removed = store.retire(&[older, primary]).unwrap();
        assert_eq!(
            removed.iter().map(MasterKey::id).collect::<Vec<_>>(),
            [older],
            "the primary is never retired"
        );
        let (reread, _) = KeyStore::load(KeySource::File(path.clone())).unwrap();
        let ids: Vec<KeyId> = reread.keyring().keys().iter().map(MasterKey::id).collect();
        assert_eq!(ids, [primary, oldest]);
        assert_eq!(&*store.open(&sealed, HERE).unwrap(), b"kept");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        store.restore(&removed).unwrap();
        let ids: Vec<KeyId> = store.keyring().keys().iter().map(MasterKey::id).collect();
        assert_eq!(ids, [primary, oldest, older]);
        assert!(
            store.retire(&[]).unwrap().is_empty(),
            "nothing named, nothing removed"
        );
    }
}
