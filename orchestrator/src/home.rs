//! `WEIR_HOME`: everything Weir writes lives under it (default `~/.weir`).

use std::path::{Path, PathBuf};

/// The state directory and the paths inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeirHome {
    root: PathBuf,
}

impl WeirHome {
    /// `$WEIR_HOME`, or `~/.weir`.
    pub fn from_env() -> Self {
        let root = match std::env::var_os("WEIR_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => {
                let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
                Path::new(&home).join(".weir")
            }
        };
        Self { root }
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database of instances and runs.
    pub fn database(&self) -> PathBuf {
        self.root.join("weir.db")
    }

    /// The directory of one service instance (configuration, data, log).
    pub fn instance_dir(&self, name: &str) -> PathBuf {
        self.instances_dir().join(name)
    }

    pub fn instances_dir(&self) -> PathBuf {
        self.root.join("instances")
    }

    /// Artifacts kept after a run (topic counts, snapshots, logs).
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("runs").join(run_id)
    }
}
