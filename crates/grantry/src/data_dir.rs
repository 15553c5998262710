//! The data directory and the SQLite files in it are the owner's alone: the directory 0700, the
//! files 0600. The database holds sealed tokens but also the admins' password hashes and the
//! audit trail, which other local users have no business reading. New files are created so from
//! the start (SQLite gives its WAL and shared-memory files the database file's mode); files left
//! more open by an older version or by hand are tightened at start, with a warning.

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

use crate::config::{Config, Database};

/// Creates the data directory (and the SQLite database's), owner-only, and tightens the modes of
/// what is already there.
pub fn prepare(config: &Config) -> anyhow::Result<()> {
    own_directory(&config.data_dir)?;
    if let Database::Sqlite(path) = config.database()? {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            own_directory(dir)?;
        }
        if !path.exists() {
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
        }
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            own_file(Path::new(&name))?;
        }
    }
    Ok(())
}

fn own_directory(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        return Ok(());
    }
    tighten(dir, 0o700)
}

fn own_file(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        tighten(path, 0o600)?;
    }
    Ok(())
}

/// Takes group and others' permissions away, saying so.
fn tighten(path: &Path, mode: u32) -> anyhow::Result<()> {
    let metadata = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let current = metadata.permissions().mode() & 0o777;
    if current & 0o077 == 0 {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot change the mode of {}", path.display()))?;
    tracing::warn!(path = %path.display(), was = format!("{current:o}"), now = format!("{mode:o}"), "other users could read this; made it the owner's alone");
    eprintln!(
        "warning: {} was readable by other users (mode {current:o}); changed to {mode:o}",
        path.display()
    );
    Ok(())
}
