//! The Helm chart's portal on the sandbox: `helm install` puts `weir serve` in a real pod with
//! the chart's ServiceAccount, and a run launched through it runs in pods of a namespace of its
//! own, reaching the API server from inside the cluster with only the chart's RBAC, and
//! succeeds with every result seen.

use std::process::{Child, Command, Stdio};

use super::*;

/// The chart installed as release `portal` in `namespace`; uninstalled, and its namespace
/// deleted, when dropped.
struct Installed {
    namespace: String,
    forward: Option<Child>,
}

impl Installed {
    fn helm(&self, args: &[&str]) -> std::process::Output {
        Command::new(weir_tests::helm_bin())
            .args(args)
            .args(["--namespace", &self.namespace, "--kubeconfig"])
            .arg(&KubeSandbox::get().kubeconfig)
            .output()
            .expect("run helm")
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if let Some(mut forward) = self.forward.take() {
            let _ = forward.kill();
            let _ = forward.wait();
        }
        let _ = self.helm(&["uninstall", "portal", "--wait"]);
        KubeSandbox::get().kubectl(&["delete", "namespace", &self.namespace, "--wait=true"]);
    }
}

impl Installed {
    /// `helm install portal` of the chart into a namespace of its own, waiting until ready.
    fn install(name: &str, sets: &[&str]) -> Self {
        let portal = Installed {
            namespace: format!("weir-{name}-{}", std::process::id()),
            forward: None,
        };
        let chart = repo_root().join("deploy/helm/weir");
        let mut args = vec![
            "install",
            "portal",
            chart.to_str().unwrap(),
            "--create-namespace",
        ];
        // The image was loaded into the node.
        args.extend(["--set", "auth.tokens.operator=portal-operator"]);
        args.extend(["--set", "image.pullPolicy=Never"]);
        for set in sets {
            args.extend(["--set", set]);
        }
        args.extend(["--wait", "--timeout", "180s"]);
        let installed = portal.helm(&args);
        assert!(
            installed.status.success(),
            "helm install: {}{}",
            String::from_utf8_lossy(&installed.stdout),
            String::from_utf8_lossy(&installed.stderr)
        );
        portal
    }

    /// Forwards a local port to the portal's Service (again, after its pod changed) and waits
    /// until it answers; returns its URL.
    fn forward(&mut self) -> String {
        if let Some(mut forward) = self.forward.take() {
            let _ = forward.kill();
            let _ = forward.wait();
        }
        let port = weir_supervisor::ports::free_port().unwrap();
        self.forward = Some(
            Command::new(repo_root().join("scripts/kube-sandbox"))
                .args(["kubectl", "-n", &self.namespace, "port-forward"])
                .args(["service/portal-weir", &format!("{port}:80")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("kubectl port-forward"),
        );
        let url = format!("http://127.0.0.1:{port}");
        eventually(Duration::from_secs(60), || get(&url, "/api/catalog"))
            .expect("the portal did not answer through its Service");
        url
    }
}

/// `GET url/path` as the operator, its JSON when it succeeds.
fn get(url: &str, path: &str) -> Option<Value> {
    let response = (reqwest::blocking::Client::new().get(format!("{url}{path}")))
        .bearer_auth("portal-operator")
        .send()
        .ok()?;
    response
        .status()
        .is_success()
        .then(|| response.json().ok())?
}

/// Launches a shipped workflow through the portal; returns the run's id.
fn launch(url: &str, body: Value) -> String {
    let launched: Value = (reqwest::blocking::Client::new().post(format!("{url}/api/runs")))
        .bearer_auth("portal-operator")
        .json(&body)
        .send()
        .expect("POST /api/runs")
        .json()
        .expect("the launch's answer");
    launched["id"].as_str().expect("a run id").to_string()
}

#[test]
fn the_helm_charts_portal_launches_a_run_in_pods_that_sees_every_result() {
    let sandbox = KubeSandbox::get();
    // The sandbox has no volume provisioner.
    let mut portal = Installed::install("portal", &["persistence.enabled=false"]);
    let url = portal.forward();
    let get = |path: &str| get(&url, path);
    let catalog = get("/api/catalog").expect("the catalog");
    assert_eq!(catalog["backends"], serde_json::json!(["kubernetes"]));

    let id = launch(&url, serde_json::json!({ "workflow": "ci-smoke" }));
    let run = eventually(Duration::from_secs(420), || {
        let run = get(&format!("/api/runs/{id}"))?;
        matches!(run["state"].as_str(), Some("succeeded" | "failed")).then_some(run)
    })
    .unwrap_or_else(|| panic!("run {id} launched from the portal did not finish"));
    let log = sandbox.kubectl(&[
        "-n",
        &portal.namespace,
        "exec",
        "deploy/portal-weir",
        "--",
        "tail",
        "-40",
        &format!("/var/lib/weir/home/runs/{id}/weir-run.log"),
    ]);
    let log = String::from_utf8_lossy(&log.stdout);
    assert_eq!(run["state"], "succeeded", "{run}\n{log}");
    assert_eq!(run["backend"], "kubernetes", "{run}");
    assert_eq!(run["unavailable"], serde_json::json!({}), "{run}\n{log}");
    assert!(
        run["topics"]["smoke-variations"].as_u64().unwrap_or(0) > 0,
        "{run}"
    );
    // Nothing the chart's RBAC refused: every call the run made was allowed.
    assert!(!log.contains("forbidden"), "{log}");
    // The run's namespace is gone after its teardown.
    let namespace = format!("weir-{id}");
    assert_namespace_goes(&namespace, Duration::from_secs(60));
}

/// A volume on this machine (the sandbox's node) for the portal's `WEIR_HOME`, bound to a claim
/// in `namespace`: the sandbox has no provisioner, and the run records must outlive the pod.
/// Returns the claim's name; the volume is deleted, with its directory, when dropped.
struct NodeVolume {
    name: String,
    path: std::path::PathBuf,
}

impl NodeVolume {
    fn claim(namespace: &str) -> Self {
        let name = format!("weir-portal-home-{}", std::process::id());
        let path = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        // The portal runs as user 10001; hostPath directories get no fsGroup ownership.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let manifest = format!(
            "apiVersion: v1
kind: Namespace
metadata: {{ name: {namespace} }}
---
apiVersion: v1
kind: PersistentVolume
metadata: {{ name: {name} }}
spec:
  capacity: {{ storage: 1Gi }}
  accessModes: [ReadWriteOnce]
  storageClassName: {name}
  hostPath: {{ path: {path}, type: Directory }}
  claimRef: {{ namespace: {namespace}, name: portal-home }}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{ name: portal-home, namespace: {namespace} }}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: {name}
  volumeName: {name}
  resources: {{ requests: {{ storage: 1Gi }} }}
",
            path = path.display()
        );
        let mut apply = Command::new(repo_root().join("scripts/kube-sandbox"))
            .args(["kubectl", "apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl apply");
        std::io::Write::write_all(apply.stdin.as_mut().unwrap(), manifest.as_bytes()).unwrap();
        let applied = apply.wait_with_output().unwrap();
        assert!(
            applied.status.success(),
            "{}",
            String::from_utf8_lossy(&applied.stderr)
        );
        NodeVolume { name, path }
    }
}

impl Drop for NodeVolume {
    fn drop(&mut self) {
        KubeSandbox::get().kubectl(&["delete", "pv", &self.name, "--wait=false"]);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[test]
fn a_run_whose_portal_pod_is_deleted_ends_failed_and_its_namespace_goes() {
    let sandbox = KubeSandbox::get();
    let namespace = format!("weir-restarted-{}", std::process::id());
    let _volume = NodeVolume::claim(&namespace);
    let mut portal = Installed::install("restarted", &["persistence.existingClaim=portal-home"]);
    assert_eq!(portal.namespace, namespace);
    let url = portal.forward();
    let id = launch(
        &url,
        serde_json::json!({
            "workflow": "ci-smoke",
            "variables": { "execution_duration": "10m" },
        }),
    );
    let run_namespace = format!("weir-{id}");
    ready_pods(&run_namespace, &["replay-source"]);

    // The portal's pod goes mid-run, and its `weir run` processes with it; the Deployment
    // starts another on the same volume.
    let deleted = sandbox.kubectl(&[
        "-n",
        &namespace,
        "delete",
        "pod",
        "-l",
        "app.kubernetes.io/instance=portal",
        "--wait=true",
    ]);
    assert!(deleted.status.success(), "{deleted:?}");
    let rolled = sandbox.kubectl(&[
        "-n",
        &namespace,
        "rollout",
        "status",
        "deploy/portal-weir",
        "--timeout=180s",
    ]);
    assert!(rolled.status.success(), "{rolled:?}");
    let url = portal.forward();

    // The new server found the run without its process: failed, saying why, and its
    // namespace deleted rather than left running unwatched.
    let run = get(&url, &format!("/api/runs/{id}")).expect("the run outlived the pod");
    assert_eq!(run["state"], "failed", "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("died"), "{run}");
    assert_namespace_goes(&run_namespace, Duration::from_secs(120));
}

/// Waits, at most `timeout`, until `namespace` is gone.
fn assert_namespace_goes(namespace: &str, timeout: Duration) {
    let sandbox = KubeSandbox::get();
    let gone = eventually(timeout, || {
        (!sandbox.namespace_exists(namespace)).then_some(())
    });
    assert!(gone.is_some(), "namespace {namespace} is left");
}
