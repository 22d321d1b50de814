//! A Kafka at a glance: its brokers, its topics with partitions, replicas and message
//! counts, and its consumer groups with their lag per partition — in records, and in time
//! as the age of the oldest message a group has not consumed yet.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::{metadata, reader, reader_in_group, Reader, TopicsError, ANSWER_TIMEOUT};

/// How long reading the oldest unconsumed messages of a group may take; a partition whose
/// message did not arrive in time has no lag in time (unknown, not zero).
const AGE_READ_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterOverview {
    /// When the topics' offsets were read, in Unix milliseconds: two overviews give the
    /// messages written per second between them.
    pub offsets_read_at_unix_ms: u64,
    pub brokers: Vec<Broker>,
    pub topics: Vec<TopicOverview>,
    pub groups: Vec<GroupLag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broker {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicOverview {
    pub name: String,
    /// Kafka's own topics (`__consumer_offsets`…).
    pub internal: bool,
    /// Replicas of each partition (of the first, when they differ).
    pub replication: usize,
    /// Messages held: the sum over partitions of end minus start offset.
    pub messages: i64,
    pub partitions: Vec<PartitionOverview>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionOverview {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub in_sync: Vec<i32>,
    /// Offset of the oldest message kept.
    pub start: i64,
    /// Offset the next message will get.
    pub end: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupLag {
    pub group: String,
    /// As the group coordinator says (`Stable`, `Empty`, `PreparingRebalance`…).
    pub state: String,
    pub members: usize,
    /// Records not yet consumed over the partitions it committed offsets for.
    pub lag: i64,
    /// The age of its oldest unconsumed message, in seconds; `None` when it is caught up
    /// or that age could not be read.
    pub lag_seconds: Option<f64>,
    pub partitions: Vec<PartitionLag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The next offset the group will read.
    pub committed: i64,
    pub end: i64,
    pub lag: i64,
    /// The age of the message at `committed`, when `lag` > 0 and it was read in time.
    pub lag_seconds: Option<f64>,
}

/// Topics (all, or those named; Kafka's internal ones only with `internal`) and every
/// consumer group's lag on them.
pub fn overview(
    brokers: &str,
    only: &[String],
    internal: bool,
) -> Result<ClusterOverview, TopicsError> {
    let consumer = reader(brokers)?;
    let metadata = metadata(&consumer, brokers, None)?;
    for wanted in only {
        if !metadata.topics().iter().any(|t| t.name() == wanted) {
            let names: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
            return Err(TopicsError::NoTopic {
                brokers: brokers.into(),
                topic: wanted.clone(),
                hint: crate::suggest::did_you_mean(wanted, names.iter().copied()),
            });
        }
    }
    let mut topics = Vec::new();
    for topic in metadata.topics() {
        let name = topic.name();
        let is_internal = name.starts_with("__");
        let asked = if only.is_empty() {
            internal || !is_internal
        } else {
            only.iter().any(|o| o == name)
        };
        if !asked {
            continue;
        }
        let mut partitions = Vec::new();
        for partition in topic.partitions() {
            let (start, end) = consumer
                .fetch_watermarks(name, partition.id(), ANSWER_TIMEOUT)
                .map_err(|source| TopicsError::Kafka {
                    what: "the offsets",
                    topic: name.into(),
                    source,
                })?;
            partitions.push(PartitionOverview {
                partition: partition.id(),
                leader: partition.leader(),
                replicas: partition.replicas().to_vec(),
                in_sync: partition.isr().to_vec(),
                start,
                end,
            });
        }
        partitions.sort_by_key(|p| p.partition);
        topics.push(TopicOverview {
            name: name.into(),
            internal: is_internal,
            replication: partitions.first().map_or(0, |p| p.replicas.len()),
            messages: partitions.iter().map(|p| p.end - p.start).sum(),
            partitions,
        });
    }
    let offsets_read_at_unix_ms = crate::time::now_unix_ms();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let groups = group_lags(brokers, &consumer, &topics)?;
    let mut found_brokers: Vec<Broker> = (metadata.brokers().iter())
        .map(|b| Broker {
            id: b.id(),
            host: b.host().into(),
            port: b.port(),
        })
        .collect();
    found_brokers.sort_by_key(|b| b.id);
    Ok(ClusterOverview {
        offsets_read_at_unix_ms,
        brokers: found_brokers,
        topics,
        groups,
    })
}

/// Each group's committed offsets on `topics`, against their ends.
fn group_lags(
    brokers: &str,
    consumer: &Reader,
    topics: &[TopicOverview],
) -> Result<Vec<GroupLag>, TopicsError> {
    let list = consumer
        .fetch_group_list(None, ANSWER_TIMEOUT)
        .map_err(|source| TopicsError::Unreachable {
            brokers: brokers.into(),
            timeout: ANSWER_TIMEOUT,
            source,
        })?;
    let ends: BTreeMap<(&str, i32), i64> = (topics.iter())
        .flat_map(|t| (t.partitions.iter()).map(|p| ((t.name.as_str(), p.partition), p.end)))
        .collect();
    let mut all = TopicPartitionList::new();
    for (topic, partition) in ends.keys() {
        all.add_partition(topic, *partition);
    }
    let mut groups = Vec::new();
    for group in list.groups() {
        // Groups of other protocols (Connect workers…) commit no offsets to read here.
        if !matches!(group.protocol_type(), "consumer" | "") {
            continue;
        }
        let name = group.name();
        let as_group = reader_in_group(brokers, name)?;
        let committed = as_group
            .committed_offsets(all.clone(), ANSWER_TIMEOUT)
            .map_err(|source| TopicsError::Group {
                group: name.into(),
                source,
            })?;
        let mut partitions = Vec::new();
        for element in committed.elements() {
            let Offset::Offset(offset) = element.offset() else {
                continue;
            };
            let end = ends
                .get(&(element.topic(), element.partition()))
                .copied()
                .unwrap_or(offset);
            partitions.push(PartitionLag {
                topic: element.topic().into(),
                partition: element.partition(),
                committed: offset,
                end,
                lag: (end - offset).max(0),
                lag_seconds: None,
            });
        }
        if partitions.is_empty() && idle(group.state()) {
            continue;
        }
        read_ages(brokers, &mut partitions)?;
        partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        groups.push(GroupLag {
            group: name.into(),
            state: group.state().into(),
            members: group.members().len(),
            lag: partitions.iter().map(|p| p.lag).sum(),
            lag_seconds: (partitions.iter())
                .filter_map(|p| p.lag_seconds)
                .reduce(f64::max),
            partitions,
        });
    }
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(groups)
}

/// A group without members: shown only when it committed offsets on the topics shown.
fn idle(state: &str) -> bool {
    matches!(state, "Dead" | "Empty")
}

/// Reads the message at each lagging partition's committed offset: its age is how far the
/// group is behind in time.
fn read_ages(brokers: &str, partitions: &mut [PartitionLag]) -> Result<(), TopicsError> {
    let lagging: Vec<usize> = (0..partitions.len())
        .filter(|&i| partitions[i].lag > 0)
        .collect();
    if lagging.is_empty() {
        return Ok(());
    }
    let consumer = reader(brokers)?;
    let mut assignment = TopicPartitionList::new();
    for &i in &lagging {
        let p = &partitions[i];
        assignment
            .add_partition_offset(&p.topic, p.partition, Offset::Offset(p.committed))
            .map_err(|source| TopicsError::Kafka {
                what: "seeking the oldest unconsumed message",
                topic: p.topic.clone(),
                source,
            })?;
    }
    consumer
        .assign(&assignment)
        .map_err(|source| TopicsError::Kafka {
            what: "reading the oldest unconsumed message",
            topic: partitions[lagging[0]].topic.clone(),
            source,
        })?;
    let now_ms = weir_topology::kafka::now_ms();
    let deadline = std::time::Instant::now() + AGE_READ_TIMEOUT;
    let mut unread: Vec<usize> = lagging;
    while !unread.is_empty() && std::time::Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let Some(at) = unread.iter().position(|&i| {
            partitions[i].topic == message.topic() && partitions[i].partition == message.partition()
        }) else {
            continue;
        };
        let slot = &mut partitions[unread.swap_remove(at)];
        slot.lag_seconds = (message.timestamp().to_millis())
            .map(|timestamp| (now_ms - timestamp).max(0) as f64 / 1000.0);
    }
    Ok(())
}
