//! The candles dataflow (event-time windows) run by the real `weir topology run` against a
//! real broker, checked against `weir topology test` on the same records: record for record
//! when nothing happens to the runner, and every window's final result when it is SIGKILLed
//! mid-window.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::topology_io::{
    an_hour_ago, produce_test_records, topology_test, written, written_until,
};
use weir_tests::{eventually, kafka, read_topic, repo_root, unique, WeirProcess};
use weir_topology::test_driver::TestOutput;

const CANDLES: &str = "workflows/topologies/candles.yaml";

/// Topics and group of one test's run of the candles topology.
struct Names {
    input: String,
    candles: String,
    late: String,
    errors: String,
    sets: Vec<String>,
}

impl Names {
    fn new(candle_size: &str) -> Self {
        let base = unique("candles");
        let (input, candles, late, errors) = (
            format!("{base}-raw"),
            format!("{base}-candles"),
            format!("{base}-late"),
            format!("{base}-errors"),
        );
        let sets = vec![
            format!("message_topic={input}"),
            format!("dataflow_name={base}-flow"),
            format!("candle_topic={candles}"),
            format!("late_topic={late}"),
            format!("error_topic={errors}"),
            format!("candle_size={candle_size}"),
            "grace=0s".to_string(),
        ];
        Self {
            input,
            candles,
            late,
            errors,
            sets,
        }
    }

    fn set_args(&self) -> Vec<String> {
        (self.sets.iter())
            .flat_map(|set| ["--set".to_string(), set.clone()])
            .collect()
    }

    fn start_runner(&self, dir: &std::path::Path, log: &str) -> WeirProcess {
        let mut args = vec![
            "topology".to_string(),
            "run".into(),
            repo_root().join(CANDLES).display().to_string(),
            "--brokers".into(),
            kafka().to_string(),
            "--log-interval".into(),
            "1s".into(),
        ];
        args.extend(self.set_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        WeirProcess::start(dir, log, &args)
    }

    /// What `weir topology test` prints for `records`: the outputs an unkilled runner writes.
    fn expected(&self, dir: &std::path::Path, records: &[Value]) -> Vec<TestOutput> {
        topology_test(&repo_root().join(CANDLES), &self.set_args(), dir, records)
    }
}

/// A candle's identity: its key and the start of its window.
fn candle_id(output: &TestOutput) -> (String, i64) {
    (
        output.key.clone().unwrap_or_default(),
        output.value["window_start"].as_i64().unwrap_or(-1),
    )
}

/// A tick of `key` at event time `timestamp`, as the runner's input and as a test record.
fn tick(key: &str, amount: f64, timestamp: i64) -> Value {
    json!({
        "key": key,
        "value": { "data": { "amount": format!("{amount:.2}") } },
        "timestamp": timestamp,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runner_writes_record_for_record_what_topology_test_prints() {
    let dir = tempfile::tempdir().unwrap();
    let names = Names::new("1s");
    let base = an_hour_ago();
    let mut records = Vec::new();
    for i in 0..300 {
        let key = ["BTC-CNY", "ETH-CNY", "LTC-CNY"][i % 3];
        let amount = 1_000.0 + ((i * 37) % 101) as f64;
        // Ten per second of event time, a few out of order by less than a candle.
        let jitter = if i % 7 == 3 { -50 } else { 0 };
        records.push(tick(key, amount, base + (i as i64) * 100 + jitter));
    }
    // Late: its candle closed long before. And one that is not JSON.
    records.push(tick("BTC-CNY", 5.0, base + 200));
    records.push(json!({ "key": "BTC-CNY", "value": "not json", "timestamp": base + 29_999 }));
    let expected = names.expected(dir.path(), &records);
    let expected_on = |topic: &str| -> Vec<TestOutput> {
        (expected.iter())
            .filter(|o| o.topic == topic)
            .cloned()
            .collect()
    };
    let candles = expected_on(&names.candles);
    assert_eq!(
        candles.len(),
        3 * 29,
        "29 seconds closed, for each of 3 keys"
    );
    assert_eq!(expected_on(&names.late).len(), 1);
    assert_eq!(expected_on(&names.errors).len(), 1);

    produce_test_records(&names.input, &records).await;
    let mut runner = names.start_runner(dir.path(), "runner.log");
    let wait = Duration::from_secs(60);
    let got = written(&names.candles, candles.len(), wait);
    assert_eq!(got, candles, "log:\n{}", runner.log_text());
    assert_eq!(written(&names.late, 1, wait), expected_on(&names.late));
    assert_eq!(written(&names.errors, 1, wait), expected_on(&names.errors));
    assert!(runner
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
        .success());
}

#[tokio::test(flavor = "multi_thread")]
async fn windows_over_ten_thousand_keys_survive_three_sigkills_mid_window() {
    let dir = tempfile::tempdir().unwrap();
    let names = Names::new("1s");
    const KEYS: usize = 10_000;
    const ROUNDS: usize = 12;
    let base = an_hour_ago();
    // Every key ticks twice per second of event time: each candle holds two ticks per key,
    // and all keys' candles close together when the next second begins.
    let rounds: Vec<Vec<Value>> = (0..ROUNDS)
        .map(|round| {
            (0..KEYS)
                .map(|k| {
                    let amount = 100.0 + ((k * 7 + round * 13) % 1_000) as f64 / 4.0;
                    tick(&format!("k{k:05}"), amount, base + (round as i64) * 500)
                })
                .collect()
        })
        .collect();
    let all: Vec<Value> = rounds.iter().flatten().cloned().collect();
    let expected = names.expected(dir.path(), &all);
    let expected: BTreeMap<(String, i64), Value> = (expected.into_iter())
        .filter(|o| o.topic == names.candles)
        .map(|o| {
            (
                (o.key.unwrap(), o.value["window_start"].as_i64().unwrap()),
                o.value,
            )
        })
        .collect();
    // Five seconds close (the sixth stays open: nothing comes after it).
    assert_eq!(expected.len(), KEYS * (ROUNDS / 2 - 1));

    // The input arrives a round at a time while the runner is killed and started again.
    let input = names.input.clone();
    let producing = tokio::spawn(async move {
        for round in rounds {
            produce_test_records(&input, &round).await;
            tokio::time::sleep(Duration::from_millis(1_500)).await;
        }
    });
    let mut runner = names.start_runner(dir.path(), "runner-0.log");
    for kill in 1..=3 {
        // Each kill lands once more candles closed than before it, with windows open.
        let threshold = kill * KEYS;
        let reached = eventually(Duration::from_secs(120), || {
            let seen = read_topic(
                kafka(),
                &names.candles,
                threshold,
                Duration::from_secs(3),
                Duration::ZERO,
            )
            .len();
            (seen >= threshold).then_some(seen)
        });
        assert!(
            reached.is_some(),
            "no progress before kill {kill}:\n{}",
            runner.log_text()
        );
        let status = runner.signal_and_wait(libc::SIGKILL, Duration::from_secs(10));
        assert!(!status.success());
        runner = names.start_runner(dir.path(), &format!("runner-{kill}.log"));
    }
    producing.await.unwrap();
    // Duplicates count towards the topic's length: wait until every expected candle is there.
    let mut awaited: std::collections::BTreeSet<(String, i64)> = expected.keys().cloned().collect();
    let got = written_until(&names.candles, Duration::from_secs(180), |output| {
        awaited.remove(&candle_id(output));
        awaited.is_empty()
    });
    let finals: BTreeMap<(String, i64), Value> = (got.iter())
        .map(|output| (candle_id(output), output.value.clone()))
        .collect();
    let missing = (expected.keys())
        .filter(|id| !finals.contains_key(*id))
        .count();
    let wrong: Vec<&TestOutput> = (got.iter())
        .filter(|output| expected.get(&candle_id(output)) != Some(&output.value))
        .collect();
    let duplicates = got.len() - finals.len();
    eprintln!(
        "{} candles written for {} expected: {duplicates} duplicates, {missing} missing, {} wrong",
        got.len(),
        expected.len(),
        wrong.len()
    );
    assert_eq!(
        missing,
        0,
        "candles lost across the kills:\n{}",
        runner.log_text()
    );
    assert!(
        wrong.is_empty(),
        "{} candles differ from an unkilled run's, e.g. {:?}\n{}",
        wrong.len(),
        &wrong[..wrong.len().min(3)],
        runner.log_text()
    );
    assert_eq!(
        written(&names.late, 0, Duration::from_secs(2)).len(),
        0,
        "no tick is late after a restart"
    );
    assert!(runner
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
        .success());
}
