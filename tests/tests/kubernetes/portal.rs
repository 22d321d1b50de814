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

#[test]
fn the_helm_charts_portal_launches_a_run_in_pods_that_sees_every_result() {
    let sandbox = KubeSandbox::get();
    let mut portal = Installed {
        namespace: format!("weir-portal-{}", std::process::id()),
        forward: None,
    };
    let chart = repo_root().join("deploy/helm/weir");
    let installed = portal.helm(&[
        "install",
        "portal",
        chart.to_str().unwrap(),
        "--create-namespace",
        "--set",
        "auth.tokens.operator=portal-operator",
        // The sandbox has no volume provisioner; the image was loaded into the node.
        "--set",
        "persistence.enabled=false",
        "--set",
        "image.pullPolicy=Never",
        "--wait",
        "--timeout",
        "180s",
    ]);
    assert!(
        installed.status.success(),
        "helm install: {}{}",
        String::from_utf8_lossy(&installed.stdout),
        String::from_utf8_lossy(&installed.stderr)
    );
    let port = weir_supervisor::ports::free_port().unwrap();
    portal.forward = Some(
        Command::new(repo_root().join("scripts/kube-sandbox"))
            .args(["kubectl", "-n", &portal.namespace, "port-forward"])
            .args(["service/portal-weir", &format!("{port}:80")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl port-forward"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::new();
    let get = |path: &str| -> Option<Value> {
        let response = (client.get(format!("{url}{path}")))
            .bearer_auth("portal-operator")
            .send()
            .ok()?;
        response
            .status()
            .is_success()
            .then(|| response.json().ok())?
    };
    let catalog = eventually(Duration::from_secs(30), || get("/api/catalog"))
        .expect("the portal did not answer through its Service");
    assert_eq!(catalog["backends"], serde_json::json!(["kubernetes"]));

    let launched: Value = (client.post(format!("{url}/api/runs")))
        .bearer_auth("portal-operator")
        .json(&serde_json::json!({ "workflow": "ci-smoke" }))
        .send()
        .expect("POST /api/runs")
        .json()
        .expect("the launch's answer");
    let id = launched["id"].as_str().expect("a run id").to_string();
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
    assert!(
        eventually(Duration::from_secs(60), || sandbox
            .kubectl_json(&["get", "namespace", &namespace])
            .is_none()
            .then_some(()))
        .is_some(),
        "namespace {namespace} is left"
    );
}
