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
    /// The record was refused: it went to the error topic.
    pub failed: bool,
    /// A window took it aside as late.
    pub late: bool,
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
        SetAside {
            failed: error.is_some(),
            late: late.is_some(),
        }
    }

    pub(super) fn clear(&mut self) {
        self.outputs.clear();
        self.updates.clear();
        self.error = None;
        self.late = None;
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
        timestamp_ms: origin.timestamp_ms,
    }
}
