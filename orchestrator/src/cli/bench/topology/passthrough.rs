//! The reference: a plain rdkafka consume→produce loop with the runner's delivery contract
//! and client machinery, and none of its work.
//!
//! Its delivery reports are served on its own loop, as the runner's are (see
//! `weir_topology::delivery_reports`): rdkafka's `FutureProducer`, as its examples write one,
//! serves them on a thread of its own whose frees contend for the loop's malloc arena, which
//! made the reference slower and noisier than the runner on the same broker.
//!
//! It joins a consumer group by subscribing (as the runner does), uses the same client
//! settings, forwards copies of each record's key and payload unchanged, bounds its
//! unacknowledged records the same way, and commits the offset of records whose copies are all
//! acknowledged every half second. What it lacks is the runner's job: JSON, operators, state
//! in the commit metadata.
//!
//! How many copies it writes is its [`FanOut`]. The reference topology writes two to three
//! messages per input (a rate, a variation, and a notification for most variations), so the
//! headline reference writes as many messages as the runner did over the same input, spread
//! evenly over the records and shaped as the runner's are: every record's first copy to the
//! first topic, its second to the second, a third to the third. Then the broker and the
//! clients do the same work for both contenders, the ratio measures the runner's own cost,
//! and the latency phase finds every record on the first topic, as it finds every variation.
//! One copy per record is measured too, as the bare floor of consume→produce.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use weir_topology::delivery_reports::DeliveryReports;
use weir_topology::kafka::{consumer_config, producer_config};
use weir_topology::runner::RunnerConfig;

use super::latency::Forwarder;
use super::progress::{self, Round};

/// Counters the benchmark watches.
#[derive(Debug, Default)]
struct Counters {
    consumed: AtomicU64,
    done: AtomicU64,
}

/// How many copies of each input the pass-through writes, and where.
#[derive(Debug, Clone)]
pub struct FanOut {
    /// The topics a record's copies go to: its first copy to the first, and so on.
    pub topics: Vec<String>,
    /// Copies per input record on average (the runner's messages per record, or 1).
    pub per_record: f64,
}

impl FanOut {
    /// One copy of each record to `topic`.
    pub fn one(topic: &str) -> Self {
        Self {
            topics: vec![topic.to_string()],
            per_record: 1.0,
        }
    }

    /// Copies of record number `index` (counted from 0): the running total of copies stays
    /// within one of `per_record` times the records seen.
    fn copies_of(&self, index: u64) -> u64 {
        let upto = |n: u64| (n as f64 * self.per_record).floor() as u64;
        upto(index + 1) - upto(index)
    }
}

/// A pass-through running on the benchmark's Tokio runtime.
pub struct PassThrough<'rt> {
    rt: &'rt tokio::runtime::Runtime,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    counters: Arc<Counters>,
    stop: CancellationToken,
    /// The topic the latency phase reads: the first of the fan-out.
    output: String,
    started: Instant,
}

impl<'rt> PassThrough<'rt> {
    /// Starts forwarding `input` as `fan_out` says with consumer group `group`.
    pub fn start(
        rt: &'rt tokio::runtime::Runtime,
        bootstrap: &str,
        input: &str,
        fan_out: FanOut,
        group: &str,
    ) -> Self {
        let counters = Arc::new(Counters::default());
        let stop = CancellationToken::new();
        let started = Instant::now();
        let output = fan_out.topics.first().cloned().unwrap_or_default();
        let task = rt.spawn(forward(
            bootstrap.to_string(),
            input.to_string(),
            fan_out,
            group.to_string(),
            counters.clone(),
            stop.clone(),
        ));
        Self {
            rt,
            task: Some(task),
            counters,
            stop,
            output,
            started,
        }
    }

    /// Watches it the same way as the runner until `total` records are done.
    pub fn watch(&mut self, total: u64, timeout: Duration) -> anyhow::Result<Round> {
        let started = self.started;
        progress::watch(started, total, timeout, || self.counters())
    }

    fn counters(&mut self) -> anyhow::Result<Option<(u64, u64)>> {
        if self.task.as_ref().is_none_or(|task| task.is_finished()) {
            return Err(self.stop_and_report().err().unwrap_or_else(|| {
                anyhow::anyhow!("the pass-through stopped before the end of the round")
            }));
        }
        Ok(Some((
            self.counters.consumed.load(Ordering::Relaxed),
            self.counters.done.load(Ordering::Relaxed),
        )))
    }

    /// Stops it, returning the error that ended it early, if any.
    pub fn stop_and_report(&mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        match self.task.take() {
            Some(task) => self
                .rt
                .block_on(task)
                .context("the pass-through task panicked")?,
            None => Ok(()),
        }
    }
}

impl Drop for PassThrough<'_> {
    fn drop(&mut self) {
        let _ = self.stop_and_report();
    }
}

impl Forwarder for PassThrough<'_> {
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

async fn forward(
    bootstrap: String,
    input: String,
    fan_out: FanOut,
    group: String,
    counters: Arc<Counters>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let consumer: StreamConsumer = consumer_config(&bootstrap, &group)
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&input])?;
    let producer: BaseProducer<Copies> =
        producer_config(&bootstrap).create_with_context(Copies::default())?;
    let reports = DeliveryReports::watch(Arc::new(producer));
    let copies_in_flight = &reports.producer().context().in_flight;
    let limits = RunnerConfig::new(bootstrap.as_str());
    let mut commit_tick = tokio::time::interval(limits.commit_interval);
    let mut committable: Option<(i32, i64)> = None;
    let mut records = 0u64;
    loop {
        let has_room = lock(copies_in_flight).records.len() < limits.max_in_flight;
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(()),
            _ = reports.ready() => {
                reports.serve();
                settle(copies_in_flight, &counters, &mut committable)?;
            }
            _ = commit_tick.tick() => {
                if let Some((partition, offset)) = committable.take() {
                    let mut list = TopicPartitionList::new();
                    list.add_partition_offset(&input, partition, Offset::Offset(offset + 1))?;
                    consumer.commit(&list, CommitMode::Async)?;
                }
            }
            message = consumer.recv(), if has_room => {
                let message = message?;
                counters.consumed.fetch_add(1, Ordering::Relaxed);
                let count = fan_out.copies_of(records);
                records += 1;
                let ticket = lock(copies_in_flight).register(message.partition(), message.offset(), count);
                for copy in 0..count as usize {
                    let topic = &fan_out.topics[copy % fan_out.topics.len()];
                    send(&reports, topic, message.key(), message.payload(), ticket).await?;
                }
            }
        }
    }
}

/// Applies, in order, the records whose copies are all delivered.
fn settle(
    in_flight: &Mutex<CopiesInFlight>,
    counters: &Counters,
    committable: &mut Option<(i32, i64)>,
) -> anyhow::Result<()> {
    let mut in_flight = lock(in_flight);
    while let Some(head) = in_flight.records.front() {
        if let Some(error) = &head.failure {
            anyhow::bail!("a pass-through delivery failed: {error}");
        }
        if head.awaited > 0 {
            break;
        }
        *committable = Some((head.partition, head.offset));
        in_flight.records.pop_front();
        in_flight.first += 1;
        counters.done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

fn lock(in_flight: &Mutex<CopiesInFlight>) -> std::sync::MutexGuard<'_, CopiesInFlight> {
    in_flight.lock().expect("pass-through in-flight lock")
}

/// The pass-through's records whose copies await their delivery reports, oldest first:
/// the same bookkeeping class as the runner's, without operator state.
#[derive(Default)]
struct CopiesInFlight {
    /// The ticket of `records[0]`; tickets are consecutive from there.
    first: usize,
    records: VecDeque<Awaiting>,
}

struct Awaiting {
    partition: i32,
    offset: i64,
    awaited: u64,
    failure: Option<KafkaError>,
}

impl CopiesInFlight {
    fn register(&mut self, partition: i32, offset: i64, copies: u64) -> usize {
        self.records.push_back(Awaiting {
            partition,
            offset,
            awaited: copies,
            failure: None,
        });
        self.first + self.records.len() - 1
    }
}

/// The pass-through producer's context: each delivery report counts its record down.
#[derive(Default)]
struct Copies {
    in_flight: Mutex<CopiesInFlight>,
}

impl ClientContext for Copies {}

impl ProducerContext for Copies {
    type DeliveryOpaque = usize;

    fn delivery(&self, report: &DeliveryResult<'_>, ticket: usize) {
        let mut in_flight = lock(&self.in_flight);
        let first = in_flight.first;
        if let Some(record) = ticket
            .checked_sub(first)
            .and_then(|i| in_flight.records.get_mut(i))
        {
            record.awaited = record.awaited.saturating_sub(1);
            if let Err((error, _)) = report {
                record.failure.get_or_insert(error.clone());
            }
        }
    }
}

/// Queues one copy of a record.
async fn send(
    reports: &DeliveryReports<Copies>,
    topic: &str,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    ticket: usize,
) -> anyhow::Result<()> {
    let mut record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, ticket);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(payload) = payload {
        record = record.payload(payload);
    }
    Ok(reports.send(record).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fan_out_writes_as_many_copies_as_asked_spread_over_the_records() {
        let fan_out = FanOut {
            topics: vec!["a".into(), "b".into(), "c".into()],
            per_record: 2.5625,
        };
        let copies: Vec<u64> = (0..16).map(|i| fan_out.copies_of(i)).collect();
        assert_eq!(copies.iter().sum::<u64>(), 41, "16 × 2.5625");
        assert!(copies.iter().all(|&c| c == 2 || c == 3), "{copies:?}");
        assert!((0..1000).all(|i| FanOut::one("a").copies_of(i) == 1));
    }
}
