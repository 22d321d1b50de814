//! Workflows on the Kubernetes runtime against the local sandbox (`scripts/kube-sandbox`:
//! etcd, kube-apiserver, controller-manager, scheduler, and a real node — containerd, kubelet,
//! kube-proxy, CoreDNS — running images built here). Pods really execute: these tests check
//! what the API server sees (namespaces, objects, labels, readiness, teardown), what the data
//! path produced (topic counts from Jobs, chart snapshots through port-forwards, logs), and
//! that nothing is left behind, in the cluster or in containerd.
//!
//! One test binary (one sandbox, tests in series), split by what each part tests.

mod failures;
mod faults;
mod gc;
mod portal;
mod standalone;
mod web_actions;
mod workflows_in_pods;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use weir_tests::{eventually, repo_root, shipped_workflow, KubeSandbox, WeirHomeDir};

fn weir(home: &WeirHomeDir, args: &[&str]) -> Command {
    let mut command = home.command(args);
    command.env("KUBECONFIG", &KubeSandbox::get().kubeconfig);
    command
}

/// `weir instances --json`, which asks the sandbox about the instances recorded there.
fn instances(home: &WeirHomeDir) -> Vec<serde_json::Value> {
    let output = weir(home, &["instances", "--json"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("instances JSON")
}

fn start_run(home: &WeirHomeDir, args: &[&str]) -> Child {
    home.spawn_logged(weir(
        home,
        &[&["run", "--backend", "kubernetes"], args].concat(),
    ))
}

/// A run of the shipped ci-smoke workflow in pods with `sets` (`NAME=VALUE`), once it has an id:
/// its process, its id and its namespace.
fn start_ci_smoke(home: &WeirHomeDir, sets: &[&str]) -> (Child, String, String) {
    let workflow = shipped_workflow("ci-smoke.yaml");
    let mut args = vec![workflow.as_str()];
    for set in sets {
        args.extend(["--set", set]);
    }
    let child = start_run(home, &args);
    let id = run_id(home);
    let namespace = format!("weir-{id}");
    (child, id, namespace)
}

fn wait_exit(home: &WeirHomeDir, child: &mut Child) -> std::process::ExitStatus {
    eventually(Duration::from_secs(420), || child.try_wait().unwrap())
        .unwrap_or_else(|| panic!("weir run did not finish:\n{}", home.log()))
}

/// Waits for the run `id` to end and requires it to have succeeded with every result seen (no
/// figure unavailable); returns its record and the output of `weir run`.
fn succeeded_with_every_result_seen(
    home: &WeirHomeDir,
    child: &mut Child,
    id: &str,
) -> (Value, String) {
    let status = wait_exit(home, child);
    let log = home.log();
    assert!(status.success(), "{log}");
    let run = home.run_record(id);
    assert_eq!(run["state"], "succeeded", "{log}");
    assert_eq!(run["unavailable"], serde_json::json!({}), "{run}");
    (run, log)
}

/// The id of the single run of this home, once it is recorded.
fn run_id(home: &WeirHomeDir) -> String {
    eventually(Duration::from_secs(30), || {
        let runs: Vec<Value> = serde_json::from_str(&home.ok(&["runs", "--json"])).ok()?;
        runs.first()?["id"].as_str().map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no run recorded:\n{}", home.log()))
}

/// Waits until the run's namespace holds ready pods of every service named, and returns them.
fn ready_pods(namespace: &str, services: &[&str]) -> Vec<Value> {
    let sandbox = KubeSandbox::get();
    // Real pods: images unpacked, JVMs started, readiness probes passed.
    eventually(Duration::from_secs(240), || {
        let pods = sandbox.kubectl_json(&["get", "pods", "-n", namespace])?;
        let pods = pods["items"].as_array()?.clone();
        let ready = |pod: &Value| {
            pod["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        };
        services
            .iter()
            .all(|service| {
                pods.iter().any(|pod| {
                    pod["metadata"]["labels"]["app.kubernetes.io/name"] == *service && ready(pod)
                })
            })
            .then_some(pods)
    })
    .unwrap_or_else(|| panic!("namespace {namespace} never held ready pods of {services:?}"))
}

fn assert_namespace_gone(namespace: &str, log: &str) {
    assert!(
        !KubeSandbox::get().namespace_exists(namespace),
        "namespace {namespace} is still there after the run:\n{log}"
    );
}

/// The Close column of the recording ci-smoke replays, in order.
fn recorded_closes() -> Vec<f64> {
    let text = std::fs::read_to_string(repo_root().join("workflows/data/btcusd-monthly.csv"))
        .expect("the recording");
    text.lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(4)?.parse().ok())
        .collect()
}

/// The variations above `threshold` (absolute) between consecutive values.
fn notifications_implied(values: &[f64], threshold: f64) -> i64 {
    values
        .windows(2)
        .filter(|w| (w[1] - w[0]).abs() > threshold)
        .count() as i64
}

/// The run's last line, `run ID STATE...`.
fn last_line(log: &str, id: &str) -> String {
    log.lines()
        .rev()
        .find(|l| l.contains(&format!("run {id} ")))
        .unwrap_or_default()
        .to_string()
}

/// Nothing of the run is left: not its namespace, and — once kubelet has collected the
/// stopped containers of deleted pods (its garbage collection runs every minute) — not a
/// container in containerd.
fn assert_nothing_left(namespace: &str, log: &str) {
    assert_namespace_gone(namespace, log);
    let sandbox = KubeSandbox::get();
    let mut left = Vec::new();
    let gone = eventually(Duration::from_secs(150), || {
        left = sandbox.containers_of(namespace);
        left.is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "containerd still holds {left:?} of {namespace}"
    );
}

/// `weir up --backend kubernetes --namespace NAMESPACE ARGS...`, which must succeed; its stdout.
fn up_in(home: &WeirHomeDir, namespace: &str, args: &[&str]) -> String {
    let up = weir(
        home,
        &[
            &["up", "--backend", "kubernetes", "--namespace", namespace],
            args,
        ]
        .concat(),
    )
    .output()
    .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    String::from_utf8_lossy(&up.stdout).into_owned()
}
