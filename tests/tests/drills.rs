//! Drills on replicated Kafka clusters, as Kafka's own replication system test runs them:
//! three real brokers, topics replicated three times, a producer with `acks=all` writing
//! keyed records while the leader of a partition is killed with SIGKILL and started again.
//! Every acknowledged record must be consumed afterwards; duplicates are counted. The broker
//! drill runs on local processes and on pods of the Kubernetes sandbox's real node. The
//! figures are printed (`cargo test -- --nocapture` shows them) for the README's Reliability
//! table.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Message};
use serde_json::Value;
use weir_tests::{eventually, unique, KubeSandbox, WeirHomeDir};

/// Clusters of three brokers are heavy for two cores: one drill at a time.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn kcat_brokers(bootstrap: &str) -> Vec<String> {
    let output = std::process::Command::new("kcat")
        .args(["-L", "-b", bootstrap, "-m", "10"])
        .output()
        .expect("kcat is installed by make setup");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "kcat -L: {text}");
    text.lines()
        .filter(|line| line.trim_start().starts_with("broker ") && line.contains(" at "))
        .map(|line| line.trim().to_string())
        .collect()
}

/// The cluster instance `name` once it runs: its JSON from `weir instances`.
fn cluster(home: &WeirHomeDir, name: &str) -> Value {
    home.instances()
        .into_iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no instance `{name}`"))
}

/// The endpoint `weir instances` gives instance `name` (a cluster's bootstrap list).
fn endpoint_of(home: &WeirHomeDir, name: &str) -> String {
    cluster(home, name)["endpoint"]
        .as_str()
        .unwrap_or_else(|| panic!("`{name}` has no endpoint"))
        .to_string()
}

/// Creates `topic` as a workflow's `create-topics` task does.
fn create_topic(home: &WeirHomeDir, bootstrap: &str, topic: &str, partitions: u32) {
    let partitions = partitions.to_string();
    home.ok(&[
        "topics",
        "create",
        "--brokers",
        bootstrap,
        "--partitions",
        &partitions,
        topic,
    ]);
}

/// Partition → (leader, in-sync replica count, replica count) of `topic`.
fn partitions(bootstrap: &str, topic: &str) -> BTreeMap<i32, (i32, usize, usize)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create()
        .expect("metadata client");
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return BTreeMap::new();
    };
    metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions())
        .map(|p| (p.id(), (p.leader(), p.isr().len(), p.replicas().len())))
        .collect()
}

#[test]
fn a_three_broker_cluster_lists_every_broker_and_replicates_topics_three_times() {
    let _serial = one_at_a_time();
    for mode in ["zookeeper", "kraft"] {
        let home = WeirHomeDir::new();
        let name = format!("cluster-{mode}");
        home.ok(&[
            "up",
            "kafka",
            "--name",
            &name,
            "--set",
            "replicas=3",
            "--set",
            &format!("mode={mode}"),
        ]);
        let instance = cluster(&home, &name);
        let bootstrap = instance["endpoint"].as_str().unwrap().to_string();
        assert_eq!(bootstrap.split(',').count(), 3, "{instance}");
        let members: Vec<&str> = (instance["members"].as_array().unwrap().iter())
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(members, ["broker-0", "broker-1", "broker-2"], "{instance}");

        // A real client sees the three brokers at the addresses Weir reports. (On a loaded
        // machine a KRaft broker that missed heartbeats is fenced for a moment, and left out
        // of metadata until it is back.)
        let mut listed = Vec::new();
        let all_listed = eventually(Duration::from_secs(30), || {
            listed = kcat_brokers(&bootstrap);
            (listed.len() == 3).then_some(())
        });
        assert!(all_listed.is_some(), "{mode}: {listed:?}");
        for address in bootstrap.split(',') {
            assert!(
                listed
                    .iter()
                    .any(|line| line.ends_with(address) || line.contains(&format!("at {address}"))),
                "{mode}: {address} not among {listed:?}"
            );
        }
        // A topic created as a workflow creates it keeps three copies of each partition.
        create_topic(&home, &bootstrap, "replicated", 3);
        let layout = eventually(Duration::from_secs(30), || {
            let layout = partitions(&bootstrap, "replicated");
            (layout.len() == 3).then_some(layout)
        })
        .expect("the topic's partitions");
        assert!(
            layout.values().all(|&(_, _, replicas)| replicas == 3),
            "{mode}: {layout:?}"
        );
        home.ok(&["down", "--all"]);
    }
}

/// Delivery reports: which record numbers the cluster acknowledged, how many it refused.
struct Acknowledgements {
    acknowledged: std::sync::Mutex<Vec<u64>>,
    refused: std::sync::atomic::AtomicU64,
}

impl ClientContext for Acknowledgements {}

impl ProducerContext for Acknowledgements {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, number: Box<u64>) {
        match result {
            Ok(_) => self.acknowledged.lock().unwrap().push(*number),
            Err(_) => {
                self.refused
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
}

/// What a broker drill saw.
struct BrokerDrill {
    acknowledged: usize,
    refused: u64,
    /// Acknowledged record numbers never consumed.
    lost: Vec<u64>,
    duplicated: usize,
    /// What was killed, as the kill said it.
    killed: String,
    /// From the kill until the killed broker was back in every partition's in-sync replicas.
    recovered_in: Duration,
}

const DRILL_RECORDS: u64 = 60_000;
const DRILL_PER_SECOND: u64 = 5_000;
const DRILL_KEYS: u64 = 64;

/// Kafka's replication drill on the cluster at `bootstrap`: a producer with `acks=all` writes
/// [`DRILL_RECORDS`] keyed records to a new six-partition topic; after a quarter of them
/// `kill` SIGKILLs the broker with the id it is given (the leader of partition 0) and says
/// what it killed. Then every acknowledged record is read back.
fn broker_drill(
    home: &WeirHomeDir,
    bootstrap: &str,
    kill: impl FnOnce(i32) -> String,
) -> BrokerDrill {
    let topic = unique("drill");
    create_topic(home, bootstrap, &topic, 6);
    eventually(Duration::from_secs(60), || {
        let layout = partitions(bootstrap, &topic);
        (layout.len() == 6
            && layout
                .values()
                .all(|&(leader, isr, _)| leader >= 0 && isr == 3))
        .then_some(())
    })
    .expect("six fully replicated partitions");

    let context = Acknowledgements {
        acknowledged: Default::default(),
        refused: Default::default(),
    };
    let producer: ThreadedProducer<Acknowledgements> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        // Retried sends may be written twice: the drill counts duplicates rather than hide
        // them behind idempotence.
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "5")
        .create_with_context(context)
        .expect("producer");

    let started = Instant::now();
    let mut killed: Option<(String, Instant)> = None;
    let mut kill = Some(kill);
    for number in 0..DRILL_RECORDS {
        // Paced, so that the kill lands with most of the records still to come.
        let due = started + Duration::from_micros(number * 1_000_000 / DRILL_PER_SECOND);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if number == DRILL_RECORDS / 4 {
            let leader = partitions(bootstrap, &topic)
                .get(&0)
                .map(|&(leader, _, _)| leader)
                .expect("partition 0 has a leader");
            let kill = kill.take().expect("one kill");
            killed = Some((kill(leader), Instant::now()));
        }
        let key = format!("key-{}", number % DRILL_KEYS);
        let payload = number.to_string();
        let mut record = BaseRecord::with_opaque_to(&topic, Box::new(number))
            .key(&key)
            .payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, unsent)) => {
                    // The local queue is full while a leader moves: wait for room.
                    record = unsent;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(90))
        .expect("every record acknowledged or refused");
    let (killed, killed_at) = killed.expect("a broker was killed");

    let recovered_in = eventually(Duration::from_secs(240), || {
        let layout = partitions(bootstrap, &topic);
        (layout.len() == 6 && layout.values().all(|&(_, isr, _)| isr == 3))
            .then(|| killed_at.elapsed())
    })
    .expect("the killed broker caught up again");
    let acknowledged: BTreeSet<u64> = producer
        .context()
        .acknowledged
        .lock()
        .unwrap()
        .iter()
        .copied()
        .collect();
    let refused = producer
        .context()
        .refused
        .load(std::sync::atomic::Ordering::SeqCst);
    let consumed: Vec<u64> = consume_all(bootstrap, &topic, acknowledged.len())
        .iter()
        .map(|(_, payload)| {
            String::from_utf8_lossy(payload)
                .parse()
                .expect("record numbers")
        })
        .collect();
    let distinct: BTreeSet<u64> = consumed.iter().copied().collect();
    BrokerDrill {
        acknowledged: acknowledged.len(),
        refused,
        lost: acknowledged.difference(&distinct).copied().collect(),
        duplicated: consumed.len() - distinct.len(),
        killed,
        recovered_in,
    }
}

impl BrokerDrill {
    /// Prints the figures, then checks that nothing acknowledged was lost.
    fn report_and_check(&self, cluster: &str) {
        println!(
            "Reliability drill ({cluster}: 3 brokers, replication 3, min.insync.replicas 2, \
             acks=all): {DRILL_RECORDS} records written over {DRILL_KEYS} keys, {} acknowledged, \
             {} refused; {} SIGKILLed after {} records and restarted; lost {}, duplicated {}; \
             back in sync after {:.1}s",
            self.acknowledged,
            self.refused,
            self.killed,
            DRILL_RECORDS / 4,
            self.lost.len(),
            self.duplicated,
            self.recovered_in.as_secs_f64()
        );
        assert!(
            self.lost.is_empty(),
            "acknowledged but never consumed: {:?}",
            self.lost
        );
        assert_eq!(
            self.acknowledged as u64 + self.refused,
            DRILL_RECORDS,
            "every record has a delivery report"
        );
    }
}

#[test]
fn a_broker_killed_mid_stream_loses_no_acknowledged_record() {
    let _serial = one_at_a_time();
    let home = WeirHomeDir::new();
    home.ok(&["up", "kafka", "--name", "drill", "--set", "replicas=3"]);
    let bootstrap = endpoint_of(&home, "drill");
    let drill = broker_drill(&home, &bootstrap, |leader| {
        // ZooKeeper-mode broker ids are the member numbers: broker-0 is id 0.
        let member = format!("broker-{leader}");
        let instance = cluster(&home, "drill");
        let pid = (instance["members"].as_array().unwrap().iter())
            .find(|m| m["name"] == member.as_str())
            .and_then(|m| m["pid"].as_i64())
            .unwrap_or_else(|| panic!("{member} has no pid: {instance}")) as i32;
        // SAFETY: a plain syscall on a broker this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        member
    });
    drill.report_and_check("local processes");
    let instance = cluster(&home, "drill");
    let restarted = (instance["members"].as_array().unwrap().iter())
        .find(|m| m["name"] == drill.killed.as_str())
        .unwrap_or_else(|| panic!("no member {}: {instance}", drill.killed));
    assert!(
        restarted["restarts"].as_u64().unwrap() >= 1,
        "the killed broker was started again: {instance}"
    );
    // Its first restarts may exit at once while ZooKeeper still holds the dead broker's
    // registration; by now one of them runs.
    assert!(
        restarted["pid"].is_i64(),
        "the killed broker runs again: {instance}"
    );
}

#[test]
fn a_broker_pod_killed_mid_stream_loses_no_acknowledged_record() {
    let _serial = one_at_a_time();
    let sandbox = KubeSandbox::get();
    let home = WeirHomeDir::new();
    let namespace = format!("weir-drill-{}", std::process::id());
    // `weir COMMAND --backend kubernetes --namespace NAMESPACE ARGS...`
    let on_kubernetes = |command: &str, args: &[&str]| {
        let backend = [
            command,
            "--backend",
            "kubernetes",
            "--namespace",
            &namespace,
        ];
        let mut command = home.command(&[&backend[..], args].concat());
        let output = command
            .env("KUBECONFIG", &sandbox.kubeconfig)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    on_kubernetes("up", &["kafka", "--name", "drill", "--set", "replicas=3"]);
    // Brokers advertise their pod addresses, which this machine reaches on the sandbox.
    let pods = sandbox.pods(&namespace, "app.kubernetes.io/instance=drill");
    let addresses: Vec<String> = (pods.iter())
        .filter_map(|pod| pod["status"]["podIP"].as_str())
        .map(|ip| format!("{ip}:9092"))
        .collect();
    assert_eq!(addresses.len(), 3, "{pods:?}");
    let bootstrap = addresses.join(",");
    let listed = kcat_brokers(&bootstrap);
    assert_eq!(listed.len(), 3, "{listed:?}");

    let drill = broker_drill(&home, &bootstrap, |leader| {
        // Broker ids are the pods' ordinals: drill-0 is id 0.
        let pod = format!("drill-{leader}");
        let status = sandbox
            .kubectl_json(&["get", "pod", &pod, "-n", &namespace])
            .unwrap_or_else(|| panic!("no pod {pod}"));
        sandbox.sigkill_container(&status);
        pod
    });
    drill.report_and_check("pods on the sandbox's real node");
    let pod = sandbox
        .kubectl_json(&["get", "pod", &drill.killed, "-n", &namespace])
        .expect("the killed broker's pod");
    assert!(
        pod["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1),
        "kubelet restarted the killed broker: {pod}"
    );
    on_kubernetes("down", &["drill"]);
    sandbox.kubectl(&["delete", "namespace", &namespace, "--wait=false"]);
}

/// Every message of `topic` as (key, payload), in the order read, until `expected` could have
/// arrived and nothing more came for a few seconds (so that duplicates beyond `expected` are
/// seen too).
fn consume_all(bootstrap: &str, topic: &str, expected: usize) -> Vec<(String, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("drill-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut last_arrival = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
                messages.push((key, message.payload().unwrap_or_default().to_vec()));
                last_arrival = Instant::now();
            }
            _ if messages.len() >= expected && last_arrival.elapsed() > Duration::from_secs(5) => {
                break
            }
            _ => {}
        }
    }
    messages
}

/// The drill's input: `KEYS` series of `PER_KEY` integer rates, each series on its own key.
/// 5,000 keys: about 830 per partition, whose state is far larger than the 4 KiB a committed
/// offset's metadata can carry, so it must come back from the changelog.
const KEYS: u64 = 5_000;
const PER_KEY: u64 = 12;

fn rate(key: u64, seq: u64) -> i64 {
    ((key * 7_919 + seq * seq * 31) % 10_007) as i64
}

const DRILL_TOPOLOGY: &str = "name: drill
input: { topic: drill-in, group: drill-runners }
error_topic: drill-errors
operators:
  - parse: {}
  - extract: { fields: { seq: { pointer: /seq, type: number }, rate: { pointer: /rate, type: number } } }
  - diff: { field: rate, output: variation, previous: previous }
  - emit: { topic: drill-out, fields: [seq, rate, variation], timestamp: false }
";

/// What a runner drill saw: the input written, the outputs read back and checked.
struct RunnerDrill {
    home: WeirHomeDir,
    total: u64,
    /// Input records without their variation.
    lost: usize,
    /// Variations that are not the difference of two consecutive rates of their key.
    wrong: Vec<String>,
    duplicated: usize,
    /// From the first input written to the last output read.
    caught_up: Duration,
}

/// Starts a broker and the drill topology as `replicas` runner processes (`drill-runner`)
/// over six partitions, writes `KEYS` series of `PER_KEY` rates at 2,000 records/s, calling
/// `at_quarter(q)` when a quarter, half and three quarters of the input are written (q = 1,
/// 2, 3; it must not block for long: records keep flowing), then reads every output and
/// checks each variation against the input.
fn runner_drill(replicas: u32, mut at_quarter: impl FnMut(&WeirHomeDir, u64)) -> RunnerDrill {
    const PER_SECOND: u64 = 2_000;
    let total = KEYS * PER_KEY;
    let home = WeirHomeDir::new();
    home.ok(&["up", "kafka", "--name", "drill-kafka"]);
    let bootstrap = endpoint_of(&home, "drill-kafka");
    for (topic, partitions) in [("drill-in", 6), ("drill-out", 6), ("drill-errors", 1)] {
        create_topic(&home, &bootstrap, topic, partitions);
    }
    let topology = home.path().join("drill.yaml");
    std::fs::write(&topology, DRILL_TOPOLOGY).unwrap();
    home.ok(&[
        "up",
        "topology-runner",
        "--name",
        "drill-runner",
        "--set",
        &format!("file={}", topology.display()),
        "--set",
        "kafka=drill-kafka",
        "--set",
        &format!("replicas={replicas}"),
    ]);

    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let started = Instant::now();
    for number in 0..total {
        let due = started + Duration::from_micros(number * 1_000_000 / PER_SECOND);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if number > 0 && number % (total / 4) == 0 {
            at_quarter(&home, number / (total / 4));
        }
        let (seq, key) = (number / KEYS, number % KEYS);
        let payload = format!(r#"{{"seq": {seq}, "rate": {}}}"#, rate(key, seq));
        let key = format!("series-{key}");
        let mut record = BaseRecord::to("drill-in").key(&key).payload(&payload);
        while let Err((_, unsent)) = producer.send(record) {
            record = unsent;
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("the input is written");

    // Every record but the first of each series has one variation.
    let expected = (total - KEYS) as usize;
    let outputs: Vec<(String, Value)> = consume_all(&bootstrap, "drill-out", expected)
        .into_iter()
        .map(|(key, payload)| (key, serde_json::from_slice(&payload).expect("JSON outputs")))
        .collect();
    let caught_up = started.elapsed();
    let mut distinct = BTreeMap::new();
    let mut wrong = Vec::new();
    for (key, body) in &outputs {
        let series: u64 = key.trim_start_matches("series-").parse().unwrap();
        let seq = body["seq"].as_f64().unwrap() as u64;
        let variation = body["variation"].as_f64().unwrap() as i64;
        if seq == 0 || variation != rate(series, seq) - rate(series, seq - 1) {
            wrong.push(format!("{key} seq {seq}: {variation}"));
        }
        distinct.insert((series, seq), variation);
    }
    RunnerDrill {
        home,
        total,
        lost: expected - distinct.len().min(expected),
        duplicated: outputs.len() - distinct.len(),
        wrong,
        caught_up,
    }
}

impl RunnerDrill {
    /// Prints the figures for the README and requires every record's variation, right.
    fn report_and_check(&self, what: &str) {
        println!(
            "Reliability drill ({what}): {} records over {KEYS} keys; lost {}, wrong \
             variations {}, duplicated {}; every output seen {:.1}s after the input began",
            self.total,
            self.lost,
            self.wrong.len(),
            self.duplicated,
            self.caught_up.as_secs_f64()
        );
        assert!(
            self.wrong.is_empty(),
            "variations across records that are not consecutive: {:?}",
            &self.wrong[..self.wrong.len().min(10)]
        );
        assert_eq!(self.lost, 0, "records without their variation");
    }
}

#[test]
fn a_runner_replica_killed_three_times_loses_no_record_and_diffs_every_key_correctly() {
    let _serial = one_at_a_time();
    let mut kills = Vec::new();
    let drill = runner_drill(3, |home, quarter| {
        let runner = cluster(home, "drill-runner");
        assert_eq!(runner["members"].as_array().unwrap().len(), 3, "{runner}");
        // At 25, 50 and 75 % of the input the same replica dies again.
        kill_member(home, "drill-runner", "replica-1");
        kills.push(quarter);
    });
    drill.report_and_check(&format!(
        "3 runner replicas over 6 partitions, replica-1 SIGKILLed at quarters {kills:?} and \
         restarted"
    ));
    let instance = cluster(&drill.home, "drill-runner");
    let replica = (instance["members"].as_array().unwrap().iter())
        .find(|m| m["name"] == "replica-1")
        .cloned()
        .unwrap();
    assert!(
        replica["restarts"].as_u64().unwrap() >= 3,
        "replica-1 was started again after each kill: {instance}"
    );
}

#[test]
fn scaling_the_runner_from_one_to_three_and_back_mid_stream_loses_no_record() {
    let _serial = one_at_a_time();
    // `weir scale` runs beside the input (which keeps flowing): 1 → 3 at a quarter, 3 → 1
    // at three quarters.
    type Scaling = (u32, std::thread::JoinHandle<std::process::Output>);
    let mut running: Option<Scaling> = None;
    let mut done: Vec<(u32, std::process::Output)> = Vec::new();
    fn finish(scaling: Option<Scaling>, done: &mut Vec<(u32, std::process::Output)>) {
        if let Some((replicas, thread)) = scaling {
            done.push((replicas, thread.join().unwrap()));
        }
    }
    let drill = runner_drill(1, |home, quarter| {
        let replicas = match quarter {
            1 => 3,
            3 => 1,
            _ => return,
        };
        // One scaling at a time, as a person would.
        finish(running.take(), &mut done);
        let mut command =
            home.command(&["scale", "drill-runner", "--replicas", &replicas.to_string()]);
        running = Some((
            replicas,
            std::thread::spawn(move || command.output().expect("weir scale runs")),
        ));
    });
    finish(running.take(), &mut done);
    let mut seen = Vec::new();
    for (replicas, output) in &done {
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "weir scale to {replicas}: {said}");
        // Its last progress line says how long the replicas took to be ready.
        println!(
            "weir scale to {replicas}: {}",
            said.lines().last().unwrap_or("")
        );
        seen.push(*replicas);
    }
    assert_eq!(seen, [3, 1], "both scalings ran");
    let runner = cluster(&drill.home, "drill-runner");
    let members: Vec<&str> = (runner["members"].as_array().unwrap().iter())
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["replica-0"], "back to one replica: {runner}");
    drill.report_and_check(
        "the runner scaled from 1 to 3 replicas at a quarter of the input and back to 1 at \
         three quarters, over 6 partitions",
    );
    // Replicas that join or leave on request hand their partitions over with everything sent
    // acknowledged and committed: a planned rebalance replays nothing.
    assert_eq!(
        drill.duplicated, 0,
        "outputs written twice by a planned scaling"
    );
}

/// SIGKILLs member `member` of instance `instance` once it runs, and waits until its
/// supervisor has seen it die.
fn kill_member(home: &WeirHomeDir, instance: &str, member: &str) {
    let pid = eventually(Duration::from_secs(60), || {
        let status = cluster(home, instance);
        (status["members"].as_array()?.iter()).find(|m| m["name"] == member)?["pid"].as_i64()
    })
    .unwrap_or_else(|| panic!("{member} of {instance} never ran again")) as i32;
    // SAFETY: a plain syscall on a process this test's instance started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    // Until the supervisor saw it die, the status still names the dead pid.
    eventually(Duration::from_secs(10), || {
        let status = cluster(home, instance);
        let now =
            (status["members"].as_array()?.iter()).find(|m| m["name"] == member)?["pid"].as_i64();
        (now != Some(i64::from(pid))).then_some(())
    })
    .expect("the supervisor saw the kill");
}

/// The shipped CDC workflow (`workflows/cdc-sync.yaml`) on generated change events, with
/// `kill(home, prefix)` called once the events flow: the run must still succeed — the target
/// verified equal to the claims' final state, every runner drained — and the run's record is
/// returned. No claim may end as a dead letter: every member comes, so a claim refused for
/// good would mean a runner forgot the members table it restored after the kill.
fn cdc_drill(kafka_replicas: u32, kill: impl FnOnce(&WeirHomeDir, &str)) -> Value {
    let home = WeirHomeDir::new();
    let prefix = unique("cdcdrill");
    let events = home.path().join("events.jsonl");
    let events_arg = events.display().to_string();
    home.ok(&[
        "cdc",
        "generate",
        "-o",
        &events_arg,
        "--seed",
        "5",
        "--members",
        "300",
        "--claim-events",
        "12000",
        "--poison",
        "0.001",
        "--early-references",
        "5",
    ]);
    let mut run = home.start_run(&[
        &weir_tests::shipped_workflow("cdc-sync.yaml"),
        "--set",
        &format!("prefix={prefix}"),
        "--set",
        &format!("events={events_arg}"),
        "--set",
        &format!("kafka_replicas={kafka_replicas}"),
        "--set",
        "replay_interval=1ms",
    ]);
    let source = format!("{prefix}-events");
    eventually(Duration::from_secs(180), || {
        (home.instances().iter())
            .any(|i| i["name"] == source.as_str())
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the source never started:\n{}", home.log()));
    // Once the target holds its first thousand rows the pipeline is mid-stream: most of the
    // 11,996 claim events are still to come through it.
    let kafka = format!("{prefix}-kafka");
    let waited = home.run(&[
        "topics",
        "wait",
        "--kafka",
        &kafka,
        "--topic",
        "claims-target",
        "--messages",
        "1000",
        "--timeout",
        "3m",
    ]);
    assert!(
        waited.status.success(),
        "the target never held 1,000 rows:\n{}\n{}",
        String::from_utf8_lossy(&waited.stdout),
        home.log()
    );
    kill(&home, &prefix);
    let status = weir_tests::wait_exit(&mut run, Duration::from_secs(600));
    assert!(status.success(), "the run failed:\n{}", home.log());
    let runs: Value = serde_json::from_str(&home.ok(&["runs", "--json"])).unwrap();
    let record = runs[0].clone();
    assert_eq!(record["state"], "succeeded", "{record}");
    assert_eq!(record["unavailable"], serde_json::json!({}), "{record}");
    assert_eq!(
        record["topics"]["cdc-dead-letters"], 0,
        "every claim's member comes: {record}"
    );
    assert!(
        home.log().contains("every key matches"),
        "the target was verified:\n{}",
        home.log()
    );
    record
}

#[test]
fn the_cdc_target_holds_the_final_state_after_a_runner_replica_is_killed_mid_run() {
    let _serial = one_at_a_time();
    let record = cdc_drill(1, |home, prefix| {
        kill_member(home, &format!("{prefix}-pipeline"), "replica-1");
    });
    println!(
        "Reliability drill (CDC, replica-1 of 2 runners SIGKILLed mid-run): {}",
        record["topics"]
    );
}

#[test]
fn the_cdc_target_holds_the_final_state_after_a_broker_is_killed_mid_run() {
    let _serial = one_at_a_time();
    let record = cdc_drill(3, |home, prefix| {
        kill_member(home, &format!("{prefix}-kafka"), "broker-1");
    });
    println!(
        "Reliability drill (CDC, broker-1 of 3 SIGKILLed mid-run): {}",
        record["topics"]
    );
}
