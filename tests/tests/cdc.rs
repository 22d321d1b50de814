//! The CDC pipeline (`workflows/topologies/cdc-sync.yaml`) run by the real `weir topology run`
//! on generated change events replayed by the real `weir source replay --change-events` into a
//! topic of three partitions: `weir cdc verify` finds the compacted target equal to the final
//! state of the claims table, key for key, and names the key when the target is made to differ.

use std::process::Command;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use weir_tests::{eventually, kafka, read_topic, repo_root, unique, weir_bin, WeirProcess};

const CDC_SYNC: &str = "workflows/topologies/cdc-sync.yaml";
const PRIMARY_KEYS: &str = "members=member_id,claims=claim_id";

fn weir(args: &[&str]) -> std::process::Output {
    Command::new(weir_bin()).args(args).output().expect("weir")
}

fn verify(target: &str, events: &str) -> std::process::Output {
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

    let replay = weir(&[
        "source",
        "replay",
        &events_text,
        "--interval",
        "0ms",
        "--change-events",
        PRIMARY_KEYS,
        "--topic",
        &events_topic,
        "--brokers",
        kafka(),
    ]);
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let sets = [
        format!("cdc_topic={events_topic}"),
        format!("target_topic={target}"),
        format!("error_topic={errors}"),
        format!("dataflow_name={base}-sync"),
    ];
    let topology = repo_root().join(CDC_SYNC).display().to_string();
    let mut args = vec!["topology", "run", &topology, "--brokers", kafka()];
    for set in &sets {
        args.extend(["--set", set]);
    }
    let mut runner = WeirProcess::start(dir.path(), "runner.log", &args);
    // The runner is done when the target stops changing and matches; a comparison that keeps
    // failing for two minutes is the failure, with its report.
    let mut last = String::new();
    let matched = eventually(Duration::from_secs(120), || {
        let output = verify(&target, &events_text);
        last = String::from_utf8_lossy(&output.stdout).into_owned();
        output.status.success().then_some(())
    });
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
