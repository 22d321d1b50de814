//! The Kubernetes sandbox the cluster tests run against (`scripts/kube-sandbox`).

use std::path::PathBuf;

use crate::*;

/// The local Kubernetes control plane (`scripts/kube-sandbox up`: etcd, kube-apiserver,
/// controller-manager, scheduler and kwok nodes), started once per test binary and left
/// running for the next one.
#[derive(Debug)]
pub struct KubeSandbox {
    pub kubeconfig: PathBuf,
}

impl KubeSandbox {
    pub fn get() -> &'static KubeSandbox {
        static SANDBOX: std::sync::OnceLock<KubeSandbox> = std::sync::OnceLock::new();
        SANDBOX.get_or_init(|| {
            let output = std::process::Command::new(repo_root().join("scripts/kube-sandbox"))
                .arg("up")
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("run scripts/kube-sandbox up");
            assert!(
                output.status.success(),
                "scripts/kube-sandbox up failed ({})",
                output.status
            );
            let stdout = String::from_utf8_lossy(&output.stdout);
            let kubeconfig =
                PathBuf::from(stdout.lines().last().expect("a kubeconfig path").trim());
            assert!(
                kubeconfig.is_file(),
                "{} is not a file",
                kubeconfig.display()
            );
            KubeSandbox { kubeconfig }
        })
    }

    /// `kubectl ARGS...` against the sandbox, to completion.
    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(repo_root().join("scripts/kube-sandbox"))
            .arg("kubectl")
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// `kubectl ARGS... -o json`, parsed; `None` when kubectl fails (e.g. NotFound).
    pub fn kubectl_json(&self, args: &[&str]) -> Option<serde_json::Value> {
        let output = self.kubectl(&[args, &["-o", "json"]].concat());
        output
            .status
            .success()
            .then(|| serde_json::from_slice(&output.stdout).expect("kubectl JSON"))
    }

    /// The pods of `namespace` that match the label `selector` (`key=value[,...]`).
    pub fn pods(&self, namespace: &str, selector: &str) -> Vec<serde_json::Value> {
        let pods = self
            .kubectl_json(&["get", "pods", "-n", namespace, "-l", selector])
            .unwrap_or_else(|| panic!("cannot list the pods {selector} in {namespace}"));
        pods["items"].as_array().cloned().unwrap_or_default()
    }

    /// The address by which pods reach this machine: the real node's internal IP (the
    /// gateway of its pod bridge).
    pub fn host_address(&self) -> String {
        let node = self
            .kubectl_json(&["get", "nodes", "-l", "weir.dev/node=real"])
            .expect("listing nodes");
        node["items"][0]["status"]["addresses"]
            .as_array()
            .and_then(|addresses| addresses.iter().find(|a| a["type"] == "InternalIP"))
            .and_then(|a| a["address"].as_str())
            .expect("the sandbox has a real node with an internal IP")
            .to_string()
    }

    /// The containers containerd still holds for pods of `namespace` (its own listing).
    pub fn containers_of(&self, namespace: &str) -> Vec<String> {
        let output = std::process::Command::new(repo_root().join("scripts/kube-node"))
            .args([
                "ctr",
                "containers",
                "ls",
                "-q",
                &format!("labels.\"io.kubernetes.pod.namespace\"=={namespace}"),
            ])
            .output()
            .expect("run scripts/kube-node ctr");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// SIGKILLs the (first) container of `pod`, a pod as `kubectl get -o json` shows it,
    /// through containerd: the process dies as in a crash, and kubelet sees it exit.
    pub fn sigkill_container(&self, pod: &serde_json::Value) {
        let container = pod["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .and_then(|id| id.strip_prefix("containerd://"))
            .unwrap_or_else(|| panic!("no container id in {pod}"));
        let killed = std::process::Command::new(repo_root().join("scripts/kube-node"))
            .args(["ctr", "tasks", "kill", "--signal", "SIGKILL", container])
            .output()
            .expect("run scripts/kube-node ctr");
        assert!(killed.status.success(), "{killed:?}");
    }

    /// Whether a namespace exists (in any phase).
    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.kubectl_json(&["get", "namespace", namespace])
            .is_some()
    }
}
