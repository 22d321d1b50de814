//! `weir up`, `instances`, `down` and `gc` with real ZooKeeper and Kafka processes.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use weir_supervisor::process::{alive, group_members};
use weir_tests::WeirHomeDir;

/// These tests start and stop whole ZooKeeper and Kafka instances; on two cores they run one
/// at a time so their readiness waits do not starve each other.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn field<'a>(instance: &'a Value, key: &str) -> &'a str {
    instance[key].as_str().unwrap_or_default()
}

fn pid(instance: &Value) -> i32 {
    instance["pid"].as_i64().expect("pid") as i32
}

/// Checks that nothing of `instances` survives: no process of its process group (so nothing of
/// it can still hold its port), no directory. The port itself is not probed: once freed, the
/// kernel may hand it to any other process on the machine.
fn assert_gone(home: &WeirHomeDir, instances: &[Value]) {
    for instance in instances {
        let name = field(instance, "name");
        assert!(!alive(pid(instance)), "{name} still has a process");
        let members = group_members(pid(instance));
        assert!(
            members.is_empty(),
            "{name} (endpoint {}) still has processes in its group: {members:?}",
            field(instance, "endpoint")
        );
    }
    let dir = home.path().join("instances");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "directories left: {left:?}");
    assert!(home.instances().is_empty());
}

fn kcat(args: &[&str], input: Option<&str>) -> String {
    let mut child = std::process::Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is installed by make setup");
    if let Some(text) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "kcat {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn up_kafka_starts_zookeeper_too_and_down_all_leaves_nothing() {
    let _serial = one_at_a_time();
    let home = WeirHomeDir::new();
    home.ok(&["up", "kafka"]);
    let instances = home.instances();
    let summary: Vec<(&str, &str, &str)> = instances
        .iter()
        .map(|i| (field(i, "name"), field(i, "service"), field(i, "state")))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("kafka-1-zookeeper", "zookeeper", "running"),
            ("kafka-1", "kafka", "running"),
        ]
    );
    let broker = field(&instances[1], "endpoint");
    assert!(broker.starts_with("127.0.0.1:"), "{broker}");

    // A real client produces and consumes through the endpoint Weir reports.
    kcat(
        &["-b", broker, "-t", "hello", "-P"],
        Some("one\ntwo\nthree\n"),
    );
    let consumed = kcat(
        &[
            "-b",
            broker,
            "-t",
            "hello",
            "-C",
            "-o",
            "beginning",
            "-c",
            "3",
            "-e",
        ],
        None,
    );
    assert_eq!(consumed, "one\ntwo\nthree\n");

    let stopped = home.ok(&["down", "--all"]);
    assert_eq!(
        stopped, "stopped kafka-1\nstopped kafka-1-zookeeper\n",
        "users stop before what they use"
    );
    assert_gone(&home, &instances);
}

#[test]
fn weir_killed_during_up_is_cleaned_by_gc() {
    let _serial = one_at_a_time();
    let home = WeirHomeDir::new();
    let log = home.path().join("up.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut up = home
        .command(&["up", "kafka", "--name", "crashy"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    // Wait until ZooKeeper runs and the broker process exists but is not ready yet. The store
    // is read directly, every 20 ms: the window lasts as long as the broker takes to start.
    let database = home.path().join("weir.db");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let broker_starting = loop {
        let seen = rusqlite::Connection::open(&database).ok().and_then(|conn| {
            conn.query_row(
                "SELECT pid FROM instances WHERE name = 'crashy' AND state = 'starting' AND pid IS NOT NULL",
                [],
                |row| row.get::<_, i64>(0),
            )
            .ok()
        });
        if seen.is_some() || std::time::Instant::now() > deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        broker_starting.is_some(),
        "the broker was never seen starting; weir up said:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let starting = home.instances();
    up.kill().unwrap();
    up.wait().unwrap();
    assert_eq!(starting.len(), 2);
    assert!(
        starting.iter().all(|i| alive(pid(i))),
        "both processes outlive the killed command"
    );

    let report = home.ok(&["gc", "--json"]);
    let report: Value = serde_json::from_str(&report).unwrap();
    let mut orphans: Vec<&str> = report["orphans_stopped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    orphans.sort();
    assert_eq!(orphans, vec!["crashy", "crashy-zookeeper"]);
    assert_gone(&home, &starting);
    assert_eq!(home.ok(&["gc"]), "nothing to clean up\n");
}

#[test]
fn bad_input_is_refused_and_starts_nothing() {
    let _serial = one_at_a_time();
    let home = WeirHomeDir::new();
    let cases: [(&[&str], &str); 5] = [
        (&["up", "kafak"], "the catalog has no service `kafak`"),
        (
            &["up", "kafka", "--set", "partitions=many"],
            "`partitions` = `many`: expected a whole number",
        ),
        (
            &["up", "kafka", "--set", "colour=red"],
            "kafka has no parameter `colour`",
        ),
        (
            &["up", "kafka", "--name", "Kafka_1"],
            "`Kafka_1` is not a valid instance name",
        ),
        (
            &["up", "kafka", "--set", "zookeeper=zk-missing"],
            "no instance named `zk-missing`",
        ),
    ];
    for (args, message) in cases {
        let output = home.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(
            stderr.contains(message),
            "{args:?}: expected `{message}` in:\n{stderr}"
        );
        assert!(home.instances().is_empty(), "{args:?} left an instance");
    }

    home.ok(&["up", "zookeeper", "--name", "zk"]);
    let output = home.run(&["up", "zookeeper", "--name", "zk"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("an instance named `zk` already exists")
    );
    assert_eq!(home.instances().len(), 1);
}

#[test]
fn two_instances_of_a_service_run_side_by_side_and_kraft_needs_no_zookeeper() {
    let _serial = one_at_a_time();
    let home = WeirHomeDir::new();
    home.ok(&["up", "zookeeper"]);
    home.ok(&["up", "zookeeper"]);
    home.ok(&["up", "kafka", "--name", "solo", "--set", "mode=kraft"]);
    let instances = home.instances();
    let names: Vec<&str> = instances.iter().map(|i| field(i, "name")).collect();
    assert_eq!(names, vec!["zookeeper-1", "zookeeper-2", "solo"]);
    assert_ne!(
        field(&instances[0], "endpoint"),
        field(&instances[1], "endpoint")
    );
    let brokers = kcat(&["-b", field(&instances[2], "endpoint"), "-L"], None);
    assert!(brokers.contains("1 brokers"), "{brokers}");
    home.ok(&["down", "solo"]);
    assert_eq!(
        home.instances().len(),
        2,
        "the ZooKeepers are not solo's to stop"
    );
    home.ok(&["down", "--all"]);
    assert_gone(&home, &instances);
}
