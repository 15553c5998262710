//! Seed files: a whole world in TOML, loaded at start with `bitbucket-sim --seed world.toml`.

use serde::Deserialize;

use super::cloud::{NewConsumer, NewRepository, NewUser, NewWorkspace};
use super::dc::{DcPermission, NewDcLink, NewDcProject, NewDcRepository, NewDcUser};
use super::{World, WorldError};
use crate::settings::Settings;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    pub settings: Option<Settings>,
    #[serde(default)]
    pub users: Vec<NewUser>,
    #[serde(default)]
    pub workspaces: Vec<NewWorkspace>,
    #[serde(default)]
    pub repositories: Vec<NewRepository>,
    #[serde(default)]
    pub consumers: Vec<NewConsumer>,
    #[serde(default)]
    pub dc: DcSeed,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcSeed {
    #[serde(default)]
    pub users: Vec<NewDcUser>,
    #[serde(default)]
    pub projects: Vec<NewDcProject>,
    #[serde(default)]
    pub repositories: Vec<NewDcRepository>,
    #[serde(default)]
    pub permissions: Vec<DcPermission>,
    #[serde(default)]
    pub links: Vec<NewDcLink>,
}

/// A seed file that could not be used; the message names the entry and field.
#[derive(Debug, thiserror::Error)]
#[error("seed file {path}: {message}")]
pub struct SeedError {
    pub path: String,
    pub message: String,
}

impl Seed {
    pub fn parse(path: &str, text: &str) -> Result<Seed, SeedError> {
        let seed: Seed = toml::from_str(text).map_err(|e| SeedError {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if let Some(settings) = &seed.settings {
            settings.validate().map_err(|message| SeedError {
                path: path.to_owned(),
                message: format!("settings: {message}"),
            })?;
        }
        Ok(seed)
    }

    /// Adds everything to the world, in dependency order. Runs git: call from a blocking context.
    pub fn apply(self, world: &World, now: i64) -> Result<(), String> {
        fn at<T>(section: &str, index: usize, result: Result<T, WorldError>) -> Result<T, String> {
            result.map_err(|e| match e {
                WorldError::Invalid { field, message } => {
                    format!("{section}[{index}].{field}: {message}")
                }
                other => format!("{section}[{index}]: {other}"),
            })
        }
        for (i, user) in self.users.into_iter().enumerate() {
            at("users", i, world.cloud_mut().add_user(user, now))?;
        }
        for (i, workspace) in self.workspaces.into_iter().enumerate() {
            at(
                "workspaces",
                i,
                world.cloud_mut().add_workspace(workspace, now),
            )?;
        }
        for (i, repository) in self.repositories.into_iter().enumerate() {
            at("repositories", i, world.add_repository(repository, now))?;
        }
        for (i, consumer) in self.consumers.into_iter().enumerate() {
            at("consumers", i, world.add_consumer(consumer, now))?;
        }
        for (i, user) in self.dc.users.into_iter().enumerate() {
            at("dc.users", i, world.dc_mut().add_user(user))?;
        }
        for (i, project) in self.dc.projects.into_iter().enumerate() {
            at("dc.projects", i, world.dc_mut().add_project(project))?;
        }
        for (i, repository) in self.dc.repositories.into_iter().enumerate() {
            at("dc.repositories", i, world.add_dc_repository(repository))?;
        }
        for (i, permission) in self.dc.permissions.into_iter().enumerate() {
            at(
                "dc.permissions",
                i,
                world.dc_mut().add_permission(permission),
            )?;
        }
        for (i, link) in self.dc.links.into_iter().enumerate() {
            at("dc.links", i, world.add_link(link))?;
        }
        Ok(())
    }
}
