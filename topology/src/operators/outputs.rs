//! What processing one record produced: the messages to write, the state changes to
//! checkpoint, and the reason when the record was refused.

use std::sync::Arc;

use smallvec::SmallVec;

use super::RecordError;

/// A message an operator wants written.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputMessage {
    pub topic: Arc<str>,
    pub key: Option<Arc<str>>,
    pub payload: Vec<u8>,
}

/// A change to operator state made by one record, replayed into the checkpoint once the
/// record's outputs are acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub struct StateUpdate {
    pub operator_index: usize,
    pub key: Arc<str>,
    pub value: f64,
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
}

impl Processed {
    pub(super) fn clear(&mut self) {
        self.outputs.clear();
        self.updates.clear();
        self.error = None;
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
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let message = self.next_slot();
        message.payload.clear();
        write(&mut message.payload)?;
        if !Arc::ptr_eq(&message.topic, topic) {
            message.topic = topic.clone();
        }
        message.key = key.cloned();
        self.len += 1;
        Ok(())
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
