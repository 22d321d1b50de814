//! The other clients the tests check Weir against, installed by
//! `scripts/install-test-clients`: the real Visdom server, Chromium scripts through
//! playwright-core, and helm; and Weir's own chart server on a free port.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::*;

/// The Python of the virtualenv holding the real `visdom` package (`scripts/install-test-clients`).
pub fn visdom_python() -> PathBuf {
    let python = std::env::var_os("VISDOM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            weir_catalog::local::distribution::cache_dir().join("visdom-0.2.4/bin/python")
        });
    assert!(
        python.is_file(),
        "{} is missing: run `make setup`",
        python.display()
    );
    python
}

/// The real Visdom server (`visdom.server` of [`visdom_python`]) on a free port, saving
/// environments in a temporary env path; stopped when dropped. For comparing answers.
#[derive(Debug)]
pub struct RealVisdom {
    pub port: u16,
    child: std::process::Child,
    _env_path: tempfile::TempDir,
}

impl RealVisdom {
    pub fn start() -> Self {
        let env_path = tempfile::tempdir().expect("temp dir");
        let port = weir_supervisor::ports::free_port().expect("free port");
        // `python -m visdom.server` first downloads web assets from a CDN; the HTTP API does
        // not need them, so the server's entry point is called directly.
        let launcher = format!(
            "import sys; from visdom.server.run_server import main; \
             sys.argv = ['visdom', '-port', '{port}', '-bind_local', '-env_path', '{}']; main()",
            env_path.path().display()
        );
        let child = std::process::Command::new(visdom_python())
            .args(["-c", &launcher])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the Visdom server");
        let up = eventually(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(up.is_some(), "the Visdom server did not listen on {port}");
        Self {
            port,
            child,
            _env_path: env_path,
        }
    }
}

impl Drop for RealVisdom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `helm` binary (`scripts/install-test-clients`).
pub fn helm_bin() -> PathBuf {
    let helm = std::env::var_os("HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| weir_catalog::local::distribution::cache_dir().join("helm-4.3.2/helm"));
    assert!(
        helm.is_file(),
        "{} is missing: run `make setup`",
        helm.display()
    );
    helm
}

/// `node_modules` holding `playwright-core` (`scripts/install-test-clients`).
pub fn playwright_node_path() -> PathBuf {
    let dir = std::env::var_os("PLAYWRIGHT_NODE_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            weir_catalog::local::distribution::cache_dir().join("playwright-1.64.1/node_modules")
        });
    assert!(
        dir.join("playwright-core").is_dir(),
        "{} is missing: run `make setup`",
        dir.display()
    );
    dir
}

/// Runs one of `tests/browser`'s Chromium scripts and reads the JSON line it prints last; on
/// failure, what it printed on stderr.
pub fn browser_script(
    script: &str,
    args: &[&str],
) -> Result<serde_json::Value, BrowserScriptError> {
    let output = std::process::Command::new("node")
        .arg(repo_root().join("tests/browser").join(script))
        .args(args)
        .env("NODE_PATH", playwright_node_path())
        .output()
        .map_err(BrowserScriptError::Node)?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(BrowserScriptError::Failed {
            script: script.into(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            stdout,
        });
    }
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|source| BrowserScriptError::NoJson {
        script: script.into(),
        source,
        stdout: stdout.clone(),
    })
}

/// Why a browser script gave no reading.
#[derive(Debug, thiserror::Error)]
pub enum BrowserScriptError {
    #[error("cannot run node: {0}")]
    Node(std::io::Error),
    #[error("{script} failed ({status}):\n{stderr}\n{stdout}")]
    Failed {
        script: String,
        status: std::process::ExitStatus,
        stderr: String,
        stdout: String,
    },
    #[error("{script} printed no JSON line ({source}): {stdout}")]
    NoJson {
        script: String,
        source: serde_json::Error,
        stdout: String,
    },
}

/// Where tests leave files worth looking at (screenshots): `target/test-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    let dir = weir_bin()
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create test-artifacts");
    dir
}

/// A `weir charts serve` on a free port, stopped when dropped.
#[derive(Debug)]
pub struct ChartServer {
    pub url: String,
    process: WeirProcess,
    _dir: tempfile::TempDir,
}

impl ChartServer {
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = weir_supervisor::ports::free_port().expect("free port");
        let addr = format!("127.0.0.1:{port}");
        let mut args = vec!["charts", "serve", "--addr", &addr];
        args.extend_from_slice(extra);
        let mut process = WeirProcess::start(dir.path(), "charts.log", &args);
        let url = format!("http://{addr}");
        let ready = eventually(Duration::from_secs(20), || {
            reqwest::blocking::get(format!("{url}/api/health"))
                .ok()
                .filter(|r| r.status().is_success())
        });
        assert!(
            ready.is_some(),
            "chart server did not start: {}",
            process.log_text()
        );
        assert!(process.child.try_wait().unwrap().is_none());
        Self {
            url,
            process,
            _dir: dir,
        }
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        reqwest::blocking::get(format!("{}{path}", self.url))
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.process.log_text()))
    }

    pub fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::blocking::Response {
        reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.url))
            .body(body.to_string())
            .send()
            .expect("POST to the chart server")
    }
}
