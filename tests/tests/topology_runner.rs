//! The reference topology, run by the real `weir topology run` against a real broker.

use std::time::Duration;

use serde_json::{json, Value};
use weir_contracts::status::{RunnerState, RunnerStatus};
use weir_tests::{
    eventually, kafka, produce, produce_paced, read_topic, read_topic_until, repo_root, unique,
    WeirProcess,
};

const WAIT: Duration = Duration::from_secs(60);

/// Topics and group of one test's run of the reference topology.
struct Names {
    input: String,
    dataflow: String,
    rates: String,
    variations: String,
    notifications: String,
    errors: String,
}

impl Names {
    fn new() -> Self {
        let base = unique("btc");
        Self {
            input: format!("{base}-raw"),
            dataflow: format!("{base}-flow"),
            rates: format!("{base}-rates"),
            variations: format!("{base}-variations"),
            notifications: format!("{base}-notifications"),
            errors: format!("{base}-errors"),
        }
    }

    fn start_runner(&self, dir: &std::path::Path, log: &str, extra: &[&str]) -> WeirProcess {
        let topology = repo_root().join("workflows/topologies/bitcoin-yuan.yaml");
        let sets = [
            format!("message_topic={}", self.input),
            format!("dataflow_name={}", self.dataflow),
            format!("rate_topic={}", self.rates),
            format!("variation_topic={}", self.variations),
            format!("notification_topic={}", self.notifications),
            format!("error_topic={}", self.errors),
        ];
        let mut args = vec![
            "topology".to_string(),
            "run".into(),
            topology.display().to_string(),
            "--brokers".into(),
            kafka().to_string(),
            "--log-interval".into(),
            "1s".into(),
        ];
        for set in sets {
            args.push("--set".into());
            args.push(set);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        WeirProcess::start(dir, log, &args)
    }
}

/// A Coinbase-shaped spot price document with the amount quoted as a string.
fn ticker(rate: f64) -> String {
    json!({"data": {"amount": format!("{rate:.2}"), "base": "BTC", "currency": "CNY"}}).to_string()
}

fn field(message: &Value, name: &str) -> f64 {
    message[name]
        .as_f64()
        .unwrap_or_else(|| panic!("`{name}` missing in {message}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn reference_topology_emits_rates_variations_and_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let names = Names::new();
    let rates = [
        478_000.0, 478_020.0, 478_100.5, 478_040.0, 478_040.0, 477_900.25, 477_950.0,
    ];
    let documents: Vec<String> = rates.iter().map(|&r| ticker(r)).collect();
    produce(kafka(), &names.input, &documents).await;
    let mut runner = names.start_runner(dir.path(), "runner.log", &["--set", "threshold=50"]);

    let got_rates = read_topic(
        kafka(),
        &names.rates,
        rates.len(),
        WAIT,
        Duration::from_millis(500),
    );
    let rate_values: Vec<f64> = got_rates.iter().map(|m| field(&m.json(), "rate")).collect();
    assert_eq!(rate_values, rates, "log:\n{}", runner.log_text());
    assert!(got_rates
        .iter()
        .all(|m| m.json()["timestamp"].as_i64().is_some()));

    let variations: Vec<(f64, f64, f64)> = read_topic(
        kafka(),
        &names.variations,
        rates.len() - 1,
        WAIT,
        Duration::from_millis(500),
    )
    .iter()
    .map(|m| {
        let v = m.json();
        (
            field(&v, "previous"),
            field(&v, "rate"),
            field(&v, "variation"),
        )
    })
    .collect();
    let expected: Vec<(f64, f64, f64)> = rates
        .windows(2)
        .map(|w| (w[0], w[1], w[1] - w[0]))
        .collect();
    assert_eq!(variations, expected);

    // |variation| > 50: +80.5, -60.5, -139.75 (and +20, 0, +49.75 stay quiet).
    let notifications: Vec<f64> = read_topic(
        kafka(),
        &names.notifications,
        3,
        WAIT,
        Duration::from_secs(1),
    )
    .iter()
    .map(|m| field(&m.json(), "variation"))
    .collect();
    assert_eq!(notifications, vec![80.5, -60.5, -139.75]);

    let status = runner.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert!(
        status.success(),
        "SIGTERM should stop the runner cleanly: {status}\n{}",
        runner.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_documents_go_to_the_error_topic_and_processing_continues() {
    let dir = tempfile::tempdir().unwrap();
    let names = Names::new();
    let documents = vec![
        ticker(100.0),
        "this is not JSON".to_string(),
        json!({"data": {"price": "101"}}).to_string(),
        json!({"data": {"amount": "n/a"}}).to_string(),
        ticker(300.0),
    ];
    produce(kafka(), &names.input, &documents).await;
    let mut runner = names.start_runner(dir.path(), "runner.log", &[]);

    let errors: Vec<Value> =
        read_topic(kafka(), &names.errors, 3, WAIT, Duration::from_millis(500))
            .iter()
            .map(|m| m.json())
            .collect();
    assert_eq!(errors.len(), 3, "log:\n{}", runner.log_text());
    assert_eq!(errors[0]["operator"], "parse");
    assert_eq!(errors[0]["payload"], "this is not JSON");
    assert_eq!(errors[0]["topic"], Value::String(names.input.clone()));
    assert_eq!(errors[0]["offset"], 1);
    assert_eq!(errors[1]["operator"], "extract");
    assert_eq!(
        errors[1]["reason"],
        "field `rate`: nothing at JSON pointer `/data/amount`"
    );
    assert_eq!(errors[1]["payload"], documents[2]);
    assert_eq!(
        errors[2]["reason"],
        "field `rate`: expected a number, found \"n/a\""
    );

    // The good document after the bad ones went through, and its variation skips them.
    let variations = read_topic(
        kafka(),
        &names.variations,
        1,
        WAIT,
        Duration::from_millis(500),
    );
    assert_eq!(variations.len(), 1);
    assert_eq!(field(&variations[0].json(), "variation"), 200.0);
    let notifications = read_topic(
        kafka(),
        &names.notifications,
        1,
        WAIT,
        Duration::from_millis(500),
    );
    assert_eq!(notifications.len(), 1);
    assert!(runner
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
        .success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runner_killed_mid_stream_and_restarted_loses_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let names = Names::new();
    const COUNT: usize = 5_000;
    // Distinct rates, so that every input is recognisable in the outputs.
    let rates: Vec<f64> = (0..COUNT)
        .map(|i| 400_000.0 + (i as f64) * 1.5 + if i % 2 == 0 { 0.0 } else { 100.0 })
        .collect();
    let documents: Vec<String> = rates.iter().map(|&r| ticker(r)).collect();
    // The input keeps arriving (at most ~500 documents/s, so for 10 s or more) while the
    // runner is killed, so the kill lands mid-stream.
    let input = names.input.clone();
    let producing =
        tokio::spawn(async move { produce_paced(kafka(), &input, &documents, Some(500)).await });

    let mut first = names.start_runner(dir.path(), "first.log", &[]);
    let progressed = eventually(WAIT, || {
        let seen = read_topic(
            kafka(),
            &names.rates,
            500,
            Duration::from_secs(2),
            Duration::ZERO,
        )
        .len();
        (seen >= 500).then_some(seen)
    });
    assert!(
        progressed.is_some(),
        "runner made no progress:\n{}",
        first.log_text()
    );
    let status = first.signal_and_wait(libc::SIGKILL, Duration::from_secs(10));
    assert!(!status.success());
    assert!(
        !producing.is_finished(),
        "the kill should land while input is still arriving"
    );
    producing.await.unwrap();

    let mut second = names.start_runner(dir.path(), "second.log", &[]);
    // Rates written again after the kill count towards the topic's length: wait for each.
    let mut awaited: std::collections::HashSet<u64> = rates.iter().map(|r| r.to_bits()).collect();
    let outputs = read_topic_until(
        kafka(),
        &names.rates,
        Duration::from_secs(120),
        Duration::from_secs(1),
        |m| {
            awaited.remove(&field(&m.json(), "rate").to_bits());
            awaited.is_empty()
        },
    );
    let mut seen: Vec<f64> = outputs.iter().map(|m| field(&m.json(), "rate")).collect();
    assert!(
        seen.len() >= COUNT,
        "only {} of {COUNT} rates:\n{}",
        seen.len(),
        second.log_text()
    );
    seen.sort_by(f64::total_cmp);
    seen.dedup();
    let mut expected_rates = rates.clone();
    expected_rates.sort_by(f64::total_cmp);
    let missing: Vec<&f64> = expected_rates
        .iter()
        .filter(|r| seen.binary_search_by(|s| s.total_cmp(r)).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} input rates never reached the output, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(seen.len(), COUNT, "no rate that was not in the input");

    // Operator state travelled with the committed offset: every consecutive pair has its
    // variation, including the pair that straddles the kill.
    let mut awaited: std::collections::HashSet<(u64, u64)> = (rates.windows(2))
        .map(|w| (w[0].to_bits(), w[1].to_bits()))
        .collect();
    let variations = read_topic_until(
        kafka(),
        &names.variations,
        Duration::from_secs(60),
        Duration::from_secs(1),
        |m| {
            let v = m.json();
            awaited.remove(&(field(&v, "previous").to_bits(), field(&v, "rate").to_bits()));
            awaited.is_empty()
        },
    );
    let mut pairs: Vec<(u64, u64)> = variations
        .iter()
        .map(|m| {
            let v = m.json();
            (field(&v, "previous").to_bits(), field(&v, "rate").to_bits())
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    let mut expected: Vec<(u64, u64)> = rates
        .windows(2)
        .map(|w| (w[0].to_bits(), w[1].to_bits()))
        .collect();
    expected.sort();
    let lost = expected
        .iter()
        .filter(|p| pairs.binary_search(p).is_err())
        .count();
    assert_eq!(lost, 0, "variations lost across the restart");
    assert_eq!(
        pairs.len(),
        expected.len(),
        "no variation against a wrong previous value"
    );
    assert!(second
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
        .success());
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_endpoint_counts_records_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let names = Names::new();
    let documents: Vec<String> = (0..50).map(|i| ticker(1000.0 + i as f64 * 60.0)).collect();
    produce(kafka(), &names.input, &documents).await;
    let port = weir_supervisor::ports::free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let mut runner = names.start_runner(dir.path(), "runner.log", &["--addr", &addr]);
    let url = format!("http://{addr}/metrics");
    let text = eventually(WAIT, || {
        let text = reqwest::blocking::get(&url).ok()?.text().ok()?;
        text.contains("weir_records_done_total{topology=")
            .then_some(())
            .and(
                text.lines()
                    .any(|l| l.starts_with("weir_records_done_total{") && l.ends_with(" 50"))
                    .then_some(text),
            )
    })
    .unwrap_or_else(|| panic!("metrics never reached 50 records:\n{}", runner.log_text()));
    // 50 rates + 49 variations + 49 notifications (every step is 60 > 50).
    assert!(
        text.contains(&format!(
            "weir_messages_out_total{{topology=\"{}\"}} 148",
            names.dataflow
        )),
        "{text}"
    );
    assert!(text.contains("weir_latency_seconds_count"), "{text}");
    // `/status` carries the same counts, typed, with the input's lag.
    let status: RunnerStatus = eventually(WAIT, || {
        let status: RunnerStatus = reqwest::blocking::get(format!("http://{addr}/status"))
            .ok()?
            .json()
            .ok()?;
        // Consumed records are processed once their outputs are acknowledged: wait for both.
        status.is_drained().then_some(status)
    })
    .unwrap_or_else(|| panic!("the runner never drained:\n{}", runner.log_text()));
    assert_eq!(status.state, RunnerState::Running);
    assert_eq!((status.consumed, status.processed), (50, 50));
    assert_eq!(status.messages_out, 148);
    assert!(status.is_drained());
    // Its one stateful operator, `diff`, shows its store: the keys it holds, their bytes, its
    // changelog topic and the restore of the partition it was given (empty: a new group).
    let [store] = &status.state_stores[..] else {
        panic!("one state store expected: {:?}", status.state_stores);
    };
    assert!(store.operator.starts_with("diff-"), "{store:?}");
    assert!(
        store
            .changelog
            .ends_with(&format!("{}-changelog", store.operator)),
        "{store:?}"
    );
    assert!(
        store.keys >= 1 && store.bytes >= 12 * store.keys,
        "{store:?}"
    );
    let restore = store
        .last_restore
        .expect("the assigned partition was restored");
    assert_eq!((restore.partition, restore.keys), (0, 0), "{restore:?}");
    assert!(runner
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
        .success());
    assert!(
        runner.log_text().contains("records in"),
        "periodic progress line is logged"
    );
}

/// A replay that starts its recording over marks the seam, and the topology's `diff` begins
/// again there: no variation or notification joins the recording's last value to its first.
#[test]
fn a_replay_starting_over_invents_no_move_across_the_seam() {
    let dir = tempfile::tempdir().unwrap();
    let names = Names::new();
    // Rising closes: the jump from the last back to the first is the only large fall.
    let closes = [100.0, 160.0, 230.0, 310.0];
    let recording = dir.path().join("closes.jsonl");
    let lines: Vec<String> = closes.iter().map(|&c| ticker(c)).collect();
    std::fs::write(&recording, lines.join("\n")).unwrap();
    let published = 2 * closes.len() + 2; // two passes and the start of a third
    let mut replay = WeirProcess::start(
        dir.path(),
        "replay.log",
        &[
            "source",
            "replay",
            recording.to_str().unwrap(),
            "--topic",
            &names.input,
            "--brokers",
            kafka(),
            "--interval",
            "0s",
            "--repeat",
            "--count",
            &published.to_string(),
        ],
    );
    assert!(replay.wait(WAIT).success(), "{}", replay.log_text());
    let mut runner = names.start_runner(dir.path(), "runner.log", &["--set", "threshold=50"]);
    // Each pass's first record has no previous value: 3 + 3 + 1 variations (any extra one
    // arriving within the settle time would fail the comparison).
    let within_passes: Vec<(f64, f64)> = closes.windows(2).map(|w| (w[0], w[1])).collect();
    let expected: Vec<(f64, f64)> =
        [&within_passes[..], &within_passes[..], &within_passes[..1]].concat();
    let variations: Vec<(f64, f64)> = read_topic(
        kafka(),
        &names.variations,
        expected.len(),
        WAIT,
        Duration::from_secs(3),
    )
    .iter()
    .map(|m| (field(&m.json(), "previous"), field(&m.json(), "rate")))
    .collect();
    assert_eq!(variations, expected, "log:\n{}", runner.log_text());
    let notifications = read_topic(
        kafka(),
        &names.notifications,
        expected.len(),
        WAIT,
        Duration::from_secs(2),
    );
    assert!(
        notifications
            .iter()
            .all(|m| field(&m.json(), "variation") > 0.0),
        "a notification crossed the seam: {notifications:?}"
    );
    assert_eq!(notifications.len(), expected.len());
    assert!(runner
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
        .success());
}

/// `weir bench topology` on a small load: every figure it reports was measured (positive, with
/// its rounds), the latency of each pace counts every record sent, windows closed in the
/// windowed phase and a fresh runner restored every key of the keyed-state phase. No timing
/// is asserted.
#[test]
fn the_topology_benchmark_reports_every_figure_it_measures() {
    let topology = repo_root().join("workflows/topologies/bitcoin-yuan.yaml");
    let windowed = repo_root().join("workflows/topologies/candles.yaml");
    let output = std::process::Command::new(weir_tests::weir_bin())
        .args(["bench", "topology", "--json", "--brokers", kafka()])
        .args(["--records", "100000", "--rounds", "2", "--keys", "4"])
        .args([
            "--paces",
            "500",
            "--pace-seconds",
            "1",
            "--settle-seconds",
            "1",
        ])
        .arg("--topology")
        .arg(&topology)
        .args(["--windowed-keys", "500", "--state-keys", "20000"])
        .arg("--windowed-topology")
        .arg(&windowed)
        .output()
        .expect("run weir bench topology");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON report");
    for contender in ["runner", "passthrough", "passthrough_single_copy"] {
        let rounds = report[contender]["rounds_records_per_s"]
            .as_array()
            .unwrap();
        assert_eq!(rounds.len(), 2, "{report}");
        assert!(rounds.iter().all(|r| r.as_f64().unwrap() > 0.0), "{report}");
        assert!(report[contender]["startup_s"]["median"].as_f64().unwrap() > 0.0);
    }
    assert!(report["ratio"].as_f64().unwrap() > 0.0, "{report}");
    assert!(
        report["ratio_to_single_copy"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    // The reference topology writes a rate for every record, a variation for all but the
    // first of each key, and a notification for some: between 2 and 3 messages per record
    // (over 4 keys the benchmark's documents make nearly every variation a notification).
    let per_record = report["messages_per_record"].as_f64().unwrap();
    assert!((2.0..=3.0).contains(&per_record), "{report}");
    assert!(report["peak_rss_mb"].as_f64().unwrap() > 1.0, "{report}");
    for latency in [
        "latency",
        "passthrough_latency",
        "passthrough_single_copy_latency",
    ] {
        let paces = report[latency].as_array().unwrap();
        assert_eq!(paces.len(), 1, "{report}");
        // 500 records/s for 1 s in each of the two passes, merged.
        assert_eq!(paces[0]["records"], 1000, "{report}");
        let p50 = paces[0]["p50_ms"].as_f64().unwrap();
        let p99 = paces[0]["p99_ms"].as_f64().unwrap();
        assert!(p50 > 0.0 && p99 >= p50, "{report}");
    }
    // The scaling phase: one and two runners over one and two partitions.
    let scaling = report["scaling"].as_array().unwrap();
    let counts: Vec<u64> = (scaling.iter())
        .map(|f| f["replicas"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 2], "{report}");
    for figures in scaling {
        for rate in ["runner_records_per_s", "passthrough_records_per_s"] {
            assert!(figures[rate].as_f64().unwrap() > 0.0, "{report}");
        }
    }
    // The windowed phase: 100,000 records over 500 keys and ten minutes of event time; the
    // nine minutes that closed wrote a candle per key, the last one stays open.
    let windowed = &report["windowed"];
    assert_eq!(windowed["keys"], 500, "{report}");
    for rate in ["runner_records_per_s", "passthrough_records_per_s"] {
        assert!(windowed[rate]["median"].as_f64().unwrap() > 0.0, "{report}");
    }
    assert!(windowed["ratio"].as_f64().unwrap() > 0.0, "{report}");
    let results = windowed["results_written"].as_u64().unwrap();
    assert!((9 * 500..=10 * 500).contains(&results), "{report}");
    assert_eq!(windowed["late_records"], 0, "{report}");
    // The keyed-state phase: every distinct key held, then restored by a fresh runner.
    let keyed = &report["keyed_state"];
    assert_eq!(keyed["keys_held"], 20_000, "{report}");
    assert!(keyed["bytes_held"].as_u64().unwrap() > 20_000, "{report}");
    assert!(
        keyed["restored_keys"].as_u64().unwrap() >= 20_000,
        "{report}"
    );
    assert!(keyed["peak_rss_mb"].as_f64().unwrap() > 1.0, "{report}");
    assert!(keyed["records_per_s"].as_f64().unwrap() > 0.0, "{report}");
    assert!(
        stderr.contains("loaded 100%"),
        "no load progress:\n{stderr}"
    );
}

/// Started outside the repository with a topology file that does not exist, the benchmark
/// says so before loading anything.
#[test]
fn the_topology_benchmark_refuses_a_missing_topology_at_once() {
    let output = std::process::Command::new(weir_tests::weir_bin())
        .args(["bench", "topology", "--brokers", kafka()])
        .args(["--topology", "/nonexistent/flow.yaml"])
        .output()
        .expect("run weir bench topology");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("/nonexistent/flow.yaml"), "{stderr}");
    assert!(
        !stderr.contains("loading"),
        "loaded before checking:\n{stderr}"
    );
}
