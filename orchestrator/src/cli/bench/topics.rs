//! `weir bench topics`: the topic browser on a big topic, read through `weir serve` as the web
//! UI reads it, next to a bare Kafka consumer doing the same reads in the same run; then
//! `weir serve`'s memory while live tails follow a busy topic, half of them never reading
//! (a browser tab left open in the background).
//!
//! Everything runs as a user would: a Kafka started by `weir up` in a private `WEIR_HOME`,
//! `weir serve` as its own process (its memory is read from `/proc`), HTTP requests as the
//! page makes them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use weir_topology::kafka::{ensure_topics, producer_config};

use super::topology::{load, Spread};
use super::{round, status_kb, MemoryField};
use crate::cli::runtime;

/// What `weir bench topics` measures and how.
#[derive(Debug, clap::Args)]
pub struct TopicsBenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Messages loaded into the browsed topic.
    #[arg(long, default_value_t = 10_000_000)]
    messages: u64,
    /// Partitions of the browsed and the busy topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Rounds of each read, Weir and the bare consumer taking turns.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Live tails opened on the busy topic; half of them never read what they are sent.
    #[arg(long, default_value_t = 8)]
    tails: usize,
    /// How long the tails follow the busy topic.
    #[arg(long, default_value_t = 60)]
    tail_seconds: u64,
    /// Messages per second written to the busy topic while the tails follow it.
    #[arg(long, default_value_t = 5_000)]
    write_rate: u64,
}

/// The Kafka instance the benchmark starts, as the page names it.
const KAFKA: &str = "bench-kafka";
const BROWSED: &str = "bench-browsed";
const BUSY: &str = "bench-busy";
/// The newest messages the page shows by default.
const NEWEST: usize = 50;
/// A key no message has: the search scans up to its limit and finds nothing.
const ABSENT_KEY: &str = "no-such-key";

pub fn run(args: TopicsBenchArgs) -> anyhow::Result<ExitCode> {
    ensure!(
        args.messages >= 100_000 && args.rounds > 0 && args.partitions > 0,
        "--messages must be at least 100000 (a search scans 100,000), --rounds and \
         --partitions positive"
    );
    ensure!(
        args.tails >= 2 && args.tails <= 32 && args.tail_seconds >= 8 && args.write_rate > 0,
        "--tails must be 2 to 32 (weir serve serves 32 at most), --tail-seconds at least 8, \
         --write-rate positive"
    );
    let home = tempfile::Builder::new()
        .prefix("weir-bench-topics-")
        .tempdir()?;
    let weir = Weir::new(home.path())?;
    eprintln!("starting a Kafka with `weir up kafka`...");
    let brokers = weir.up_kafka()?;
    let rt = runtime()?;
    rt.block_on(ensure_topics(&brokers, &[BROWSED, BUSY], args.partitions))?;
    eprintln!("loading {} messages into `{BROWSED}`...", args.messages);
    let loading = Instant::now();
    rt.block_on(load::fill(
        &brokers,
        BROWSED,
        args.messages,
        1_000,
        load::EventTime::Written,
    ))?;
    let load_seconds = loading.elapsed().as_secs_f64();
    drop(rt);

    eprintln!("starting weir serve...");
    let serve = weir.serve()?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut newest = Contest::default();
    let mut search = Contest::default();
    let mut searched = 0;
    for round in 1..=args.rounds {
        eprintln!(
            "round {round}/{}: newest {NEWEST}, then a search",
            args.rounds
        );
        newest.weir.push(serve.newest(&client)?);
        newest
            .bare
            .push(bare_read(&brokers, BROWSED, NEWEST as u64, |_| false)?);
        let (seconds, scanned) = serve.search(&client)?;
        search.weir.push(seconds);
        searched = scanned;
        search
            .bare
            .push(bare_read(&brokers, BROWSED, scanned, |key| {
                key == ABSENT_KEY.as_bytes()
            })?);
    }
    let serve_after_reads_kb = status_kb(serve.pid(), MemoryField::Resident)?;

    eprintln!(
        "{} tails follow `{BUSY}` at {} messages/s for {} s...",
        args.tails, args.write_rate, args.tail_seconds
    );
    let tails = follow(&serve, &brokers, &args)?;
    let report = Report {
        args: &args,
        load_seconds,
        newest: newest.figures()?,
        search: search.figures()?,
        searched,
        serve_after_reads_kb,
        tails,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        report.print();
    }
    Ok(ExitCode::SUCCESS)
}

/// Times of one read by `weir serve` and by the bare consumer, one per round.
#[derive(Debug, Default)]
struct Contest {
    weir: Vec<f64>,
    bare: Vec<f64>,
}

/// A contest summed up.
#[derive(Debug)]
struct Figures {
    weir: Spread,
    bare: Spread,
}

impl Contest {
    fn figures(&self) -> anyhow::Result<Figures> {
        let spread = |times: &[f64]| Spread::of(times).context("no round was measured");
        Ok(Figures {
            weir: spread(&self.weir)?,
            bare: spread(&self.bare)?,
        })
    }
}

impl Figures {
    fn ratio(&self) -> f64 {
        self.weir.median / self.bare.median
    }

    fn json(&self) -> Value {
        json!({
            "weir_serve_ms": spread_ms(&self.weir),
            "bare_consumer_ms": spread_ms(&self.bare),
            "ratio": round(self.ratio()),
        })
    }
}

fn spread_ms(spread: &Spread) -> Value {
    json!({
        "median": round(spread.median * 1000.0),
        "min": round(spread.min * 1000.0),
        "max": round(spread.max * 1000.0),
    })
}

/// `weir` itself, over a private home: its instances are the benchmark's alone, and are
/// stopped when it ends, however it ends.
struct Weir {
    exe: PathBuf,
    home: PathBuf,
}

impl Weir {
    fn new(home: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("cannot find the weir executable")?,
            home: home.to_path_buf(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.exe);
        command
            .args(args)
            .env("WEIR_HOME", &self.home)
            .env_remove("WEIR_TOKENS");
        command
    }

    /// Starts the Kafka (and its ZooKeeper); answers its bootstrap address.
    fn up_kafka(&self) -> anyhow::Result<String> {
        let status = self
            .command(&["up", "kafka", "--name", KAFKA])
            .status()
            .context("cannot run weir up")?;
        ensure!(status.success(), "weir up kafka failed ({status})");
        let listed = self.command(&["instances", "--json"]).output()?;
        let instances: Value = serde_json::from_slice(&listed.stdout)
            .context("weir instances --json did not answer JSON")?;
        (instances.as_array().into_iter().flatten())
            .find(|instance| instance["name"] == KAFKA)
            .and_then(|instance| instance["endpoint"].as_str())
            .map(str::to_string)
            .context("the Kafka started is not listed by weir instances")
    }

    fn serve(&self) -> anyhow::Result<Serve> {
        let port = weir_supervisor::ports::free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(self.home.join("serve.log"))?;
        let child = self
            .command(&["serve", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start weir serve")?;
        let serve = Serve { child, url };
        let started = Instant::now();
        while reqwest::blocking::get(format!("{}/api/dashboard", serve.url))
            .map_or(true, |r| !r.status().is_success())
        {
            ensure!(
                started.elapsed() < Duration::from_secs(30),
                "weir serve did not answer within 30 s (log: {})",
                self.home.join("serve.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(serve)
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        let _ = self
            .command(&["down", "--all"])
            .stdout(Stdio::null())
            .status();
    }
}

/// A `weir serve` process of the benchmark.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn messages_url(&self, topic: &str) -> String {
        format!("{}/api/instances/{KAFKA}/topics/{topic}/messages", self.url)
    }

    /// The page's first view of a topic: its newest messages. Answers the seconds it took.
    fn newest(&self, client: &reqwest::blocking::Client) -> anyhow::Result<f64> {
        let url = format!("{}?limit={NEWEST}", self.messages_url(BROWSED));
        let started = Instant::now();
        let answer: Value = client.get(&url).send()?.error_for_status()?.json()?;
        let seconds = started.elapsed().as_secs_f64();
        let shown = answer["messages"].as_array().map_or(0, Vec::len);
        ensure!(
            shown == NEWEST,
            "GET {url} showed {shown} messages, not {NEWEST}"
        );
        Ok(seconds)
    }

    /// A search no message matches: it scans up to the default limit and says so. Answers the
    /// seconds it took and the messages it scanned.
    fn search(&self, client: &reqwest::blocking::Client) -> anyhow::Result<(f64, u64)> {
        let url = format!("{}?key={ABSENT_KEY}", self.messages_url(BROWSED));
        let started = Instant::now();
        let answer: Value = client.get(&url).send()?.error_for_status()?.json()?;
        let seconds = started.elapsed().as_secs_f64();
        ensure!(
            answer["scan_limit_reached"] == true && answer["messages"] == json!([]),
            "GET {url} should have found nothing and stopped at its scan limit: {answer}"
        );
        let scanned = answer["scanned"].as_u64().context("no scanned count")?;
        Ok((seconds, scanned))
    }

    /// Opens a live tail of the busy topic; answers once the stream is open.
    fn tail(&self) -> anyhow::Result<reqwest::blocking::Response> {
        let url = format!("{}/api/instances/{KAFKA}/topics/{BUSY}/tail", self.url);
        let client = reqwest::blocking::Client::builder()
            .timeout(None::<Duration>)
            .build()?;
        Ok(client.get(&url).send()?.error_for_status()?)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bare floor: one consumer reading, from the end of each partition, `count` messages
/// split evenly over them (what the browser's newest view and its search read), and testing
/// each key. Answers the seconds it took.
fn bare_read(
    brokers: &str,
    topic: &str,
    count: u64,
    matches: impl Fn(&[u8]) -> bool,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "weir-bench-bare")
        .set("enable.auto.commit", "false")
        .create()?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = (metadata.topics().iter())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    ensure!(!partitions.is_empty(), "`{topic}` has no partition");
    let each = count.div_ceil(partitions.len() as u64) as i64;
    let mut assignment = TopicPartitionList::new();
    let mut expected = 0;
    for &partition in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        let from = low.max(high - each);
        expected += high - from;
        assignment.add_partition_offset(topic, partition, Offset::Offset(from))?;
    }
    consumer.assign(&assignment)?;
    let (mut read, mut found) = (0, 0);
    while read < expected {
        match consumer.poll(timeout) {
            Some(Ok(message)) => {
                read += 1;
                found += u64::from(message.key().is_some_and(&matches));
            }
            Some(Err(error)) => bail!("the bare consumer failed: {error}"),
            None => bail!("the bare consumer read nothing for 10 s ({read} of {expected})"),
        }
    }
    std::hint::black_box(found);
    Ok(started.elapsed().as_secs_f64())
}

/// What following the busy topic showed.
#[derive(Debug)]
struct TailFigures {
    written: u64,
    /// Messages each reading tail received.
    received: Vec<u64>,
    /// `weir serve`'s resident memory, in KiB, once a second from just before the tails opened.
    resident_kb: Vec<u64>,
}

impl TailFigures {
    /// Resident memory once the tails have run a quarter of their time, and at the end: after
    /// the first quarter a bounded server grows no more.
    fn settled_and_end_kb(&self) -> (u64, u64) {
        let samples = &self.resident_kb;
        (samples[samples.len() / 4], samples[samples.len() - 1])
    }
}

/// Writes to the busy topic at the asked pace while `--tails` tails follow it, half of them
/// reading everything and half never reading; samples `weir serve`'s memory meanwhile.
fn follow(serve: &Serve, brokers: &str, args: &TopicsBenchArgs) -> anyhow::Result<TailFigures> {
    let before_kb = status_kb(serve.pid(), MemoryField::Resident)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    let mut stalled = Vec::new();
    for index in 0..args.tails {
        let response = serve.tail()?;
        if index % 2 == 1 {
            stalled.push(response);
            continue;
        }
        let received = Arc::new(AtomicU64::new(0));
        let (count, stop) = (received.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(response).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("data:") {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        });
        readers.push((reader, received));
    }
    let writer = {
        let (brokers, stop, rate) = (brokers.to_string(), stop.clone(), args.write_rate);
        std::thread::spawn(move || write_paced(&brokers, rate, &stop))
    };
    let mut resident_kb = vec![before_kb];
    let started = Instant::now();
    for second in 1..=args.tail_seconds {
        load::wait_until(started + Duration::from_secs(second));
        resident_kb.push(status_kb(serve.pid(), MemoryField::Resident)?);
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer panicked"))??;
    // Messages written last reach the reading tails within a moment.
    std::thread::sleep(Duration::from_secs(2));
    drop(stalled);
    let received = readers
        .into_iter()
        .map(|(reader, received)| {
            let count = received.load(Ordering::Relaxed);
            drop(reader);
            count
        })
        .collect();
    Ok(TailFigures {
        written,
        received,
        resident_kb,
    })
}

/// Writes small messages to the busy topic at `rate` per second until `stop`; answers how
/// many the broker acknowledged.
fn write_paced(brokers: &str, rate: u64, stop: &AtomicBool) -> anyhow::Result<u64> {
    let producer: BaseProducer = producer_config(brokers).create()?;
    let started = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let payload = format!(r#"{{"n":{sent},"note":"busy"}}"#);
            let key = load::key(sent, 100);
            match producer.send(BaseRecord::to(BUSY).key(&key).payload(&payload)) {
                Ok(()) => sent += 1,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => bail!("the busy topic's writer failed: {error}"),
            }
        }
        producer.poll(Duration::from_millis(5));
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(sent)
}

struct Report<'a> {
    args: &'a TopicsBenchArgs,
    load_seconds: f64,
    newest: Figures,
    search: Figures,
    /// Messages each search scanned, as `weir serve` said.
    searched: u64,
    serve_after_reads_kb: u64,
    tails: TailFigures,
}

impl Report<'_> {
    fn json(&self) -> Value {
        let (settled, end) = self.tails.settled_and_end_kb();
        json!({
            "messages": self.args.messages,
            "partitions": self.args.partitions,
            "rounds": self.args.rounds,
            "load_seconds": round(self.load_seconds),
            "newest": { "limit": NEWEST, "figures": self.newest.json() },
            "search": { "scanned": self.searched, "figures": self.search.json() },
            "serve_resident_after_reads_kib": self.serve_after_reads_kb,
            "tails": {
                "open": self.args.tails,
                "never_reading": self.args.tails / 2,
                "seconds": self.args.tail_seconds,
                "write_rate": self.args.write_rate,
                "written": self.tails.written,
                "received_by_each_reading_tail": self.tails.received,
                "serve_resident_kib_each_second": self.tails.resident_kb,
                "serve_resident_growth_after_first_quarter_percent":
                    round((end as f64 - settled as f64) * 100.0 / settled as f64),
            },
        })
    }

    fn print(&self) {
        let a = self.args;
        println!(
            "topic browser on {} messages over {} partitions (loaded in {:.1} s), {} rounds, \
             median [min-max]:",
            a.messages, a.partitions, self.load_seconds, a.rounds
        );
        println!(
            "  {:<34} {:>24} {:>24} {:>7}",
            "", "weir serve (HTTP)", "bare consumer", "ratio"
        );
        let row = |what: &str, figures: &Figures| {
            let cell = |s: &Spread| {
                format!(
                    "{:.0} ms [{:.0}-{:.0}]",
                    s.median * 1000.0,
                    s.min * 1000.0,
                    s.max * 1000.0
                )
            };
            println!(
                "  {what:<34} {:>24} {:>24} {:>7.2}",
                cell(&figures.weir),
                cell(&figures.bare),
                figures.ratio()
            );
        };
        row(&format!("newest {NEWEST}"), &self.newest);
        row(
            &format!("search by key, {} scanned", self.searched),
            &self.search,
        );
        let t = &self.tails;
        let (settled, end) = t.settled_and_end_kb();
        let peak = t.resident_kb.iter().max().copied().unwrap_or(0);
        println!(
            "weir serve resident memory: {} MiB after the reads; with {} tails ({} never \
             reading) on {} messages/s for {} s: {} MiB before, {} MiB after a quarter, {} MiB \
             at the end ({:+.1} %), peak {} MiB",
            self.serve_after_reads_kb / 1024,
            a.tails,
            a.tails / 2,
            a.write_rate,
            a.tail_seconds,
            t.resident_kb[0] / 1024,
            settled / 1024,
            end / 1024,
            (end as f64 - settled as f64) * 100.0 / settled as f64,
            peak / 1024
        );
        println!(
            "  written {}, received by each reading tail: {:?}",
            t.written, t.received
        );
    }
}
