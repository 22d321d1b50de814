//! Local-process realizations of catalog services: the files to write and the processes to
//! run, as values. Starting and keeping them is the local runtime's (`weir-supervisor`).

pub mod distribution;
pub mod kafka;
pub mod members;
pub mod render;
pub mod zookeeper;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How to start a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    /// Standard output and error both go here.
    pub log_path: PathBuf,
}

/// A configuration file a service needs before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub contents: String,
}

/// Everything needed to start one local service: files to write, then a process to run.
#[derive(Debug, Clone)]
pub struct LocalService {
    /// The address clients use, when it is not the main port's (a cluster's bootstrap list).
    pub endpoint: Option<String>,
    pub files: Vec<ConfigFile>,
    /// Commands run to completion, in order, before the process starts (e.g. formatting
    /// KRaft storage).
    pub pre_start: Vec<ProcessSpec>,
    pub process: ProcessSpec,
    /// As a member, the shortest wait before it starts again after dying (a ZooKeeper-mode
    /// broker cannot register again before its old session expires).
    pub restart_delay: Option<std::time::Duration>,
}

impl LocalService {
    /// Writes the configuration files, creating their directories.
    pub fn write_files(&self) -> std::io::Result<()> {
        for file in &self.files {
            if let Some(parent) = file.path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&file.path, &file.contents)?;
        }
        Ok(())
    }
}
