//! A topology's records in and out as `weir topology test` reads and prints them: produced
//! into a real topic, read back from one, and run through `weir topology test` for what a
//! runner should write.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::Value;
use weir_topology::test_driver::TestOutput;

use crate::{kafka, read_topic, read_topic_until, weir_bin, Consumed};

/// The start of the minute an hour ago, in epoch ms: event times recent enough that the
/// broker's 7-day retention keeps them (older ones would be deleted as soon as written).
pub fn an_hour_ago() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    now - now % 60_000 - 3_600_000
}

/// What `weir topology test FILE --input RECORDS [ARGS]` prints for `records` (written to a
/// file in `dir`): the outputs a runner that nothing happens to writes.
pub fn topology_test(
    file: &Path,
    args: &[String],
    dir: &Path,
    records: &[Value],
) -> Vec<TestOutput> {
    let input = dir.join("records.jsonl");
    let mut lines = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    for record in records {
        writeln!(lines, "{record}").unwrap();
    }
    lines.flush().unwrap();
    drop(lines);
    let output = std::process::Command::new(weir_bin())
        .args(["topology", "test"])
        .arg(file)
        .arg("--input")
        .arg(&input)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The arguments of `weir topology run FILE` against the test broker, then `args` (the
/// `--set`s): what a test starts a runner with.
pub fn run_args(file: &Path, args: &[String]) -> Vec<String> {
    let mut run = vec![
        "topology".to_string(),
        "run".into(),
        file.display().to_string(),
        "--brokers".into(),
        kafka().to_string(),
    ];
    run.extend(args.iter().cloned());
    run
}

/// Produces the test records with their keys and timestamps, many at a time.
pub async fn produce_test_records(topic: &str, records: &[Value]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("enable.idempotence", "true")
        // As Weir's producers (and Java clients) partition keys.
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut deliveries = Vec::with_capacity(records.len());
    for record in records {
        // As `weir topology test` reads it: a string is the payload's text.
        let payload = match &record["value"] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let key = record["key"].as_str().unwrap();
        let timestamp = record["timestamp"].as_i64().unwrap();
        let mut message = FutureRecord::to(topic)
            .key(key)
            .payload(&payload)
            .timestamp(timestamp);
        loop {
            match producer.send_result(message) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    message = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((e, _)) => panic!("produce to {topic}: {e}"),
            }
        }
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => panic!("produce to {topic}: {e}"),
            Err(_) => panic!("produce to {topic}: the producer went away"),
        }
    }
}

/// What the runner wrote to `topic`, as `weir topology test` prints it.
pub fn written(topic: &str, count: usize, timeout: Duration) -> Vec<TestOutput> {
    read_topic(kafka(), topic, count, timeout, Duration::from_secs(1))
        .iter()
        .map(|m| as_test_output(topic, m))
        .collect()
}

/// What the runner wrote to `topic` until `done` says an output completes what is awaited
/// (or `timeout` passed), as `weir topology test` prints it.
pub fn written_until(
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&TestOutput) -> bool,
) -> Vec<TestOutput> {
    let settle = Duration::from_secs(1);
    read_topic_until(kafka(), topic, timeout, settle, |m| {
        done(&as_test_output(topic, m))
    })
    .iter()
    .map(|m| as_test_output(topic, m))
    .collect()
}

fn as_test_output(topic: &str, message: &Consumed) -> TestOutput {
    TestOutput::of(
        topic,
        message.key.as_deref().map(str::as_bytes),
        message.payload.as_bytes(),
        message.timestamp.unwrap_or(-1),
    )
    .with_headers((message.headers.iter()).map(|(key, value)| (key.as_str(), value.as_str())))
}
