//! Faults during a run, as a user meets them: the broker or the topology runner killed with
//! SIGKILL mid-stream. With the workflow's restart policy the instance is started again and
//! every input record still has its output; without restarts left the run fails naming what
//! died — never "succeeded" with holes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_tests::{eventually, repo_root, shipped_workflow, wait_exit, WeirHomeDir};

/// The id of the home's only run, once it is recorded and its `run` task is under way.
fn running_run(home: &WeirHomeDir) -> String {
    eventually(Duration::from_secs(180), || {
        let runs: Vec<Value> = serde_json::from_str(&home.ok(&["runs", "--json"])).ok()?;
        let id = runs.first()?["id"].as_str()?.to_string();
        let run = home.run_record(&id);
        let waiting = run["tasks"]
            .as_array()?
            .iter()
            .any(|t| t["name"] == "run" && t["state"] == "running");
        waiting.then_some(id)
    })
    .unwrap_or_else(|| panic!("the run never reached its wait:\n{}", home.log()))
}

/// `instance: what` of each supervision event of the run.
fn events(home: &WeirHomeDir, id: &str) -> Vec<String> {
    home.run_record(id)["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| format!("{}: {}", e["instance"], e["what"]).replace('"', ""))
                .collect()
        })
        .unwrap_or_default()
}

fn pid_of(home: &WeirHomeDir, instance: &str) -> i32 {
    home.instances()
        .iter()
        .find(|i| i["name"] == instance)
        .and_then(|i| i["pid"].as_i64())
        .unwrap_or_else(|| panic!("no running `{instance}`:\n{}", home.log())) as i32
}

fn sigkill(pid: i32) {
    // SAFETY: a plain syscall on a service process this test's run started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
}

/// Waits until an event of the run starts with `prefix`; returns how long that took.
fn wait_for_event(home: &WeirHomeDir, id: &str, prefix: &str, timeout: Duration) -> Duration {
    let started = Instant::now();
    eventually(timeout, || {
        events(home, id)
            .iter()
            .any(|e| e.starts_with(prefix))
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "no event `{prefix}` within {timeout:?}: {:?}\n{}",
            events(home, id),
            home.log()
        )
    });
    started.elapsed()
}

/// The Close column of the recording ci-smoke replays.
fn recorded_closes() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo_root().join("workflows/data/btcusd-monthly.csv"))
        .expect("the recording");
    text.lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(4))
        .map(|close| format!("{}", close.parse::<f64>().expect("a price")))
        .collect()
}

/// Every rate the run's chart server received, as saved with the run's artifacts.
fn charted_rates(run: &Value) -> BTreeSet<String> {
    let dir = std::path::Path::new(run["artifacts"].as_str().unwrap()).join("charts");
    let mut rates = BTreeSet::new();
    for entry in walk(&dir).into_iter().filter(|p| p.ends_with(".json")) {
        let view: Value = serde_json::from_str(&std::fs::read_to_string(&entry).unwrap()).unwrap();
        if !view["title"].as_str().unwrap_or_default().contains("Close") {
            continue;
        }
        for series in view["series"].as_array().unwrap() {
            for point in series["points"].as_array().unwrap() {
                rates.insert(format!("{}", point[1].as_f64().unwrap()));
            }
        }
    }
    rates
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path.display().to_string());
        }
    }
    files
}

#[test]
fn a_broker_and_a_runner_killed_mid_run_are_restarted_and_every_record_keeps_its_output() {
    let home = WeirHomeDir::new();
    let mut child = home.start_run(&[
        &shipped_workflow("ci-smoke.yaml"),
        "--set",
        "execution_duration=60s",
        "--set",
        "replay_interval=50ms",
    ]);
    let id = running_run(&home);

    sigkill(pid_of(&home, "smoke-kafka"));
    let detected = wait_for_event(
        &home,
        &id,
        "smoke-kafka: died (killed by SIGKILL)",
        Duration::from_secs(10),
    );
    let recovered = wait_for_event(
        &home,
        &id,
        "smoke-kafka: restarted (",
        Duration::from_secs(120),
    );
    eprintln!("broker: death seen in {detected:?}, ready again {recovered:?} after that");

    sigkill(pid_of(&home, "smoke-topology"));
    wait_for_event(
        &home,
        &id,
        "smoke-topology: died (killed by SIGKILL)",
        Duration::from_secs(10),
    );
    wait_for_event(
        &home,
        &id,
        "smoke-topology: restarted (",
        Duration::from_secs(60),
    );

    let status = wait_exit(&mut child, Duration::from_secs(240));
    let log = home.log();
    assert!(status.success(), "{log}");
    let run = home.run_record(&id);
    assert_eq!(run["state"], "succeeded", "{log}");
    assert_eq!(run["unavailable"], serde_json::json!({}), "{run}");
    // Every recorded document reached the raw topic once, and every one has its rate
    // (at-least-once: a replayed record may add a duplicate, never a gap or an invention).
    assert_eq!(run["topics"]["smoke-raw"], 156, "{run}");
    assert!(
        run["topics"]["smoke-rates"].as_i64().unwrap() >= 156,
        "{run}"
    );
    assert_eq!(charted_rates(&run), recorded_closes(), "{log}");
    assert!(home.instances().is_empty(), "{:?}", home.instances());
}

#[test]
fn a_broker_killed_with_no_restart_left_fails_the_run_naming_it() {
    let home = WeirHomeDir::new();
    let mut child = home.start_run(&[
        &shipped_workflow("ci-smoke.yaml"),
        "--set",
        "execution_duration=5m",
        "--set",
        "restarts=0",
    ]);
    let id = running_run(&home);
    sigkill(pid_of(&home, "smoke-kafka"));
    // It ends at the death, not at the end of its 5 minutes.
    let status = wait_exit(&mut child, Duration::from_secs(120));
    let log = home.log();
    assert!(!status.success(), "{log}");
    let run = home.run_record(&id);
    assert_eq!(run["state"], "failed", "{log}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "kafka `smoke-kafka` (started by task `kafka`) died (killed by SIGKILL) after 0 restarts"
        ),
        "{error}"
    );
    assert!(error.contains("last lines of its log"), "{error}");
    assert!(home.instances().is_empty(), "{:?}", home.instances());
}
