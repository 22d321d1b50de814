//! Workflows on the Kubernetes runtime against the local sandbox (`scripts/kube-sandbox`:
//! etcd, kube-apiserver, controller-manager, scheduler, and a real node — containerd, kubelet,
//! kube-proxy, CoreDNS — running images built here). Pods really execute: these tests check
//! what the API server sees (namespaces, objects, labels, readiness, teardown), what the data
//! path produced (topic counts from Jobs, chart snapshots through port-forwards, logs), and
//! that nothing is left behind, in the cluster or in containerd.

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

fn wait_exit(home: &WeirHomeDir, child: &mut Child) -> std::process::ExitStatus {
    eventually(Duration::from_secs(420), || child.try_wait().unwrap())
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

/// Two runner pods share three partitions, and `weir scale` makes them three while the
/// replay flows; the replay keys every document with one series key, so the series stays in
/// one partition, in order, and every count is exact.
#[test]
fn ci_smoke_runs_in_real_pods_and_reports_every_result() {
    let home = WeirHomeDir::new();
    let sandbox = KubeSandbox::get();
    let mut child = start_run(
        &home,
        &[
            &shipped_workflow("ci-smoke.yaml"),
            // 156 documents at 100 ms: the replay flows for about 16 s, and the run counts
            // its topics after 25 s.
            "--set",
            "replay_interval=100ms",
            "--set",
            "execution_duration=25s",
            "--set",
            "partitions=3",
            "--set",
            "topology_replicas=2",
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
    let runners = (pods.iter())
        .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/name"] == "topology-runner")
        .count();
    assert_eq!(runners, 2, "one pod per runner replica");
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
        // Real containers on the real node, not kwok's.
        assert_eq!(pod["spec"]["nodeName"], "weir-node", "{pod}");
        assert!(
            pod["status"]["containerStatuses"][0]["containerID"]
                .as_str()
                .is_some_and(|c| c.starts_with("containerd://")),
            "{pod}"
        );
    }
    // A third runner pod joins the consumer group mid-stream.
    let scale = weir(
        &home,
        &[
            "scale",
            "smoke-topology",
            "--replicas",
            "3",
            "--run",
            &id,
            "--backend",
            "kubernetes",
        ],
    )
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&scale.stderr);
    assert!(scale.status.success(), "weir scale: {said}");
    assert!(said.contains("3 of 3 replicas ready"), "{said}");
    println!(
        "weir scale on Kubernetes: {}",
        said.lines().last().unwrap_or("")
    );
    let runners = sandbox.pods(&namespace, "app.kubernetes.io/name=topology-runner");
    assert_eq!(
        runners.len(),
        3,
        "three runner pods after scaling: {runners:?}"
    );
    let ns = sandbox
        .kubectl_json(&["get", "namespace", &namespace])
        .expect("the run's namespace exists while it runs");
    assert_eq!(ns["metadata"]["labels"]["weir.dev/run"], id.as_str());
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
    // Every result was seen: counted by Jobs that ran next to Kafka and reported.
    assert_eq!(run["unavailable"], serde_json::json!({}), "{run}");
    assert!(run["simulated"].is_null(), "{run}");
    let topics = &run["topics"];
    let closes = recorded_closes();
    let recorded = closes.len() as i64;
    assert_eq!(topics["smoke-raw"], recorded, "{topics}");
    assert_eq!(topics["smoke-rates"], recorded, "{topics}");
    assert_eq!(topics["smoke-variations"], recorded - 1, "{topics}");
    assert_eq!(
        topics["smoke-notifications"],
        notifications_implied(&closes, 50.0),
        "{topics}"
    );
    assert_eq!(topics["smoke-errors"], 0, "{topics}");
    // Chart snapshots came through the API server's port-forward, logs through its log API.
    let artifacts = home.path().join("runs").join(&id);
    let charts = std::fs::read_dir(artifacts.join("charts/smoke-charts"))
        .expect("the chart server's snapshots")
        .flatten()
        .map(|e| e.path())
        .collect::<Vec<_>>();
    let png = charts
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap_or_else(|| panic!("no PNG among {charts:?}"));
    assert!(std::fs::read(png).unwrap().starts_with(b"\x89PNG"));
    let runner_log = std::fs::read_to_string(artifacts.join("logs/smoke-topology.log"))
        .expect("the runner's log");
    assert!(!runner_log.trim().is_empty());
    let last = last_line(&log, &id);
    assert!(last.contains("succeeded"), "{last}");
    assert!(!last.contains("SIMULATED"), "{last}");
    assert_nothing_left(&namespace, &log);
}

#[test]
fn demo_workflow_in_real_pods_polls_this_machine_and_notifies_exactly() {
    let home = WeirHomeDir::new();
    let sandbox = KubeSandbox::get();
    let (url, hits) =
        weir_tests::ticker_server_on(&sandbox.host_address(), weir_tests::demo_ticker_bodies(), 0);
    let started = std::time::Instant::now();
    let mut child = start_run(
        &home,
        &[
            &shipped_workflow("bitcoin-yuan.yaml"),
            "--set",
            &format!("source_url={url}"),
            "--set",
            "poll_interval=200ms",
            "--set",
            "execution_duration=4s",
            // The run waits for approval after its 4 s, with the source still polling: the
            // test approves once it has seen the whole fixture served, however slowly a
            // loaded machine polled during those 4 s.
            "--set",
            "automatic_kill=false",
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
    let all_ready = started.elapsed();
    eventually(Duration::from_secs(240), || {
        let run: Value = serde_json::from_str(&home.ok(&["runs", "show", &id, "--json"])).ok()?;
        (run["state"] == "awaiting-approval").then_some(())
    })
    .unwrap_or_else(|| panic!("the run never awaited approval:\n{}", home.log()));
    // The source polls again only once Kafka acknowledged the document of its last poll, so
    // one poll more than the fixture holds means every rate of it was published.
    let rates = &weir_tests::DEMO_RATES;
    eventually(Duration::from_secs(120), || {
        (hits.load(std::sync::atomic::Ordering::SeqCst) as usize > rates.len()).then_some(())
    })
    .unwrap_or_else(|| panic!("the source never polled the whole fixture:\n{}", home.log()));
    assert_eq!(
        home.ok(&["approve", &id]).trim(),
        format!("approved run {id}")
    );
    let status = wait_exit(&home, &mut child);
    let log = home.log();
    assert!(status.success(), "{log}");
    let run = home.run_record(&id);
    assert_eq!(run["state"], "succeeded", "{log}");
    assert_eq!(run["backend"], "kubernetes", "{run}");
    assert_eq!(run["unavailable"], serde_json::json!({}), "{run}");
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) > 0);
    let topics = &run["topics"];
    let raw = topics["BitCoinExchangeTopic"].as_i64().unwrap();
    assert!(raw >= rates.len() as i64, "{topics}");
    assert_eq!(topics["rates"], raw, "{topics}");
    assert_eq!(topics["variations"], raw - 1, "{topics}");
    assert_eq!(
        topics["notifications"],
        notifications_implied(rates, 50.0),
        "{topics}"
    );
    assert_eq!(topics["errors"], 0, "{topics}");
    let teardown = log
        .lines()
        .find(|l| l.contains("deleting namespace"))
        .and(log.lines().find(|l| l.contains("is gone")))
        .is_some();
    assert!(teardown, "{log}");
    eprintln!(
        "real node: all pods of the demo ready {all_ready:.1?} after `weir run`; whole run \
         {:.1?}",
        started.elapsed()
    );
    assert_nothing_left(&namespace, &log);
}

/// Runs a one-task workflow that must fail; returns the run's error once its namespace and
/// containers are gone.
/// Runs a workflow of the given tasks (with `files` written beside it) and returns the error of
/// the failed run, after checking that it failed and left nothing behind.
fn failed_run_error(name: &str, task: &str, files: &[(&str, &str)]) -> String {
    let home = WeirHomeDir::new();
    for (file, content) in files {
        std::fs::write(home.path().join(file), content).unwrap();
    }
    let file = home.path().join(format!("{name}.yaml"));
    std::fs::write(&file, format!("name: {name}\ntasks:\n{task}")).unwrap();
    let mut child = start_run(&home, &[file.to_str().unwrap()]);
    let id = run_id(&home);
    let status = wait_exit(&home, &mut child);
    let log = home.log();
    assert!(!status.success(), "{log}");
    let run = home.run_record(&id);
    assert_eq!(run["state"], "failed");
    assert_nothing_left(&format!("weir-{id}"), &log);
    run["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn an_image_the_node_does_not_have_fails_the_run_naming_the_image() {
    // The task's timeout is long: the run must give up as soon as the image is known to be
    // missing, not when the timeout ends.
    let error = failed_run_error(
        "missing-image",
        "  - name: charts\n    timeout: 10m\n    provision: { service: chart-server, instance: c1, params: { image: \"localhost/weir-sandbox/missing:0\" } }\n",
        &[],
    );
    assert!(error.contains("cannot become ready"), "{error}");
    assert!(
        error.contains("ErrImagePull") || error.contains("ImagePullBackOff"),
        "{error}"
    );
    assert!(
        error.contains("localhost/weir-sandbox/missing:0"),
        "{error}"
    );
}

#[test]
fn a_container_that_keeps_crashing_fails_the_run_with_its_last_log_lines() {
    // The replay source refuses a recording with a line that is not JSON and exits; kubelet
    // restarts it into CrashLoopBackOff. The run must stop there, quoting the source's own
    // error from the container's log, long before the task's timeout.
    let error = failed_run_error(
        "crash-loop",
        "  - name: kafka\n    provision: { service: kafka, instance: k1, params: { mode: kraft } }\n  - name: replay\n    depends: [kafka]\n    timeout: 10m\n    start-source: { instance: bad-replay, kafka: k1, topic: raw, kind: replay, file: broken.jsonl }\n",
        &[("broken.jsonl", "{\"Close\": 1}\nthis is not json\n")],
    );
    assert!(error.contains("cannot become ready"), "{error}");
    assert!(error.contains("CrashLoopBackOff"), "{error}");
    assert!(error.contains("last log lines before crashing"), "{error}");
    assert!(error.contains("line 2"), "{error}");
}

#[test]
fn a_pod_that_never_becomes_ready_fails_the_run_naming_it_and_still_tears_down() {
    let error = failed_run_error(
        "too-big",
        "  - name: zk\n    timeout: 10s\n    provision: { service: zookeeper, instance: big-zk, params: { cpu: \"64\" } }\n",
        &[],
    );
    assert!(error.contains("pod `big-zk-0` is not ready"), "{error}");
    assert!(error.contains("Insufficient cpu"), "{error}");
}

#[test]
fn ctrl_c_cancels_a_run_counts_its_topics_and_leaves_nothing() {
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
    // SAFETY: signalling our own child, as a terminal's Ctrl-C does.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = wait_exit(&home, &mut child);
    let log = home.log();
    assert!(!status.success(), "{log}");
    let run = home.run_record(&id);
    assert_eq!(run["state"], "cancelled", "{log}");
    assert!(
        run["topics"]["smoke-raw"].as_i64().is_some(),
        "counted before teardown: {run}"
    );
    assert_nothing_left(&namespace, &log);
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
    assert_nothing_left(&namespace, &home.log());
    assert_eq!(home.run_record(&id)["state"], "failed");
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

#[test]
fn up_and_down_manage_standalone_instances_in_their_namespace() {
    let home = WeirHomeDir::new();
    let sandbox = KubeSandbox::get();
    let namespace = format!("weir-test-{}", std::process::id());
    let up = up_in(
        &home,
        &namespace,
        &["kafka", "--name", "k1", "--set", "mode=kraft"],
    );
    assert!(up.contains("k1 kafka ready"), "{up}");
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

/// `weir serve` reaching the sandbox, with an operator token `kube-op`; its URL and process.
fn serve(home: &WeirHomeDir) -> (String, weir_tests::WeirProcess) {
    let port = weir_supervisor::ports::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let workflows = repo_root().join("workflows");
    let log = home.path().join("serve.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = weir(
        home,
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
    (url, weir_tests::WeirProcess { child, log })
}

#[test]
fn the_web_ui_reads_the_log_of_and_stops_an_instance_in_pods() {
    let home = WeirHomeDir::new();
    let sandbox = KubeSandbox::get();
    let namespace = format!("weir-web-{}", std::process::id());
    up_in(&home, &namespace, &["zookeeper", "--name", "webzk"]);
    let (url, server) = serve(&home);
    let client = reqwest::blocking::Client::new();
    // Logs: the pod's log, read through the cluster's API by the runtime that runs it.
    let log = eventually(Duration::from_secs(30), || {
        let response = client
            .get(format!("{url}/api/instances/webzk/log"))
            .send()
            .ok()?;
        (response.status() == 200).then(|| response.text().unwrap_or_default())
    })
    .unwrap_or_else(|| panic!("no log of the cluster instance: {}", server.log_text()));
    assert!(log.to_lowercase().contains("zookeeper"), "{log}");
    // Stop: an operator's DELETE removes its workload and its record.
    let refused = client
        .delete(format!("{url}/api/instances/webzk"))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 401, "stopping needs a token");
    let stopped = client
        .delete(format!("{url}/api/instances/webzk"))
        .bearer_auth("kube-op")
        .send()
        .unwrap();
    assert_eq!(stopped.status(), 202, "{}", server.log_text());
    eventually(Duration::from_secs(120), || {
        let gone = sandbox
            .pods(&namespace, "app.kubernetes.io/instance=webzk")
            .is_empty()
            && instances(&home).iter().all(|i| i["name"] != "webzk");
        gone.then_some(())
    })
    .unwrap_or_else(|| panic!("the instance was not stopped: {}", server.log_text()));
    let missing = client
        .get(format!("{url}/api/instances/webzk/log"))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    sandbox.kubectl(&["delete", "namespace", &namespace, "--wait=false"]);
}

#[test]
fn the_web_api_launches_a_run_on_kubernetes() {
    let home = WeirHomeDir::new();
    let (url, _server) = serve(&home);
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
    let run = eventually(Duration::from_secs(400), || {
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
    assert_eq!(run["unavailable"], serde_json::json!({}), "{run}");
    assert!(
        run["topics"]["smoke-raw"].as_i64().is_some_and(|n| n > 0),
        "{run}"
    );
    assert_nothing_left(&format!("weir-{id}"), &run_log);
}

/// SIGKILLs the main process of the service's pod among `pods`, through containerd, as a crash
/// would: kubelet sees the container die and restarts it.
fn sigkill_container_of(pods: &[Value], service: &str) {
    let pod = pods
        .iter()
        .find(|p| p["metadata"]["labels"]["app.kubernetes.io/name"] == service)
        .unwrap_or_else(|| panic!("no pod of {service}"));
    KubeSandbox::get().sigkill_container(pod);
}

/// The rates the run's chart server drew, from the snapshot saved with the run.
fn charted_rates(home: &WeirHomeDir, id: &str) -> Vec<f64> {
    let file = home
        .path()
        .join("runs")
        .join(id)
        .join("charts/smoke-charts/main-smoke-rates.json");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let view: Value = serde_json::from_str(&text).unwrap();
    view["series"][0]["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter_map(|point| point[1].as_f64())
        .collect()
}

#[test]
fn a_kafka_pod_killed_mid_run_comes_back_and_every_record_keeps_its_output() {
    // What the run does: kubelet restarts the broker's container in the same pod, its data
    // (an emptyDir) survives, the restart counts against the task's policy (ci-smoke allows
    // 3; ZooKeeper may still hold the dead broker's session, so a second, quick restart can
    // follow), the source and runner retry until the broker is back, and the run succeeds
    // with every record processed.
    let home = WeirHomeDir::new();
    let mut child = start_run(
        &home,
        &[
            &shipped_workflow("ci-smoke.yaml"),
            "--set",
            "execution_duration=60s",
            "--set",
            "replay_interval=200ms",
        ],
    );
    let id = run_id(&home);
    let namespace = format!("weir-{id}");
    // The recording takes about 31 s at this pace: the broker dies while it streams, once the
    // first rates are through and the run's 60 s have begun (so the results are read long
    // after the broker is back).
    eventually(Duration::from_secs(240), || {
        let run = home.run_record(&id);
        run["tasks"]
            .as_array()?
            .iter()
            .any(|t| t["name"] == "run" && t["state"] == "running")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the run never reached its wait:\n{}", home.log()));
    let pods = ready_pods(&namespace, &["kafka"]);
    sigkill_container_of(&pods, "kafka");

    let status = wait_exit(&home, &mut child);
    let log = home.log();
    assert!(status.success(), "{log}");
    let run = home.run_record(&id);
    assert_eq!(run["state"], "succeeded", "{log}");
    assert_eq!(run["unavailable"], serde_json::json!({}), "{run}");
    let events = run["events"].to_string();
    assert!(
        events.contains("smoke-kafka") && events.contains("exit code 137"),
        "{events}"
    );
    // At-least-once: every record has its outputs; a retried one may add a duplicate.
    let closes = recorded_closes();
    let recorded = closes.len() as i64;
    let topics = &run["topics"];
    assert_eq!(topics["smoke-raw"], recorded, "{topics}");
    assert!(topics["smoke-rates"].as_i64() >= Some(recorded), "{topics}");
    assert!(
        topics["smoke-variations"].as_i64() >= Some(recorded - 1),
        "{topics}"
    );
    assert_eq!(topics["smoke-errors"], 0, "{topics}");
    let as_set =
        |values: &[f64]| -> BTreeSet<String> { values.iter().map(|v| v.to_string()).collect() };
    let charted = charted_rates(&home, &id);
    assert!(charted.len() >= closes.len(), "{} points", charted.len());
    assert_eq!(
        as_set(&charted),
        as_set(&closes),
        "the chart holds every rate"
    );
    assert_nothing_left(&namespace, &log);
}

#[test]
fn a_container_restarted_by_kubernetes_counts_against_the_restart_policy() {
    let home = WeirHomeDir::new();
    let mut child = start_run(
        &home,
        &[
            &shipped_workflow("ci-smoke.yaml"),
            "--set",
            "execution_duration=240s",
            "--set",
            "restarts=0",
        ],
    );
    let id = run_id(&home);
    let namespace = format!("weir-{id}");
    let pods = ready_pods(&namespace, &["topology-runner"]);
    sigkill_container_of(&pods, "topology-runner");
    let killed_at = std::time::Instant::now();

    // Noticed while the dataflow runs: the run ends, torn down, long before the 240 s the
    // dataflow was to run (how long after is printed, not asserted: this machine is shared).
    let status = wait_exit(&home, &mut child);
    let ended_after = killed_at.elapsed();
    let log = home.log();
    eprintln!("the run failed and was torn down {ended_after:.1?} after the restart");
    assert!(
        ended_after < Duration::from_secs(150),
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
