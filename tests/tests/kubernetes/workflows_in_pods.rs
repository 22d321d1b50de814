//! Workflows whose every task runs in pods: the CI smoke workflow and the Bitcoin demo, with every
//! result they report checked against what the cluster saw.

use super::*;

/// Two runner pods share three partitions, and `weir scale` makes them three while the
/// replay flows; the replay keys every document with one series key, so the series stays in
/// one partition, in order, and every count is exact.
#[test]
fn ci_smoke_runs_in_real_pods_and_reports_every_result() {
    let home = WeirHomeDir::new();
    let sandbox = KubeSandbox::get();
    // 156 documents at 100 ms: the replay flows for about 16 s, and the run counts its topics
    // after 25 s.
    let (mut child, id, namespace) = start_ci_smoke(
        &home,
        &[
            "replay_interval=100ms",
            "execution_duration=25s",
            "partitions=3",
            "topology_replicas=2",
        ],
    );

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

    // Every result was seen: counted by Jobs that ran next to Kafka and reported.
    let (run, log) = succeeded_with_every_result_seen(&home, &mut child, &id);
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
            // The candles dataflow in a runner pod of its own beside the reference one, with
            // candles of one second so that several close while the source polls.
            "--set",
            "candles=true",
            "--set",
            "candle_size=1s",
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
    // Candles closed in their pod: at least one, and fewer than the rates they summarize (a
    // window closes only when a later rate comes).
    let candles = topics["candles"].as_i64().unwrap_or(0);
    assert!((1..raw).contains(&candles), "{topics}");
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

/// The shipped CDC workflow in pods: Kafka, two runner pods, the change-event source (its file
/// from a ConfigMap) and the `verify-table` Job, which compares the target with the same
/// change events mounted from a ConfigMap of the run's namespace. The run succeeds only with
/// the target verified and every result seen.
#[test]
fn the_cdc_workflow_runs_in_real_pods_and_verifies_its_target_there() {
    let home = WeirHomeDir::new();
    let workflow = shipped_workflow("cdc-sync.yaml");
    let mut child = start_run(&home, &[workflow.as_str(), "--set", "prefix=cdcpods"]);
    let id = run_id(&home);
    let (run, log) = succeeded_with_every_result_seen(&home, &mut child, &id);
    assert!(run["simulated"].is_null(), "{run}");
    assert_eq!(run["topics"]["cdc-errors"], 8, "the poison lines: {run}");
    assert_eq!(run["topics"]["cdc-dead-letters"], 0, "{run}");
    assert!(log.contains("every key matches"), "{log}");
}
