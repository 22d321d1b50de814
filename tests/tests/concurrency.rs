//! Many runs at once on one `WEIR_HOME`, as a CI machine or a shared laptop sees them: each
//! provisions its own ZooKeeper and Kafka, and all share one store.

use std::time::{Duration, Instant};

use serde_json::Value;
use weir_tests::{shipped_workflow, wait_exit, WeirHomeDir};

const RUNS: usize = 10;

#[test]
fn ten_runs_at_once_each_with_its_own_kafka_all_finish_and_tear_down() {
    let home = WeirHomeDir::new();
    let started = Instant::now();
    let workflow = shipped_workflow("ci-smoke.yaml");
    let mut children: Vec<_> = (0..RUNS)
        .map(|n| {
            let prefix = format!("prefix=c{n}");
            let mut command = home.command(&[
                "run",
                &workflow,
                "--set",
                &prefix,
                "--set",
                "execution_duration=3s",
            ]);
            let log = std::fs::File::create(home.path().join(format!("run-{n}.log"))).unwrap();
            command
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("spawn weir run")
        })
        .collect();
    let statuses: Vec<_> = children
        .iter_mut()
        .map(|child| wait_exit(child, Duration::from_secs(900)))
        .collect();
    let elapsed = started.elapsed();
    let log = |n: usize| {
        std::fs::read_to_string(home.path().join(format!("run-{n}.log"))).unwrap_or_default()
    };
    for (n, status) in statuses.iter().enumerate() {
        let text = log(n);
        assert!(status.success(), "run {n} failed:\n{text}");
        // The store took every write: nothing was lost to a busy database.
        assert!(!text.contains("cannot record"), "run {n}:\n{text}");
    }
    let runs: Vec<Value> = serde_json::from_str(&home.ok(&["runs", "--json"])).unwrap();
    assert_eq!(runs.len(), RUNS, "{runs:?}");
    for run in &runs {
        assert_eq!(run["state"], "succeeded", "{run}");
        let record = home.run_record(run["id"].as_str().unwrap());
        assert!(
            record["topics"]["smoke-raw"]
                .as_i64()
                .is_some_and(|n| n > 0),
            "{record}"
        );
    }
    assert!(
        home.instances().is_empty(),
        "instances left: {:?}",
        home.instances()
    );
    eprintln!(
        "{RUNS} concurrent ci-smoke runs, each with its own ZooKeeper and Kafka, finished in \
         {:.1}s",
        elapsed.as_secs_f64()
    );
}
