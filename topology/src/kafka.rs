//! Kafka client settings shared by the runner, the sources and the benchmarks.

use std::ffi::CString;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::Offset;

use crate::spec::StartPosition;

/// A consumer that commits only what the caller tells it to, with a bounded prefetch.
pub fn consumer_config(brokers: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        // A broker that restarts may answer metadata before it has loaded its topics; the
        // consumer then sees its input with 0 partitions, rejoins the group with nothing to
        // read and, by default, looks again only 5 minutes later. Seen when Kafka's pod was
        // killed mid-run. One metadata request every 5 s bounds that stall.
        .set("topic.metadata.refresh.interval.ms", "5000")
        // Small requests (fetches, commits) go out at once instead of waiting on Nagle's
        // algorithm for the previous segment's acknowledgement.
        .set("socket.nagle.disable", "true")
        // librdkafka prefetches up to 64 MiB and 100,000 messages per partition by default:
        // on a topic with a large backlog that alone is more than the runner's whole memory
        // budget. 4 MiB ahead (tens of thousands of small JSON documents) still keeps the
        // runner busy while the next fetch is in flight.
        .set("queued.max.messages.kbytes", "4096")
        .set("queued.min.messages", "20000")
        .set("fetch.max.bytes", "2097152")
        // With a full queue librdkafka waits this long before fetching again (1 s by
        // default, a stall of a second each time the runner catches up with its prefetch).
        .set("fetch.queue.backoff.ms", "5")
        // `fetch.wait.max.ms` stays at its default: the broker answers a fetch as soon as one
        // byte is there (`fetch.min.bytes` = 1), so the wait only bounds idle polling.
        ;
    with_debug_contexts(config)
}

/// An idempotent producer: retries never duplicate or reorder messages within a partition.
pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        // A key goes to the partition Java clients (Kafka Streams, Connect, Debezium) send it
        // to, so that a table written by them and records re-keyed here meet in one partition.
        .set("partitioner", "murmur2_random")
        .set("socket.nagle.disable", "true")
        // A record's outputs leave within a millisecond when traffic is light; under load,
        // batches fill while earlier requests are in flight, so a longer linger buys little
        // throughput and costs every record its latency.
        .set("linger.ms", "1")
        // Bound what waits for the broker (the default allows 1 GiB): 16 MiB is several
        // hundred thousand outputs, far more than the runner keeps unacknowledged.
        .set("queue.buffering.max.kbytes", "16384")
        .set("queue.buffering.max.messages", "200000");
    with_debug_contexts(config)
}

/// Turns librdkafka's debug logging on for the contexts `WEIR_KAFKA_DEBUG` names (e.g.
/// `msg,eos,topic`), to see why a client waits.
fn with_debug_contexts(mut config: ClientConfig) -> ClientConfig {
    if let Ok(contexts) = std::env::var("WEIR_KAFKA_DEBUG") {
        if !contexts.is_empty() {
            config.set("debug", contexts);
            config.set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
        }
    }
    config
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Creates topics that do not exist yet, replicated as the cluster's brokers default to
/// (`default.replication.factor`); existing ones are left as they are.
pub async fn ensure_topics(
    brokers: &str,
    topics: &[&str],
    partitions: i32,
) -> Result<(), KafkaError> {
    ensure_topics_configured(brokers, topics, partitions, &[], Duration::ZERO).await
}

/// How long a runner tries again to create its topics while the refusal may pass by itself
/// (a broker died: the controller moves, too few brokers for the replication factor).
pub const CREATE_PATIENCE: Duration = Duration::from_secs(90);

/// The pause between two attempts to create topics.
const CREATE_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// A refusal to create a topic that may pass by itself: Kafka not answering, or too few
/// brokers alive for the cluster's replication factor while one is down.
fn creation_may_pass(code: RDKafkaErrorCode) -> bool {
    passes_by_itself(code) || code == RDKafkaErrorCode::InvalidReplicationFactor
}

/// Creates topics that do not exist yet as [`ensure_topics`] does, with topic `configs`
/// (e.g. `cleanup.policy=compact`); a refusal that may pass by itself is tried again, with a
/// warning, until `patience` has passed.
pub async fn ensure_topics_configured(
    brokers: &str,
    topics: &[&str],
    partitions: i32,
    configs: &[(&str, &str)],
    patience: Duration,
) -> Result<(), KafkaError> {
    // librdkafka refuses a request to create no topic as an invalid argument.
    if topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| {
            (configs.iter()).fold(
                NewTopic::new(t, partitions, TopicReplication::Fixed(-1)),
                |topic, (name, value)| topic.set(name, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let deadline = std::time::Instant::now() + patience;
    loop {
        let outcome = match admin.create_topics(&new, &options).await {
            Ok(results) => results.into_iter().try_for_each(|result| match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => Ok(()),
                Err((topic, code)) => {
                    tracing::warn!("cannot create topic `{topic}`: {code}");
                    Err(KafkaError::AdminOp(code))
                }
            }),
            Err(error) => Err(error),
        };
        match outcome {
            Err(error)
                if error.rdkafka_error_code().is_some_and(creation_may_pass)
                    && std::time::Instant::now() < deadline =>
            {
                tracing::warn!("trying again in {CREATE_RETRY_PAUSE:?}: {error}");
                tokio::time::sleep(CREATE_RETRY_PAUSE).await;
            }
            finished => return finished,
        }
    }
}

/// How many messages the topics hold: what `weir topics count` reports and the orchestrator
/// reads back (a Job's termination message on Kubernetes).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicCounts {
    /// Messages per existing topic: the sum over its partitions of high minus low watermark.
    pub counts: std::collections::BTreeMap<String, i64>,
    /// Topics asked for that the cluster does not have: they hold no count at all, not 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// Why the messages of topics could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum CountError {
    #[error("cannot create a Kafka client for {brokers}: {source}")]
    Client { brokers: String, source: KafkaError },
    #[error("cannot read the topics of {brokers} (is Kafka up?): {source}")]
    Metadata { brokers: String, source: KafkaError },
    #[error("cannot read the offsets of `{topic}` partition {partition}: {source}")]
    Watermarks {
        topic: String,
        partition: i32,
        source: KafkaError,
    },
}

/// Counts the messages of `topics`; a topic the cluster does not have is listed as missing.
pub fn count_messages(bootstrap: &str, topics: &[String]) -> Result<TopicCounts, CountError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|source| CountError::Client {
            brokers: bootstrap.into(),
            source,
        })?;
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|source| CountError::Metadata {
            brokers: bootstrap.into(),
            source,
        })?;
    let mut result = TopicCounts::default();
    for topic in topics {
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            result.missing.push(topic.clone());
            continue;
        };
        let mut total = 0;
        for partition in found.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition.id(), Duration::from_secs(10))
                .map_err(|source| CountError::Watermarks {
                    topic: topic.clone(),
                    partition: partition.id(),
                    source,
                })?;
            total += high - low;
        }
        result.counts.insert(topic.clone(), total);
    }
    Ok(result)
}

/// Messages in one topic, `None` when the cluster does not have it (yet).
pub fn count_topic(bootstrap: &str, topic: &str) -> Result<Option<i64>, CountError> {
    Ok(count_messages(bootstrap, &[topic.to_string()])?
        .counts
        .get(topic)
        .copied())
}

/// A consumer's assignment, seen while measuring its lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    /// Records not yet read over the assigned partitions of the topic; `None` when a
    /// partition's end or the consumer's position in it is not known.
    pub lag: Option<u64>,
}

/// How far `consumer` is behind the end of `topics`, or `None` while it has no assignment.
/// A partition's end is the one its last fetch response carried (see [`fetched_watermarks`]);
/// only a partition not fetched yet is asked of its leader, which blocks.
pub fn input_lag<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    topics: &[String],
    start: StartPosition,
) -> Option<Assigned> {
    let assignment = consumer.assignment().ok()?;
    let partitions: Vec<(&str, i32)> = (topics.iter())
        .flat_map(|topic| {
            (assignment.elements_for_topic(topic).into_iter())
                .map(move |e| (topic.as_str(), e.partition()))
        })
        .collect();
    if partitions.is_empty() {
        return None;
    }
    let positions = consumer.position().ok();
    let mut total = 0u64;
    for (topic, partition) in partitions {
        let watermarks = fetched_watermarks(consumer, topic, partition).map_or_else(
            || consumer.fetch_watermarks(topic, partition, LAG_QUERY_TIMEOUT),
            Ok,
        );
        let Ok((low, high)) = watermarks else {
            return Some(Assigned { lag: None });
        };
        let position = positions
            .as_ref()
            .and_then(|p| p.find_partition(topic, partition))
            .map(|e| e.offset());
        let next = match (position, start) {
            (Some(Offset::Offset(next)), _) => next,
            // Nothing read from it yet: an empty partition has nothing to read, a new one read
            // from its end has nothing either; otherwise where it resumes is not known here.
            (_, _) if low == high => high,
            (_, StartPosition::Latest) => high,
            _ => return Some(Assigned { lag: None }),
        };
        total += u64::try_from(high - next).unwrap_or(0);
    }
    Some(Assigned { lag: Some(total) })
}

/// The low and high watermarks of a partition as the consumer's last fetch of it reported
/// them, without a request: `None` before its first fetch response.
///
/// Asking the leader instead (a ListOffsets request twice a second, as the runner's status
/// did) queues behind the consumer's fetch on the same connection, and the fetch after it
/// behind the answer: records arriving then waited for both.
fn fetched_watermarks<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    let topic = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is alive for as long as `consumer` is; librdkafka only
    // reads the topic name and writes the two offsets, under its own locks.
    let error = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    // librdkafka reports an offset it has not learnt yet as -1001 (`RD_KAFKA_OFFSET_INVALID`).
    let known = error == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        && low >= 0
        && high >= 0;
    known.then_some((low, high))
}

/// Time limit of one end-offset query while measuring lag.
const LAG_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// An admin operation refused for a reason that passes by itself: the controller moved (a
/// broker died), a broker or leader is not there yet, a request timed out.
pub fn passes_by_itself(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        NotController
            | RequestTimedOut
            | OperationTimedOut
            | BrokerNotAvailable
            | LeaderNotAvailable
            | NotLeaderForPartition
            | NetworkException
            | BrokerTransportFailure
            | AllBrokersDown
            | CoordinatorLoadInProgress
            | CoordinatorNotAvailable
    )
}

/// How many partitions `topic` has, as the cluster's metadata says.
pub fn partition_count<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
) -> Result<i32, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |topic| topic.partitions().len());
    Ok(i32::try_from(partitions).unwrap_or(i32::MAX))
}
