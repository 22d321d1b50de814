//! A graph topology (named steps, fan-out and fan-in, keyed state in two branches) run by the
//! real `weir topology run` against a real broker, checked record for record against
//! `weir topology test` on the same records, on every topic it writes.

use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::topology_io::{
    an_hour_ago, produce_test_records, run_args, topology_test, written,
};
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
    let run_args = run_args(&file, &args);
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

const EXCHANGES: &str = "workflows/topologies/exchanges.yaml";

/// Creates `topic` with `partitions` partitions, as a workflow's `create-topics` task does.
fn create_topic(topic: &str, partitions: u32) {
    let output = std::process::Command::new(weir_tests::weir_bin())
        .args(["topics", "create", "--brokers", kafka(), "--partitions"])
        .arg(partitions.to_string())
        .arg(topic)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Outputs in an order that does not depend on how the input topics' records interleave:
/// per topic, per message key, per exchange, by time (each series comes from one partition of
/// one topic, in order).
fn by_series(mut outputs: Vec<TestOutput>) -> Vec<TestOutput> {
    outputs.sort_by(|a, b| {
        let exchange = |o: &TestOutput| o.value["exchange"].as_str().unwrap_or("").to_string();
        (&a.topic, &a.key, exchange(a), a.timestamp).cmp(&(
            &b.topic,
            &b.key,
            exchange(b),
            b.timestamp,
        ))
    });
    outputs
}

#[tokio::test(flavor = "multi_thread")]
async fn two_input_topics_of_two_partitions_keep_their_state_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let base = unique("exchanges");
    let topic = |name: &str| format!("{base}-{name}");
    let (coinbase, kraken) = (topic("coinbase"), topic("kraken"));
    create_topic(&coinbase, 2);
    create_topic(&kraken, 2);
    let args: Vec<String> = [
        format!("coinbase_topic={coinbase}"),
        format!("kraken_topic={kraken}"),
        format!("dataflow_name={base}-flow"),
        format!("rate_topic={}", topic("rates")),
        format!("variation_topic={}", topic("variations")),
        format!("error_topic={}", topic("errors")),
    ]
    .into_iter()
    .flat_map(|set| ["--set".to_string(), set])
    .collect();

    let start = an_hour_ago();
    let pairs = ["BTC-USD", "ETH-USD", "LTC-USD", "SOL-USD"];
    let tick = |i: i64, exchange: &str| {
        let pair = pairs[(i % 4) as usize];
        let price = 1_000 + (i * 37) % 101;
        let value = match exchange {
            "coinbase" => json!({ "data": { "amount": format!("{price}.5") } }),
            _ => json!({ "result": { "c": [format!("{price}.25"), "0.1"] } }),
        };
        let topic = if exchange == "coinbase" {
            &coinbase
        } else {
            &kraken
        };
        json!({ "topic": topic, "key": pair, "value": value, "timestamp": start + i * 10 })
    };
    let halves: Vec<(Vec<Value>, Vec<Value>)> = [0..200, 200..400]
        .into_iter()
        .map(|range| {
            let coinbase: Vec<Value> = range.clone().map(|i| tick(i, "coinbase")).collect();
            let mut kraken: Vec<Value> = range.map(|i| tick(i, "kraken")).collect();
            kraken.push(json!({ "topic": &kraken_name(&kraken), "key": "BTC-USD", "value": "not json", "timestamp": start }));
            (coinbase, kraken)
        })
        .collect();
    fn kraken_name(records: &[Value]) -> String {
        records[0]["topic"].as_str().unwrap().to_string()
    }
    let all: Vec<Value> = (halves.iter())
        .flat_map(|(c, k)| c.iter().chain(k).cloned())
        .collect();
    let file = repo_root().join(EXCHANGES);
    let expected = topology_test(&file, &args, dir.path(), &all);
    let expected_on = |name: &str| -> Vec<TestOutput> {
        by_series(
            (expected.iter())
                .filter(|o| o.topic == topic(name))
                .cloned()
                .collect(),
        )
    };
    assert_eq!(expected_on("rates").len(), 800);
    assert_eq!(
        expected_on("variations").len(),
        800 - 8,
        "the first rate of 4 pairs on 2 exchanges has none"
    );
    assert_eq!(expected_on("errors").len(), 2);

    let run_args = run_args(&file, &args);
    let run_args: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let mut seen = 0;
    for (round, (coinbase_records, kraken_records)) in halves.iter().enumerate() {
        produce_test_records(&coinbase, coinbase_records).await;
        produce_test_records(&kraken, kraken_records).await;
        seen += coinbase_records.len() + kraken_records.len() - 1;
        let mut runner = WeirProcess::start(dir.path(), &format!("runner-{round}.log"), &run_args);
        // Every rate so far written, then a graceful stop commits both topics' offsets
        // with the state; the second runner restores it and goes on from there.
        let rates = written(&topic("rates"), seen, Duration::from_secs(60));
        assert_eq!(rates.len(), seen, "log:\n{}", runner.log_text());
        assert!(runner
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
            .success());
        if round == 1 {
            assert!(
                runner.log_text().contains("restored operator state"),
                "{}",
                runner.log_text()
            );
        }
    }
    // `weir topology test` numbers the records of all topics as one partition's offsets; the
    // error topic's provenance is compared without them.
    let without_offsets = |outputs: Vec<TestOutput>| -> Vec<TestOutput> {
        (outputs.into_iter())
            .map(|mut o| {
                if let Some(provenance) = o.value.as_object_mut() {
                    provenance.remove("offset");
                    provenance.remove("partition");
                }
                o
            })
            .collect()
    };
    for name in ["rates", "variations", "errors"] {
        let want = without_offsets(expected_on(name));
        let got = by_series(written(&topic(name), want.len(), Duration::from_secs(30)));
        assert_eq!(
            got.len(),
            want.len(),
            "topic {name}: nothing written twice or lost"
        );
        let got = if name == "errors" {
            without_offsets(got)
        } else {
            got
        };
        assert_eq!(got, want, "topic {name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn input_topics_of_different_partition_counts_are_refused_out_loud() {
    let dir = tempfile::tempdir().unwrap();
    let base = unique("uneven");
    let (coinbase, kraken) = (format!("{base}-coinbase"), format!("{base}-kraken"));
    create_topic(&coinbase, 1);
    create_topic(&kraken, 2);
    let record = json!({ "key": "BTC-USD", "value": { "data": { "amount": "1" } }, "timestamp": an_hour_ago() });
    produce_test_records(&coinbase, &[record]).await;
    let file = repo_root().join(EXCHANGES);
    let sets: Vec<String> = [
        format!("coinbase_topic={coinbase}"),
        format!("kraken_topic={kraken}"),
        format!("dataflow_name={base}-flow"),
    ]
    .into_iter()
    .flat_map(|set| ["--set".to_string(), set])
    .collect();
    let args = run_args(&file, &sets);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut runner = WeirProcess::start(dir.path(), "runner.log", &args);
    let status = runner.wait(Duration::from_secs(60));
    let log = runner.log_text();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "the input topics must have as many partitions each, so that one runner processes \
             partition N of all of them (co-partitioning); they have `{coinbase}` 1, `{kraken}` 2"
        )),
        "{log}"
    );
}

/// Claims keyed by claim, re-keyed by member: a member's claims come from every input
/// partition, and its running count and sum per member are right only if all of them reach
/// one partition of the repartition topic, so one runner and one keyed state.
const REKEYED_CLAIMS: &str = r#"
name: claims-per-member
params: { input: claims, group: g, totals: totals, errors: errors }
input: { topic: "${input}", group: "${group}" }
error_topic: "${errors}"
steps:
  - name: by-member
    operators:
      - parse: {}
      - extract: { fields: { member: /member, amount: { pointer: /amount, type: number } } }
      - rekey: member
  - name: totals
    from: by-member
    operators:
      - window:
          size: 24h
          grace: 24h
          emit: update
          aggregate: { claims: { count: amount }, total: { sum: amount } }
      - emit: { topic: "${totals}", fields: [claims, total], timestamp: false }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_rekey_brings_every_record_of_a_new_key_from_every_partition_to_one_state() {
    let dir = tempfile::tempdir().unwrap();
    let base = unique("rekey");
    let topic = |name: &str| format!("{base}-{name}");
    create_topic(&topic("claims"), 3);
    let file = dir.path().join("claims.yaml");
    std::fs::write(&file, REKEYED_CLAIMS).unwrap();
    let args: Vec<String> = [
        format!("input={}", topic("claims")),
        format!("group={base}-flow"),
        format!("totals={}", topic("totals")),
        format!("errors={}", topic("errors")),
    ]
    .into_iter()
    .flat_map(|set| ["--set".to_string(), set])
    .collect();
    const CLAIMS: i64 = 900;
    const MEMBERS: i64 = 37;
    // Within one day's window (a day aligned to the epoch), a millisecond apart.
    let day = an_hour_ago() - an_hour_ago() % 86_400_000;
    let records: Vec<Value> = (0..CLAIMS)
        .map(|i| {
            json!({
                "key": format!("claim-{i}"),
                "value": { "member": format!("m-{}", i % MEMBERS), "amount": i % 10 },
                "timestamp": day + i,
            })
        })
        .collect();
    // A member's claims in input order: what its final count and total are.
    let finals = |outputs: &[TestOutput]| -> std::collections::BTreeMap<String, (i64, f64)> {
        let mut finals = std::collections::BTreeMap::new();
        for output in outputs.iter().filter(|o| o.topic == topic("totals")) {
            let claims = output.value["claims"].as_i64().unwrap();
            let total = output.value["total"].as_f64().unwrap();
            let entry = finals
                .entry(output.key.clone().unwrap())
                .or_insert((0, 0.0));
            if claims > entry.0 {
                *entry = (claims, total);
            }
        }
        finals
    };
    let expected = topology_test(&file, &args, dir.path(), &records);
    let want = finals(&expected);
    assert_eq!(want.len(), MEMBERS as usize);
    assert_eq!(want["m-0"].0, CLAIMS / MEMBERS + 1, "{want:?}");

    produce_test_records(&topic("claims"), &records).await;
    let run_args = run_args(&file, &args);
    let run_args: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let mut runner = WeirProcess::start(dir.path(), "runner.log", &run_args);
    // One update per claim, each under its member's key.
    let got = written(&topic("totals"), CLAIMS as usize, Duration::from_secs(90));
    assert_eq!(got.len(), CLAIMS as usize, "log:\n{}", runner.log_text());
    assert_eq!(finals(&got), want, "log:\n{}", runner.log_text());
    let repartition = format!("{base}-flow-by-member-repartition");
    let partitions = weir_tests::partition_count(&repartition);
    assert_eq!(
        partitions, 3,
        "the repartition topic has the input's partitions"
    );
    assert!(runner
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
        .success());
}
