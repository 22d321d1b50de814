//! Durable keyed state: every stateful operator keeps its per-key values in a compacted
//! changelog topic, one partition of it per input partition, as Kafka Streams' state stores do.
//!
//! The contract with the committed offsets. Before an input partition's offset is committed,
//! the state changes of the records up to it are written to the changelog and acknowledged;
//! the commit then carries, in its metadata, where each operator's changelog partition ended
//! (a few bytes, whatever the number of keys). A restore reads each changelog partition up to
//! that end: the state as of the committed offset, exactly. Anything written after it came from
//! records that will be replayed (a crash between the changelog write and the commit), so the
//! restore overwrites each such key with its value as of the commit, or a tombstone; the state
//! is never ahead of the offsets, and a replayed record sees the same previous value it saw the
//! first time (at-least-once: duplicates possible, a wrong or lost value never).
//!
//! The changelog's `min.compaction.lag.ms` keeps compaction from removing a key's committed
//! value because of a later, uncommitted one during the week after it was written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::kafka;
use crate::state::{StateUpdate, StateValue};

/// How long a changelog message is kept from compaction (7 days): a restore within that time
/// never finds a committed value compacted away by an uncommitted one.
const MIN_COMPACTION_LAG_MS: &str = "604800000";
/// Longest wait for the brokers while writing or reading a changelog.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

/// Where each stateful operator's changelog partition ended when an offset was committed,
/// by operator index.
pub type ChangelogEnds = BTreeMap<usize, i64>;

/// What a committed offset's metadata says about the operators' state.
#[derive(Debug, Clone, PartialEq)]
pub enum CommittedState {
    /// Nothing: a new consumer group, or an offset committed without state.
    Nothing,
    /// The state itself, as runners before the changelog committed it (small state only).
    Inline(Vec<StateUpdate>),
    /// The changelog ends the state is as of.
    Changelog(ChangelogEnds),
}

/// The metadata of a commit whose state is in the changelog.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Marker {
    changelog_ends: ChangelogEnds,
}

impl CommittedState {
    /// Reads a committed offset's metadata: the changelog marker, the inline state earlier
    /// runners wrote, or nothing (metadata written by anything else included).
    pub fn read(metadata: &str) -> Self {
        if let Ok(marker) = serde_json::from_str::<Marker>(metadata) {
            return CommittedState::Changelog(marker.changelog_ends);
        }
        let Ok(serde_json::Value::Array(entries)) = serde_json::from_str(metadata) else {
            return CommittedState::Nothing;
        };
        CommittedState::Inline(
            entries
                .iter()
                .filter_map(|entry| {
                    Some(StateUpdate {
                        operator_index: usize::try_from(entry.get(0)?.as_u64()?).ok()?,
                        key: entry.get(1)?.as_str()?.into(),
                        value: Some(StateValue::Number(entry.get(2)?.as_f64()?)),
                    })
                })
                .collect(),
        )
    }

    /// The newest of the states committed with a partition's offsets in several input topics.
    /// Each commit carries the changelog ends of every operator, and ends only grow, so the
    /// latest commit's marker is the one furthest along; inline state (written by runners of
    /// one input topic only) comes after nothing.
    pub fn latest(states: impl IntoIterator<Item = CommittedState>) -> Self {
        let reach = |state: &CommittedState| match state {
            CommittedState::Nothing => (0, 0),
            CommittedState::Inline(_) => (1, 0),
            CommittedState::Changelog(ends) => (2, ends.values().sum::<i64>()),
        };
        (states.into_iter())
            .max_by_key(reach)
            .unwrap_or(CommittedState::Nothing)
    }

    /// The metadata committed with an offset whose state the changelogs hold up to `ends`.
    pub fn marker(ends: &ChangelogEnds) -> String {
        serde_json::to_string(&Marker {
            changelog_ends: ends.clone(),
        })
        .expect("a map of numbers serializes")
    }
}

/// Why operator state could not be kept or restored. Each stops the runner: going on would
/// lose state or compute from a wrong one.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChangelogError {
    #[error("cannot create the state changelog topics {topics:?}: {source}")]
    Create {
        topics: Vec<String>,
        source: KafkaError,
    },
    #[error("cannot write the state changelog `{topic}` partition {partition}: {source}")]
    Write {
        topic: String,
        partition: i32,
        source: KafkaError,
    },
    #[error("cannot read the state changelog `{topic}` partition {partition}: {source}")]
    Read {
        topic: String,
        partition: i32,
        source: KafkaError,
    },
    #[error(
        "the state changelog `{topic}` has no partition {partition} (it has {partitions}); \
         it must have as many partitions as the input topic: delete it and let the runner \
         create it again (its state is then rebuilt from the input that remains)"
    )]
    TooFewPartitions {
        topic: String,
        partition: i32,
        partitions: i32,
    },
    #[error(
        "the state changelog `{topic}` partition {partition} ends at offset {found}, but the \
         committed offset's state reaches offset {expected}: the changelog was deleted or \
         truncated, so the state of the keys it held cannot be restored. Reset the consumer \
         group's offsets to replay the input, or accept the loss by deleting the group"
    )]
    Truncated {
        topic: String,
        partition: i32,
        expected: i64,
        found: i64,
    },
}

/// The state of one input partition as of its committed offset.
#[derive(Debug, Default)]
pub struct Restored {
    pub updates: Vec<StateUpdate>,
    /// The changelog ends to commit with the next offset (after any overwrites).
    pub ends: ChangelogEnds,
    /// Keys written after the commit and set back to their committed value.
    pub overwritten: usize,
}

/// The changelog topics of a topology's stateful operators, and the clients that write and
/// read them.
pub struct Changelog {
    brokers: String,
    /// The topic of each stateful operator, by operator index.
    topics: BTreeMap<usize, String>,
    producer: BaseProducer<Written>,
    created: AtomicBool,
}

impl std::fmt::Debug for Changelog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changelog")
            .field("brokers", &self.brokers)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

/// Remembers, per changelog partition, the offset of the last message the brokers accepted
/// and the first failure since the last write.
#[derive(Default)]
struct Written {
    last: Mutex<HashMap<(String, i32), i64>>,
    failure: Mutex<Option<KafkaError>>,
}

impl ClientContext for Written {}

impl ProducerContext for Written {
    type DeliveryOpaque = ();

    fn delivery(&self, report: &DeliveryResult<'_>, _: ()) {
        match report {
            Ok(message) => {
                let key = (message.topic().to_string(), message.partition());
                let mut last = self.last.lock().expect("changelog offsets lock");
                let offset = last.entry(key).or_insert(message.offset());
                *offset = (*offset).max(message.offset());
            }
            Err((error, _)) => {
                let mut failure = self.failure.lock().expect("changelog failure lock");
                failure.get_or_insert_with(|| error.clone());
            }
        }
    }
}

/// The changelog topic of operator `index` (named `name`) of the topology consumed by `group`.
pub fn changelog_topic(group: &str, name: &str, index: usize) -> String {
    format!("{group}-{name}-{index}-changelog")
}

impl Changelog {
    /// The changelogs of `operators` (index and name of each stateful operator).
    pub fn new(
        brokers: &str,
        group: &str,
        operators: impl IntoIterator<Item = (usize, &'static str)>,
    ) -> Result<Self, KafkaError> {
        Ok(Self {
            brokers: brokers.to_string(),
            topics: operators
                .into_iter()
                .map(|(index, name)| (index, changelog_topic(group, name, index)))
                .collect(),
            producer: kafka::producer_config(brokers)
                .set("acks", "all")
                .create_with_context(Written::default())?,
            created: AtomicBool::new(false),
        })
    }

    /// Whether the changelog topics are known to exist (or there are none to create).
    pub fn topics_exist(&self) -> bool {
        self.topics.is_empty() || self.created.load(Ordering::Acquire)
    }

    pub fn topics(&self) -> impl Iterator<Item = (usize, &str)> {
        self.topics.iter().map(|(&i, t)| (i, t.as_str()))
    }

    /// Creates the changelog topics, compacted, with `partitions` partitions, unless they
    /// exist. Done once, when the first input partition is restored.
    pub async fn ensure_topics(&self, partitions: i32) -> Result<(), ChangelogError> {
        if self.topics_exist() {
            return Ok(());
        }
        let topics: Vec<String> = self.topics.values().cloned().collect();
        let create = |source| ChangelogError::Create {
            topics: topics.clone(),
            source,
        };
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let compacted = [
            ("cleanup.policy", "compact"),
            ("min.compaction.lag.ms", MIN_COMPACTION_LAG_MS),
        ];
        kafka::ensure_topics_configured(
            &self.brokers,
            &names,
            partitions,
            &compacted,
            // Two brokers of three cannot create a topic of three replicas: the dead one
            // must be back, which takes longer than a new leader.
            RESTORE_PATIENCE * 2,
        )
        .await
        .map_err(create)?;
        tracing::info!(partitions, "state changelogs ready: {}", names.join(", "));
        self.created.store(true, Ordering::Release);
        Ok(())
    }

    /// Writes one input partition's state changes to its changelog partitions and waits until
    /// the brokers have them all; returns where each written changelog partition now ends.
    pub fn write(
        &self,
        partition: i32,
        writes: &[StateUpdate],
    ) -> Result<ChangelogEnds, ChangelogError> {
        let write_error = |topic: &str, source| ChangelogError::Write {
            topic: topic.to_string(),
            partition,
            source,
        };
        for write in writes {
            let Some(topic) = self.topics.get(&write.operator_index) else {
                continue;
            };
            let payload = write.payload();
            let mut record = BaseRecord::<str, str, ()>::to(topic)
                .partition(partition)
                .key(write.key.as_ref());
            if let Some(payload) = &payload {
                record = record.payload(payload.as_str());
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        self.producer.poll(Duration::from_millis(10));
                    }
                    Err((source, _)) => return Err(write_error(topic, source)),
                }
            }
        }
        self.await_deliveries()
            .map_err(|source| write_error("(all)", source))?;
        let context = self.producer.context();
        if let Some(source) = context.failure.lock().expect("lock").take() {
            return Err(write_error("(one of them)", source));
        }
        let mut last = context.last.lock().expect("changelog offsets lock");
        Ok(self
            .topics
            .iter()
            .filter_map(|(&index, topic)| {
                let offset = last.remove(&(topic.clone(), partition))?;
                Some((index, offset + 1))
            })
            .collect())
    }

    /// Waits until the brokers acknowledged every changelog write sent. rdkafka's `flush`
    /// polls in steps of up to 100 ms and a delivery report that arrives between its checks
    /// is only seen at the end of the step: every commit stalled the runner's loop that long
    /// (a p99 latency of 98 ms at 2,000 records/s). Short polls see each report as it comes.
    fn await_deliveries(&self) -> Result<(), KafkaError> {
        let deadline = std::time::Instant::now() + KAFKA_TIMEOUT;
        while self.producer.in_flight_count() > 0 {
            if std::time::Instant::now() >= deadline {
                return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
            }
            self.producer.poll(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Reads one input partition's state as of `committed`; what the changelog holds beyond
    /// it is overwritten with the committed value (or a tombstone).
    pub fn restore(
        &self,
        partition: i32,
        committed: &ChangelogEnds,
    ) -> Result<Restored, ChangelogError> {
        let mut restored = Restored::default();
        let mut corrections = Vec::new();
        for (&index, topic) in &self.topics {
            let end = committed.get(&index).copied().unwrap_or(0);
            let read = read_partition_patiently(&self.brokers, topic, partition, end)?;
            restored.ends.insert(index, read.high);
            for key in &read.after_end {
                corrections.push(StateUpdate {
                    operator_index: index,
                    key: key.clone(),
                    value: read.state.get(key).cloned(),
                });
            }
            restored
                .updates
                .extend(read.state.into_iter().map(|(key, value)| StateUpdate {
                    operator_index: index,
                    key,
                    value: Some(value),
                }));
        }
        if !corrections.is_empty() {
            restored.overwritten = corrections.len();
            restored.ends.extend(self.write(partition, &corrections)?);
        }
        Ok(restored)
    }
}

/// One changelog partition read whole.
struct PartitionRead {
    /// Each key's last value before the committed end (tombstones remove keys).
    state: HashMap<Arc<str>, StateValue>,
    /// Keys written at or after the committed end.
    after_end: HashSet<Arc<str>>,
    /// The partition's end when read.
    high: i64,
}

/// How long a restore tries again while Kafka does not answer before it fails: long enough
/// for a partition to get a new leader after a broker of a cluster died; a lone broker away
/// for longer fails the restore, and the runner is started again by its backend (its
/// blocked loop would otherwise stop reporting and committing meanwhile).
const RESTORE_PATIENCE: Duration = Duration::from_secs(30);

/// Reads like [`read_partition`], trying again while Kafka does not answer: a broker that
/// died leaves its partitions without a leader until the controller moves them (up to
/// ZooKeeper's session timeout), and a runner restoring its state meanwhile would otherwise
/// stop. After [`RESTORE_PATIENCE`] the last error stands.
fn read_partition_patiently(
    brokers: &str,
    topic: &str,
    partition: i32,
    end: i64,
) -> Result<PartitionRead, ChangelogError> {
    let deadline = std::time::Instant::now() + RESTORE_PATIENCE;
    loop {
        match read_partition(brokers, topic, partition, end) {
            Err(error @ ChangelogError::Read { .. }) if std::time::Instant::now() < deadline => {
                tracing::warn!("{error}; trying again in {RESTORE_RETRY_PAUSE:?}");
                std::thread::sleep(RESTORE_RETRY_PAUSE);
            }
            finished => return finished,
        }
    }
}

/// The pause between two attempts of a restore.
const RESTORE_RETRY_PAUSE: Duration = Duration::from_secs(1);

fn read_partition(
    brokers: &str,
    topic: &str,
    partition: i32,
    end: i64,
) -> Result<PartitionRead, ChangelogError> {
    let read_error = |source| ChangelogError::Read {
        topic: topic.to_string(),
        partition,
        source,
    };
    // librdkafka assigns partitions only to a consumer with a group; this one never joins
    // it nor commits.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-restore"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(read_error)?;
    let partitions = kafka::partition_count(&consumer, topic).map_err(read_error)?;
    // A topic just created can be known to the metadata before its partitions are.
    if partitions == 0 {
        return Err(read_error(KafkaError::MetadataFetch(
            RDKafkaErrorCode::UnknownTopicOrPartition,
        )));
    }
    if partition >= partitions {
        return Err(ChangelogError::TooFewPartitions {
            topic: topic.to_string(),
            partition,
            partitions,
        });
    }
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, KAFKA_TIMEOUT)
        .map_err(read_error)?;
    if high < end {
        return Err(ChangelogError::Truncated {
            topic: topic.to_string(),
            partition,
            expected: end,
            found: high,
        });
    }
    let mut read = PartitionRead {
        state: HashMap::new(),
        after_end: HashSet::new(),
        high,
    };
    if high <= low {
        return Ok(read);
    }
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Beginning)
        .map_err(read_error)?;
    consumer.assign(&list).map_err(read_error)?;
    let mut next = low;
    while next < high {
        let Some(message) = consumer.poll(KAFKA_TIMEOUT) else {
            return Err(read_error(KafkaError::MessageConsumption(
                RDKafkaErrorCode::OperationTimedOut,
            )));
        };
        let message = message.map_err(read_error)?;
        next = message.offset() + 1;
        let Some(key) = message.key().map(String::from_utf8_lossy) else {
            continue;
        };
        let key: Arc<str> = key.as_ref().into();
        if message.offset() >= end {
            read.after_end.insert(key);
            continue;
        }
        let value = message
            .payload()
            .and_then(|payload| std::str::from_utf8(payload).ok())
            .and_then(StateValue::from_json);
        match value {
            Some(value) => read.state.insert(key, value),
            None => read.state.remove(&key),
        };
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_small_whatever_the_number_of_keys_and_reads_back() {
        let ends = ChangelogEnds::from([(2, 1_234_567), (5, 0)]);
        let metadata = CommittedState::marker(&ends);
        assert!(metadata.len() < 100, "{metadata}");
        assert_eq!(
            CommittedState::read(&metadata),
            CommittedState::Changelog(ends)
        );
    }

    #[test]
    fn the_latest_marker_of_a_partitions_topics_wins() {
        let older = CommittedState::Changelog(ChangelogEnds::from([(2, 10), (5, 3)]));
        let newer = CommittedState::Changelog(ChangelogEnds::from([(2, 14), (5, 3)]));
        assert_eq!(
            CommittedState::latest([older.clone(), CommittedState::Nothing, newer.clone()]),
            newer
        );
        assert_eq!(
            CommittedState::latest([CommittedState::Nothing]),
            CommittedState::Nothing
        );
        assert_eq!(CommittedState::latest([]), CommittedState::Nothing);
    }

    #[test]
    fn inline_state_of_earlier_runners_still_reads() {
        assert_eq!(
            CommittedState::read(r#"[[3,"BTC",1.5]]"#),
            CommittedState::Inline(vec![StateUpdate {
                operator_index: 3,
                key: "BTC".into(),
                value: Some(StateValue::Number(1.5))
            }])
        );
    }

    #[test]
    fn foreign_metadata_reads_as_nothing() {
        assert_eq!(CommittedState::read(""), CommittedState::Nothing);
        assert_eq!(
            CommittedState::read("committed by someone else"),
            CommittedState::Nothing
        );
    }

    #[test]
    fn changelog_topics_are_named_for_group_operator_and_index() {
        assert_eq!(
            changelog_topic("bitcoin-yuan", "diff", 2),
            "bitcoin-yuan-diff-2-changelog"
        );
    }
}
