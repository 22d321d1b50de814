//! Whole workflows run by the real `weir run`, with real ZooKeeper, Kafka, runner and sources.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use weir_supervisor::process::alive;
use weir_tests::{
    eventually, read_topic, repo_root, shipped_workflow, ticker_server, ticker_server_down_first,
    wait_exit, WeirHomeDir,
};

fn only_run(home: &WeirHomeDir) -> Value {
    current_run(home).expect("exactly one run is recorded")
}

/// The single run of this home with its tasks, once it is recorded.
fn current_run(home: &WeirHomeDir) -> Option<Value> {
    let runs: Vec<Value> = serde_json::from_str(&home.ok(&["runs", "--json"])).ok()?;
    let [run] = runs.as_slice() else { return None };
    let id = run["id"].as_str()?.to_string();
    Some(home.run_record(&id))
}

/// Waits until the run is in `state` and returns it.
fn wait_for_state(home: &WeirHomeDir, state: &str, timeout: Duration) -> Value {
    eventually(timeout, || {
        let runs: Vec<Value> = serde_json::from_str(&home.ok(&["runs", "--json"])).ok()?;
        runs.into_iter().find(|r| r["state"] == state)
    })
    .unwrap_or_else(|| panic!("no run reached `{state}`:\n{}", home.log()))
}

fn task_state<'a>(run: &'a Value, name: &str) -> &'a str {
    run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap()["state"]
        .as_str()
        .unwrap()
}

fn assert_nothing_left(home: &WeirHomeDir) {
    assert!(
        home.instances().is_empty(),
        "instances left: {:?}",
        home.instances()
    );
    let dir = home.path().join("instances");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "instance directories left: {left:?}");
}

#[test]
fn shipped_workflows_validate() {
    let home = WeirHomeDir::new();
    for entry in std::fs::read_dir(repo_root().join("workflows"))
        .unwrap()
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = home.ok(&["validate", path.to_str().unwrap()]);
            assert!(out.contains("is valid"), "{out}");
        }
    }
}

#[test]
fn validate_reports_file_line_column_and_starts_nothing() {
    let home = WeirHomeDir::new();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(shipped_workflow("ci-smoke.yaml"))
        .unwrap()
        .replace("\"${execution_duration}\"", "\"${execution_duraton}\"");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, &text).unwrap();
    let output = home.run(&["validate", bad.to_str().unwrap(), "--set", "threshold=-3"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (line, column) = (text.lines().enumerate())
        .find_map(|(n, l)| Some((n + 1, l.find("${execution_duraton}")? + 1)))
        .expect("the misspelt reference");
    assert!(
        stderr.contains(&format!(
            "bad.yaml:{line}:{column}: unknown variable `execution_duraton`"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("variable `threshold` (--set): `-3`: must be at least 0"),
        "{stderr}"
    );
    // `weir run` refuses the same file before starting anything.
    let output = home.run(&["run", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(home.instances().is_empty());
    assert_eq!(home.ok(&["runs", "--json"]).trim(), "[]");
}

use weir_tests::DEMO_RATES as RATES;

#[test]
fn demo_workflow_polls_live_source_and_waits_for_approval_before_teardown() {
    let home = WeirHomeDir::new();
    let (url, _hits) = ticker_server(weir_tests::demo_ticker_bodies());
    let mut command = home.command(&[
        "run",
        &shipped_workflow("bitcoin-yuan.yaml"),
        "--set",
        &format!("source_url={url}"),
        "--set",
        "poll_interval=200ms",
        "--set",
        "execution_duration=4s",
        "--set",
        "automatic_kill=false",
        "--set",
        "zookeeper_instance_name=demo-zk",
        "--set",
        "kafka_instance_name=demo-kafka",
    ]);
    // As `make demo` does: the web UI showing the run is named where to follow and approve.
    command.env("WEIR_WEB_UI", "http://127.0.0.1:8080/");
    let mut run = home.spawn_logged(command);
    let waiting = wait_for_state(&home, "awaiting-approval", Duration::from_secs(120));
    let page = format!(
        "http://127.0.0.1:8080/#/runs/{}",
        waiting["id"].as_str().unwrap()
    );
    // The approval line follows the state change by a moment.
    let log = eventually(Duration::from_secs(10), || {
        let log = home.log();
        log.contains(&format!("or in the web UI: {page}"))
            .then_some(log)
    })
    .unwrap_or_else(|| panic!("no web UI link to approve at:\n{}", home.log()));
    assert!(
        log.contains(&format!("WEB UI: follow this run at {page}")),
        "{log}"
    );
    assert!(waiting["approval_message"]
        .as_str()
        .unwrap()
        .contains("Approve to remove"));
    // The platform is still up while the run waits.
    let instances = home.instances();
    let kafka = instances
        .iter()
        .find(|i| i["name"] == "demo-kafka")
        .expect("kafka still up");
    assert_eq!(kafka["state"], "running");
    let broker = kafka["endpoint"].as_str().unwrap();

    let notifications: Vec<f64> = read_topic(
        broker,
        "notifications",
        4,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .iter()
    .map(|m| m.json()["variation"].as_f64().unwrap())
    .collect();
    let expected: Vec<f64> = RATES
        .windows(2)
        .map(|w| ((w[1] - w[0]) * 1e8).round() / 1e8)
        .filter(|v| v.abs() > 50.0)
        .collect();
    assert_eq!(
        expected,
        vec![120.0, -109.5, 200.25],
        "the fixture implies three notifications"
    );
    assert_eq!(notifications, expected);

    let id = waiting["id"].as_str().unwrap();
    assert_eq!(
        home.ok(&["approve", id]).trim(),
        format!("approved run {id}")
    );
    assert!(
        wait_exit(&mut run, Duration::from_secs(120)).success(),
        "{}",
        home.log()
    );
    let finished = only_run(&home);
    assert_eq!(finished["state"], "succeeded");
    let topics = &finished["topics"];
    let raw = topics["BitCoinExchangeTopic"].as_i64().unwrap();
    assert!(raw >= RATES.len() as i64, "{topics}");
    assert_eq!(
        topics["rates"].as_i64().unwrap(),
        raw,
        "every document gave a rate: {topics}"
    );
    assert_eq!(topics["variations"].as_i64().unwrap(), raw - 1, "{topics}");
    assert_eq!(topics["notifications"], 3);
    assert_eq!(topics["errors"], 0);
    assert_eq!(task_state(&finished, "approve-removal"), "succeeded");
    assert!(Path::new(finished["artifacts"].as_str().unwrap())
        .join("logs/demo-kafka.log")
        .is_file());
    assert_nothing_left(&home);
}

#[test]
fn rejection_and_expired_approval_follow_their_declared_outcomes() {
    let home = WeirHomeDir::new();
    let smoke = shipped_workflow("ci-smoke.yaml");
    let mut run = home.start_run(&[
        &smoke,
        "--set",
        "automatic_kill=false",
        "--set",
        "execution_duration=1s",
    ]);
    let waiting = wait_for_state(&home, "awaiting-approval", Duration::from_secs(120));
    assert!(
        !home.instances().is_empty(),
        "services are up while waiting"
    );
    home.ok(&["reject", waiting["id"].as_str().unwrap()]);
    assert!(!wait_exit(&mut run, Duration::from_secs(60)).success());
    let rejected = only_run(&home);
    assert_eq!(rejected["state"], "cancelled");
    assert!(
        rejected["error"].as_str().unwrap().contains("rejected"),
        "{rejected}"
    );
    assert!(
        rejected["topics"]["smoke-raw"].as_i64().unwrap() > 0,
        "results kept before teardown"
    );
    assert_nothing_left(&home);

    // ci-smoke declares `on-timeout: reject`.
    let home = WeirHomeDir::new();
    let mut run = home.start_run(&[
        &smoke,
        "--set",
        "automatic_kill=false",
        "--set",
        "execution_duration=1s",
        "--set",
        "approval_timeout=1s",
    ]);
    assert!(!wait_exit(&mut run, Duration::from_secs(120)).success());
    let expired = only_run(&home);
    assert_eq!(expired["state"], "cancelled", "{expired}");
    assert!(home.log().contains("approval expired"), "{}", home.log());
    assert_nothing_left(&home);
    let output = home.run(&["approve", expired["id"].as_str().unwrap()]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("not awaiting approval"));
}

#[test]
fn a_task_failing_after_retries_fails_the_run_and_still_tears_down() {
    let home = WeirHomeDir::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(
        &file,
        "name: broken
tasks:
  - name: zk
    provision: { service: zookeeper, instance: broken-zk }
  - name: topics
    depends: [zk]
    retries: 2
    retry-delay: 100ms
    create-topics: { kafka: no-such-kafka, topics: [t] }
  - name: never
    depends: [topics]
    wait: { duration: 1s }
",
    )
    .unwrap();
    let output = home.run(&["run", file.to_str().unwrap()]);
    assert!(!output.status.success());
    let run = only_run(&home);
    assert_eq!(run["state"], "failed");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("no Kafka instance named `no-such-kafka`"),
        "{run}"
    );
    let topics = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "topics")
        .unwrap()
        .clone();
    assert_eq!(topics["attempts"], 3);
    assert_eq!(task_state(&run, "never"), "cancelled");
    assert_nothing_left(&home);
}

#[test]
fn sigint_during_a_run_tears_down_and_another_run_cannot_take_its_instances() {
    let home = WeirHomeDir::new();
    let mut run = home.start_run(&[
        &shipped_workflow("ci-smoke.yaml"),
        "--set",
        "execution_duration=5m",
    ]);
    eventually(Duration::from_secs(120), || {
        let run = current_run(&home)?;
        (task_state(&run, "run") == "running").then_some(())
    })
    .unwrap_or_else(|| panic!("the run never reached its wait:\n{}", home.log()));
    let pids: Vec<i32> = home
        .instances()
        .iter()
        .map(|i| i["pid"].as_i64().unwrap() as i32)
        .collect();
    assert_eq!(pids.len(), 5, "zookeeper, kafka, charts, topology, replay");
    let first = only_run(&home)["id"].as_str().unwrap().to_string();

    // A second run naming the same instances may not use what the first one will tear down.
    let second = home.run(&["run", &shipped_workflow("ci-smoke.yaml")]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("instance `smoke-kafka` belongs to run {first}")),
        "{stderr}"
    );
    assert!(
        pids.iter().all(|&pid| alive(pid)),
        "the first run's instances stay"
    );

    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(run.id() as i32, libc::SIGINT);
    }
    let status = wait_exit(&mut run, Duration::from_secs(60));
    assert_eq!(status.code(), Some(130), "as shells report an interrupt");
    let cancelled: Value =
        serde_json::from_str(&home.ok(&["runs", "show", &first, "--json"])).unwrap();
    assert_eq!(cancelled["state"], "cancelled");
    assert!(
        cancelled["topics"]["smoke-raw"].as_i64().is_some(),
        "counts read before teardown: {cancelled}"
    );
    assert!(pids.iter().all(|&pid| !alive(pid)));
    assert_nothing_left(&home);
    // The logs outlive the teardown.
    let kept = home.ok(&["logs", "--run", &first, "smoke-kafka", "-n", "2"]);
    assert_eq!(kept.lines().count(), 2, "{kept}");
    let all = home.ok(&["logs", "--run", &first]);
    assert!(all.contains("==> smoke-kafka ("), "{all}");
    assert!(all.contains("==> smoke-topology ("), "{all}");
}

#[test]
fn weir_killed_during_a_run_is_cleaned_by_gc() {
    let home = WeirHomeDir::new();
    let mut run = home
        .command(&[
            "run",
            &shipped_workflow("ci-smoke.yaml"),
            "--set",
            "execution_duration=5m",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(120), || {
        (task_state(&current_run(&home)?, "run") == "running").then_some(())
    })
    .expect("the run reached its wait");
    let pids: Vec<i32> = home
        .instances()
        .iter()
        .map(|i| i["pid"].as_i64().unwrap() as i32)
        .collect();
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(
        pids.iter().all(|&pid| alive(pid)),
        "services outlive the killed orchestrator"
    );
    let report: Value = serde_json::from_str(&home.ok(&["gc", "--json"])).unwrap();
    assert_eq!(
        report["orphans_stopped"].as_array().unwrap().len(),
        5,
        "{report}"
    );
    assert_eq!(
        report["runs_failed"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert_eq!(only_run(&home)["state"], "failed");
    assert!(pids.iter().all(|&pid| !alive(pid)));
    assert_nothing_left(&home);
}

#[test]
fn an_unreachable_source_is_reported_not_replaced() {
    let home = WeirHomeDir::new();
    let port = weir_supervisor::ports::free_port().unwrap();
    let output = home.run(&[
        "run",
        &shipped_workflow("bitcoin-yuan.yaml"),
        "--set",
        &format!("source_url=http://127.0.0.1:{port}/ticker"),
        "--set",
        "poll_interval=200ms",
        "--set",
        "execution_duration=3s",
        "--set",
        "zookeeper_instance_name=dead-zk",
        "--set",
        "kafka_instance_name=dead-kafka",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let run = only_run(&home);
    assert_eq!(
        run["topics"]["BitCoinExchangeTopic"], 0,
        "nothing was invented: {run}"
    );
    let report = run["unavailable"]["source:bitcoin-source-1"]
        .as_str()
        .unwrap_or_else(|| panic!("{run}"));
    assert!(
        report.contains("published nothing: source unreachable"),
        "{report}"
    );
    // Nothing of what the source was to bring was seen: the run does not pass for success.
    assert!(!output.status.success(), "{stderr}");
    assert_eq!(run["state"], "failed", "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not observed") && error.contains("source:bitcoin-source-1"),
        "{error}"
    );
    assert!(
        stderr.contains("UNAVAILABLE source:bitcoin-source-1"),
        "{stderr}"
    );
    assert_nothing_left(&home);
}

#[test]
fn a_source_down_at_the_start_is_reported_and_its_data_counted_once_it_is_back() {
    let home = WeirHomeDir::new();
    let bodies: Vec<String> = RATES
        .iter()
        .map(|r| json!({"data": {"amount": format!("{r:.2}")}}).to_string())
        .collect();
    // Down for four polls: with backoff from 200 ms, back about 6 s after the start.
    let (url, hits) = ticker_server_down_first(bodies, 4);
    let output = home.run(&[
        "run",
        &shipped_workflow("bitcoin-yuan.yaml"),
        "--set",
        &format!("source_url={url}"),
        "--set",
        "poll_interval=200ms",
        "--set",
        "source_grace=2s",
        "--set",
        "execution_duration=10s",
        // The candles dataflow beside it: candles of one second close several times in the
        // seconds the source is back.
        "--set",
        "candles=true",
        "--set",
        "candle_size=1s",
        "--set",
        "zookeeper_instance_name=flaky-zk",
        "--set",
        "kafka_instance_name=flaky-kafka",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) > 4);
    let run = only_run(&home);
    assert_eq!(run["state"], "succeeded", "{run}");
    let events: Vec<String> = run["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{run}"))
        .iter()
        .filter(|e| e["instance"] == "bitcoin-source-1")
        .map(|e| e["what"].as_str().unwrap_or_default().to_string())
        .collect();
    // Reported down when its grace period ended, then what it published despite that.
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("DOWN: published nothing within 2s") && e.contains("503")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.contains("4 attempts failed")),
        "{events:?}"
    );
    let shown = home.ok(&["runs", "show", run["id"].as_str().unwrap()]);
    assert!(shown.contains("DOWN: published nothing"), "{shown}");
    // What it brought once back went through: one rate per document, one variation fewer.
    let topics = &run["topics"];
    let raw = topics["BitCoinExchangeTopic"].as_i64().unwrap();
    assert!(raw >= 1, "{topics}");
    assert_eq!(topics["rates"].as_i64(), Some(raw), "{topics}");
    assert_eq!(topics["variations"].as_i64(), Some(raw - 1), "{topics}");
    // The candles dataflow ran beside it: candles closed, and no rate came after its own.
    let candles = topics["candles"]
        .as_i64()
        .unwrap_or_else(|| panic!("{topics}"));
    assert!((1..raw).contains(&candles), "{topics}");
    assert_eq!(topics["late-rates"].as_i64(), Some(0), "{topics}");
    assert_nothing_left(&home);
}

/// `weir bench platform` for one round of the demo (replayed): every figure it reports was
/// measured. No timing is asserted.
#[test]
fn the_platform_benchmark_reports_every_figure_it_measures() {
    let home = WeirHomeDir::new();
    let output = home
        .command(&[
            "bench",
            "platform",
            "--json",
            "--rounds",
            "1",
            "--workflow",
            &shipped_workflow("bitcoin-yuan.yaml"),
        ])
        .output()
        .expect("run weir bench platform");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON report");
    assert_eq!(report["backend"], "local", "{report}");
    for figure in [
        "bare_pair_start_s",
        "bare_pair_stop_s",
        "pair_through_weir_s",
        "all_ready_s",
        "teardown_s",
    ] {
        assert!(report[figure]["median"].as_f64().unwrap() > 0.0, "{report}");
    }
    assert!(report["start_ratio"].as_f64().unwrap() > 0.0, "{report}");
    assert!(
        report["all_ready_s"]["median"].as_f64()
            >= report["pair_through_weir_s"]["median"].as_f64(),
        "every service is ready only after ZooKeeper and Kafka: {report}"
    );
    assert!(stderr.contains("round 1/1"), "no progress:\n{stderr}");
}
