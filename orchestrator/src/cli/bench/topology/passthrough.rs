//! The reference: a plain rdkafka consume→produce loop with the runner's delivery contract and
//! none of its work.
//!
//! It joins a consumer group by subscribing (as the runner does), uses the same client
//! settings, forwards each record's key and payload unchanged to one output topic, bounds its
//! unacknowledged records the same way, and commits the offset of acknowledged records every
//! half second. What it lacks is the runner's job: JSON, operators, two to three outputs per
//! record, state in the commit metadata.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
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

/// A pass-through running on the benchmark's Tokio runtime.
pub struct PassThrough<'rt> {
    rt: &'rt tokio::runtime::Runtime,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    counters: Arc<Counters>,
    stop: CancellationToken,
    output: String,
    started: Instant,
}

impl<'rt> PassThrough<'rt> {
    /// Starts forwarding `input` to `output` with consumer group `group`.
    pub fn start(
        rt: &'rt tokio::runtime::Runtime,
        bootstrap: &str,
        input: &str,
        output: &str,
        group: &str,
    ) -> Self {
        let counters = Arc::new(Counters::default());
        let stop = CancellationToken::new();
        let started = Instant::now();
        let task = rt.spawn(forward(
            bootstrap.to_string(),
            input.to_string(),
            output.to_string(),
            group.to_string(),
            counters.clone(),
            stop.clone(),
        ));
        Self {
            rt,
            task: Some(task),
            counters,
            stop,
            output: output.to_string(),
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
    output: String,
    group: String,
    counters: Arc<Counters>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let consumer: StreamConsumer = consumer_config(&bootstrap, &group)
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&input])?;
    let producer: FutureProducer = producer_config(&bootstrap).create()?;
    let limits = RunnerConfig::new(bootstrap.as_str());
    let mut in_flight: FuturesOrdered<_> = FuturesOrdered::new();
    let mut commit_tick = tokio::time::interval(limits.commit_interval);
    let mut committable: Option<(i32, i64)> = None;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(()),
            Some(acked) = in_flight.next(), if !in_flight.is_empty() => {
                let (partition, offset) = acked?;
                counters.done.fetch_add(1, Ordering::Relaxed);
                committable = Some((partition, offset));
            }
            _ = commit_tick.tick() => {
                if let Some((partition, offset)) = committable.take() {
                    let mut list = TopicPartitionList::new();
                    list.add_partition_offset(&input, partition, Offset::Offset(offset + 1))?;
                    consumer.commit(&list, CommitMode::Async)?;
                }
            }
            message = consumer.recv(), if in_flight.len() < limits.max_in_flight => {
                let message = message?;
                counters.consumed.fetch_add(1, Ordering::Relaxed);
                let delivery = send(&producer, &output, message.key(), message.payload()).await?;
                let (partition, offset) = (message.partition(), message.offset());
                in_flight.push_back(async move {
                    delivery
                        .await
                        .context("a pass-through delivery was cancelled")?
                        .map_err(|(error, _)| error)
                        .context("a pass-through delivery failed")?;
                    anyhow::Ok((partition, offset))
                });
            }
        }
    }
}

async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
) -> anyhow::Result<DeliveryFuture> {
    loop {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err((error, _)) => return Err(error.into()),
        }
    }
}
