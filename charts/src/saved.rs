//! Environments saved to disk as Visdom saves them (`vis.save([...])`): one `<env>.json` per
//! environment in the env path, `{"jsons": {win: window}, "reload": {}}` with each window in
//! Visdom's format, loaded again when the server starts. Files a Visdom server saved load
//! here as well, as far as their windows are of a supported type.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::store::Charts;
use crate::visdom_window::{from_visdom, store, to_visdom};

/// The directory environments are saved in.
#[derive(Debug, Clone)]
pub struct SavedEnvs {
    dir: PathBuf,
}

/// Why an environment file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SavedEnvError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
}

impl SavedEnvs {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Visdom's file name for an environment: slashes become underscores.
    fn file(&self, env: &str) -> PathBuf {
        self.dir.join(format!("{}.json", env.replace('/', "_")))
    }

    /// Saves the listed environments that exist; returns their names (as Visdom answers).
    pub fn save(&self, charts: &Charts, envs: &[String]) -> Result<Vec<String>, SavedEnvError> {
        let existing = charts.envs();
        let mut saved = Vec::new();
        for env in envs.iter().filter(|e| existing.contains(e)) {
            let windows: Map<String, Value> = charts
                .windows()
                .into_iter()
                .filter(|(e, _, _)| e == env)
                .filter_map(|(_, win, _)| {
                    Some((win.clone(), to_visdom(&charts.view(env, &win, 0)?)))
                })
                .collect();
            let path = self.file(env);
            let write = |path: &Path| {
                std::fs::create_dir_all(&self.dir)?;
                // Written aside and renamed, so that a crash never leaves half a file.
                let partial = path.with_extension("json.partial");
                std::fs::write(
                    &partial,
                    json!({"jsons": windows, "reload": {}}).to_string(),
                )?;
                std::fs::rename(&partial, path)
            };
            write(&path).map_err(|source| SavedEnvError::Write { path, source })?;
            saved.push(env.clone());
        }
        Ok(saved)
    }

    /// Loads every saved environment into `charts`; returns the names loaded and, for each
    /// file or window that could not be taken, why.
    pub fn load(&self, charts: &Charts) -> (Vec<String>, Vec<SavedEnvError>) {
        let (mut loaded, mut problems) = (Vec::new(), Vec::new());
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return (loaded, problems);
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let Some(env) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            let problem = |reason: String| SavedEnvError::Read {
                path: path.clone(),
                reason,
            };
            let document: Value = match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
            {
                Ok(document) => document,
                Err(reason) => {
                    problems.push(problem(reason));
                    continue;
                }
            };
            charts.ensure_env(&env);
            for (win, window) in document["jsons"].as_object().into_iter().flatten() {
                match from_visdom(window) {
                    Ok((options, content)) => store(charts, &env, win, options, content),
                    Err(reason) => problems.push(problem(format!("window `{win}`: {reason}"))),
                }
            }
            loaded.push(env);
        }
        (loaded, problems)
    }

    /// Removes an environment's file, if it was saved.
    pub fn delete(&self, env: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.file(env)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WindowOptions;

    #[test]
    fn a_saved_environment_loads_back_into_a_new_server() {
        let dir = tempfile::tempdir().unwrap();
        let saved = SavedEnvs::new(dir.path());
        let charts = Charts::new(100);
        charts.create(
            "demo",
            "rates",
            WindowOptions::default(),
            vec![("rate".into(), vec![(1.0, 2.0)])],
        );
        charts.create_text(
            "demo",
            "log",
            WindowOptions::default(),
            vec!["hello".into()],
        );
        let names = saved
            .save(&charts, &["demo".into(), "absent".into()])
            .unwrap();
        assert_eq!(names, ["demo"]);

        std::fs::write(dir.path().join("broken.json"), "{not json").unwrap();
        let fresh = Charts::new(100);
        let (loaded, problems) = saved.load(&fresh);
        assert_eq!(loaded, ["demo"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].to_string().contains("broken.json"));
        for win in ["rates", "log"] {
            assert_eq!(
                to_visdom(&fresh.view("demo", win, 0).unwrap()),
                to_visdom(&charts.view("demo", win, 0).unwrap())
            );
        }
        saved.delete("demo").unwrap();
        saved.delete("demo").unwrap();
        assert!(!dir.path().join("demo.json").exists());
    }
}
