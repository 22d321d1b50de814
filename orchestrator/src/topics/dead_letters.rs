//! Sending dead letters back once their cause is fixed (`weir dlq replay`).
//!
//! A dead letter holds the fields a step took when it refused the record for the last time,
//! and names the step's first retry topic in its `weir-retry-topic` header: sent back there,
//! it is due at once and runs through that step again (and, refused again, through its
//! remaining retries to the dead-letter topic once more). Steps before it do not see it a
//! second time, so nothing they counted is counted twice.
//!
//! What was sent back is remembered as the offsets of a consumer group (by default
//! `weir-dlq-replay`), committed once every letter sent was acknowledged: a second replay
//! sends only the letters that came since. A replay stopped between the two sends its letters
//! again (at least once, never lost). It reads each partition up to its end when the replay
//! began, so the letters that fail again are left for the next replay, not chased.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use weir_topology::operators::headers;

use super::{partitions_of, read_ranges, reader_in_group, TopicsError, ANSWER_TIMEOUT};

/// The consumer group whose offsets remember what was replayed, unless another is named.
pub const DEFAULT_GROUP: &str = "weir-dlq-replay";

/// How long one letter may wait for the broker's acknowledgement.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// The dead-letter topic.
    pub topic: String,
    pub group: String,
    /// Send every letter here instead of to the retry topic it names.
    pub to: Option<String>,
    /// At most this many letters (the rest wait for the next replay).
    pub limit: Option<u64>,
    /// Only say what would be sent: nothing is sent, nothing committed.
    pub dry_run: bool,
}

/// One dead letter and where it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Letter {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// The step that refused it, and why, as its headers say.
    pub step: Option<String>,
    pub reason: Option<String>,
    pub destination: String,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayReport {
    pub topic: String,
    pub group: String,
    pub dry_run: bool,
    /// Letters sent back (would be, in a dry run).
    pub replayed: u64,
    /// Letters per destination topic.
    pub destinations: BTreeMap<String, u64>,
    /// Letters left after `limit`, for the next replay.
    pub remaining: u64,
    /// Each partition's next offset to replay from, as committed (unchanged in a dry run).
    pub next_offsets: BTreeMap<i32, i64>,
    pub letters: Vec<Letter>,
}

/// Why a replay sent nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Topics(#[from] TopicsError),
    #[error(
        "`{topic}` partition {partition} offset {offset} names no retry topic (no \
         `{header}` header): it was not written by a Weir step with `retry`. Nothing was \
         sent; say where such letters go with --to TOPIC",
        header = headers::RETRY_TOPIC
    )]
    NoDestination {
        topic: String,
        partition: i32,
        offset: i64,
    },
    #[error(
        "sending `{topic}` partition {partition} offset {offset} to `{destination}` failed: \
         {source}. Nothing was committed: the next replay sends every letter again"
    )]
    Send {
        topic: String,
        partition: i32,
        offset: i64,
        destination: String,
        source: rdkafka::error::KafkaError,
    },
}

/// A letter read, with what it is sent with.
struct Read {
    letter: Letter,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    timestamp_ms: Option<i64>,
}

/// Replays the dead letters of `request.topic` that the group has not replayed yet.
pub async fn replay(brokers: &str, request: &ReplayRequest) -> Result<ReplayReport, ReplayError> {
    let topic = request.topic.as_str();
    let consumer = reader_in_group(brokers, &request.group)?;
    let kafka = |what: &'static str, source| TopicsError::Kafka {
        what,
        topic: topic.to_string(),
        source,
    };
    let partitions = partitions_of(&consumer, brokers, topic)?;
    if let Some(to) = &request.to {
        partitions_of(&consumer, brokers, to)?;
    }
    let mut asked = TopicPartitionList::new();
    for &partition in &partitions {
        asked.add_partition(topic, partition);
    }
    let committed = (consumer.committed_offsets(asked, ANSWER_TIMEOUT)).map_err(|source| {
        TopicsError::Group {
            group: request.group.clone(),
            source,
        }
    })?;
    let mut ranges = BTreeMap::new();
    for &partition in &partitions {
        let (low, high) = (consumer.fetch_watermarks(topic, partition, ANSWER_TIMEOUT))
            .map_err(|source| kafka("the offsets", source))?;
        let from = match committed
            .find_partition(topic, partition)
            .map(|p| p.offset())
        {
            Some(Offset::Offset(next)) => next.max(low),
            _ => low,
        };
        ranges.insert(partition, (from, high));
    }
    let total: u64 = ranges
        .values()
        .map(|(from, end)| (end - from).max(0) as u64)
        .sum();
    let limit = request.limit.unwrap_or(u64::MAX);
    let mut letters: Vec<Read> = Vec::new();
    let mut missing_destination = None;
    read_ranges(&consumer, topic, &ranges, |message| {
        let found = |name: &str| {
            (message.headers()?.iter())
                .find(|header| header.key == name)
                .and_then(|header| header.value)
                .map(|value| String::from_utf8_lossy(value).into_owned())
        };
        let destination = request.to.clone().or_else(|| found(headers::RETRY_TOPIC));
        let Some(destination) = destination else {
            missing_destination = Some((message.partition(), message.offset()));
            return false;
        };
        let kept_headers = (message.headers().into_iter().flat_map(|list| list.iter()))
            .filter(|header| header.key != headers::DUE && header.key != headers::REPLAYED_FROM)
            .map(|header| {
                (
                    header.key.to_string(),
                    header.value.unwrap_or_default().to_vec(),
                )
            })
            .collect();
        letters.push(Read {
            letter: Letter {
                partition: message.partition(),
                offset: message.offset(),
                key: message
                    .key()
                    .map(|key| String::from_utf8_lossy(key).into_owned()),
                step: found(headers::STEP),
                reason: found(headers::REASON),
                destination,
            },
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers: kept_headers,
            timestamp_ms: message.timestamp().to_millis(),
        });
        (letters.len() as u64) < limit
    })?;
    if let Some((partition, offset)) = missing_destination {
        return Err(ReplayError::NoDestination {
            topic: topic.to_string(),
            partition,
            offset,
        });
    }
    let mut destinations = BTreeMap::new();
    for read in &letters {
        *destinations
            .entry(read.letter.destination.clone())
            .or_insert(0) += 1;
    }
    // Each destination is looked up once, however many letters go there.
    if request.to.is_none() {
        for destination in destinations.keys() {
            partitions_of(&consumer, brokers, destination)?;
        }
    }

    // Each partition resumes after its last letter read; one with none, or a dry run, keeps
    // its start.
    let mut next_offsets: BTreeMap<i32, i64> = (ranges.iter())
        .map(|(&partition, &(from, _))| (partition, from))
        .collect();
    if !request.dry_run && !letters.is_empty() {
        for read in &letters {
            next_offsets.insert(read.letter.partition, read.letter.offset + 1);
        }
        send_back(brokers, topic, &letters).await?;
        let mut commit = TopicPartitionList::new();
        for (&partition, &next) in &next_offsets {
            (commit.add_partition_offset(topic, partition, Offset::Offset(next)))
                .map_err(|source| kafka("committing", source))?;
        }
        (consumer.commit(&commit, CommitMode::Sync)).map_err(|source| TopicsError::Group {
            group: request.group.clone(),
            source,
        })?;
    }
    Ok(ReplayReport {
        topic: topic.to_string(),
        group: request.group.clone(),
        dry_run: request.dry_run,
        replayed: letters.len() as u64,
        destinations,
        remaining: total.saturating_sub(letters.len() as u64),
        next_offsets,
        letters: letters.into_iter().map(|read| read.letter).collect(),
    })
}

/// Sends every letter to its destination, keyed as it was (so to the key's partition, as the
/// runners partition), due at once; returns once all are acknowledged.
async fn send_back(brokers: &str, topic: &str, letters: &[Read]) -> Result<(), ReplayError> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("allow.auto.create.topics", "false")
        .set("partitioner", "murmur2_random")
        .create()
        .map_err(|source| TopicsError::Client {
            brokers: brokers.into(),
            source,
        })?;
    let sends = letters.iter().map(|read| {
        let letter = &read.letter;
        let replayed_from = format!("{topic}/{}/{}", letter.partition, letter.offset);
        let mut list = OwnedHeaders::new_with_capacity(read.headers.len() + 1);
        for (key, value) in &read.headers {
            list = list.insert(Header {
                key,
                value: Some(value.as_slice()),
            });
        }
        list = list.insert(Header {
            key: headers::REPLAYED_FROM,
            value: Some(replayed_from.as_str()),
        });
        let producer = &producer;
        async move {
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&letter.destination).headers(list);
            if let Some(value) = &read.value {
                record = record.payload(value.as_slice());
            }
            if let Some(key) = &read.key {
                record = record.key(key.as_slice());
            }
            if let Some(timestamp) = read.timestamp_ms {
                record = record.timestamp(timestamp);
            }
            (producer.send(record, DELIVERY_TIMEOUT).await).map_err(|(source, _)| {
                ReplayError::Send {
                    topic: topic.to_string(),
                    partition: letter.partition,
                    offset: letter.offset,
                    destination: letter.destination.clone(),
                    source,
                }
            })
        }
    });
    for sent in futures::future::join_all(sends).await {
        sent?;
    }
    Ok(())
}
