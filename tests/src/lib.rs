//! The harness for Weir's end-to-end tests: a real ZooKeeper and Kafka broker on free loopback
//! ports, shared by the tests of one test binary, and helpers to produce, consume and run the
//! `weir` binary.
//!
//! The shared broker is started from a thread that lives as long as the test process, with
//! `PR_SET_PDEATHSIG`: when the test binary exits — passing, failing or panicking — the kernel
//! kills ZooKeeper and Kafka. Every test uses topics and groups of its own ([`unique`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use weir_supervisor::process::Lifetime;
use weir_supervisor::stack::KafkaStack;

static SHARED: OnceLock<String> = OnceLock::new();

mod clients;
mod kube;
mod ticker;
pub mod topology_io;

pub use clients::*;
pub use kube::*;
pub use ticker::*;

/// Writes `lines` to `topic` on `brokers` with kcat, the other client the tests check Weir
/// against; `extra` passes kcat options (e.g. `-K :` to read `KEY:VALUE` lines).
pub fn kcat_produce(brokers: &str, topic: &str, lines: &[String], extra: &[&str]) {
    let mut child = std::process::Command::new("kcat")
        .args(["-P", "-b", brokers, "-t", topic])
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("kcat is installed (make setup)");
    let mut stdin = child.stdin.take().expect("kcat's stdin is piped");
    for line in lines {
        writeln!(stdin, "{line}").expect("kcat reads its stdin");
    }
    drop(stdin);
    assert!(child.wait().unwrap().success(), "kcat produced to {topic}");
}

/// The bootstrap address of the broker shared by this test binary, started on first use.
pub fn kafka() -> &'static str {
    SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("weir-test-kafka".into())
            .spawn(move || {
                let dir = test_root().join(format!("kafka-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let started = Instant::now();
                match KafkaStack::start(&dir, Lifetime::DiesWithParent, Duration::from_secs(90)) {
                    Ok(stack) => {
                        eprintln!(
                            "test broker {} ready in {:.1}s",
                            stack.bootstrap(),
                            started.elapsed().as_secs_f64()
                        );
                        tx.send(Ok(stack.bootstrap().to_string())).unwrap();
                        // Keeps the stack (and the parent thread of its processes) alive until
                        // the test process exits.
                        loop {
                            std::thread::park();
                        }
                    }
                    Err(error) => tx.send(Err(error.to_string())).unwrap(),
                }
            })
            .expect("spawn the broker thread");
        match rx.recv().expect("broker thread answers") {
            Ok(bootstrap) => bootstrap,
            Err(error) => panic!("cannot start the test broker: {error}"),
        }
    })
}

/// Where test brokers keep their data; directories of test processes that are gone are
/// removed here so that a killed test run leaves nothing behind for long.
fn test_root() -> PathBuf {
    let root = std::env::temp_dir().join("weir-tests");
    std::fs::create_dir_all(&root).expect("create the test directory");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.rsplit('-').next().and_then(|p| p.parse::<i32>().ok());
            if pid.is_some_and(|pid| !weir_supervisor::process::alive(pid)) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    root
}

/// A name no other test of this run uses, for topics and consumer groups.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The `weir` binary built next to this test binary (`cargo build --release` builds it;
/// `make test` does so first).
pub fn weir_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target/<profile>/weir
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("weir"))
        .expect("test binary lives in target/<profile>/deps");
    assert!(
        bin.is_file(),
        "{} is missing: build it first with `cargo build --release -p weir` (make test does)",
        bin.display()
    );
    bin
}

/// The repository root, for shipped workflows and topologies.
///
/// Read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for it), not when it was built:
/// clones share one target directory, and a binary built in another clone that cargo did not
/// rebuild would otherwise test that clone's files.
pub fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// The path of a shipped workflow, e.g. `ci-smoke.yaml`, as an argument for `weir run`.
pub fn shipped_workflow(name: &str) -> String {
    repo_root()
        .join("workflows")
        .join(name)
        .display()
        .to_string()
}

/// Produces `payloads` in order and waits for every acknowledgement.
pub async fn produce(bootstrap: &str, topic: &str, payloads: &[String]) {
    produce_paced(bootstrap, topic, payloads, None).await
}

/// Like [`produce`], at most `per_second` messages a second when given.
pub async fn produce_paced(
    bootstrap: &str,
    topic: &str,
    payloads: &[String],
    per_second: Option<u32>,
) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for payload in payloads {
        producer
            .send(
                FutureRecord::<str, str>::to(topic).payload(payload),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce to {topic}: {e}"));
        if let Some(rate) = per_second {
            tokio::time::sleep(Duration::from_secs_f64(1.0 / f64::from(rate.max(1)))).await;
        }
    }
}

/// One consumed message.
#[derive(Debug, Clone)]
pub struct Consumed {
    /// The message key, if it has one (lossily decoded).
    pub key: Option<String>,
    pub payload: String,
    pub headers: Vec<(String, String)>,
    /// The message timestamp (ms since the epoch), when it has one.
    pub timestamp: Option<i64>,
}

impl Consumed {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.payload))
    }
}

/// Reads partition 0 of `topic` from the beginning until `count` messages arrived or
/// `timeout` passed, then keeps reading for `settle` to catch any extra message.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    count: usize,
    timeout: Duration,
    settle: Duration,
) -> Vec<Consumed> {
    if count == 0 {
        return read_topic_until(bootstrap, topic, settle, Duration::ZERO, |_| false);
    }
    let mut seen = 0;
    read_topic_until(bootstrap, topic, timeout, settle, |_| {
        seen += 1;
        seen >= count
    })
}

/// Reads partition 0 of `topic` from the beginning until `done` says the last message read
/// completes what is awaited (it sees each message once, in order) or `timeout` passed, then
/// keeps reading for `settle` to catch any extra message. Outputs written again after a
/// restart count towards a topic's length, so a test expecting particular outputs waits for
/// them rather than for a count.
pub fn read_topic_until(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    settle: Duration,
    mut done: impl FnMut(&Consumed) -> bool,
) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).expect("assign");
    let mut messages = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut settle_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if settle_until.is_some_and(|t| now >= t) || (settle_until.is_none() && now >= deadline) {
            break;
        }
        // Errors (e.g. the topic not existing yet, before the runner first writes) are retried.
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|header| {
                            (
                                header.key.to_string(),
                                String::from_utf8_lossy(header.value.unwrap_or_default())
                                    .into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let consumed = Consumed {
                key: (message.key()).map(|k| String::from_utf8_lossy(k).into_owned()),
                timestamp: message.timestamp().to_millis(),
                payload: String::from_utf8_lossy(message.payload().unwrap_or_default())
                    .into_owned(),
                headers,
            };
            if settle_until.is_none() && done(&consumed) {
                settle_until = Some(Instant::now() + settle);
            }
            messages.push(consumed);
        }
    }
    messages
}

/// A `weir` child process killed when the test ends, whatever happens.
#[derive(Debug)]
pub struct WeirProcess {
    pub child: std::process::Child,
    pub log: PathBuf,
}

impl WeirProcess {
    /// Starts `weir ARGS...`, its output going to a log file in `dir`.
    pub fn start(dir: &Path, log_name: &str, args: &[&str]) -> Self {
        let log = dir.join(log_name);
        let out = std::fs::File::create(&log).expect("create log");
        let child = std::process::Command::new(weir_bin())
            .args(args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start weir");
        Self { child, log }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) and waits for the exit status.
    pub fn signal_and_wait(&mut self, signal: i32, timeout: Duration) -> std::process::ExitStatus {
        // SAFETY: plain syscall on our own child.
        unsafe {
            libc::kill(self.pid(), signal);
        }
        self.wait(timeout)
    }

    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "weir did not exit within {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WeirProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A private `WEIR_HOME` for one test, with helpers to run `weir` commands in it.
#[derive(Debug)]
pub struct WeirHomeDir {
    pub dir: tempfile::TempDir,
}

impl Default for WeirHomeDir {
    fn default() -> Self {
        Self::new()
    }
}

impl WeirHomeDir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("weir-home-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `weir` command with `WEIR_HOME` set to this directory.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(weir_bin());
        command.args(args).env("WEIR_HOME", self.path());
        command
    }

    /// Runs `weir ARGS...` to completion.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().expect("run weir")
    }

    /// Runs `weir ARGS...`, asserting success, and returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "weir {args:?} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Spawns `command` with its standard output and error going to `run.log` in this home.
    pub fn spawn_logged(&self, mut command: std::process::Command) -> std::process::Child {
        let log = std::fs::File::create(self.path().join("run.log")).expect("create run.log");
        command
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .spawn()
            .expect("spawn weir")
    }

    /// What the command started by [`WeirHomeDir::spawn_logged`] wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("run.log")).unwrap_or_default()
    }

    /// `weir instances --json`.
    pub fn instances(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["instances", "--json"])).expect("instances JSON")
    }

    /// Starts `weir run ARGS...` in the background, its output in `run.log` of this home.
    pub fn start_run(&self, args: &[&str]) -> std::process::Child {
        self.spawn_logged(self.command(&[&["run"], args].concat()))
    }

    /// `weir runs show ID --json`: the run's record with its tasks.
    pub fn run_record(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["runs", "show", id, "--json"])).expect("run JSON")
    }
}

/// Waits until `child` exits, at most `timeout`.
pub fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    eventually(timeout, || child.try_wait().unwrap()).expect("weir run exits within its time")
}

impl Drop for WeirHomeDir {
    fn drop(&mut self) {
        // Whatever a failing test left running is stopped with its home.
        let _ = self.run(&["down", "--all"]);
    }
}

/// How many partitions `topic` has on the test broker (0 when it does not exist).
pub fn partition_count(topic: &str) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    metadata
        .topics()
        .first()
        .map_or(0, |topic| topic.partitions().len())
}
