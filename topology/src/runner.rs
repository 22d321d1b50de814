//! The Kafka side of a topology: consume, run the operator chain, produce, commit.
//!
//! Delivery is at-least-once. Outputs of each record are sent without waiting, and the
//! record joins an ordered in-flight queue; only when the head of that queue has all its
//! outputs acknowledged does its offset (with the operator state as of that record, kept in
//! the operators' changelog topics: see [`crate::changelog`]) become committable. A crash
//! therefore replays records whose outputs may not have been written, never skips one. Acknowledgements come from the producer's delivery callback, which finds
//! each output's record by the ticket it was sent with (see [`crate::in_flight`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::changelog::{Changelog, CommittedState};
use crate::checkpoint::Checkpoint;
use crate::delivery_reports::DeliveryReports;
use crate::error::RunnerError;
use crate::in_flight::{Acknowledgements, InFlight, Ticket};
use crate::kafka::{self, Assigned};
use crate::key_names::KeyNames;
use crate::metrics::Metrics;
use crate::operators::{
    headers, AsideTopics, Origin, OutputMessage, Pipeline, Processed, Record, Retried, SetAside,
};
use crate::source::REPLAY_RESTART_HEADER;
use crate::spec::{OperatorSpec, StartPosition, TopologySpec};
use weir_contracts::status::{
    RunnerState, RunnerStatus, StateRestore, StateStoreStatus, StepStatus,
};

/// How to run a topology.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Kafka bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Upper bound on records whose outputs are not yet acknowledged.
    pub max_in_flight: usize,
    /// How often committable offsets are committed.
    pub commit_interval: Duration,
    /// How often the progress line is logged.
    pub log_interval: Duration,
    /// How long to wait for in-flight outputs when stopping.
    pub drain_timeout: Duration,
}

impl RunnerConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            // Each record in flight holds its delivery handles here and its 2–3 outputs in
            // librdkafka's queue (about 1 KiB together): 5,000 of them are some 30 ms of work
            // at full speed, ahead of the broker's acknowledgements by far more than their
            // round trip, and a few MiB where 20,000 cost about 15 MiB of peak RSS.
            max_in_flight: 5_000,
            commit_interval: Duration::from_millis(500),
            log_interval: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// How often `/status` is brought up to date (its lag costs a watermark query per partition).
const STATUS_INTERVAL: Duration = Duration::from_millis(500);

/// Runs `spec` until `shutdown` resolves, then drains in-flight records and commits. `status`
/// follows it throughout and says how it ended.
pub async fn run(
    spec: &TopologySpec,
    config: &RunnerConfig,
    metrics: Arc<Metrics>,
    status: &watch::Sender<RunnerStatus>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    let outcome = consume_and_process(spec, config, metrics.clone(), status, shutdown).await;
    let now = metrics.snapshot();
    status.send_modify(|s| {
        now.write_counts(s);
        match &outcome {
            Ok(()) => s.state = RunnerState::Stopped,
            Err(error) => {
                s.state = RunnerState::Failed;
                s.last_error = Some(error.to_string());
            }
        }
    });
    outcome
}

async fn consume_and_process(
    spec: &TopologySpec,
    config: &RunnerConfig,
    metrics: Arc<Metrics>,
    status: &watch::Sender<RunnerStatus>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    let setup_error = |source| RunnerError::Setup {
        brokers: config.brokers.clone(),
        source,
    };
    let acks = Arc::new(Acknowledgements::new(metrics.clone()));
    let producer: Arc<RunnerProducer> = kafka::producer_config(&config.brokers)
        .create_with_context(Deliveries { acks: acks.clone() })
        .map(Arc::new)
        .map_err(setup_error)?;
    let changelog = Arc::new(
        Changelog::new(
            &config.brokers,
            &spec.input.group,
            (spec.operators.iter().enumerate())
                .filter_map(|(index, op)| op.is_stateful().then_some((index, op.name()))),
        )
        .map_err(setup_error)?,
    );
    // The input topics, then the repartition topics of the steps that re-key.
    let consumed = spec.consumed_topics();
    let rebalancing = Rebalancing {
        topics: consumed.clone(),
        acks: acks.clone(),
        changelog: changelog.clone(),
        producer: producer.clone(),
        flush_timeout: config.drain_timeout,
        revoked: Mutex::default(),
    };
    let consumer: Arc<RunnerConsumer> = kafka::consumer_config(&config.brokers, &spec.input.group)
        .set(
            "auto.offset.reset",
            match spec.input.start {
                StartPosition::Earliest => "earliest",
                StartPosition::Latest => "latest",
            },
        )
        // Partition N of every input topic to the same runner (co-partitioning), which the
        // range assignor does for topics of as many partitions (librdkafka's default also
        // allows round-robin, which does not).
        .set("partition.assignment.strategy", "range")
        .create_with_context(rebalancing)
        .map(Arc::new)
        .map_err(setup_error)?;
    tokio::pin!(shutdown);
    let owns_topics = !spec.repartitions.is_empty()
        || !spec.upsert_topics().is_empty()
        || spec.retry_topics().next().is_some();
    if owns_topics {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            created = create_own_topics(spec, &config.brokers, &consumer) => created?,
        }
    }
    let topics: Vec<&str> = consumed.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(setup_error)?;

    let reports = DeliveryReports::watch(producer);

    let mut intake = Intake {
        spec,
        consumed: &consumed,
        consumer: &consumer,
        changelog: &changelog,
        reports: &reports,
        metrics: &metrics,
        acks: &acks,
        status,
        pipeline: Pipeline::new(spec),
        aside: spec.aside_topics(),
        processed: Processed::default(),
        generations: HashMap::default(),
        keys: KeyNames::default(),
        last_restore: None,
        inputs_checked: false,
        paused: Vec::new(),
        marks_matter: (spec.operators.iter()).any(|op| matches!(op, OperatorSpec::Diff(_))),
    };
    let mut commit_tick = tokio::time::interval(config.commit_interval);
    let mut log_tick = tokio::time::interval(config.log_interval);
    let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
    let mut lag = None;
    let mut last_logged = metrics.snapshot();

    tracing::info!(
        topology = %spec.name,
        input = %spec.input.topics_text(),
        group = %spec.input.group,
        "topology running"
    );
    let outcome: Result<(), RunnerError> = 'running: loop {
        let has_room = acks.len() < config.max_in_flight;
        tokio::select! {
            biased;
            _ = &mut shutdown => break Ok(()),
            // Delivery callbacks run here, on this thread (see `crate::delivery_reports`).
            _ = reports.ready() => reports.serve(),
            Some(applied) = acks.next(), if !acks.is_empty() => {
                if let Err(error) = applied {
                    break Err(error);
                }
            }
            _ = commit_tick.tick() => {
                let committed = tokio::task::block_in_place(|| {
                    commit(&*consumer, &consumed, &mut acks.checkpoint(), &changelog, CommitMode::Async)
                });
                if let Err(error) = committed {
                    break 'running Err(error);
                }
            }
            _ = tokio::time::sleep_until(intake.next_resume().unwrap_or_else(tokio::time::Instant::now)), if !intake.paused.is_empty() => {
                intake.resume_due();
            }
            _ = log_tick.tick() => {
                let now = metrics.snapshot();
                tracing::info!(topology = %spec.name, "{}", now.log_line(&last_logged));
                if now.records_done == last_logged.records_done {
                    if let Some(oldest) = acks.oldest() {
                        tracing::warn!(topology = %spec.name, "no record done since the last line; the oldest in flight: {oldest}");
                    }
                }
                last_logged = now;
            }
            _ = status_tick.tick(), if lag.is_none() => {
                let (consumer, topics, start) = (consumer.clone(), consumed.clone(), spec.input.start);
                lag = Some(tokio::task::spawn_blocking(move || kafka::input_lag(&consumer, &topics, start)));
            }
            measured = async { lag.as_mut().expect("guarded").await }, if lag.is_some() => {
                lag = None;
                let now = metrics.snapshot();
                let stores = intake.state_stores();
                let steps = intake.steps();
                status.send_modify(|s| {
                    now.write_counts(s);
                    s.state_stores = stores;
                    s.steps = steps;
                    match measured.ok().flatten() {
                        // Only an answer from the brokers ends a wait for them.
                        Some(Assigned { lag }) => {
                            if lag.is_some() || s.state != RunnerState::WaitingForKafka {
                                s.state = RunnerState::Running;
                            }
                            s.lag = lag;
                        }
                        None => s.lag = None,
                    }
                });
            }
            message = consumer.recv(), if has_room => {
                // Messages librdkafka has already fetched are taken in the same turn of the
                // loop, up to a burst, instead of one turn (a poll of every branch and timer)
                // per record.
                let mut received = Some(message);
                let mut taken = 0;
                while let Some(result) = received.take() {
                    match result {
                        Ok(message) => {
                            if let Err(error) = intake.take(&message).await {
                                break 'running Err(error);
                            }
                        }
                        Err(error) => {
                            if let Err(fatal) = receive_failed(error, &spec.input.topics_text(), status) {
                                break 'running Err(fatal);
                            }
                            tokio::time::sleep(KAFKA_RETRY_PAUSE).await;
                            break;
                        }
                    }
                    taken += 1;
                    if taken < BURST && acks.len() < config.max_in_flight {
                        received = consumer.recv().now_or_never();
                    }
                }
            }
        }
    };

    status.send_modify(|s| s.state = RunnerState::Stopping);
    // Whatever was sent is awaited so that its offset can be committed before leaving.
    let drained = tokio::time::timeout(config.drain_timeout, async {
        loop {
            tokio::select! {
                biased;
                _ = reports.ready() => reports.serve(),
                applied = acks.next() => match applied {
                    Some(applied) => applied?,
                    None => return Ok::<(), RunnerError>(()),
                },
            }
        }
    })
    .await;
    if let Ok(Err(error)) = &drained {
        tracing::error!("while draining: {error}");
    } else if drained.is_err() {
        tracing::warn!(
            "outputs still unacknowledged after {:?}; they will be replayed on restart",
            config.drain_timeout
        );
    }
    let committed = commit(
        &*consumer,
        &consumed,
        &mut acks.checkpoint(),
        &changelog,
        CommitMode::Sync,
    );
    let summary = metrics.snapshot();
    tracing::info!(topology = %spec.name, "stopped: {}", summary.log_line(&last_logged));
    outcome.and(committed)
}

/// Creates the topics the topology owns with as many partitions as the input topics, waiting
/// for the first input topic to exist (its partition count is theirs): the repartition topics,
/// and the `upsert`s' topics, compacted. Existing ones are kept; the repartition topics are
/// checked with the input topics at the first record.
async fn create_own_topics(
    spec: &TopologySpec,
    brokers: &str,
    consumer: &RunnerConsumer,
) -> Result<(), RunnerError> {
    let first = &spec.input.topics[0];
    let mut waited = 0u32;
    let partitions = loop {
        let count = tokio::task::block_in_place(|| kafka::partition_count(consumer, first));
        match count {
            Ok(count) if count > 0 => break count,
            Ok(_) | Err(_) if waited.is_multiple_of(10) => tracing::info!(
                "waiting for input topic `{first}` to exist: its partition count is that of \
                 the topics the topology creates"
            ),
            _ => {}
        }
        waited += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let setup = |source| RunnerError::Setup {
        brokers: brokers.to_string(),
        source,
    };
    let repartitions: Vec<&str> = (spec.repartitions.iter())
        .map(|r| r.topic.as_str())
        .chain(spec.retry_topics().map(|(_, _, topic)| topic.as_str()))
        .collect();
    let patience = kafka::CREATE_PATIENCE;
    kafka::ensure_topics_configured(brokers, &repartitions, partitions, &[], patience)
        .await
        .map_err(setup)?;
    let upserts = spec.upsert_topics();
    let upserts: Vec<&str> = upserts.iter().map(String::as_str).collect();
    let compacted = [("cleanup.policy", "compact")];
    kafka::ensure_topics_configured(brokers, &upserts, partitions, &compacted, patience)
        .await
        .map_err(setup)?;
    tracing::info!(
        partitions,
        "topics ready: repartition and retry {}; compacted {}",
        repartitions.join(", "),
        upserts.join(", ")
    );
    Ok(())
}

/// Most records taken in one turn of the runner's loop.
const BURST: usize = 256;

/// The reading side of the loop: each record read goes through the pipeline, its outputs are
/// sent, and it joins the records in flight.
struct Intake<'a> {
    spec: &'a TopologySpec,
    /// The topics consumed: the input's, then the repartition topics.
    consumed: &'a [String],
    consumer: &'a RunnerConsumer,
    changelog: &'a Changelog,
    reports: &'a DeliveryReports<Deliveries>,
    metrics: &'a Metrics,
    acks: &'a Acknowledgements,
    status: &'a watch::Sender<RunnerStatus>,
    pipeline: Pipeline,
    /// Where records taken aside go.
    aside: AsideTopics,
    /// What the pipeline made of the current record; its buffers serve every record.
    processed: Processed,
    /// Partitions whose operator state was loaded from their committed offsets, each with the
    /// checkpoint generation its records carry. Both change only when the partition is
    /// revoked, and then it leaves this map. A partition is that of every input topic.
    generations: HashMap<i32, u64, foldhash::fast::RandomState>,
    keys: KeyNames,
    /// The latest partition whose state was restored, for `/status`.
    last_restore: Option<StateRestore>,
    /// The input topics were found to have as many partitions each, and the changelog topics
    /// (if any) exist with that many.
    inputs_checked: bool,
    /// Partitions of retry topics paused until their head is due, with when.
    paused: Vec<(TopicPartitionList, tokio::time::Instant)>,
    /// Some operator cares where a replay starts its series over (a `diff`), so each message's
    /// headers are read for the mark; librdkafka parses them into an allocation of their own
    /// per message (3.5 % of the runner's time in a profile), which other topologies skip.
    marks_matter: bool,
}

impl Intake<'_> {
    async fn take(&mut self, message: &BorrowedMessage<'_>) -> Result<(), RunnerError> {
        if self.status.borrow().state == RunnerState::WaitingForKafka {
            tracing::info!("Kafka answers again; consuming");
            self.status.send_modify(|s| s.state = RunnerState::Running);
        }
        // Partitions that went to another runner take their state with them.
        for partition in self.consumer.context().take_revoked() {
            self.pipeline.forget(partition);
            self.generations.remove(&partition);
        }
        let partition = message.partition();
        // The consumer is subscribed to the consumed topics only.
        let topic = self.spec.consumed_index(message.topic()).unwrap_or(0);
        let retried = match self.spec.retry_of(topic) {
            Some((_, attempt)) => match retry_headers(message, attempt) {
                Retry::NotYet { due_ms } => return self.wait_for_retry(message, due_ms),
                Retry::Due(retried) => Some(retried),
            },
            None => None,
        };
        let generation = match self.generations.get(&partition) {
            Some(&generation) => generation,
            None => {
                self.restore_state(partition).await?;
                let generation = self.acks.checkpoint().generation(partition);
                self.generations.insert(partition, generation);
                generation
            }
        };
        self.metrics.records_in.fetch_add(1, Ordering::Relaxed);
        let key = message.key().map(|key| self.keys.name(key));
        self.process(message, topic, key, generation, retried).await
    }

    /// A retry that is not due yet: its partition of the retry topic is paused and rewound
    /// to it, and resumed when it is due; the other partitions and topics go on.
    fn wait_for_retry(
        &mut self,
        message: &BorrowedMessage<'_>,
        due_ms: i64,
    ) -> Result<(), RunnerError> {
        let (topic, partition) = (message.topic(), message.partition());
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        let consume = |source| RunnerError::Consume {
            topic: topic.to_string(),
            source,
        };
        self.consumer.pause(&list).map_err(consume)?;
        self.consumer
            .seek(
                topic,
                partition,
                Offset::Offset(message.offset()),
                Duration::from_secs(10),
            )
            .map_err(consume)?;
        let wait = Duration::from_millis((due_ms - kafka::now_ms()).max(0) as u64);
        self.paused.push((list, tokio::time::Instant::now() + wait));
        Ok(())
    }

    /// When the earliest paused retry partition is due.
    fn next_resume(&self) -> Option<tokio::time::Instant> {
        self.paused.iter().map(|(_, due)| *due).min()
    }

    /// Resumes the retry partitions that are due (one no longer assigned is skipped).
    fn resume_due(&mut self) {
        let now = tokio::time::Instant::now();
        let consumer = self.consumer;
        self.paused.retain(|(list, due)| {
            let waiting = *due > now;
            if !waiting {
                let _ = consumer.resume(list);
            }
            waiting
        });
    }

    /// Runs one message through the pipeline, registers it in flight and sends its outputs.
    async fn process(
        &mut self,
        message: &BorrowedMessage<'_>,
        topic: usize,
        key: Option<Arc<str>>,
        generation: u64,
        retried: Option<Retried>,
    ) -> Result<(), RunnerError> {
        let (processed, acks) = (&mut self.processed, self.acks);
        let payload = message.payload().unwrap_or_default();
        let timestamp_ms = message
            .timestamp()
            .to_millis()
            .unwrap_or_else(kafka::now_ms);
        let mut record = Record::new(key.clone(), timestamp_ms)
            .from_topic(topic)
            .in_partition(message.partition());
        if self.marks_matter && starts_over(message) {
            record = record.restarting_series();
        }
        if let Some(retried) = retried {
            record = record.retried(retried);
        }
        self.pipeline.process_into(payload, record, processed);
        let produced = processed.outputs.len() as u64;
        let origin = Origin {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            key: key.as_ref(),
            timestamp_ms,
        };
        let SetAside { failed, late, .. } = processed.set_aside(&self.aside, &origin, payload);
        let outputs = &processed.outputs;
        let ticket = acks.register(
            InFlight {
                topic,
                partition: message.partition(),
                generation,
                offset: message.offset(),
                timestamp_ms,
                updates: std::mem::take(&mut processed.updates),
                outputs: produced,
                failed,
                late,
            },
            outputs.len(),
        );
        let count = outputs.len();
        for (sent, output) in outputs.iter().enumerate() {
            if let Err(error) = send(self.reports, output, ticket).await {
                acks.unsent(ticket, count - sent, error.clone());
                return Err(error);
            }
        }
        Ok(())
    }
}

/// A consumer error: fatal ones stop the runner; librdkafka reconnects by itself after the
/// others, which only say what it meets.
fn receive_failed(
    error: KafkaError,
    topic: &str,
    status: &watch::Sender<RunnerStatus>,
) -> Result<(), RunnerError> {
    match error {
        source @ KafkaError::MessageConsumptionFatal(_) => Err(RunnerError::Consume {
            topic: topic.to_string(),
            source,
        }),
        transient => {
            waiting_for_kafka(status, &transient);
            Ok(())
        }
    }
}

/// How long to pause after a transient consumer error before asking again.
const KAFKA_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Says (once per outage in the log, always in the status) that Kafka does not answer.
fn waiting_for_kafka(status: &watch::Sender<RunnerStatus>, error: &KafkaError) {
    let first = status.borrow().state != RunnerState::WaitingForKafka;
    if first {
        tracing::warn!("waiting for Kafka: {error}");
    }
    status.send_modify(|s| {
        if s.state != RunnerState::Stopping {
            s.state = RunnerState::WaitingForKafka;
        }
        s.last_error = Some(format!("waiting for Kafka: {error}"));
    });
}

/// The message begins its series again (a replay starting its recording over).
/// A message of a retry topic: due now, with where it was first read, or not yet.
enum Retry {
    Due(Retried),
    NotYet { due_ms: i64 },
}

/// Reads a retry message's headers (a message without them is due at once, from where it
/// was read).
fn retry_headers(message: &BorrowedMessage<'_>, attempt: u32) -> Retry {
    let mut found: HashMap<&str, String> = HashMap::new();
    if let Some(list) = message.headers() {
        for header in list.iter() {
            if let Some(value) = header.value {
                found.insert(header.key, String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    let number = |name: &str| found.get(name).and_then(|v| v.parse::<i64>().ok());
    if let Some(due_ms) = number(headers::DUE).filter(|due| *due > kafka::now_ms()) {
        return Retry::NotYet { due_ms };
    }
    Retry::Due(Retried {
        attempt,
        origin_topic: (found.get(headers::ORIGIN_TOPIC).cloned())
            .unwrap_or_else(|| message.topic().to_string()),
        origin_partition: number(headers::ORIGIN_PARTITION)
            .map_or(message.partition(), |p| p as i32),
        origin_offset: number(headers::ORIGIN_OFFSET).unwrap_or(message.offset()),
        origin_timestamp_ms: number(headers::ORIGIN_TIMESTAMP).unwrap_or(-1),
    })
}

fn starts_over(message: &BorrowedMessage<'_>) -> bool {
    message
        .headers()
        .is_some_and(|headers| headers.iter().any(|h| h.key == REPLAY_RESTART_HEADER))
}

/// Queues one output of the record `ticket` names.
async fn send(
    reports: &DeliveryReports<Deliveries>,
    output: &OutputMessage,
    ticket: Ticket,
) -> Result<(), RunnerError> {
    let mut record = BaseRecord::<str, [u8], Ticket>::with_opaque_to(&output.topic, ticket)
        .timestamp(output.timestamp_ms);
    if !output.headers.is_empty() {
        let headers = (output.headers.iter()).fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value.as_str()),
            })
        });
        record = record.headers(headers);
    }
    if !output.tombstone {
        record = record.payload(&output.payload);
    }
    if let Some(key) = &output.key {
        record = record.key(key.as_ref());
    }
    reports
        .send(record)
        .await
        .map_err(|source| RunnerError::Delivery {
            topic: output.topic.to_string(),
            source,
        })
}

/// The runner's producer: its delivery reports go straight to the records in flight.
type RunnerProducer = BaseProducer<Deliveries>;

/// Turns each delivery report into an acknowledgement of the record its ticket names. Runs on
/// the runner's loop (or on whichever thread flushes, the rebalance callback's).
struct Deliveries {
    acks: Arc<Acknowledgements>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Ticket;

    fn delivery(&self, report: &DeliveryResult<'_>, ticket: Ticket) {
        let result = match report {
            Ok(_) => Ok(()),
            Err((source, message)) => Err(RunnerError::Delivery {
                topic: message.topic().to_string(),
                source: source.clone(),
            }),
        };
        self.acks.delivered(ticket, result);
    }
}

/// Commits the partitions that moved: first their state changes go to the changelogs, then
/// their offsets are committed with the changelogs' ends in the metadata. A partition whose
/// state cannot be written keeps its committed offset (its records are replayed after a
/// restart) and the error stops the runner: going on would only pile up what is not durable.
fn commit<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topics: &[String],
    checkpoint: &mut Checkpoint,
    changelog: &Changelog,
    mode: CommitMode,
) -> Result<(), RunnerError> {
    let commits = checkpoint.take_dirty();
    if commits.is_empty() {
        return Ok(());
    }
    let mut list = TopicPartitionList::new();
    let mut unwritten = None;
    for c in commits {
        let partition = c.partition;
        let ends = match (c.writes.is_empty(), &unwritten) {
            (true, _) => Default::default(),
            (false, None) => match changelog.write(partition, &c.writes) {
                Ok(ends) => ends,
                Err(error) => {
                    unwritten = Some(RunnerError::State(error));
                    checkpoint.unwritten(c);
                    continue;
                }
            },
            // One failed write is enough to stop: the others wait with their offsets.
            (false, Some(_)) => {
                checkpoint.unwritten(c);
                continue;
            }
        };
        let metadata = checkpoint.written(partition, ends);
        // Every input topic's offset of the partition carries the same state marker; a
        // restore takes the latest (see [`CommittedState::latest`]).
        for (&index, &next) in &c.next_offsets {
            let Some(topic) = topics.get(index) else {
                continue;
            };
            if let Err(error) = list.add_partition_offset(topic, partition, Offset::Offset(next)) {
                tracing::error!("cannot add {topic} partition {partition} to the commit: {error}");
                continue;
            }
            if let Some(mut element) = list.find_partition(topic, partition) {
                element.set_metadata(metadata.clone());
            }
        }
    }
    if list.count() > 0 {
        if let Err(error) = consumer.commit(&list, mode) {
            // A failed commit only widens the window replayed after a crash; the next tick
            // retries.
            tracing::warn!("{}", RunnerError::Commit(error));
        }
    }
    match unwritten {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

impl Intake<'_> {
    /// How many partitions the consumed topics have: one number, or an error naming each
    /// topic's when they differ (partition N of each would not come to the same runner).
    fn input_partitions(&self) -> Result<i32, RunnerError> {
        let mut counts = Vec::new();
        for topic in self.consumed {
            let count =
                tokio::task::block_in_place(|| kafka::partition_count(self.consumer, topic))
                    .map_err(|source| RunnerError::Consume {
                        topic: topic.clone(),
                        source,
                    })?;
            counts.push((topic.clone(), count));
        }
        match counts.as_slice() {
            [(_, first), rest @ ..] if rest.iter().all(|(_, count)| count == first) => Ok(*first),
            _ => Err(RunnerError::NotCoPartitioned { partitions: counts }),
        }
    }

    /// What each step took and passed on so far, for `/status`.
    fn steps(&self) -> Vec<StepStatus> {
        let counts = self.pipeline.operator_counts();
        let count = |index: usize| counts.get(index).copied().unwrap_or_default();
        (self.spec.steps.iter())
            .map(|step| StepStatus {
                name: step.name.clone(),
                records_in: count(step.operators.start).took,
                records_out: step.last_operator().map_or(0, |last| count(last).passed),
            })
            .collect()
    }

    /// What each stateful operator's store holds now, for `/status`.
    fn state_stores(&self) -> Vec<StateStoreStatus> {
        let changelogs: HashMap<usize, &str> = self.changelog.topics().collect();
        (self.pipeline.state_sizes().into_iter())
            .map(|(index, keys, bytes)| StateStoreStatus {
                operator: format!(
                    "{}-{index}",
                    self.spec.operators.get(index).map_or("?", |op| op.name())
                ),
                changelog: changelogs
                    .get(&index)
                    .copied()
                    .unwrap_or_default()
                    .to_string(),
                keys,
                bytes,
                last_restore: self.last_restore,
            })
            .collect()
    }

    /// Restores a partition's operator state as of its committed offset: from the changelogs
    /// up to the ends its metadata names, or from the inline state earlier runners committed.
    async fn restore_state(&mut self, partition: i32) -> Result<(), RunnerError> {
        let topics = self.consumed;
        // Once per runner: the input topics' partitions, checked alike, number the changelogs'.
        if !self.inputs_checked {
            let partitions = self.input_partitions()?;
            self.changelog
                .ensure_topics(partitions)
                .await
                .map_err(RunnerError::State)?;
            self.inputs_checked = true;
        }
        let mut list = TopicPartitionList::new();
        for topic in topics {
            list.add_partition(topic, partition);
        }
        let committed = tokio::task::block_in_place(|| {
            self.consumer
                .committed_offsets(list, Duration::from_secs(10))
        })
        .map_err(|source| RunnerError::Consume {
            topic: self.spec.input.topics_text(),
            source,
        })?;
        let state = CommittedState::latest(
            (topics.iter())
                .filter_map(|topic| committed.find_partition(topic, partition))
                .map(|element| CommittedState::read(element.metadata())),
        );
        let (ends, inline) = match state {
            CommittedState::Changelog(ends) => (ends, Vec::new()),
            CommittedState::Nothing => (Default::default(), Vec::new()),
            CommittedState::Inline(updates) => (Default::default(), updates),
        };
        let started = std::time::Instant::now();
        let restored = tokio::task::block_in_place(|| self.changelog.restore(partition, &ends))
            .map_err(RunnerError::State)?;
        let keys = (restored.updates.len() + inline.len()) as u64;
        self.last_restore = Some(StateRestore {
            partition,
            keys,
            millis: started.elapsed().as_millis() as u64,
            at_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as u64),
        });
        if !restored.updates.is_empty() || !inline.is_empty() || restored.overwritten > 0 {
            tracing::info!(
                partition,
                keys = restored.updates.len() + inline.len(),
                from_changelog = restored.updates.len(),
                from_inline_commit = inline.len(),
                overwritten_after_commit = restored.overwritten,
                millis = started.elapsed().as_millis() as u64,
                "restored operator state"
            );
        }
        self.pipeline.restore(
            partition,
            restored.updates.into_iter().chain(inline.clone()),
        );
        self.acks
            .checkpoint()
            .restored(partition, restored.ends, inline);
        Ok(())
    }
}

type RunnerConsumer = StreamConsumer<Rebalancing>;

/// The runner's side of consumer-group rebalances. Before partitions go to another replica,
/// this one waits (up to the drain timeout) for the outputs it has sent, commits what is
/// acknowledged (offsets with their operator state) and forgets the partitions; their new
/// owner resumes each where this one stopped, with the same per-key state. A planned
/// rebalance — a replica joining or leaving — therefore writes no output twice. Only records
/// whose outputs were still unacknowledged when the wait ran out, or that a crash cut short,
/// are replayed by the new owner (at-least-once: written twice, never lost).
struct Rebalancing {
    topics: Vec<String>,
    acks: Arc<Acknowledgements>,
    changelog: Arc<Changelog>,
    producer: Arc<RunnerProducer>,
    flush_timeout: Duration,
    /// Partitions taken away since the main loop last looked: their operator state goes.
    revoked: Mutex<Vec<i32>>,
}

impl Rebalancing {
    fn take_revoked(&self) -> Vec<i32> {
        std::mem::take(&mut *self.revoked.lock().expect("revoked lock"))
    }

    /// The partition numbers of the input topics in `list`, each once.
    fn partitions(&self, list: &TopicPartitionList) -> Vec<i32> {
        let mut partitions: Vec<i32> = (self.topics.iter())
            .flat_map(|topic| list.elements_for_topic(topic))
            .map(|e| e.partition())
            .collect();
        partitions.sort_unstable();
        partitions.dedup();
        partitions
    }
}

impl ClientContext for Rebalancing {}

impl ConsumerContext for Rebalancing {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let partitions = self.partitions(list);
        // Outputs already sent are delivered and acknowledged while the partitions are still
        // this runner's, so their offsets go with them.
        if let Err(error) = self.producer.flush(self.flush_timeout) {
            tracing::warn!("outputs not delivered before the rebalance: {error}");
        }
        let unacknowledged = self.acks.apply_arrived();
        if unacknowledged > 0 {
            tracing::warn!(
                unacknowledged,
                "records still unacknowledged at the rebalance; their new owner replays them"
            );
        }
        let mut checkpoint = self.acks.checkpoint();
        // Synchronously, while the partitions are still this runner's to commit.
        if let Err(error) = commit(
            consumer,
            &self.topics,
            &mut checkpoint,
            &self.changelog,
            CommitMode::Sync,
        ) {
            // Those partitions' offsets stay where they were: their new owner replays from
            // there with the state committed with them.
            tracing::error!("at the rebalance: {error}");
        }
        for &partition in &partitions {
            checkpoint.forget(partition);
        }
        tracing::info!(
            ?partitions,
            "partitions revoked; what was acknowledged is committed"
        );
        self.revoked
            .lock()
            .expect("revoked lock")
            .extend(partitions);
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            tracing::info!(partitions = ?self.partitions(list), "partitions assigned");
        }
    }
}
