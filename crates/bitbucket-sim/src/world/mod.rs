//! Everything the simulator knows about: Cloud and Data Center directories, OAuth clients and
//! the git repositories on disk.

pub mod cloud;
pub mod dc;
pub mod error;
pub mod seed;

pub use error::WorldError;

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use dashmap::DashMap;

use crate::git::GitStore;
use cloud::{CloudDirectory, Consumer, ConsumerChanges, NewConsumer, NewRepository, Repository};
use dc::{DcDirectory, DcLink, DcRepository, NewDcLink, NewDcRepository};

/// Slugs and usernames: 1 to 62 characters of `a-z 0-9 - _ .`, starting with a letter or digit.
pub fn check_slug(field: &str, value: &str) -> Result<(), WorldError> {
    let ok = (1..=62).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        && !value.ends_with(".git");
    if ok {
        Ok(())
    } else {
        Err(WorldError::invalid(
            field,
            &format!("`{value}` is not a valid slug (1-62 of a-z, 0-9, '-', '_', '.')"),
        ))
    }
}

pub fn check_url(field: &str, value: &str) -> Result<(), WorldError> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(()),
        _ => Err(WorldError::invalid(
            field,
            &format!("`{value}` is not an absolute http(s) URL"),
        )),
    }
}

#[derive(Debug)]
pub struct World {
    cloud: RwLock<CloudDirectory>,
    dc: RwLock<DcDirectory>,
    /// Read on every token request, so kept in a sharded map rather than behind the directory lock.
    pub consumers: DashMap<String, Arc<Consumer>>,
    pub links: DashMap<String, Arc<DcLink>>,
    /// Data Center build statuses by commit, newest first.
    build_statuses: DashMap<String, Vec<serde_json::Value>>,
    pub git: GitStore,
}

impl World {
    pub fn new(git: GitStore) -> World {
        World {
            cloud: RwLock::default(),
            dc: RwLock::default(),
            consumers: DashMap::new(),
            links: DashMap::new(),
            build_statuses: DashMap::new(),
            git,
        }
    }

    pub fn cloud(&self) -> RwLockReadGuard<'_, CloudDirectory> {
        self.cloud.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn cloud_mut(&self) -> RwLockWriteGuard<'_, CloudDirectory> {
        self.cloud.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn dc(&self) -> RwLockReadGuard<'_, DcDirectory> {
        self.dc.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn dc_mut(&self) -> RwLockWriteGuard<'_, DcDirectory> {
        self.dc.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a repository with a first commit on `main`. Runs git: call from a blocking context.
    pub fn add_repository(&self, new: NewRepository, now: i64) -> Result<Repository, WorldError> {
        self.cloud().check_new_repository(&new)?;
        self.git
            .create(&new.workspace, &new.slug, &new.description)?;
        let mut directory = self.cloud_mut();
        directory.check_new_repository(&new)?;
        Ok(directory.insert_repository(new, now))
    }

    /// Adds a Data Center repository with a first commit on `main`. Runs git: call from a
    /// blocking context.
    pub fn add_dc_repository(&self, new: NewDcRepository) -> Result<DcRepository, WorldError> {
        self.dc().check_new_repository(&new)?;
        self.git
            .create_at(&self.git.dc_path(&new.project, &new.slug), &new.slug, "")?;
        self.dc_mut().add_repository(new)
    }

    /// Records a build status for a commit; one per `key`, the latest kept.
    pub fn add_build_status(&self, commit: &str, status: serde_json::Value) {
        let mut statuses = self.build_statuses.entry(commit.to_owned()).or_default();
        statuses.retain(|old| old["key"] != status["key"]);
        statuses.insert(0, status);
    }

    pub fn build_statuses(&self, commit: &str) -> Vec<serde_json::Value> {
        self.build_statuses
            .get(commit)
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub fn add_consumer(&self, new: NewConsumer, now: i64) -> Result<Arc<Consumer>, WorldError> {
        let consumer = Arc::new(self.cloud().new_consumer(new, now)?);
        match self.consumers.entry(consumer.key.clone()) {
            dashmap::Entry::Occupied(_) => Err(WorldError::Duplicate(format!(
                "consumer with key `{}`",
                consumer.key
            ))),
            dashmap::Entry::Vacant(slot) => {
                slot.insert(consumer.clone());
                Ok(consumer)
            }
        }
    }

    pub fn edit_consumer(
        &self,
        key: &str,
        changes: ConsumerChanges,
    ) -> Result<Arc<Consumer>, WorldError> {
        let mut slot = self
            .consumers
            .get_mut(key)
            .ok_or_else(|| WorldError::NotFound(format!("consumer `{key}`")))?;
        let edited = Arc::new(cloud::edit_consumer(&slot, changes)?);
        *slot = edited.clone();
        Ok(edited)
    }

    pub fn consumer(&self, key: &str) -> Option<Arc<Consumer>> {
        self.consumers.get(key).map(|c| c.clone())
    }

    pub fn add_link(&self, new: NewDcLink) -> Result<Arc<DcLink>, WorldError> {
        let link = Arc::new(dc::new_link(new)?);
        match self.links.entry(link.client_id.clone()) {
            dashmap::Entry::Occupied(_) => Err(WorldError::Duplicate(format!(
                "link with client id `{}`",
                link.client_id
            ))),
            dashmap::Entry::Vacant(slot) => {
                slot.insert(link.clone());
                Ok(link)
            }
        }
    }

    pub fn link(&self, client_id: &str) -> Option<Arc<DcLink>> {
        self.links.get(client_id).map(|l| l.clone())
    }
}
