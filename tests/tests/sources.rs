//! The HTTP poller and the replay source, publishing to a real broker.

use std::sync::atomic::Ordering;
use std::time::Duration;

use weir_contracts::status::{SourceState, SourceStatus};
use weir_tests::{eventually, kafka, read_topic, ticker_server, unique, WeirProcess};

#[test]
fn http_poller_publishes_each_response_body() {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("poll");
    let bodies: Vec<String> = [478_000.5, 478_060.0, 477_990.25]
        .iter()
        .map(|r| format!(r#"{{"data":{{"amount":"{r}","base":"BTC","currency":"CNY"}}}}"#))
        .collect();
    let (url, hits) = ticker_server(bodies.clone());
    let mut poller = WeirProcess::start(
        dir.path(),
        "poller.log",
        &[
            "source",
            "http",
            "--url",
            &url,
            "--topic",
            &topic,
            "--brokers",
            kafka(),
            "--interval",
            "100ms",
            "--count",
            "3",
            "--key-pointer",
            "/data/base",
        ],
    );
    let status = poller.wait(Duration::from_secs(60));
    assert!(status.success(), "{}", poller.log_text());
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let messages = read_topic(
        kafka(),
        &topic,
        3,
        Duration::from_secs(30),
        Duration::from_millis(500),
    );
    let payloads: Vec<&str> = messages.iter().map(|m| m.payload.as_str()).collect();
    assert_eq!(
        payloads,
        bodies.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(messages[0]
        .headers
        .contains(&("weir-source".to_string(), url.clone())));
    // Keyed by the value at the JSON pointer in each document.
    assert!(
        messages.iter().all(|m| m.key.as_deref() == Some("BTC")),
        "{messages:?}"
    );
}

#[test]
fn unreachable_source_is_retried_reported_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("dead");
    // A port with nothing listening.
    let port = weir_supervisor::ports::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}/ticker");
    let status_addr = format!("127.0.0.1:{}", weir_supervisor::ports::free_port().unwrap());
    let mut poller = WeirProcess::start(
        dir.path(),
        "poller.log",
        &[
            "source",
            "http",
            "--url",
            &url,
            "--topic",
            &topic,
            "--brokers",
            kafka(),
            "--interval",
            "100ms",
            "--max-backoff",
            "400ms",
            "--addr",
            &status_addr,
        ],
    );
    // Its `/status` says what the orchestrator reports: retrying, nothing published, why.
    let status_url = format!("http://{status_addr}/status");
    let reported: SourceStatus = eventually(Duration::from_secs(30), || {
        let status: SourceStatus = reqwest::blocking::get(&status_url).ok()?.json().ok()?;
        (status.failed_attempts >= 3).then_some(status)
    })
    .unwrap_or_else(|| panic!("no failing status:\n{}", poller.log_text()));
    assert_eq!(reported.state, SourceState::Retrying);
    assert_eq!((reported.published, reported.live), (0, true));
    assert!(
        reported
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains(&port.to_string())),
        "{reported:?}"
    );
    let status = poller.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    let log = poller.log_text();
    assert!(
        !status.success(),
        "a source that delivered nothing exits non-zero:\n{log}"
    );
    assert!(log.contains("source unreachable"), "{log}");
    assert!(log.contains("no data is published meanwhile"), "{log}");
    let attempts = log.matches("source unreachable").count();
    assert!(
        attempts >= 3,
        "retried several times, saw {attempts}:\n{log}"
    );
    assert!(log.contains("published 0 documents"), "{log}");
    let messages = read_topic(kafka(), &topic, 1, Duration::from_secs(3), Duration::ZERO);
    assert!(messages.is_empty(), "nothing may be invented: {messages:?}");
}

#[test]
fn replay_publishes_recorded_documents_labelled_as_replay() {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("replay");
    let recording = weir_tests::repo_root().join("workflows/data/btcusd-monthly.csv");
    let mut replay = WeirProcess::start(
        dir.path(),
        "replay.log",
        &[
            "source",
            "replay",
            recording.to_str().unwrap(),
            "--topic",
            &topic,
            "--brokers",
            kafka(),
            "--interval",
            "0s",
            "--count",
            "12",
            "--key-pointer",
            "/column1",
        ],
    );
    assert!(
        replay.wait(Duration::from_secs(60)).success(),
        "{}",
        replay.log_text()
    );
    assert!(
        replay.log_text().contains("REPLAY"),
        "the log says it is a replay"
    );
    let messages = read_topic(
        kafka(),
        &topic,
        12,
        Duration::from_secs(30),
        Duration::from_millis(500),
    );
    assert_eq!(messages.len(), 12);
    // The first row of the recording, as a JSON object keyed by the CSV header
    // (its unnamed first column, the date, becomes `column1`).
    let first = messages[0].json();
    assert_eq!(first["column1"], "2012-01-31");
    assert_eq!(first["Close"], "5.55");
    assert_eq!(messages[11].json()["column1"], "2012-12-31");
    // Each document keyed by its own date, the value its key pointer names.
    for message in &messages {
        assert_eq!(
            message.key.as_deref(),
            message.json()["column1"].as_str(),
            "{message:?}"
        );
    }
    assert!(messages.iter().all(|m| m
        .headers
        .iter()
        .any(|(k, v)| k == "weir-replay" && v.ends_with("btcusd-monthly.csv"))));
}

#[test]
fn malformed_recording_is_refused_before_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("bad.jsonl");
    std::fs::write(&recording, "{\"ok\": 1}\nnot json\n").unwrap();
    let topic = unique("bad-replay");
    let mut replay = WeirProcess::start(
        dir.path(),
        "replay.log",
        &[
            "source",
            "replay",
            recording.to_str().unwrap(),
            "--topic",
            &topic,
            "--brokers",
            kafka(),
        ],
    );
    assert!(!replay.wait(Duration::from_secs(30)).success());
    assert!(
        replay.log_text().contains("line 2: not a JSON document"),
        "{}",
        replay.log_text()
    );
    assert!(read_topic(kafka(), &topic, 1, Duration::from_secs(2), Duration::ZERO).is_empty());
}
