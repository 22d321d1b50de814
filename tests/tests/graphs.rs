//! A graph topology (named steps, fan-out and fan-in, keyed state in two branches) run by the
//! real `weir topology run` against a real broker, checked record for record against
//! `weir topology test` on the same records, on every topic it writes.

use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::topology_io::{an_hour_ago, produce_test_records, topology_test, written};
use weir_tests::{kafka, repo_root, unique, WeirProcess};
use weir_topology::test_driver::TestOutput;

const RATE_ALERTS: &str = "workflows/topologies/rate-alerts.yaml";

#[tokio::test(flavor = "multi_thread")]
async fn a_graph_runner_writes_on_every_topic_what_topology_test_prints() {
    let dir = tempfile::tempdir().unwrap();
    let base = unique("graph");
    let topic = |name: &str| format!("{base}-{name}");
    let outputs = ["rates", "variations", "alerts", "candles", "late", "errors"];
    let mut sets = vec![
        format!("message_topic={}", topic("raw")),
        format!("dataflow_name={base}-flow"),
        format!("rate_topic={}", topic("rates")),
        format!("variation_topic={}", topic("variations")),
        format!("alert_topic={}", topic("alerts")),
        format!("candle_topic={}", topic("candles")),
        format!("late_topic={}", topic("late")),
        format!("error_topic={}", topic("errors")),
        "candle_size=1s".into(),
        "grace=0s".into(),
        "threshold=40".into(),
    ];
    let args: Vec<String> = sets
        .drain(..)
        .flat_map(|set| ["--set".to_string(), set])
        .collect();

    let start = an_hour_ago();
    let mut records: Vec<Value> = (0..300)
        .map(|i: i64| {
            let key = ["BTC-CNY", "ETH-CNY", "LTC-CNY"][(i % 3) as usize];
            // Each key's rate goes up 50, up 10, down 60, stays: rises, a small one, falls.
            let amount = [1_000, 1_050, 1_060, 1_000][((i / 3) % 4) as usize];
            json!({
                "key": key,
                "value": { "data": { "amount": format!("{amount}.25") } },
                "timestamp": start + i * 100,
            })
        })
        .collect();
    // Later than its candle's grace, and a payload that is not JSON.
    records.push(json!({ "key": "BTC-CNY", "value": { "data": { "amount": "5" } }, "timestamp": start + 200 }));
    records.push(json!({ "key": "BTC-CNY", "value": "not json", "timestamp": start + 29_999 }));

    let file = repo_root().join(RATE_ALERTS);
    let expected = topology_test(&file, &args, dir.path(), &records);
    let expected_on = |name: &str| -> Vec<TestOutput> {
        let topic = topic(name);
        (expected.iter())
            .filter(|o| o.topic == topic)
            .cloned()
            .collect()
    };
    // What the graph does with these records, as `weir topology test` saw it: every rate
    // (the late one too) through both branches, rises and falls both alerted.
    assert_eq!(expected_on("rates").len(), 301);
    assert_eq!(
        expected_on("variations").len(),
        298,
        "the first rate of 3 keys has none"
    );
    let alerts = expected_on("alerts");
    let direction = |o: &TestOutput, d: &str| o.value["direction"] == d;
    assert!(alerts.iter().any(|o| direction(o, "up")), "{alerts:?}");
    assert!(alerts.iter().any(|o| direction(o, "down")), "{alerts:?}");
    assert!(alerts
        .iter()
        .all(|o| o.value["variation"].as_f64().unwrap().abs() > 40.0));
    assert_eq!(
        expected_on("candles").len(),
        3 * 29,
        "29 seconds closed, for 3 keys"
    );
    assert_eq!(expected_on("late").len(), 1);
    assert_eq!(expected_on("errors").len(), 1);

    produce_test_records(&topic("raw"), &records).await;
    let mut run_args = vec![
        "topology".to_string(),
        "run".into(),
        file.display().to_string(),
        "--brokers".into(),
        kafka().to_string(),
    ];
    run_args.extend(args);
    let run_args: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let mut runner = WeirProcess::start(dir.path(), "runner.log", &run_args);
    for name in outputs {
        let want = expected_on(name);
        let got = written(&topic(name), want.len(), Duration::from_secs(60));
        assert_eq!(got, want, "topic {name}; log:\n{}", runner.log_text());
    }
    assert!(runner
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
        .success());
}
