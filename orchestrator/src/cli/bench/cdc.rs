//! `weir bench cdc`: the CDC pipeline (`workflows/topologies/cdc-sync.yaml`) on generated
//! change events, next to a plain pass-through on the same broker in the same run.
//!
//! Throughput: the events are loaded first, then the pipeline and the pass-through each read
//! them all, alternating round by round; each round's steady rate is taken between 10 % and
//! 90 % of its work. A change event of a claim is read three times by the pipeline (the input,
//! then the two repartition topics), a member's once: its rate in change events per second is
//! its records per second scaled by events over records. The seed's 6 million claims a day are
//! about 70 a second on average, which the report sets next to it.
//!
//! Latency: change events written at steady paces (by default 70/s and 700/s) with the time
//! they are written as their Kafka timestamp, which the runner carries from each input to its
//! outputs; each target message's latency is the moment a consumer of the target reads it
//! minus that timestamp (one machine, one clock; millisecond resolution). The figures are
//! only those of target messages that arrived; how many arrived of how many are due is said.
//! A warm-up pace comes first, not counted: the first record of each partition waits for its
//! state to be restored, which is start-up, not the pipeline's latency.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::json;
use weir_topology::kafka::{consumer_config, ensure_topics, now_ms, producer_config};
use weir_topology::source::cdc_generator::{generate, GeneratorConfig};
use weir_topology::source::change_event::{ChangeEvent, PrimaryKeys};

use super::round;
use super::topology::load::{self, EventTime};
use super::topology::passthrough::{FanOut, PassThrough};
use super::topology::progress::Spread;
use super::topology::runner::{Dataflow, RunnerProcess};
use crate::cli::runtime;

const DEFAULT_TOPOLOGY: &str = "workflows/topologies/cdc-sync.yaml";
const PRIMARY_KEYS: &str = "members=member_id,claims=claim_id";
/// The seed's 6 million claims a day, per second.
const SEED_EVENTS_PER_SECOND: f64 = 6_000_000.0 / 86_400.0;

/// What `weir bench cdc` measures and how.
#[derive(Debug, clap::Args)]
pub struct CdcBenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Claim change events (inserts, updates, deletes) of the throughput rounds.
    #[arg(long, default_value_t = 100_000)]
    claim_events: u64,
    /// Members the claims reference (each a change event read before its claims).
    #[arg(long, default_value_t = 2_000)]
    members: u64,
    /// Throughput rounds counted, after one warm-up round; each runs both contenders.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Partitions of the change-event topic, and so of the pipeline's own topics.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Paces of the latency phase, change events per second.
    #[arg(long, value_delimiter = ',', default_value = "70,700")]
    paces: Vec<u64>,
    /// Seconds each latency pace lasts.
    #[arg(long, default_value_t = 20)]
    pace_seconds: u64,
    /// Use this broker instead of starting a private ZooKeeper and Kafka.
    #[arg(long)]
    brokers: Option<String>,
    /// The CDC topology (it takes `cdc-sync.yaml`'s parameters).
    #[arg(long, default_value = DEFAULT_TOPOLOGY)]
    topology: PathBuf,
}

/// Latency of the target at one pace.
#[derive(Debug, Clone, serde::Serialize)]
struct PaceFigures {
    events_per_s: u64,
    events: u64,
    /// Target messages the claim events of the pace are due to write, and those read.
    target_due: u64,
    target_read: u64,
    p50_ms: u64,
    p99_ms: u64,
    max_ms: u64,
}

pub fn run(args: CdcBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    anyhow::ensure!(
        args.claim_events >= 1_000,
        "--claim-events must be at least 1000: fewer are over before a steady rate shows"
    );
    anyhow::ensure!(
        args.paces.iter().all(|&p| p > 0),
        "--paces must be positive"
    );
    weir_topology::spec::TopologySpec::load(&args.topology, &[]).with_context(|| {
        format!(
            "the benchmark needs the CDC topology: pass --topology FILE (the default, \
             {DEFAULT_TOPOLOGY}, is relative to the repository's root)"
        )
    })?;
    let keys: PrimaryKeys = PRIMARY_KEYS.parse().expect("the benchmark's keys parse");
    let workdir = tempfile::Builder::new()
        .prefix("weir-bench-cdc-")
        .tempdir()?;
    let (stack, bootstrap) =
        super::given_or_private_kafka(args.brokers.as_deref(), workdir.path())?;
    let id = std::process::id();
    let rt = runtime()?;

    // Throughput: every event loaded first.
    let events = generate(&GeneratorConfig {
        seed: 1,
        members: args.members,
        claim_events: args.claim_events,
        poison: 0.0,
        early_references: 0,
        start_ms: now_ms(),
    });
    let keyed = keyed_events(&events, &keys)?;
    let claims = keyed.iter().filter(|(_, _, claim)| *claim).count() as u64;
    let event_count = keyed.len() as u64;
    // A claim is read from the input and from both repartition topics; a member once.
    let records = event_count + 2 * claims;
    let input = format!("bench-cdc-in-{id}");
    let copies = format!("bench-cdc-passthrough-{id}");
    rt.block_on(ensure_topics(
        &bootstrap,
        &[&input, &copies],
        args.partitions,
    ))?;
    eprintln!(
        "loading {event_count} generated change events ({} members, {claims} claim events) \
         into `{input}`...",
        event_count - claims
    );
    rt.block_on(load::fill_with(
        &bootstrap,
        &input,
        event_count,
        EventTime::Written,
        |index| {
            let (key, payload, _) = &keyed[index as usize];
            (key.clone(), payload.clone())
        },
    ))?;

    let (mut pipeline_rates, mut passthrough_rates) = (Vec::new(), Vec::new());
    let timeout = Duration::from_secs(600);
    for number in 0..=args.rounds {
        let counted = number > 0;
        let label = if counted {
            format!("round {number}/{}", args.rounds)
        } else {
            "warm-up round".to_string()
        };
        let name = format!("bench-cdc-{id}-{number}");
        eprintln!("{label}: the CDC pipeline reads {event_count} change events...");
        let dataflow = Dataflow::Cdc(&args.topology);
        let mut runner = RunnerProcess::start(&bootstrap, dataflow, &input, &name, workdir.path())?;
        let watched = runner.watch(records, timeout)?;
        let records_per_s = watched.steady_rate(records)?;
        drop(runner);
        let events_per_s = records_per_s * event_count as f64 / records as f64;
        eprintln!("  {events_per_s:.0} change events/s ({records_per_s:.0} records/s)");

        eprintln!("{label}: the pass-through copies them...");
        let group = format!("bench-cdc-passthrough-{id}-{number}");
        let mut passthrough =
            PassThrough::start(&rt, &bootstrap, &input, FanOut::one(&copies), &group);
        let copied = passthrough.watch(event_count, timeout)?;
        let copies_per_s = copied.steady_rate(event_count)?;
        passthrough.stop_and_report()?;
        eprintln!("  {copies_per_s:.0} records/s");
        if counted {
            pipeline_rates.push(events_per_s);
            passthrough_rates.push(copies_per_s);
        }
    }
    let pipeline = Spread::of(&pipeline_rates).context("no round was counted")?;
    let passthrough = Spread::of(&passthrough_rates).context("no round was counted")?;

    // Latency at steady paces, one pipeline for all of them.
    let paced_input = format!("bench-cdc-paced-{id}");
    rt.block_on(ensure_topics(&bootstrap, &[&paced_input], args.partitions))?;
    let name = format!("bench-cdc-{id}-paced");
    let dataflow = Dataflow::Cdc(&args.topology);
    let mut runner =
        RunnerProcess::start(&bootstrap, dataflow, &paced_input, &name, workdir.path())?;
    let target = runner.output.clone();
    // Timed from when it reads its (empty) input: not its start-up and first assignment.
    let waiting = Instant::now();
    while runner.status()?.and_then(|status| status.lag).is_none() {
        if waiting.elapsed() > Duration::from_secs(60) {
            bail!("the paced pipeline was assigned no partition within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each partition's first record waits for its state to be restored, the first write to
    // each topic for the producer's id and the topic's metadata: a warm-up of 2 s at the
    // first pace, not counted, so that the figures are those of a pipeline that runs.
    let warm_up = args.paces[0];
    eprintln!(
        "latency: warm-up, {} change events at {warm_up}/s...",
        warm_up * 2
    );
    measure_pace(
        &bootstrap,
        &paced_input,
        &target,
        warm_up,
        (warm_up * 2).max(20),
        99,
        &keys,
        &mut runner,
    )?;
    let mut paces = Vec::new();
    for (index, &pace) in args.paces.iter().enumerate() {
        let count = pace * args.pace_seconds;
        eprintln!("latency: {count} change events at {pace}/s...");
        let figures = measure_pace(
            &bootstrap,
            &paced_input,
            &target,
            pace,
            count,
            100 + index as u64,
            &keys,
            &mut runner,
        )?;
        eprintln!(
            "  p50 {} ms, p99 {} ms, max {} ms ({} of {} target messages read)",
            figures.p50_ms, figures.p99_ms, figures.max_ms, figures.target_read, figures.target_due
        );
        paces.push(figures);
    }
    drop(runner);

    let ratio = pipeline.median / passthrough.median;
    let over_seed = pipeline.median / SEED_EVENTS_PER_SECOND;
    if args.json {
        let report = json!({
            "events": event_count,
            "claim_events": claims,
            "partitions": args.partitions,
            "rounds": args.rounds,
            "pipeline_events_per_s": pipeline,
            "passthrough_records_per_s": passthrough,
            "ratio": round(ratio),
            "seed_events_per_s": round(SEED_EVENTS_PER_SECOND),
            "times_the_seed": round(over_seed),
            "latency": paces,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "CDC pipeline ({}, {} partitions, one runner): {event_count} change events, {} rounds",
            args.topology.display(),
            args.partitions,
            args.rounds
        );
        println!(
            "  pipeline      {:>9.0} change events/s (median; {:.0}–{:.0})",
            pipeline.median, pipeline.min, pipeline.max
        );
        println!(
            "  pass-through  {:>9.0} records/s (median; {:.0}–{:.0})",
            passthrough.median, passthrough.min, passthrough.max
        );
        println!("  ratio         {ratio:>9.2} (pipeline ÷ pass-through)");
        println!(
            "  the seed's 6 million a day is {SEED_EVENTS_PER_SECOND:.1}/s: {over_seed:.0}× that"
        );
        for pace in &paces {
            println!(
                "  at {:>5}/s: end-to-end p50 {} ms, p99 {} ms, max {} ms ({} of {} target \
                 messages read)",
                pace.events_per_s,
                pace.p50_ms,
                pace.p99_ms,
                pace.max_ms,
                pace.target_read,
                pace.target_due
            );
        }
    }
    drop(stack);
    Ok(ExitCode::SUCCESS)
}

/// Each event's key (its table's primary key), payload, and whether it is a claim's.
fn keyed_events(
    events: &[String],
    keys: &PrimaryKeys,
) -> anyhow::Result<Vec<(String, String, bool)>> {
    events
        .iter()
        .map(|event| {
            let parsed = ChangeEvent::parse(event.as_bytes()).map_err(|error| {
                anyhow::anyhow!("a generated event is no change event: {error}")
            })?;
            let key = keys
                .key_of_event(&parsed)
                .map_err(|error| anyhow::anyhow!("a generated event has no key: {error}"))?;
            Ok((key, event.clone(), parsed.table == "claims"))
        })
        .collect()
}

/// Writes `count` fresh change events at `pace` a second into `input` and reads the target
/// meanwhile; every claim event is due one target message (a row, or a tombstone).
#[allow(clippy::too_many_arguments)]
fn measure_pace(
    bootstrap: &str,
    input: &str,
    target: &str,
    pace: u64,
    count: u64,
    seed: u64,
    keys: &PrimaryKeys,
    runner: &mut RunnerProcess,
) -> anyhow::Result<PaceFigures> {
    // Members first so that every claim finds its member; fresh `ts_ms` (the upsert's
    // version) so that no change is superseded by one of an earlier pace.
    let members = (count / 20).max(1);
    let events = generate(&GeneratorConfig {
        seed,
        members,
        claim_events: count.saturating_sub(members).max(1),
        poison: 0.0,
        early_references: 0,
        start_ms: now_ms(),
    });
    let keyed = keyed_events(&events, keys)?;
    let due = keyed.iter().filter(|(_, _, claim)| *claim).count() as u64;

    let consumer: BaseConsumer = consumer_config(bootstrap, &format!("{target}-reader-{seed}"))
        .set("auto.offset.reset", "latest")
        .create()?;
    consumer.subscribe(&[target])?;
    // Joined and at the end of the target before the first event goes out.
    let joined = Instant::now();
    while consumer.assignment()?.count() == 0 {
        if joined.elapsed() > Duration::from_secs(30) {
            bail!("the target's reader was assigned no partition within 30 s");
        }
        let _ = consumer.poll(Duration::from_millis(100));
    }
    let _ = runner.status()?;

    let producer: ThreadedProducer<DefaultProducerContext> = producer_config(bootstrap).create()?;
    let mut reader = TargetReader {
        consumer,
        latencies: Histogram::<u64>::new_with_bounds(1, 3_600_000, 3)?,
        read: 0,
    };
    let started = Instant::now();
    for (index, (key, payload, _)) in keyed.iter().enumerate() {
        let due_at = started + Duration::from_secs_f64(index as f64 / pace as f64);
        while Instant::now() < due_at {
            reader.take(due_at.saturating_duration_since(Instant::now()))?;
        }
        let mut record = BaseRecord::to(input).key(key).payload(payload);
        while let Err((error, unsent)) = producer.send(record) {
            if !matches!(
                error,
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::error::RDKafkaErrorCode::QueueFull
                )
            ) {
                bail!("writing a change event: {error}");
            }
            record = unsent;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    producer.flush(Duration::from_secs(30))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while reader.read < due && Instant::now() < deadline {
        reader.take(Duration::from_millis(100))?;
    }
    let _ = runner.status()?;
    if reader.read == 0 {
        bail!("no target message arrived at {pace}/s: the pipeline wrote nothing");
    }
    let (histogram, read) = (reader.latencies, reader.read);
    Ok(PaceFigures {
        events_per_s: pace,
        events: keyed.len() as u64,
        target_due: due,
        target_read: read,
        p50_ms: histogram.value_at_quantile(0.5),
        p99_ms: histogram.value_at_quantile(0.99),
        max_ms: histogram.max(),
    })
}

/// Reads the target and keeps each message's latency: now minus its Kafka timestamp.
struct TargetReader {
    consumer: BaseConsumer,
    latencies: Histogram<u64>,
    read: u64,
}

impl TargetReader {
    /// Takes the next message, waiting at most `wait` for one.
    fn take(&mut self, wait: Duration) -> anyhow::Result<()> {
        if let Some(message) = self.consumer.poll(wait) {
            let message = message?;
            if let Some(written) = message.timestamp().to_millis() {
                self.latencies.record((now_ms() - written).max(1) as u64)?;
                self.read += 1;
            }
        }
        Ok(())
    }
}
