//! The CDC pipeline (`workflows/topologies/cdc-sync.yaml`) run by the real `weir topology run`
//! on generated change events replayed by the real `weir source replay --change-events` into a
//! topic of three partitions: `weir cdc verify` finds the compacted target equal to the final
//! state of the claims table, key for key (claims that come before their member included,
//! through the retry topics), and names the key when the target is made to differ.

use std::process::Command;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use weir_tests::{
    eventually, kafka, read_topic, repo_root, shipped_workflow, unique, weir_bin, WeirHomeDir,
    WeirProcess,
};

const CDC_SYNC: &str = "workflows/topologies/cdc-sync.yaml";
const PRIMARY_KEYS: &str = "members=member_id,claims=claim_id";

fn weir(args: &[&str]) -> std::process::Output {
    Command::new(weir_bin()).args(args).output().expect("weir")
}

/// Replays change events into `topic`, keyed by their primary keys, and waits for the end.
fn replay(events: &str, topic: &str) {
    let replayed = weir(&[
        "source",
        "replay",
        events,
        "--interval",
        "0ms",
        "--change-events",
        PRIMARY_KEYS,
        "--topic",
        topic,
        "--brokers",
        kafka(),
    ]);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
}

/// A claim's insert (its `ts_ms` far after the generated ones).
fn claim_insert(claim: u64, member: u64) -> serde_json::Value {
    serde_json::json!({
        "op": "c", "before": null,
        "after": { "claim_id": claim, "member_id": member, "amount": 1.5, "status": "open" },
        "source": { "table": "claims", "ts_ms": 4_000_000_000_000_i64 + claim as i64 },
    })
}

fn verify(target: &str, events: &str) -> std::process::Output {
    verify_waiting(target, events, "0s")
}

/// `weir cdc verify --wait`: whether the target matched within `wait`, and the comparison
/// (as JSON) it ended on.
fn verify_waiting(target: &str, events: &str, wait: &str) -> std::process::Output {
    weir(&[
        "cdc",
        "verify",
        "--brokers",
        kafka(),
        target,
        "--events",
        events,
        "--table",
        "claims",
        "--primary-keys",
        PRIMARY_KEYS,
        "--json",
        "--wait",
        wait,
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_target_holds_the_final_state_of_the_claims_and_a_broken_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let base = unique("cdc");
    let (events_topic, target, errors) = (
        format!("{base}-events"),
        format!("{base}-target"),
        format!("{base}-errors"),
    );
    let events = dir.path().join("events.jsonl");
    let events_text = events.display().to_string();
    let generated = weir(&[
        "cdc",
        "generate",
        "-o",
        &events_text,
        "--seed",
        "11",
        "--members",
        "40",
        "--claim-events",
        "3000",
        "--poison",
        "0.01",
        "--early-references",
        "4",
    ]);
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let created = weir(&[
        "topics",
        "create",
        "--brokers",
        kafka(),
        "--partitions",
        "3",
        &events_topic,
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    replay(&events_text, &events_topic);
    let dead_letters = format!("{base}-dead");
    let sets = [
        format!("dead_letter_topic={dead_letters}"),
        "retry_backoff=300ms".to_string(),
        format!("cdc_topic={events_topic}"),
        format!("target_topic={target}"),
        format!("error_topic={errors}"),
        format!("dataflow_name={base}-sync"),
    ];
    let topology = repo_root().join(CDC_SYNC).display().to_string();
    let port = weir_supervisor::ports::free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec![
        "topology",
        "run",
        &topology,
        "--brokers",
        kafka(),
        "--addr",
        &addr,
    ];
    for set in &sets {
        args.extend(["--set", set]);
    }
    let mut runner = WeirProcess::start(dir.path(), "runner.log", &args);
    // The runner is done when the target stops changing and matches; a comparison that keeps
    // failing for two minutes is the failure, with its report.
    let output = verify_waiting(&target, &events_text, "120s");
    let mut last = String::from_utf8_lossy(&output.stdout).into_owned();
    let matched = output.status.success().then_some(());
    assert!(matched.is_some(), "{last}\nlog:\n{}", runner.log_text());
    // A claim of a member that comes 2 s later: retried until the member is there. And one of
    // a member that never comes: dead-lettered after its retries. Only the first belongs to
    // the final state the target is compared with.
    let write = |name: &str, events: &[serde_json::Value]| -> String {
        let path = dir.path().join(name);
        let lines: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        std::fs::write(&path, lines.join("\n")).unwrap();
        path.display().to_string()
    };
    let early = write("early.jsonl", &[claim_insert(900_001, 999)]);
    let never = write("never.jsonl", &[claim_insert(900_002, 998)]);
    let member = serde_json::json!({
        "op": "c", "before": null,
        "after": { "member_id": 999, "name": "late member", "plan": "basic" },
        "source": { "table": "members", "ts_ms": 4_000_000_000_000_i64 },
    });
    let late_member = write("member.jsonl", &[member]);
    replay(&early, &events_topic);
    replay(&never, &events_topic);
    std::thread::sleep(Duration::from_secs(2));
    replay(&late_member, &events_topic);
    let mut all = std::fs::read_to_string(&events).unwrap();
    for file in [&early, &late_member] {
        all.push_str(&std::fs::read_to_string(file).unwrap());
        all.push('\n');
    }
    std::fs::write(&events, all).unwrap();
    let output = verify_waiting(&target, &events_text, "120s");
    last = String::from_utf8_lossy(&output.stdout).into_owned();
    let matched = output.status.success().then_some(());
    assert!(matched.is_some(), "{last}\nlog:\n{}", runner.log_text());
    let report: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert!(report["expected_rows"].as_u64().unwrap() > 500, "{report}");
    assert!(!report["poison"].as_array().unwrap().is_empty(), "{report}");

    // The poison records (and only they) went to the error topic.
    let poison = report["poison"].as_array().unwrap().len();
    let refused = read_topic(
        kafka(),
        &errors,
        poison,
        Duration::from_secs(30),
        Duration::from_secs(1),
    );
    assert_eq!(refused.len(), poison, "the poison records on {errors}");
    assert!(
        (refused.iter()).all(|m| m.json()["operator"] == "rekey"),
        "refused where a claim's member is read"
    );

    // The claim that came before its member was retried until it was there (the target has
    // it); the other one is the only dead letter, with where it came from and why.
    assert_eq!(
        weir_tests::partition_count(&format!("{base}-sync-checked-retry-1")),
        3,
        "the retry topics are the input's partitions"
    );
    let retry_topic = format!("{base}-sync-checked-retry-1");
    let report = dir.path().join("counted.json");
    let report_arg = report.display().to_string();
    let counted = weir(&[
        "topics",
        "count",
        "--brokers",
        kafka(),
        "--report",
        &report_arg,
        &retry_topic,
    ]);
    assert!(
        counted.status.success(),
        "{}",
        String::from_utf8_lossy(&counted.stderr)
    );
    let counted: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let retried = counted["counts"][&retry_topic].as_i64().unwrap();
    assert!(
        retried >= 2,
        "both claims went through the retry topic: {counted}"
    );
    let dead = read_topic(
        kafka(),
        &dead_letters,
        1,
        Duration::from_secs(30),
        Duration::from_secs(2),
    );
    assert_eq!(
        dead.len(),
        1,
        "only the claim whose member never comes: {dead:?}"
    );
    let header = |name: &str| {
        (dead[0].headers.iter())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(dead[0].key.as_deref(), Some("998"), "keyed as in its step");
    assert_eq!(dead[0].json()["row"]["claim_id"], 900_002);
    assert_eq!(header("weir-step"), Some("checked"));
    assert_eq!(
        header("weir-attempt"),
        Some("6"),
        "the first try and 5 retries"
    );
    assert_eq!(
        header("weir-reason"),
        Some("join: the table holds no row of key `998`")
    );
    assert_eq!(
        header("weir-origin-topic"),
        Some(format!("{base}-sync-claims-repartition").as_str())
    );
    assert!(header("weir-origin-offset").is_some());

    // The member that never came comes after all: the dead letter, sent back through the
    // step that refused it, now reaches the target. What was sent back is not sent twice.
    let group = unique("dlq-replay");
    let dlq_replay = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "dlq",
            "replay",
            "--brokers",
            kafka(),
            &dead_letters,
            "--group",
            &group,
            "--json",
        ];
        args.extend(extra);
        let output = weir(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let dry = dlq_replay(&["--dry-run"]);
    assert_eq!(dry["replayed"], 1, "{dry}");
    assert_eq!(dry["destinations"][&retry_topic], 1, "{dry}");
    assert_eq!(dry["letters"][0]["step"], "checked", "{dry}");
    let member_998 = serde_json::json!({
        "op": "c", "before": null,
        "after": { "member_id": 998, "name": "found member", "plan": "basic" },
        "source": { "table": "members", "ts_ms": 4_000_000_000_001_i64 },
    });
    let found_member = write("found-member.jsonl", &[member_998]);
    replay(&found_member, &events_topic);
    let sent = dlq_replay(&[]);
    assert_eq!(sent["replayed"], 1, "the dry run sent nothing: {sent}");
    let mut all = std::fs::read_to_string(&events).unwrap();
    for file in [&never, &found_member] {
        all.push_str(&std::fs::read_to_string(file).unwrap());
        all.push('\n');
    }
    std::fs::write(&events, all).unwrap();
    let output = verify_waiting(&target, &events_text, "60s");
    last = String::from_utf8_lossy(&output.stdout).into_owned();
    let matched = output.status.success().then_some(());
    assert!(
        matched.is_some(),
        "the replayed claim 900002 is not in the target: {last}\nlog:\n{}",
        runner.log_text()
    );
    let again = dlq_replay(&[]);
    assert_eq!(again["replayed"], 0, "{again}");
    let still_dead = read_topic(
        kafka(),
        &dead_letters,
        2,
        Duration::from_secs(5),
        Duration::from_secs(1),
    );
    assert_eq!(
        still_dead.len(),
        1,
        "the replayed letter succeeded: {still_dead:?}"
    );

    // Every record the runner consumed was done with: none is stuck in flight.
    let mut status = serde_json::Value::Null;
    let drained = eventually(Duration::from_secs(30), || {
        let url = format!("http://{addr}/status");
        status = reqwest::blocking::get(&url).ok()?.json().ok()?;
        (status["consumed"] == status["processed"] && status["lag"] == 0).then_some(())
    });
    assert!(drained.is_some(), "not drained: {status}");

    // A row of the target changed behind the pipeline's back is named.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    let key = "1";
    let row = r#"{"claim_id": 1, "member_id": 1, "amount": -1.0, "status": "forged"}"#;
    producer
        .send(
            FutureRecord::to(&target).key(key).payload(row),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let broken = verify(&target, &events_text);
    assert!(!broken.status.success());
    let report: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    let named = |kind: &str| report[kind].as_array().unwrap().iter().any(|k| k == "1");
    assert!(named("different") || named("unexpected"), "{report}");
    assert!(runner
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
        .success());
}

/// The shipped workflow on a Kafka of its own, started by the run: a fresh broker answers the
/// runners' producers "coordinator load in progress" at first (what once left a runner's
/// delivery reports unserved and the run stalled). The run succeeds only with the target
/// verified and every runner drained, and counts each topic it kept.
#[test]
fn the_shipped_cdc_workflow_verifies_its_target_and_drains_its_runners() {
    let home = WeirHomeDir::new();
    let prefix = unique("cdc");
    let output = home
        .command(&[
            "run",
            &shipped_workflow("cdc-sync.yaml"),
            "--set",
            &format!("prefix={prefix}"),
        ])
        .output()
        .expect("weir run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the run failed:\n{stdout}\n{stderr}"
    );
    let runs: serde_json::Value =
        serde_json::from_str(&home.ok(&["runs", "--json"])).expect("runs as JSON");
    let run = &runs[0];
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["unavailable"], serde_json::json!({}), "{run}");
    let events = std::fs::read_to_string(repo_root().join("workflows/data/cdc-claims.jsonl"))
        .expect("the shipped change events");
    let lines = events.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(run["topics"]["cdc-events"], lines, "{run}");
    assert_eq!(
        run["topics"]["cdc-errors"], 8,
        "the 8 poison lines, and only they: {run}"
    );
    assert_eq!(
        run["topics"]["cdc-dead-letters"], 0,
        "every early claim found its member through the retries: {run}"
    );
    assert!(
        (stdout.to_string() + &stderr).contains("every key matches"),
        "{stdout}\n{stderr}"
    );
    // Both runners' logs are kept with the run, each under its name, and so is the
    // comparison the verification ended on.
    let artifacts = std::path::PathBuf::from(run["artifacts"].as_str().expect("artifacts"));
    let verified: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(artifacts.join("verified/verify.json")).expect("the comparison"),
    )
    .unwrap();
    assert_eq!(verified["table"], "claims", "{verified}");
    assert_eq!(verified["missing"], serde_json::json!([]), "{verified}");
    assert_eq!(
        verified["poison"].as_array().map(Vec::len),
        Some(8),
        "{verified}"
    );
    let kept = std::fs::read_to_string(artifacts.join(format!("logs/{prefix}-pipeline.log")))
        .expect("the pipeline's kept log");
    for replica in ["replica-0", "replica-1"] {
        let heading = format!("==> {replica}.log <==");
        let section = kept.split(&heading).nth(1).unwrap_or_else(|| {
            panic!("no `{heading}` in the kept log:\n{kept}");
        });
        let section = section.split("==> ").next().unwrap_or_default();
        assert!(
            section.contains("topology running"),
            "{replica}:\n{section}"
        );
    }
    assert!(home.instances().is_empty(), "{:?}", home.instances());
}

/// A letter no Weir step wrote names no retry topic: the replay sends nothing and says how to
/// name one; with `--to`, it goes there, marked with where it was read.
#[test]
fn a_letter_without_a_retry_topic_is_refused_until_told_where_it_goes() {
    let (letters, elsewhere) = (unique("foreign-dead"), unique("foreign-retry"));
    for topic in [&letters, &elsewhere] {
        let created = weir(&["topics", "create", "--brokers", kafka(), topic]);
        assert!(created.status.success());
    }
    let produced = weir(&[
        "topics",
        "produce",
        "--brokers",
        kafka(),
        &letters,
        "--key",
        "k1",
        r#"{"a":1}"#,
    ]);
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stderr)
    );
    let refused = weir(&["dlq", "replay", "--brokers", kafka(), &letters]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("partition 0 offset 0") && stderr.contains("--to TOPIC"),
        "{stderr}"
    );
    let sent = weir(&[
        "dlq",
        "replay",
        "--brokers",
        kafka(),
        &letters,
        "--to",
        &elsewhere,
    ]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(
        String::from_utf8_lossy(&sent.stdout).contains(&format!(
            "sent back 1 dead letters of `{letters}`: 1 to {elsewhere}"
        )),
        "{}",
        String::from_utf8_lossy(&sent.stdout)
    );
    let arrived = read_topic(
        kafka(),
        &elsewhere,
        1,
        Duration::from_secs(20),
        Duration::from_millis(500),
    );
    assert_eq!(arrived.len(), 1);
    assert_eq!(arrived[0].key.as_deref(), Some("k1"));
    assert_eq!(arrived[0].json()["a"], 1);
    assert!(
        (arrived[0].headers.iter())
            .any(|(name, value)| name == "weir-replayed-from" && *value == format!("{letters}/0/0")),
        "{:?}",
        arrived[0].headers
    );
}

/// `weir bench cdc` on the smallest load whose copy by the pass-through still spans its
/// steady window (some 100,000 events: fewer are copied between two samples): every figure
/// it reports was measured (no timing is asserted), and every target message due at a pace
/// was read.
#[test]
fn the_cdc_benchmark_reports_every_figure_it_measures() {
    let output = Command::new(weir_bin())
        .current_dir(repo_root())
        .args([
            "bench",
            "cdc",
            "--json",
            "--brokers",
            kafka(),
            "--claim-events",
            "100000",
            "--members",
            "2000",
            "--rounds",
            "1",
            "--paces",
            "70",
            "--pace-seconds",
            "2",
        ])
        .output()
        .expect("weir bench cdc");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one report");
    for figure in ["pipeline_events_per_s", "passthrough_records_per_s"] {
        assert!(report[figure]["median"].as_f64().unwrap() > 0.0, "{report}");
    }
    assert!(report["ratio"].as_f64().unwrap() > 0.0, "{report}");
    assert_eq!(
        report["events"], 102_000,
        "2,000 members and 100,000 claim events"
    );
    let pace = &report["latency"][0];
    assert_eq!(pace["events_per_s"], 70, "{report}");
    assert_eq!(pace["target_read"], pace["target_due"], "{report}");
    assert!(pace["p99_ms"].as_u64().unwrap() >= pace["p50_ms"].as_u64().unwrap());
    assert!(stderr.contains("round 1/1"), "no progress:\n{stderr}");
}
