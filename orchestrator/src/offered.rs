//! The workflows `weir serve` offers: those in a directory the user names, then the ones
//! shipped inside the binary (the repository's `workflows/`, with their data and topology
//! files), so that a server started anywhere offers the demo and the smoke workflow.

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

/// The repository's `workflows/` directory, as it was when this binary was built.
static SHIPPED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../workflows");

/// Writes the shipped workflows (and the files they name) under `home_root`, in a directory
/// of this version, and returns it. Rewritten at every start so it always matches the binary.
pub fn unpack_shipped(home_root: &Path) -> std::io::Result<PathBuf> {
    let dir = home_root
        .join("shipped-workflows")
        .join(env!("CARGO_PKG_VERSION"));
    std::fs::create_dir_all(&dir)?;
    SHIPPED.extract(&dir)?;
    Ok(dir)
}

/// Why a workflow named on the command line was not found.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowNotFound {
    #[error("no workflow file `{0}`")]
    NoFile(String),
    #[error(
        "no workflow `{name}`{hint} (shipped: {shipped}; or give the path of a workflow file)"
    )]
    NoName {
        name: String,
        hint: String,
        shipped: String,
    },
    #[error("cannot unpack the shipped workflows under {dir}: {source}")]
    Unpack {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// The file a command line means: a path to a workflow file, or the name of a shipped
/// workflow (`bitcoin-yuan`), unpacked under `home_root`.
pub fn workflow_file(given: &str, home_root: &Path) -> Result<PathBuf, WorkflowNotFound> {
    let path = Path::new(given);
    let is_name = !given.contains('/') && path.extension().is_none();
    if path.is_file() || !is_name {
        return match path.is_file() {
            true => Ok(path.to_owned()),
            false => Err(WorkflowNotFound::NoFile(given.into())),
        };
    }
    let shipped = unpack_shipped(home_root).map_err(|source| WorkflowNotFound::Unpack {
        dir: home_root.to_owned(),
        source,
    })?;
    let offered = OfferedWorkflows::new(vec![shipped]);
    offered.find(given).ok_or_else(|| {
        let names: Vec<String> = (offered.files().iter())
            .filter_map(|f| Some(f.file_stem()?.to_string_lossy().into_owned()))
            .collect();
        WorkflowNotFound::NoName {
            name: given.into(),
            hint: crate::suggest::did_you_mean(given, names.iter().map(String::as_str)),
            shipped: names.join(", "),
        }
    })
}

/// Where workflows are looked up, in order: a name found in an earlier directory hides the
/// same name in a later one.
#[derive(Debug, Clone, Default)]
pub struct OfferedWorkflows {
    dirs: Vec<PathBuf>,
}

impl OfferedWorkflows {
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self { dirs }
    }

    /// The file of workflow `name` (its file stem), if a directory has one.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        self.dirs
            .iter()
            .map(|dir| dir.join(format!("{name}.yaml")))
            .find(|file| file.is_file())
    }

    /// Every offered workflow file, one per name, sorted by name.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut by_name = std::collections::BTreeMap::new();
        for dir in &self.dirs {
            for file in yaml_files(dir) {
                if let Some(name) = file.file_stem().map(|s| s.to_string_lossy().into_owned()) {
                    by_name.entry(name).or_insert(file);
                }
            }
        }
        by_name.into_values().collect()
    }
}

/// The `*.yaml` files directly in `dir` (none when it cannot be read).
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_is_named_by_path_or_by_shipped_name_with_a_hint_for_typos() {
        let home = tempfile::tempdir().unwrap();
        let by_name = workflow_file("ci-smoke", home.path()).unwrap();
        assert!(by_name.ends_with("ci-smoke.yaml") && by_name.is_file());
        let typo = workflow_file("bitcoin-yen", home.path())
            .unwrap_err()
            .to_string();
        assert!(typo.contains("did you mean `bitcoin-yuan`?"), "{typo}");
        assert!(typo.contains("ci-smoke"), "{typo}");
        let missing = workflow_file("no/such.yaml", home.path()).unwrap_err();
        assert_eq!(missing.to_string(), "no workflow file `no/such.yaml`");
        assert_eq!(
            workflow_file(by_name.to_str().unwrap(), home.path()).unwrap(),
            by_name
        );
    }

    #[test]
    fn shipped_workflows_unpack_with_their_files_and_a_user_directory_comes_first() {
        let home = tempfile::tempdir().unwrap();
        let shipped = unpack_shipped(home.path()).unwrap();
        for file in [
            "bitcoin-yuan.yaml",
            "ci-smoke.yaml",
            "data/btcusd-monthly.csv",
            "topologies/bitcoin-yuan.yaml",
        ] {
            assert!(shipped.join(file).is_file(), "{file} unpacked");
        }
        // Unpacking again (the next start) is fine.
        assert_eq!(unpack_shipped(home.path()).unwrap(), shipped);

        let mine = tempfile::tempdir().unwrap();
        std::fs::write(mine.path().join("ci-smoke.yaml"), "name: mine\n").unwrap();
        std::fs::write(mine.path().join("nightly.yaml"), "name: nightly\n").unwrap();
        let offered = OfferedWorkflows::new(vec![mine.path().into(), shipped.clone()]);
        assert_eq!(
            offered.find("ci-smoke"),
            Some(mine.path().join("ci-smoke.yaml"))
        );
        assert_eq!(
            offered.find("bitcoin-yuan"),
            Some(shipped.join("bitcoin-yuan.yaml"))
        );
        assert_eq!(offered.find("absent"), None);
        let names: Vec<String> = offered
            .files()
            .iter()
            .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["bitcoin-yuan", "cdc-sync", "ci-smoke", "nightly"]);
    }
}
