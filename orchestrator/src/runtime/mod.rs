//! Runtimes start catalog services somewhere: [`local`] as processes on this machine,
//! [`kubernetes`] as objects in a cluster.

pub mod kubernetes;
pub mod local;

use std::path::PathBuf;
use std::time::Duration;

use weir_catalog::local::process::ProcessError;
use weir_catalog::local::render::RenderError;
use weir_catalog::service::ParamError;

use crate::store::StoreError;

/// Errors starting or stopping service instances.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the catalog has no service `{0}`; `weir catalog` lists them")]
    UnknownService(String),
    #[error("invalid parameters:\n  {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    InvalidParams(Vec<ParamError>),
    #[error("`{0}` is not a valid instance name: use lowercase letters, digits and dashes, starting with a letter (at most 40 characters)")]
    InvalidName(String),
    #[error("no instance named `{name}`; start a {service} first (`weir up {service} --name {name}`) or leave the parameter out to have one started")]
    MissingDependency { name: String, service: String },
    #[error("instance `{name}` is a {actual}, not a {expected}")]
    WrongDependency {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("instance `{0}` is not running; `weir instances` shows its state, `weir gc` clears dead ones")]
    DependencyDown(String),
    #[error("no instance named `{0}`; `weir instances` lists them")]
    NoSuchInstance(String),
    #[error("`{name}` is used by {users}; stop those first, or use `weir down --all`")]
    InUse { name: String, users: String },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("preparing `{instance}` failed: {command}\n--- last lines of its log ---\n{tail}")]
    PrepareFailed {
        instance: String,
        command: String,
        tail: String,
    },
    #[error(transparent)]
    NotReady(Box<NotReady>),
}

/// A service that did not become ready, with the end of its log to say why.
#[derive(Debug, thiserror::Error)]
#[error("{service} `{instance}` is not ready ({reason}; waited up to {timeout:?})\n--- last lines of {log} ---\n{tail}")]
pub struct NotReady {
    pub instance: String,
    pub service: String,
    pub timeout: Duration,
    pub reason: String,
    pub log: String,
    pub tail: String,
}
