//! The simulator's integration tests, in one binary: real HTTP against a simulator started in-process, real git.

mod common;

mod cloud_oauth;
mod cloud_rest;
mod credentials;
mod datacenter;
mod faults_and_control;
mod git;
mod source;
