//! What processing one record produced: the messages to write, the state changes to
//! checkpoint, and the reason when the record was refused.

use std::sync::Arc;

use smallvec::SmallVec;

use super::{Late, RecordError};
use crate::state::StateUpdate;

/// A message an operator wants written.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputMessage {
    pub topic: Arc<str>,
    pub key: Option<Arc<str>>,
    pub payload: Vec<u8>,
    /// A message without a value (`payload` is ignored): an `upsert`'s delete, which a
    /// compacted topic takes as the key's removal.
    pub tombstone: bool,
    /// Headers: a retried or dead-lettered record's provenance (none otherwise).
    pub headers: Vec<(&'static str, String)>,
    /// The message's timestamp (ms since the epoch): the event time of the record it came
    /// from, so that outputs carry event time on as Kafka Streams' do.
    pub timestamp_ms: i64,
}

/// The state changes of one record. A topology's chain holds a diff or two, so they are
/// kept inline: a record in flight carries its updates without an allocation of their own.
pub type StateUpdates = SmallVec<[StateUpdate; 2]>;

/// What processing one record produced. One is reused from record to record
/// ([`Pipeline::process_into`]), with the buffers of its outputs.
#[derive(Debug, Default)]
pub struct Processed {
    pub outputs: Outputs,
    pub updates: StateUpdates,
    /// Set when the record was refused; the outputs emitted before the refusal are kept.
    pub error: Option<RecordError>,
    /// Set when an operator took the record aside and went on (a window's late record).
    pub late: Option<Late>,
    /// Set instead of `error` when the refusing operator's step retries: what goes to its
    /// next retry topic, or to its dead-letter topic after the last attempt.
    pub retry: Option<RetryRequest>,
}

/// A record an operator of a retrying step refused.
#[derive(Debug, Clone)]
pub struct RetryRequest {
    pub error: RecordError,
    /// The step's retries.
    pub retry: crate::spec::Retry,
    /// The step's name, for the dead letter.
    pub step: String,
    /// The fields the record had when it entered the step: what the step takes again.
    pub fields: super::Fields,
    pub key: Option<Arc<str>>,
    pub timestamp_ms: i64,
    /// Where it was first refused and which attempt this was, when it was retried already.
    pub retried: Option<Arc<super::record::Retried>>,
}

/// The headers of retried and dead-lettered records.
pub mod headers {
    pub const ATTEMPT: &str = "weir-attempt";
    pub const ORIGIN_TOPIC: &str = "weir-origin-topic";
    pub const ORIGIN_PARTITION: &str = "weir-origin-partition";
    pub const ORIGIN_OFFSET: &str = "weir-origin-offset";
    pub const ORIGIN_TIMESTAMP: &str = "weir-origin-timestamp";
    pub const STEP: &str = "weir-step";
    pub const REASON: &str = "weir-reason";
    /// The first retry topic of the step: where `weir dlq replay` sends a dead letter back.
    pub const RETRY_TOPIC: &str = "weir-retry-topic";
    /// When a retry is due, ms since the epoch.
    pub const DUE: &str = "weir-due";
    /// On a dead letter sent back by `weir dlq replay`: `TOPIC/PARTITION/OFFSET` it was read at.
    pub const REPLAYED_FROM: &str = "weir-replayed-from";
}

/// Where the records a topology takes aside go: its error topic, unless an operator names
/// another (a window's late topic).
#[derive(Debug, Clone)]
pub struct AsideTopics {
    pub topology: String,
    pub error_topic: Arc<str>,
}

/// Where an input message came from, written into the messages that take it aside.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a Arc<str>>,
    pub timestamp_ms: i64,
}

/// What [`Processed::set_aside`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetAside {
    /// The record was refused: it went to the error topic, or, after a step's last retry,
    /// to its dead-letter topic.
    pub failed: bool,
    /// A window took it aside as late.
    pub late: bool,
    /// It went to a retry topic, to be tried again.
    pub retried: bool,
}

impl Processed {
    /// Appends the messages that take the record aside, the late one and the refused one,
    /// each with the reason and where the record came from.
    pub fn set_aside(
        &mut self,
        topics: &AsideTopics,
        origin: &Origin<'_>,
        payload: &[u8],
    ) -> SetAside {
        let late = self.late.take();
        if let Some(late) = &late {
            let topic = late.topic.as_ref().unwrap_or(&topics.error_topic);
            self.outputs
                .push(aside_message(topics, topic, origin, payload, &late.error));
        }
        let error = self.error.take();
        if let Some(error) = &error {
            self.outputs.push(aside_message(
                topics,
                &topics.error_topic,
                origin,
                payload,
                error,
            ));
        }
        let retry = self.retry.take();
        let mut retried = false;
        let mut dead = false;
        if let Some(request) = &retry {
            let message = retry_message(request, origin, now_ms());
            retried = message.topic.as_ref() != request.retry.dead_letter_topic;
            dead = !retried;
            self.outputs.push(message);
        }
        SetAside {
            failed: error.is_some() || dead,
            late: late.is_some(),
            retried,
        }
    }

    pub(super) fn clear(&mut self) {
        self.outputs.clear();
        self.updates.clear();
        self.error = None;
        self.late = None;
        self.retry = None;
    }
}

/// The messages a record produced, in order. Their payload buffers outlive the record and are
/// written again by the next one, so that an output costs no allocation of its own.
#[derive(Debug, Default)]
pub struct Outputs {
    /// The first `len` are this record's; the rest are buffers kept for reuse.
    messages: Vec<OutputMessage>,
    len: usize,
}

impl Outputs {
    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends a message whose payload `write` puts into a reused buffer; when `write` fails,
    /// nothing is appended.
    pub fn push_with<E>(
        &mut self,
        topic: &Arc<str>,
        key: Option<&Arc<str>>,
        timestamp_ms: i64,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let message = self.next_slot();
        message.payload.clear();
        write(&mut message.payload)?;
        if !Arc::ptr_eq(&message.topic, topic) {
            message.topic = topic.clone();
        }
        message.key = key.cloned();
        message.timestamp_ms = timestamp_ms;
        message.tombstone = false;
        message.headers.clear();
        self.len += 1;
        Ok(())
    }

    /// Appends a tombstone: a message of `key` without a value.
    pub fn push_tombstone(&mut self, topic: &Arc<str>, key: &Arc<str>, timestamp_ms: i64) {
        let message = self.next_slot();
        message.payload.clear();
        message.topic = topic.clone();
        message.key = Some(key.clone());
        message.timestamp_ms = timestamp_ms;
        message.tombstone = true;
        message.headers.clear();
        self.len += 1;
    }

    /// Appends a message built elsewhere (the error topic's).
    pub fn push(&mut self, message: OutputMessage) {
        *self.next_slot() = message;
        self.len += 1;
    }

    /// The slot the next message goes in: the one kept from an earlier record, or a new one.
    fn next_slot(&mut self) -> &mut OutputMessage {
        if self.len == self.messages.len() {
            self.messages.push(OutputMessage {
                topic: Arc::from(""),
                key: None,
                payload: Vec::new(),
                tombstone: false,
                headers: Vec::new(),
                timestamp_ms: 0,
            });
        }
        &mut self.messages[self.len]
    }
}

impl std::ops::Deref for Outputs {
    type Target = [OutputMessage];

    fn deref(&self) -> &[OutputMessage] {
        &self.messages[..self.len]
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

/// The message a refused record of a retrying step becomes: to its next retry topic, due
/// after that attempt's delay, or, after the last attempt, to the dead-letter topic. Either way
/// its value is the fields the step took, and its headers say where it was first read, by
/// which step it was refused, why, and how many attempts were made.
fn retry_message(request: &RetryRequest, origin: &Origin<'_>, now_ms: i64) -> OutputMessage {
    let done = request.retried.as_ref().map_or(0, |r| r.attempt);
    let attempt = done + 1;
    let (topic, due) = match request.retry.topics.get(done as usize) {
        Some(topic) => (
            topic.as_str(),
            Some(now_ms + request.retry.delay_ms(attempt)),
        ),
        None => (request.retry.dead_letter_topic.as_str(), None),
    };
    let (origin_topic, partition, offset, timestamp) = match &request.retried {
        Some(r) => (
            r.origin_topic.clone(),
            r.origin_partition,
            r.origin_offset,
            r.origin_timestamp_ms,
        ),
        None => (
            origin.topic.to_string(),
            origin.partition,
            origin.offset,
            origin.timestamp_ms,
        ),
    };
    let mut payload = Vec::new();
    let _ = request.fields.write_json(&mut payload);
    let mut headers = vec![
        (headers::ORIGIN_TOPIC, origin_topic),
        (headers::ORIGIN_PARTITION, partition.to_string()),
        (headers::ORIGIN_OFFSET, offset.to_string()),
        (headers::ORIGIN_TIMESTAMP, timestamp.to_string()),
        (headers::STEP, request.step.clone()),
        (headers::REASON, request.error.to_string()),
        // Attempts made so far (the first try included).
        (headers::ATTEMPT, attempt.to_string()),
    ];
    if let Some(first) = request.retry.topics.first() {
        headers.push((headers::RETRY_TOPIC, first.clone()));
    }
    if let Some(due) = due {
        headers.push((headers::DUE, due.to_string()));
    }
    OutputMessage {
        topic: Arc::from(topic),
        key: request.key.clone(),
        payload,
        tombstone: false,
        headers,
        timestamp_ms: request.timestamp_ms,
    }
}

/// The message that takes a record aside: the reason, the operator, where the record came
/// from and its payload (as text, saying whether it was UTF-8).
fn aside_message(
    topics: &AsideTopics,
    topic: &Arc<str>,
    origin: &Origin<'_>,
    payload: &[u8],
    error: &RecordError,
) -> OutputMessage {
    let body = serde_json::json!({
        "topology": topics.topology,
        "operator": error.operator,
        "reason": error.reason,
        "topic": origin.topic,
        "partition": origin.partition,
        "offset": origin.offset,
        "payload": String::from_utf8_lossy(payload),
        "payload_is_utf8": std::str::from_utf8(payload).is_ok(),
    });
    OutputMessage {
        topic: topic.clone(),
        key: origin.key.cloned(),
        payload: body.to_string().into_bytes(),
        tombstone: false,
        headers: Vec::new(),
        timestamp_ms: origin.timestamp_ms,
    }
}
