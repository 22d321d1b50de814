//! Workflows on the Kubernetes runtime against a real control plane (`scripts/kube-sandbox`:
//! etcd, kube-apiserver, controller-manager, scheduler, kwok nodes). Pods turn Running and
//! Ready through kwok but no container runs, so these tests check what the API server sees —
//! namespaces, objects, labels, readiness, teardown — and that the run reports the data-path
//! results it could not see as unavailable instead of inventing them.

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

fn wait_exit(home: &WeirHomeDir, child: &mut Child) -> std::process::ExitStatus {
    eventually(Duration::from_secs(300), || child.try_wait().unwrap())
        .unwrap_or_else(|| panic!("weir run did not finish:\n{}", home.log()))
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
    eventually(Duration::from_secs(120), || {
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

#[test]
fn ci_smoke_on_kubernetes_labels_everything_and_leaves_no_namespace() {
    let home = WeirHomeDir::new();
    let sandbox = KubeSandbox::get();
    let mut child = start_run(
        &home,
        &[
            &shipped_workflow("ci-smoke.yaml"),
            "--set",
            "execution_duration=8s",
        ],
    );
    let id = run_id(&home);
    let namespace = format!("weir-{id}");

    let pods = ready_pods(
        &namespace,
        &[
            "zookeeper",
            "kafka",
            "topology-runner",
            "chart-server",
            "replay-source",
        ],
    );
    for pod in pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/name"] != "weir-job")
    {
        let labels = &pod["metadata"]["labels"];
        assert_eq!(labels["weir.dev/run"], id.as_str(), "{pod}");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "weir", "{pod}");
        assert!(labels["app.kubernetes.io/instance"]
            .as_str()
            .is_some_and(|i| i.starts_with("smoke-")));
    }
    let ns = sandbox
        .kubectl_json(&["get", "namespace", &namespace])
        .expect("the run's namespace exists while it runs");
    assert_eq!(ns["metadata"]["labels"]["weir.dev/run"], id.as_str());
    // The runner's topology travels in a ConfigMap with the instance's labels.
    let config = sandbox
        .kubectl_json(&["get", "configmap", "smoke-topology-files", "-n", &namespace])
        .expect("the topology ConfigMap exists");
    assert!(config["data"]["topology.yaml"]
        .as_str()
        .is_some_and(|t| t.contains("operators")));

    let status = wait_exit(&home, &mut child);
    let log = home.log();
    assert!(status.success(), "{log}");
    let run = home.run_record(&id);
    assert_eq!(run["state"], "succeeded", "{log}");
    // No container ran, so no count was seen: none may be reported, each gap is named.
    assert_eq!(run["topics"], serde_json::json!({}), "{run}");
    let unavailable = run["unavailable"].as_object().expect("unavailable results");
    for key in [
        "create-topics:topics",
        "wait:first-rates",
        "topics",
        "charts:smoke-charts",
    ] {
        assert!(
            unavailable.contains_key(key),
            "{key} missing from {unavailable:?}"
        );
    }
    assert!(log.contains("UNAVAILABLE topics"), "{log}");
    // Only a simulated backend may leave results unseen, and the run says it was one.
    assert!(
        run["simulated"]
            .as_str()
            .is_some_and(|s| s.contains("kwok")),
        "{run}"
    );
    let last = log
        .lines()
        .rev()
        .find(|l| l.contains(&format!("run {id} ")))
        .unwrap_or_default();
    assert!(last.contains("succeeded — SIMULATED"), "{last}");
    assert_namespace_gone(&namespace, &log);
}

#[test]
fn demo_workflow_on_kubernetes_runs_and_tears_down() {
    let home = WeirHomeDir::new();
    let mut child = start_run(
        &home,
        &[
            &shipped_workflow("bitcoin-yuan.yaml"),
            "--set",
            "execution_duration=3s",
        ],
    );
    let id = run_id(&home);
    let namespace = format!("weir-{id}");
    ready_pods(
        &namespace,
        &[
            "zookeeper",
            "kafka",
            "topology-runner",
            "chart-server",
            "http-source",
        ],
    );
    let status = wait_exit(&home, &mut child);
    let log = home.log();
    assert!(status.success(), "{log}");
    let run = home.run_record(&id);
    assert_eq!(run["state"], "succeeded");
    assert_eq!(run["backend"], "kubernetes", "{run}");
    assert_eq!(run["namespace"], namespace.as_str(), "{run}");
    assert!(run["unavailable"]["topics"].is_string(), "{run}");
    let deployments_seen = log.contains("topology-runner `bitcoin-topology-1` is ready")
        && log.contains("zookeeper `zookeeper-server-1` is ready");
    assert!(deployments_seen, "{log}");
    assert_namespace_gone(&namespace, &log);
}

#[test]
fn a_pod_that_never_becomes_ready_fails_the_run_naming_it_and_still_tears_down() {
    let home = WeirHomeDir::new();
    let file = home.path().join("too-big.yaml");
    std::fs::write(
        &file,
        "name: too-big\ntasks:\n  - name: zk\n    timeout: 10s\n    provision: { service: zookeeper, instance: big-zk, params: { cpu: \"64\" } }\n",
    )
    .unwrap();
    let mut child = start_run(&home, &[file.to_str().unwrap()]);
    let id = run_id(&home);
    let status = wait_exit(&home, &mut child);
    let log = home.log();
    assert!(!status.success(), "{log}");
    let run = home.run_record(&id);
    assert_eq!(run["state"], "failed");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("pod `big-zk-0` is not ready"), "{error}");
    assert!(error.contains("Insufficient cpu"), "{error}");
    assert_namespace_gone(&format!("weir-{id}"), &log);
}

#[test]
fn gc_deletes_the_namespace_of_a_killed_run() {
    let home = WeirHomeDir::new();
    let mut child = start_run(
        &home,
        &[
            &shipped_workflow("ci-smoke.yaml"),
            "--set",
            "execution_duration=5m",
        ],
    );
    let id = run_id(&home);
    let namespace = format!("weir-{id}");
    ready_pods(&namespace, &["replay-source"]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(KubeSandbox::get().namespace_exists(&namespace));

    let output = weir(&home, &["gc", "--backend", "kubernetes"])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("deleted namespace {namespace}")),
        "{stdout}"
    );
    assert_namespace_gone(&namespace, &home.log());
    assert_eq!(home.run_record(&id)["state"], "failed");
}

#[test]
fn up_and_down_manage_standalone_instances_in_their_namespace() {
    let home = WeirHomeDir::new();
    let sandbox = KubeSandbox::get();
    let namespace = format!("weir-test-{}", std::process::id());
    let up = weir(
        &home,
        &[
            "up",
            "--backend",
            "kubernetes",
            "--namespace",
            &namespace,
            "kafka",
            "--name",
            "k1",
            "--set",
            "mode=kraft",
        ],
    )
    .output()
    .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(String::from_utf8_lossy(&up.stdout).contains("k1 kafka ready"));
    let set = sandbox
        .kubectl_json(&["get", "statefulset", "k1", "-n", &namespace])
        .expect("the broker's StatefulSet");
    assert_eq!(set["status"]["readyReplicas"], 1);
    assert_eq!(set["metadata"]["labels"]["app.kubernetes.io/name"], "kafka");
    // Recorded like a local instance: `weir instances` lists it, checked against the cluster.
    let listed = instances(&home);
    let k1 = listed
        .iter()
        .find(|i| i["name"] == "k1")
        .unwrap_or_else(|| panic!("k1 is not listed: {listed:?}"));
    assert_eq!(k1["backend"], "kubernetes");
    assert_eq!(k1["namespace"], namespace.as_str());
    assert_eq!(k1["state"], "running");
    assert_eq!(k1["endpoint"], "k1:9092");

    let down = weir(
        &home,
        &[
            "down",
            "--backend",
            "kubernetes",
            "--namespace",
            &namespace,
            "k1",
        ],
    )
    .output()
    .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(sandbox
        .kubectl_json(&["get", "statefulset", "k1", "-n", &namespace])
        .is_none());
    assert!(
        instances(&home).iter().all(|i| i["name"] != "k1"),
        "a stopped instance is no longer listed"
    );
    sandbox.kubectl(&["delete", "namespace", &namespace, "--wait=false"]);
}

/// kwok's kubelet answers port-forwards and log reads as its ClusterPortForward and
/// ClusterLogs resources say; pointed at a real chart server and a real file on this machine,
/// they let a run's snapshots and logs travel the whole way: orchestrator → API server →
/// kubelet port-forward / log endpoints → the pod's "container".
#[test]
fn snapshots_and_logs_come_through_the_api_servers_port_forward_and_log_endpoints() {
    let home = WeirHomeDir::new();
    let sandbox = KubeSandbox::get();
    let charts = weir_tests::ChartServer::start(&[]);
    let window = serde_json::json!({
        "cmd": "forward", "win": "rates", "eid": "main", "opts": {}, "layout": {"title": "rates"},
        "data": [{"x": [1, 2, 3], "y": [7.0, 8.0, 9.0], "type": "scatter", "mode": "lines"}]
    });
    assert!(charts.post("/events", &window).status().is_success());
    let port = charts.url.rsplit(':').next().unwrap().to_string();
    let id = format!("rpf{}", std::process::id());
    let namespace = format!("weir-{id}");
    let log_file = home.path().join("chart-server.log");
    // The CRI log format, as a container runtime writes it.
    std::fs::write(
        &log_file,
        "2026-11-23T16:00:00.000000000Z stdout F chart server says hello\n",
    )
    .unwrap();
    let rules = format!(
        "kind: ClusterPortForward\napiVersion: kwok.x-k8s.io/v1alpha1\nmetadata: {{ name: {namespace} }}\nspec:\n  selector: {{ matchNamespaces: [{namespace}] }}\n  forwards:\n  - ports: [8097]\n    target: {{ port: {port}, address: 127.0.0.1 }}\n---\nkind: ClusterLogs\napiVersion: kwok.x-k8s.io/v1alpha1\nmetadata: {{ name: {namespace} }}\nspec:\n  selector: {{ matchNamespaces: [{namespace}] }}\n  logs:\n  - logsFile: {}\n    follow: false\n",
        log_file.display()
    );
    let rules_file = home.path().join("kwok-rules.yaml");
    std::fs::write(&rules_file, rules).unwrap();
    let applied = sandbox.kubectl(&["apply", "-f", rules_file.to_str().unwrap()]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );

    let workflow = home.path().join("charts-only.yaml");
    std::fs::write(
        &workflow,
        "name: charts-only\ntasks:\n  - name: charts\n    provision: { service: chart-server, instance: c1 }\n  - name: results\n    depends: [charts]\n    collect: { kafka: none }\n  - name: teardown\n    depends: [results]\n    teardown: {}\n",
    )
    .unwrap();
    let mut child = start_run(&home, &[workflow.to_str().unwrap(), "--run-id", &id]);
    let status = wait_exit(&home, &mut child);
    sandbox.kubectl(&["delete", "-f", rules_file.to_str().unwrap()]);
    let log = home.log();
    assert!(status.success(), "{log}");

    let run = home.run_record(&id);
    assert_eq!(run["unavailable"], serde_json::json!({}), "{log}");
    let artifacts = home.path().join("runs").join(&id);
    let snapshot = std::fs::read(artifacts.join("charts/c1/main-rates.png")).unwrap();
    assert!(
        snapshot.starts_with(b"\x89PNG"),
        "a PNG came through the port-forward"
    );
    let saved: Value = serde_json::from_slice(
        &std::fs::read(artifacts.join("charts/c1/main-rates.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["title"], "rates", "{saved}");
    assert_eq!(
        std::fs::read_to_string(artifacts.join("logs/c1.log")).unwrap(),
        "chart server says hello\n"
    );
    assert_namespace_gone(&namespace, &log);
}

#[test]
fn the_web_api_launches_a_run_on_kubernetes() {
    let home = WeirHomeDir::new();
    let port = weir_catalog::local::ports::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let workflows = repo_root().join("workflows");
    let log = home.path().join("serve.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = weir(
        &home,
        &[
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--workflows",
            workflows.to_str().unwrap(),
        ],
    )
    .env("WEIR_TOKENS", "kube-op=operator")
    .stdout(out.try_clone().unwrap())
    .stderr(out)
    .spawn()
    .unwrap();
    let _server = weir_tests::WeirProcess { child, log };
    let client = reqwest::blocking::Client::new();
    let mut last_answer = String::new();
    let launched: Value = eventually(Duration::from_secs(20), || {
        let response = client
            .post(format!("{url}/api/runs"))
            .bearer_auth("kube-op")
            .json(&serde_json::json!({
                "workflow": "ci-smoke",
                "backend": "kubernetes",
                "variables": { "execution_duration": "2s", "prefix": "webkube" }
            }))
            .send()
            .ok()?;
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap_or(Value::Null);
        last_answer = format!("{status} {body}");
        (status == 202).then_some(body)
    })
    .unwrap_or_else(|| panic!("weir serve refused the launch: {last_answer}"));
    let id = launched["id"].as_str().unwrap().to_string();
    let run = eventually(Duration::from_secs(180), || {
        let run: Value = client
            .get(format!("{url}/api/runs/{id}"))
            .send()
            .ok()?
            .json()
            .ok()?;
        (run["state"] == "succeeded" || run["state"] == "failed").then_some(run)
    })
    .expect("the launched run finishes");
    let run_log = std::fs::read_to_string(home.path().join("runs").join(&id).join("weir-run.log"))
        .unwrap_or_default();
    assert_eq!(run["state"], "succeeded", "{run_log}");
    assert!(
        run_log.contains(&format!("namespace `weir-{id}` created")),
        "{run_log}"
    );
    assert!(run["unavailable"]["topics"].is_string(), "{run}");
    assert_namespace_gone(&format!("weir-{id}"), &run_log);
}

#[test]
fn a_container_restarted_by_kubernetes_counts_against_the_restart_policy() {
    let home = WeirHomeDir::new();
    let sandbox = KubeSandbox::get();
    let mut child = start_run(
        &home,
        &[
            &shipped_workflow("ci-smoke.yaml"),
            "--set",
            "execution_duration=60s",
            "--set",
            "restarts=0",
        ],
    );
    let id = run_id(&home);
    let namespace = format!("weir-{id}");
    let pods = ready_pods(&namespace, &["topology-runner"]);
    let runner = pods
        .iter()
        .find(|p| p["metadata"]["labels"]["app.kubernetes.io/name"] == "topology-runner")
        .expect("the runner's pod");
    // What kubelet reports once it has restarted a container that was SIGKILLed: kwok runs
    // no kubelet, so the status is written as kubelet would write it.
    let mut containers = runner["status"]["containerStatuses"].clone();
    containers[0]["restartCount"] = 1.into();
    containers[0]["lastState"] =
        serde_json::json!({ "terminated": { "exitCode": 137, "reason": "Error" } });
    let patch = serde_json::json!({ "status": { "containerStatuses": containers } });
    let patched = sandbox.kubectl(&[
        "patch",
        "pod",
        runner["metadata"]["name"].as_str().unwrap(),
        "-n",
        &namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
    assert!(patched.status.success(), "{patched:?}");
    let patched_at = std::time::Instant::now();

    // Noticed within seconds: the run ends long before the 60 s the dataflow was to run.
    let status = wait_exit(&home, &mut child);
    let ended_after = patched_at.elapsed();
    let log = home.log();
    eprintln!("the run failed and was torn down {ended_after:.1?} after the restart");
    assert!(
        ended_after < Duration::from_secs(45),
        "{ended_after:?}\n{log}"
    );
    assert!(!status.success(), "{log}");
    let run = home.run_record(&id);
    assert_eq!(run["state"], "failed", "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    for expected in [
        "`smoke-topology`",
        "exit code 137 (Error)",
        "restarted by its backend",
        "more than its limit of 0",
    ] {
        assert!(error.contains(expected), "{expected} in {error}");
    }
    let events = run["events"].to_string();
    assert!(events.contains("restarted by its backend"), "{events}");
    assert_namespace_gone(&namespace, &log);
}
