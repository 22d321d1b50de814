//! Reading a topic's messages back: the newest ones, or forward from an offset or a time,
//! on one partition or across all, optionally filtered — and following a topic live.
//!
//! A browse first fixes, for each partition, the range of offsets it will scan (never more
//! than the scan limit in all), then reads exactly those: the same question on the same
//! data gets the same answer, and the answer says how much was scanned and whether messages
//! outside the range were left unsearched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use weir_topology::expression::Expression;
use weir_topology::operators::Record;

use super::content::Content;
use super::{partitions_of, reader, Reader, TopicsError, ANSWER_TIMEOUT};

/// Messages a browse scans when not told otherwise.
pub const DEFAULT_SCAN_LIMIT: u64 = 100_000;
/// How long reading the ranges of a browse may take before it ends with what it read.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A time a browse starts at: RFC 3339 (`2026-12-06T09:00:00Z`), milliseconds since the
/// epoch, or a duration before now (`10m`; a link with it shows a different moment each
/// time it is opened, so the web UI writes the time it stands for).
pub fn parse_time(text: &str) -> Result<i64, TopicsError> {
    if let Ok(time) = text.parse::<jiff::Timestamp>() {
        return Ok(time.as_millisecond());
    }
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    match weir_contracts::duration::parse_duration(text) {
        Ok(ago) => Ok(weir_topology::kafka::now_ms() - ago.as_millis() as i64),
        Err(_) => Err(TopicsError::BadRequest(format!(
            "`{text}` is not a time: give RFC 3339 (2026-12-06T09:00:00Z), epoch milliseconds, \
             or a duration ago (10m)"
        ))),
    }
}

/// Where a browse starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// The newest messages, newest first.
    Newest,
    /// Forward from this offset of each partition read.
    Offset(i64),
    /// Forward from the first message at or after this time (milliseconds since the epoch).
    Timestamp(i64),
}

/// Which messages a browse keeps.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The key, exactly.
    pub key: Option<String>,
    /// Text the key or value contains.
    pub contains: Option<String>,
    /// A CEL expression over the value's fields (of a JSON object value), `value` (the whole
    /// value, unless the object has a field of that name), `key` and `timestamp`.
    pub expression: Option<Expression>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.key.is_none() && self.contains.is_none() && self.expression.is_none()
    }
}

/// What to read.
#[derive(Debug, Clone)]
pub struct BrowseRequest {
    pub topic: String,
    /// One partition, or all.
    pub partition: Option<i32>,
    pub start: Start,
    /// Messages to return at most.
    pub limit: usize,
    pub filter: Filter,
    /// Messages to scan at most, over all partitions.
    pub scan_limit: u64,
}

/// One message as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch, when the message carries one.
    pub timestamp: Option<i64>,
    pub key: Option<Content>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// `None` for a tombstone (a message without value).
    pub value: Option<Content>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub key: String,
    pub value: Option<Content>,
}

/// The range of one partition a browse scanned: offsets `from` up to, not including, `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScannedRange {
    pub partition: i32,
    pub from: i64,
    pub to: i64,
}

/// What a browse found, and how much it looked at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Browsed {
    pub topic: String,
    pub messages: Vec<Message>,
    /// Messages read and tested against the filter.
    pub scanned: u64,
    pub scan_limit: u64,
    /// Messages of the asked range were left unsearched because of the scan limit.
    pub scan_limit_reached: bool,
    /// Messages the filter's expression could not be evaluated on (a field they lack): not
    /// kept, and counted rather than hidden.
    pub filter_errors: u64,
    /// The ranges could not all be read within the time allowed.
    pub timed_out: bool,
    pub ranges: Vec<ScannedRange>,
}

/// Reads what `request` asks for.
pub fn browse(brokers: &str, request: &BrowseRequest) -> Result<Browsed, TopicsError> {
    if request.limit == 0 {
        return Err(TopicsError::BadRequest(
            "the limit must be at least 1".into(),
        ));
    }
    let consumer = reader(brokers)?;
    let partitions = selected_partitions(&consumer, brokers, &request.topic, request.partition)?;
    let filtered = !request.filter.is_empty();
    let share = (request.scan_limit / partitions.len() as u64).max(1) as i64;
    // Unfiltered, `limit` messages per partition are enough to pick the `limit` newest or
    // first; filtered, each partition gets its share of the scan limit.
    let budget = if filtered {
        share
    } else {
        (request.limit as i64).min(share)
    };
    let starts = start_offsets(&consumer, &request.topic, &partitions, request.start)?;
    let mut ranges = Vec::new();
    let mut scan_limit_reached = false;
    for (&partition, &start) in partitions.iter().zip(&starts) {
        let (low, high) = watermarks(&consumer, &request.topic, partition)?;
        let (from, to) = match request.start {
            Start::Newest => ((high - budget).max(low), high),
            Start::Offset(_) | Start::Timestamp(_) => {
                let from = start.clamp(low, high);
                (from, (from + budget).min(high))
            }
        };
        let cut = match request.start {
            Start::Newest => from > low,
            _ => to < high,
        };
        scan_limit_reached |= cut && (filtered || budget < request.limit as i64);
        ranges.push(ScannedRange {
            partition,
            from,
            to,
        });
    }
    let (read, timed_out) = read_ranges(&consumer, &request.topic, &ranges)?;
    let scanned = read.len() as u64;
    let mut filter_errors = 0;
    let mut messages: Vec<Message> = Vec::new();
    for message in read {
        match matches(&request.filter, &message) {
            Ok(true) => messages.push(message),
            Ok(false) => {}
            Err(()) => filter_errors += 1,
        }
    }
    match request.start {
        Start::Newest => messages.sort_by(|a, b| {
            (b.timestamp, b.partition, b.offset).cmp(&(a.timestamp, a.partition, a.offset))
        }),
        _ => messages.sort_by(|a, b| {
            (a.timestamp, a.partition, a.offset).cmp(&(b.timestamp, b.partition, b.offset))
        }),
    }
    messages.truncate(request.limit);
    Ok(Browsed {
        topic: request.topic.clone(),
        messages,
        scanned,
        scan_limit: request.scan_limit,
        scan_limit_reached,
        filter_errors,
        timed_out,
        ranges,
    })
}

/// How a tail went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tailed {
    /// Messages the filter kept.
    pub shown: u64,
    /// Messages the filter's expression could not be evaluated on.
    pub filter_errors: u64,
}

/// Follows `topic` from its current end: calls `on_ready` once every partition is
/// positioned there (a message written after it is shown), then `on_message` with each
/// message the filter keeps, until it returns `false` or `stop` says so.
pub fn tail(
    brokers: &str,
    topic: &str,
    partition: Option<i32>,
    filter: &Filter,
    stop: &dyn Fn() -> bool,
    on_ready: &mut dyn FnMut(),
    on_message: &mut dyn FnMut(Message) -> bool,
) -> Result<Tailed, TopicsError> {
    let consumer = reader(brokers)?;
    let partitions = selected_partitions(&consumer, brokers, topic, partition)?;
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        let (_, high) = watermarks(&consumer, topic, partition)?;
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(high))
            .map_err(|source| kafka_error("seeking the end", topic, source))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|source| kafka_error("following", topic, source))?;
    // Ready only once each partition's first fetch answered: until then the consumer's
    // position is not settled (seen: messages written right after `assign` were skipped).
    let mut unsettled = partitions;
    let mut tailed = Tailed::default();
    while !stop() {
        let polled = consumer.poll(Duration::from_millis(200));
        let settled = match &polled {
            Some(Err(KafkaError::PartitionEOF(partition))) => Some(*partition),
            Some(Ok(message)) => Some(message.partition()),
            _ => None,
        };
        if let Some(partition) = settled {
            let before = unsettled.len();
            unsettled.retain(|p| *p != partition);
            if before > 0 && unsettled.is_empty() {
                on_ready();
            }
        }
        match polled {
            None | Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(source)) => return Err(kafka_error("following", topic, source)),
            Some(Ok(message)) => {
                let message = to_message(&message);
                match matches(filter, &message) {
                    Ok(true) => {
                        tailed.shown += 1;
                        if !on_message(message) {
                            break;
                        }
                    }
                    Ok(false) => {}
                    Err(()) => tailed.filter_errors += 1,
                }
            }
        }
    }
    Ok(tailed)
}

fn selected_partitions(
    consumer: &Reader,
    brokers: &str,
    topic: &str,
    partition: Option<i32>,
) -> Result<Vec<i32>, TopicsError> {
    let mut all = partitions_of(consumer, brokers, topic)?;
    all.sort_unstable();
    match partition {
        None => Ok(all),
        Some(wanted) if all.contains(&wanted) => Ok(vec![wanted]),
        Some(wanted) => Err(TopicsError::NoPartition {
            topic: topic.into(),
            partition: wanted,
            count: all.len(),
        }),
    }
}

fn watermarks(consumer: &Reader, topic: &str, partition: i32) -> Result<(i64, i64), TopicsError> {
    consumer
        .fetch_watermarks(topic, partition, ANSWER_TIMEOUT)
        .map_err(|source| kafka_error("the offsets", topic, source))
}

/// The offset each partition starts at (a time is looked up; newest is decided later).
fn start_offsets(
    consumer: &Reader,
    topic: &str,
    partitions: &[i32],
    start: Start,
) -> Result<Vec<i64>, TopicsError> {
    match start {
        Start::Newest => Ok(vec![0; partitions.len()]),
        Start::Offset(offset) => Ok(vec![offset; partitions.len()]),
        Start::Timestamp(time) => {
            let mut asked = TopicPartitionList::new();
            for &partition in partitions {
                asked
                    .add_partition_offset(topic, partition, Offset::Offset(time))
                    .map_err(|source| kafka_error("seeking a time", topic, source))?;
            }
            let found = consumer
                .offsets_for_times(asked, ANSWER_TIMEOUT)
                .map_err(|source| kafka_error("seeking a time", topic, source))?;
            Ok((partitions.iter())
                .map(|&partition| {
                    match found.find_partition(topic, partition).map(|e| e.offset()) {
                        Some(Offset::Offset(offset)) => offset,
                        // No message at or after that time: start at the end.
                        _ => i64::MAX,
                    }
                })
                .collect())
        }
    }
}

/// Reads every message of `ranges`; the flag says the time allowed ran out first.
fn read_ranges(
    consumer: &Reader,
    topic: &str,
    ranges: &[ScannedRange],
) -> Result<(Vec<Message>, bool), TopicsError> {
    let mut assignment = TopicPartitionList::new();
    let mut open: Vec<&ScannedRange> = Vec::new();
    for range in ranges.iter().filter(|r| r.from < r.to) {
        assignment
            .add_partition_offset(topic, range.partition, Offset::Offset(range.from))
            .map_err(|source| kafka_error("seeking", topic, source))?;
        open.push(range);
    }
    let mut read = Vec::new();
    if open.is_empty() {
        return Ok((read, false));
    }
    consumer
        .assign(&assignment)
        .map_err(|source| kafka_error("reading", topic, source))?;
    let deadline = Instant::now() + READ_TIMEOUT;
    while !open.is_empty() {
        if Instant::now() >= deadline {
            return Ok((read, true));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            // The end of a partition: whatever of its range is left is not there any more
            // (compacted away, or transaction markers).
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.retain(|r| r.partition != partition);
            }
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::OffsetOutOfRange))) => {
                return Err(TopicsError::BadRequest(format!(
                    "messages of `{topic}` were deleted while being read (retention); try again"
                )));
            }
            Some(Err(source)) => return Err(kafka_error("reading", topic, source)),
            Some(Ok(message)) => {
                let Some(at) = open.iter().position(|r| r.partition == message.partition()) else {
                    continue;
                };
                let range = open[at];
                if message.offset() < range.to {
                    read.push(to_message(&message));
                }
                if message.offset() + 1 >= range.to {
                    open.swap_remove(at);
                }
            }
        }
    }
    Ok((read, false))
}

fn to_message(message: &BorrowedMessage<'_>) -> Message {
    let headers = (message.headers().into_iter())
        .flat_map(|headers| headers.iter())
        .map(|header| Header {
            key: header.key.to_string(),
            value: header.value.map(Content::of_text),
        })
        .collect();
    Message {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp().to_millis(),
        key: message.key().map(Content::of_text),
        headers,
        value: message.payload().map(Content::of_value),
    }
}

/// Whether `message` passes `filter`; `Err` when its expression has no value for it.
fn matches(filter: &Filter, message: &Message) -> Result<bool, ()> {
    let key_text = message.key.as_ref().map(Content::display);
    if let Some(key) = &filter.key {
        if key_text.as_deref() != Some(key.as_str()) {
            return Ok(false);
        }
    }
    if let Some(text) = &filter.contains {
        let in_key = key_text
            .as_deref()
            .is_some_and(|k| k.contains(text.as_str()));
        let in_value =
            (message.value.as_ref()).is_some_and(|v| v.display().contains(text.as_str()));
        if !in_key && !in_value {
            return Ok(false);
        }
    }
    let Some(expression) = &filter.expression else {
        return Ok(true);
    };
    let mut record = Record::new(
        key_text.map(Arc::from),
        message.timestamp.unwrap_or_default(),
    );
    let value = match &message.value {
        Some(Content::Json(value)) => value.clone(),
        Some(Content::Text(text)) => serde_json::Value::String(text.clone()),
        Some(Content::Hex(_)) | None => serde_json::Value::Null,
    };
    if let serde_json::Value::Object(fields) = &value {
        for (name, field) in fields {
            record.fields.insert(name.as_str(), field.clone());
        }
    }
    if record.fields.get("value").is_none() {
        record.fields.insert("value", value);
    }
    expression.passes(&record).map_err(|_| ())
}

fn kafka_error(what: &'static str, topic: &str, source: KafkaError) -> TopicsError {
    TopicsError::Kafka {
        what,
        topic: topic.into(),
        source,
    }
}
