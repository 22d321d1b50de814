//! Seeing what flows through a Kafka: its topics with their partitions and message counts,
//! consumer groups with their lag in records and in time ([`overview`]), a topic's messages
//! read back or followed live ([`browse`]), and a message written by hand ([`produce`]).
//! `weir topics` prints these; the web UI serves the same types.
//!
//! Every read is bounded: a browse scans at most a given number of messages and says how
//! many it scanned, so that a search on a big topic returns quickly and the same answer each
//! time it is asked on the same data.

pub mod address;
pub mod browse;
pub mod content;
pub mod dead_letters;
pub mod overview;
pub mod produce;
pub mod table;

use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::ClientConfig;

use crate::suggest::did_you_mean;

pub use address::{AddressError, KafkaTarget};

/// How long the first answer of a broker may take before the Kafka is reported unreachable.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a look at a Kafka failed.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("cannot create a Kafka client for {brokers}: {source}")]
    Client { brokers: String, source: KafkaError },
    /// Nothing answered: wrong address, or Kafka is down.
    #[error(
        "no broker at {brokers} answered within {timeout:?} ({source}): is Kafka running \
         there? `weir instances` lists the running ones"
    )]
    Unreachable {
        brokers: String,
        timeout: Duration,
        source: KafkaError,
    },
    #[error("{brokers} has no topic `{topic}`{hint}")]
    NoTopic {
        brokers: String,
        topic: String,
        /// Names close to the one asked for, if any.
        hint: String,
    },
    #[error("topic `{topic}` has no partition {partition} (it has {count})")]
    NoPartition {
        topic: String,
        partition: i32,
        count: usize,
    },
    #[error("{what} of `{topic}`: {source}")]
    Kafka {
        what: &'static str,
        topic: String,
        source: KafkaError,
    },
    #[error("consumer group `{group}`: {source}")]
    Group { group: String, source: KafkaError },
    #[error("{0}")]
    BadRequest(String),
}

/// The context of readers: the end of a partition is how a browse knows it read all there
/// is, not an error for the log (rdkafka's default context logs it as one).
pub(crate) struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let end_of_partition = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !end_of_partition {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for ReaderContext {}

/// A consumer that reads partitions it is assigned: no group membership, no commits.
pub(crate) type Reader = BaseConsumer<ReaderContext>;

/// A client that only reads.
pub(crate) fn reader(brokers: &str) -> Result<Reader, TopicsError> {
    reader_in_group(brokers, "weir-topics-reader")
}

/// A reader whose `committed_offsets` are those of `group` (it never joins the group).
pub(crate) fn reader_in_group(brokers: &str, group: &str) -> Result<Reader, TopicsError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        // What librdkafka fetches ahead of the reader, per reader: by default up to 64 MiB
        // and 100,000 messages, which a live tail whose browser stopped reading holds for as
        // long as it stays open (measured with `weir bench topics`). 2 MiB bounds `weir
        // serve`'s memory by the number of readers; fetching again 10 ms after the reader
        // drained below it, not the default 1 s, keeps a search's scan fed.
        .set("queued.max.messages.kbytes", "2048")
        .set("queued.min.messages", "10000")
        .set("fetch.queue.backoff.ms", "10")
        .create_with_context(ReaderContext)
        .map_err(|source| TopicsError::Client {
            brokers: brokers.into(),
            source,
        })
}

/// The cluster's metadata (of one topic, or of all), failing fast when no broker answers.
pub(crate) fn metadata(
    consumer: &Reader,
    brokers: &str,
    topic: Option<&str>,
) -> Result<Metadata, TopicsError> {
    use rdkafka::consumer::Consumer;
    consumer
        .fetch_metadata(topic, ANSWER_TIMEOUT)
        .map_err(|source| TopicsError::Unreachable {
            brokers: brokers.into(),
            timeout: ANSWER_TIMEOUT,
            source,
        })
}

/// The partitions of `topic`, or a [`TopicsError::NoTopic`] naming topics with close names.
pub(crate) fn partitions_of(
    consumer: &Reader,
    brokers: &str,
    topic: &str,
) -> Result<Vec<i32>, TopicsError> {
    let all = metadata(consumer, brokers, None)?;
    match all.topics().iter().find(|t| t.name() == topic) {
        Some(found) if !found.partitions().is_empty() => {
            Ok(found.partitions().iter().map(|p| p.id()).collect())
        }
        _ => {
            let names: Vec<&str> = all.topics().iter().map(|t| t.name()).collect();
            Err(TopicsError::NoTopic {
                brokers: brokers.into(),
                topic: topic.into(),
                hint: did_you_mean(topic, names.iter().copied()),
            })
        }
    }
}

/// How long reading a topic's ranges to their ends may take before the read is reported as
/// unfinished.
const RANGE_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Reads `topic` from each partition's start in `ranges` up to (not including) its end, in
/// offset order per partition, handing each message to `visit`; `visit` returns `false` to
/// stop. A partition whose end is never reached because the rest was compacted or deleted
/// away ends at its end-of-partition. Returns the messages read.
pub(crate) fn read_ranges(
    consumer: &Reader,
    topic: &str,
    ranges: &std::collections::BTreeMap<i32, (i64, i64)>,
    mut visit: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> bool,
) -> Result<u64, TopicsError> {
    use rdkafka::consumer::Consumer;
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};
    let kafka = |what: &'static str, source: KafkaError| TopicsError::Kafka {
        what,
        topic: topic.to_string(),
        source,
    };
    let mut ends = std::collections::BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for (&partition, &(start, end)) in ranges {
        if start < end {
            ends.insert(partition, end);
            (assignment.add_partition_offset(topic, partition, Offset::Offset(start)))
                .map_err(|source| kafka("seeking", source))?;
        }
    }
    let mut read = 0;
    if ends.is_empty() {
        return Ok(read);
    }
    consumer
        .assign(&assignment)
        .map_err(|source| kafka("reading", source))?;
    let deadline = std::time::Instant::now() + RANGE_READ_TIMEOUT;
    while !ends.is_empty() {
        if std::time::Instant::now() >= deadline {
            return Err(TopicsError::BadRequest(format!(
                "`{topic}` was not read to its end within {RANGE_READ_TIMEOUT:?} ({read} \
                 messages read)"
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                ends.remove(&partition);
            }
            Some(Err(source)) => return Err(kafka("reading", source)),
            Some(Ok(message)) => {
                let Some(&end) = ends.get(&message.partition()) else {
                    continue;
                };
                if message.offset() < end {
                    read += 1;
                    if !visit(&message) {
                        return Ok(read);
                    }
                }
                if message.offset() + 1 >= end {
                    ends.remove(&message.partition());
                }
            }
        }
    }
    Ok(read)
}
