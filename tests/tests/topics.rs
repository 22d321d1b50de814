//! `weir topics list|browse|tail|produce` against a real broker, with `kcat` as the other
//! client: what kcat writes, weir reads back exactly (keys, headers, JSON, text, binary);
//! what weir writes, kcat reads; a kcat consumer group's lag is reported in records and in
//! time; and bad addresses or names fail at once with what to do instead.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weir_tests::{eventually, kafka, kcat_produce, unique, WeirHomeDir};

fn create(home: &WeirHomeDir, topic: &str, partitions: u32) {
    home.ok(&[
        "topics",
        "create",
        "--brokers",
        kafka(),
        "--partitions",
        &partitions.to_string(),
        topic,
    ]);
}

fn browse(home: &WeirHomeDir, topic: &str, extra: &[&str]) -> Value {
    let args = [
        &["topics", "browse", "--brokers", kafka(), topic, "--json"],
        extra,
    ]
    .concat();
    serde_json::from_str(&home.ok(&args)).expect("browse prints JSON")
}

fn values(browsed: &Value) -> Vec<Value> {
    (browsed["messages"].as_array().unwrap().iter())
        .map(|m| m["value"]["data"].clone())
        .collect()
}

#[test]
fn browse_reads_newest_from_an_offset_from_a_time_and_filters_within_its_scan_limit() {
    let home = WeirHomeDir::new();
    let topic = unique("browse");
    create(&home, &topic, 1);
    let first: Vec<String> = (0..600).map(|i| json!({"i": i}).to_string()).collect();
    kcat_produce(kafka(), &topic, &first, &[]);

    let newest = browse(&home, &topic, &["-n", "3"]);
    assert_eq!(
        values(&newest),
        [json!({"i": 599}), json!({"i": 598}), json!({"i": 597})]
    );
    assert_eq!(newest["messages"][0]["offset"], 599);
    assert_eq!(newest["scan_limit_reached"], false);

    let forward = browse(&home, &topic, &["--offset", "10", "-n", "3"]);
    assert_eq!(
        values(&forward),
        [json!({"i": 10}), json!({"i": 11}), json!({"i": 12})]
    );

    // Messages written after a moment are found from that moment.
    let last = newest["messages"][0]["timestamp"].as_i64().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    kcat_produce(kafka(), &topic, &[json!({"i": "later"}).to_string()], &[]);
    let since = jiff::Timestamp::from_millisecond(last + 1)
        .unwrap()
        .to_string();
    let later = browse(&home, &topic, &["--since", &since]);
    assert_eq!(values(&later), [json!({"i": "later"})]);

    // A filter scans at most its limit, newest first, and says it stopped there.
    let filtered = browse(
        &home,
        &topic,
        &["--where", "i % 100 == 0", "--scan-limit", "301", "-n", "50"],
    );
    assert_eq!(
        values(&filtered),
        [json!({"i": 500}), json!({"i": 400}), json!({"i": 300})]
    );
    assert_eq!(filtered["scanned"], 301);
    assert_eq!(filtered["scan_limit_reached"], true);
    // The record whose `i` is a string cannot be tested by `i % 100`: counted, not hidden.
    assert_eq!(filtered["filter_errors"], 1);
    // The same question gets the same answer.
    let again = browse(
        &home,
        &topic,
        &["--where", "i % 100 == 0", "--scan-limit", "301", "-n", "50"],
    );
    assert_eq!(again["messages"], filtered["messages"]);

    let text = browse(
        &home,
        &topic,
        &["--contains", "\"i\":42}", "--scan-limit", "1000"],
    );
    assert_eq!(values(&text), [json!({"i": 42})]);
}

#[test]
fn keys_headers_text_and_binary_values_read_back_as_kcat_wrote_them() {
    let home = WeirHomeDir::new();
    let topic = unique("formats");
    create(&home, &topic, 3);
    kcat_produce(
        kafka(),
        &topic,
        &[
            "BTC:{\"rate\": 7100.5}".into(),
            "ETH:<script>alert(1)</script>".into(),
        ],
        &["-K", ":", "-H", "origin=kcat"],
    );
    let binary = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(binary.path(), [0xff, 0x00, 0x10]).unwrap();
    let status = Command::new("kcat")
        .args(["-P", "-b", kafka(), "-t", &topic, "-k", "BIN", "-p", "0"])
        .arg(binary.path())
        .status()
        .unwrap();
    assert!(status.success());

    let by_key = |key: &str| {
        let found = browse(&home, &topic, &["--key", key]);
        assert_eq!(found["messages"].as_array().unwrap().len(), 1, "{found}");
        found["messages"][0].clone()
    };
    let btc = by_key("BTC");
    assert_eq!(btc["key"], json!({"format": "text", "data": "BTC"}));
    assert_eq!(
        btc["value"],
        json!({"format": "json", "data": {"rate": 7100.5}})
    );
    assert_eq!(
        btc["headers"],
        json!([{"key": "origin", "value": {"format": "text", "data": "kcat"}}])
    );
    // Markup is a string to show, never anything else.
    let eth = by_key("ETH");
    assert_eq!(
        eth["value"],
        json!({"format": "text", "data": "<script>alert(1)</script>"})
    );
    assert_eq!(
        by_key("BIN")["value"],
        json!({"format": "hex", "data": "ff0010"})
    );
    // The same messages across all three partitions, in the table a person reads.
    let table = home.ok(&["topics", "browse", "--brokers", kafka(), &topic]);
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(
        table.contains("key=BTC origin=kcat {\"rate\":7100.5}"),
        "{table}"
    );
}

#[test]
fn produce_writes_what_kcat_reads_and_refuses_a_topic_that_does_not_exist() {
    let home = WeirHomeDir::new();
    let topic = unique("produce");
    create(&home, &topic, 2);
    let mut produce = home
        .command(&[
            "topics",
            "produce",
            "--brokers",
            kafka(),
            &topic,
            "--key",
            "k1",
            "--header",
            "trace=abc",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(produce.stdin.take().unwrap(), "{{\"n\": 1}}\n{{\"n\": 2}}").unwrap();
    let output = produce.wait_with_output().unwrap();
    assert!(output.status.success());
    let landed: Vec<Value> = (String::from_utf8_lossy(&output.stdout).lines())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(landed.len(), 2);
    // One key, one partition, consecutive offsets.
    assert_eq!(landed[0]["partition"], landed[1]["partition"]);
    assert_eq!(
        landed[1]["offset"].as_i64().unwrap(),
        landed[0]["offset"].as_i64().unwrap() + 1
    );

    let read = Command::new("kcat")
        .args([
            "-C",
            "-b",
            kafka(),
            "-t",
            &topic,
            "-e",
            "-q",
            "-f",
            "%k|%h|%s\n",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&read.stdout);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        ["k1|trace=abc|{\"n\": 1}", "k1|trace=abc|{\"n\": 2}"]
    );

    let missing = home.run(&[
        "topics",
        "produce",
        "--brokers",
        kafka(),
        "no-such-topic",
        "x",
    ]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("has no topic `no-such-topic`"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

#[test]
fn tail_prints_a_message_kcat_writes_while_it_follows() {
    let home = WeirHomeDir::new();
    let topic = unique("tail");
    create(&home, &topic, 1);
    kcat_produce(kafka(), &topic, &["{\"old\": true}".into()], &[]);
    let mut tail = home
        .command(&[
            "topics",
            "tail",
            "--brokers",
            kafka(),
            &topic,
            "--max",
            "1",
            "--json",
            "--where",
            "fresh",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It follows from the end once it says so: the old message is not shown, the new one is.
    let mut said = BufReader::new(tail.stderr.take().unwrap()).lines();
    let following = said.find(|line| line.as_ref().is_ok_and(|l| l.starts_with("following")));
    assert!(following.is_some(), "the tail says when it follows");
    let written = Instant::now();
    kcat_produce(
        kafka(),
        &topic,
        &["{\"fresh\": false}".into(), "{\"fresh\": true}".into()],
        &[],
    );
    let exited = eventually(Duration::from_secs(10), || tail.try_wait().unwrap());
    let took = written.elapsed();
    let output = tail.wait_with_output().unwrap();
    assert!(exited.is_some_and(|s| s.success()), "{output:?}");
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["value"]["data"], json!({"fresh": true}));
    assert_eq!(shown["offset"], 2);
    eprintln!("tail showed the message {took:?} after kcat wrote it");
}

#[test]
fn list_shows_partitions_counts_and_a_kcat_groups_lag_in_records_and_time() {
    let home = WeirHomeDir::new();
    let topic = unique("lag");
    let group = unique("kcat-group");
    create(&home, &topic, 2);
    let lines: Vec<String> = (0..40)
        .map(|i| format!("k{}:{{\"n\": {i}}}", i % 4))
        .collect();
    kcat_produce(kafka(), &topic, &lines, &["-K", ":"]);
    std::thread::sleep(Duration::from_millis(1200));
    // A group that reads 10 of the 40 messages and commits.
    let status = Command::new("kcat")
        .args([
            "-b",
            kafka(),
            "-G",
            &group,
            "-c",
            "10",
            "-o",
            "beginning",
            &topic,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let listed: Value =
        serde_json::from_str(&home.ok(&["topics", "list", "--brokers", kafka(), "--json", &topic]))
            .unwrap();
    let topics = listed["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 1, "only the topic asked for: {listed}");
    assert_eq!(topics[0]["messages"], 40);
    assert_eq!(topics[0]["partitions"].as_array().unwrap().len(), 2);
    assert_eq!(topics[0]["replication"], 1);
    let found = (listed["groups"].as_array().unwrap().iter())
        .find(|g| g["group"] == group.as_str())
        .unwrap_or_else(|| panic!("{group} is listed: {listed}"));
    assert_eq!(found["lag"], 30, "{found}");
    // Its oldest unconsumed message was written over a second before it was looked at.
    assert!(found["lag_seconds"].as_f64().unwrap() >= 1.0, "{found}");

    let table = home.ok(&["topics", "list", "--brokers", kafka(), &topic]);
    assert!(table.contains(&group), "{table}");
}

#[test]
fn a_name_that_is_not_an_address_or_a_missing_topic_fails_at_once_saying_what_to_do() {
    let home = WeirHomeDir::new();
    let started = Instant::now();
    let wrong = home.run(&["topics", "count", "--brokers", "kafka-1", "rates"]);
    assert!(!wrong.status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(said.contains("`kafka-1` is not host:port"), "{said}");

    let nobody = home.run(&["topics", "list", "--kafka", "kafka-1"]);
    assert!(!nobody.status.success());
    assert!(
        String::from_utf8_lossy(&nobody.stderr).contains("no instance is named `kafka-1`"),
        "{}",
        String::from_utf8_lossy(&nobody.stderr)
    );

    let topic = unique("named");
    create(&home, &topic, 1);
    let missing = home.run(&["topics", "count", "--brokers", kafka(), &topic, "nope"]);
    assert_eq!(
        missing.status.code(),
        Some(1),
        "a missing topic fails the count"
    );
    let counted: Value = serde_json::from_slice(&missing.stdout).unwrap();
    assert_eq!(
        counted,
        json!({"counts": {(topic.clone()): 0}, "missing": ["nope"]})
    );
    home.ok(&[
        "topics",
        "count",
        "--brokers",
        kafka(),
        "--missing-ok",
        "nope",
    ]);

    let typo = &topic[..topic.len() - 1];
    let browse = home.run(&["topics", "browse", "--brokers", kafka(), typo]);
    assert!(!browse.status.success());
    let said = String::from_utf8_lossy(&browse.stderr);
    assert!(said.contains("did you mean"), "{said}");
    assert!(said.contains(&format!("`{topic}`")), "{said}");
}
