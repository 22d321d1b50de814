//! Local-process realizations of catalog services.

pub mod distribution;
pub mod kafka;
pub mod members;
pub mod ports;
pub mod process;
pub mod readiness;
pub mod render;
pub mod stack;
pub mod zookeeper;

use std::path::PathBuf;

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
    pub pre_start: Vec<process::ProcessSpec>,
    pub process: process::ProcessSpec,
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
