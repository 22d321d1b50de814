//! End-to-end latency at steady paces: from the moment the benchmark hands an input record to
//! its producer to the moment the record's variation arrives at a consumer of the output topic.
//!
//! Both instants are read from this process's monotonic clock, so no clock sync is involved.
//! Each input's rate encodes its sequence number ([`load::numbered_document`]); the variation
//! the topology emits carries that rate back, which identifies the input exactly. The path
//! measured is the whole chain: producer → broker → runner (parse, extract, emit rate, diff,
//! emit variation) → broker → consumer. The pass-through, measured the same way, shows what
//! the broker and clients alone cost on this machine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use weir_topology::kafka::{consumer_config, producer_config};

use super::load::{self, key, numbered_document, sequence_of_rate};
use super::runner::RunnerProcess;

/// Latency figures at one pace.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PaceLatency {
    pub rate_per_s: u64,
    pub records: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Outputs seen more than once (at-least-once delivery allows it; none are expected here).
    pub duplicates: u64,
}

/// The latencies measured at one pace in one pass, before they are summed up.
pub struct PaceHistogram {
    pace: u64,
    histogram: Histogram<u64>,
    duplicates: u64,
}

/// Each pace's figures over every pass of one contender: the passes' histograms are merged,
/// so a quantile is that of all the records measured at that pace.
pub fn summarize_passes(passes: &[Vec<PaceHistogram>]) -> Vec<PaceLatency> {
    let Some(first) = passes.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|index| {
            let pace = first[index].pace;
            let mut merged = first[index].histogram.clone();
            let mut duplicates = first[index].duplicates;
            for pass in &passes[1..] {
                merged
                    .add(&pass[index].histogram)
                    .expect("histograms of the same bounds merge");
                duplicates += pass[index].duplicates;
            }
            summarize(pace, merged.len(), &merged, duplicates)
        })
        .collect()
}

/// An output seen by the measuring consumer: which input it answers and when it arrived.
struct Arrival {
    sequence: u64,
    at: Instant,
}

/// What carries the benchmark's records from the input to the output the latency is read on:
/// the runner, or the pass-through as the reference.
pub trait Forwarder {
    /// The topic whose messages answer the inputs.
    fn output(&self) -> &str;
    /// Waits until the first `count` records are done.
    fn wait_done(&mut self, count: u64) -> anyhow::Result<()>;
    /// Fails when the forwarder has stopped.
    fn check_alive(&mut self) -> anyhow::Result<()>;
}

impl Forwarder for RunnerProcess {
    fn output(&self) -> &str {
        &self.output
    }

    fn wait_done(&mut self, count: u64) -> anyhow::Result<()> {
        self.watch(count, Duration::from_secs(120)).map(|_| ())
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        self.counters().map(|_| ())
    }
}

/// Measures each pace for `seconds` against `forwarder`, already consuming `input`.
pub fn measure(
    bootstrap: &str,
    input: &str,
    forwarder: &mut dyn Forwarder,
    keys: u64,
    paces: &[u64],
    seconds: u64,
) -> anyhow::Result<Vec<PaceHistogram>> {
    let producer: ThreadedProducer<DefaultProducerContext> = producer_config(bootstrap)
        // The benchmark's own producer sends each record at once, so that its batching delay
        // is not counted against the runner.
        .set("linger.ms", "0")
        .create()?;
    let mut sent_at: Vec<Option<Instant>> = Vec::new();
    let send = |sequence: u64, sent_at: &mut Vec<Option<Instant>>| {
        send_numbered(&producer, input, keys, sequence, sent_at)
    };

    // One record per key first, so that every measured record has a previous value to diff.
    for sequence in 0..keys {
        send(sequence, &mut sent_at)?;
    }
    producer.flush(Duration::from_secs(30))?;
    forwarder.wait_done(keys)?;

    let (arrivals_tx, arrivals) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = start_output_consumer(bootstrap, forwarder.output(), arrivals_tx, stop.clone())?;

    let mut next = keys;
    let mut run_pace = |pace: u64, seconds: u64| -> anyhow::Result<(Histogram<u64>, u64)> {
        let count = pace * seconds;
        let first = next;
        let started = Instant::now();
        for index in 0..count {
            load::wait_until(started + Duration::from_secs_f64(index as f64 / pace as f64));
            send(first + index, &mut sent_at)?;
        }
        next += count;
        collect(&arrivals, &sent_at, first..next, &mut || {
            forwarder.check_alive()
        })
    };
    // The first records after the measuring consumer starts meet its connection being set up
    // and the forwarder's fetches settling; a second at the first pace, not counted, takes
    // that out of the first pace's tail.
    if let Some(&first_pace) = paces.first() {
        eprintln!("  {first_pace} records/s for {WARM_UP_SECONDS} s (warm-up, not counted)...");
        run_pace(first_pace, WARM_UP_SECONDS)?;
    }
    let mut figures = Vec::new();
    for &pace in paces {
        eprintln!("  {pace} records/s for {seconds} s...");
        let (histogram, duplicates) = run_pace(pace, seconds)?;
        figures.push(PaceHistogram {
            pace,
            histogram,
            duplicates,
        });
    }
    stop.store(true, Ordering::Relaxed);
    consumer
        .join()
        .map_err(|_| anyhow::anyhow!("the measuring consumer panicked"))??;
    Ok(figures)
}

/// Sends numbered record `sequence`, noting when it was handed to the producer.
fn send_numbered(
    producer: &ThreadedProducer<DefaultProducerContext>,
    input: &str,
    keys: u64,
    sequence: u64,
    sent_at: &mut Vec<Option<Instant>>,
) -> anyhow::Result<()> {
    let payload = numbered_document(sequence);
    let key = key(sequence, keys);
    loop {
        let now = Instant::now();
        match producer.send(BaseRecord::to(input).key(&key).payload(&payload)) {
            Ok(()) => {
                sent_at.resize(sent_at.len().max(sequence as usize + 1), None);
                sent_at[sequence as usize] = Some(now);
                return Ok(());
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((error, _)) => return Err(error.into()),
        }
    }
}

/// Waits for one output of every sequence in `range` and returns their latencies in
/// microseconds, with the number of duplicates seen.
fn collect(
    arrivals: &mpsc::Receiver<Arrival>,
    sent_at: &[Option<Instant>],
    range: std::ops::Range<u64>,
    runner_alive: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
    let mut seen = vec![false; (range.end - range.start) as usize];
    let mut missing = seen.len();
    let mut duplicates = 0;
    let deadline = Instant::now() + OUTPUT_TIMEOUT;
    while missing > 0 {
        if Instant::now() > deadline {
            bail!(
                "{missing} of {} variations did not arrive within {OUTPUT_TIMEOUT:?}",
                seen.len()
            );
        }
        let Ok(arrival) = arrivals.recv_timeout(Duration::from_millis(500)) else {
            runner_alive()?;
            continue;
        };
        if !range.contains(&arrival.sequence) {
            continue;
        }
        let slot = &mut seen[(arrival.sequence - range.start) as usize];
        if *slot {
            duplicates += 1;
            continue;
        }
        *slot = true;
        missing -= 1;
        let sent = sent_at[arrival.sequence as usize].context("an output of an unsent record")?;
        let micros = arrival.at.saturating_duration_since(sent).as_micros() as u64;
        histogram.saturating_record(micros.max(1));
    }
    Ok((histogram, duplicates))
}

/// How long the uncounted warm-up before the first pace lasts.
const WARM_UP_SECONDS: u64 = 1;

/// How long the outputs of one pace may take to arrive after its last input was sent.
const OUTPUT_TIMEOUT: Duration = Duration::from_secs(60);

fn summarize(pace: u64, records: u64, histogram: &Histogram<u64>, duplicates: u64) -> PaceLatency {
    let ms = |micros: u64| micros as f64 / 1000.0;
    PaceLatency {
        rate_per_s: pace,
        records,
        p50_ms: ms(histogram.value_at_quantile(0.5)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        p999_ms: ms(histogram.value_at_quantile(0.999)),
        max_ms: ms(histogram.max()),
        duplicates,
    }
}

/// Reads `topic` from its current end on a thread of its own, sending each output's sequence
/// and arrival time, until `stop` is set.
fn start_output_consumer(
    bootstrap: &str,
    topic: &str,
    arrivals: mpsc::Sender<Arrival>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let consumer: BaseConsumer = consumer_config(bootstrap, &format!("{topic}-latency"))
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let (_, end) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Offset(end))?;
    consumer.assign(&assignment)?;
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let at = Instant::now();
            let message = message?;
            // The runner's variations carry `rate`; the pass-through forwards the document.
            let rate = message
                .payload()
                .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
                .and_then(|v| {
                    v["rate"]
                        .as_f64()
                        .or_else(|| v["data"]["amount"].as_str()?.parse().ok())
                });
            if let Some(sequence) = rate.and_then(sequence_of_rate) {
                // The receiver hangs up only when the benchmark has failed already.
                let _ = arrivals.send(Arrival { sequence, at });
            }
        }
        Ok(())
    }))
}
