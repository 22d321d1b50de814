//! Data sources that publish documents to a Kafka topic: a live HTTP poller and a replay of
//! recorded documents. A source never invents data: when the live source cannot be reached it
//! retries with backoff and says so, and a replay labels every message it publishes.

pub mod cdc_generator;
pub mod change_event;
pub mod http;
pub mod replay;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures::FutureExt;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use tokio::sync::watch;

use crate::kafka;
use weir_contracts::status::{SourceState, SourceStatus};

/// The header of the first document of each pass after the first when a replay starts its
/// recording over (its value is the pass number): the topology's `diff` begins again there
/// instead of inventing a move from the recording's last value back to its first.
pub const REPLAY_RESTART_HEADER: &str = "weir-replay-restart";

/// A delivery not acknowledged within this long makes the source say `waiting-for-kafka`.
const KAFKA_SLOW: Duration = Duration::from_secs(2);

/// Errors that stop a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot create a Kafka producer for {brokers}: {source}")]
    Producer { brokers: String, source: KafkaError },
    #[error("cannot publish to `{topic}`: {source}")]
    Publish { topic: String, source: KafkaError },
    #[error("cannot read recorded documents from {path}: {reason}")]
    Recording {
        path: String,
        reason: replay::RecordingProblem,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
}

/// How a source keys the documents it publishes. Keys choose partitions (librdkafka's
/// default partitioner hashes them), so all documents of one key go, in order, to one
/// partition, where one runner replica reads them and diffs them with each other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DocumentKey {
    /// No key: the producer spreads documents over the partitions.
    #[default]
    Unkeyed,
    /// The same key for every document (e.g. the currency pair).
    Fixed(String),
    /// The value at a JSON pointer of each document (`/data/base`): a string as it is,
    /// any other value as JSON.
    Pointer(String),
    /// Debezium change events, each keyed by its table's primary key.
    ChangeEvent(change_event::PrimaryKeys),
}

/// Why `--key` and `--key-pointer` do not make a [`DocumentKey`].
#[derive(Debug, thiserror::Error)]
pub enum KeyArgsError {
    #[error("give either a fixed key or a key pointer, not both")]
    Both,
    #[error("the key pointer `{0}` is not a JSON pointer: it starts with `/`, e.g. `/data/base`")]
    NotAPointer(String),
    #[error(
        "change events are keyed by their tables' primary keys: drop `--key` and `--key-pointer`"
    )]
    ChangeEventsKeyed,
    #[error(transparent)]
    PrimaryKeys(#[from] change_event::BadPrimaryKeys),
}

/// Why a document has no key at the source's pointer.
#[derive(Debug, thiserror::Error)]
pub enum NoKey {
    #[error("the document is not JSON ({source}), so `{pointer}` finds no key")]
    NotJson {
        pointer: String,
        source: serde_json::Error,
    },
    #[error("the document has no value at `{0}`")]
    Missing(String),
    #[error("{0}")]
    ChangeEvent(#[from] change_event::NoPrimaryKey),
}

impl DocumentKey {
    /// From `--key` and `--key-pointer` (at most one of them).
    pub fn from_args(key: Option<&str>, pointer: Option<&str>) -> Result<Self, KeyArgsError> {
        match (key, pointer) {
            (Some(_), Some(_)) => Err(KeyArgsError::Both),
            (Some(key), None) => Ok(DocumentKey::Fixed(key.into())),
            (None, Some(pointer)) if pointer.starts_with('/') => {
                Ok(DocumentKey::Pointer(pointer.into()))
            }
            (None, Some(pointer)) => Err(KeyArgsError::NotAPointer(pointer.into())),
            (None, None) => Ok(DocumentKey::Unkeyed),
        }
    }

    /// From `--change-events`, `--key` and `--key-pointer`: the primary keys of change
    /// events exclude the other two.
    pub fn from_all_args(
        change_events: Option<&str>,
        key: Option<&str>,
        pointer: Option<&str>,
    ) -> Result<Self, KeyArgsError> {
        match change_events {
            None => Self::from_args(key, pointer),
            Some(_) if key.is_some() || pointer.is_some() => Err(KeyArgsError::ChangeEventsKeyed),
            Some(text) => Ok(DocumentKey::ChangeEvent(text.parse()?)),
        }
    }

    /// The key of `document`, or why it has none: a document that is not JSON, or that has
    /// nothing at the pointer.
    pub fn key_of(&self, document: &[u8]) -> Result<Option<String>, NoKey> {
        let pointer = match self {
            DocumentKey::Unkeyed => return Ok(None),
            DocumentKey::Fixed(key) => return Ok(Some(key.clone())),
            DocumentKey::ChangeEvent(keys) => return Ok(Some(keys.key_of(document)?)),
            DocumentKey::Pointer(pointer) => pointer,
        };
        let value: serde_json::Value =
            serde_json::from_slice(document).map_err(|source| NoKey::NotJson {
                pointer: pointer.clone(),
                source,
            })?;
        match value.pointer(pointer) {
            Some(serde_json::Value::String(text)) => Ok(Some(text.clone())),
            Some(serde_json::Value::Null) | None => Err(NoKey::Missing(pointer.clone())),
            Some(other) => Ok(Some(other.to_string())),
        }
    }

    /// The key of `document`; one that has none is published without a key (nothing is
    /// dropped), with a warning saying why.
    pub(crate) fn key_or_warn(&self, document: &[u8]) -> Option<String> {
        self.key_of(document).unwrap_or_else(|reason| {
            tracing::warn!("publishing a document without a key: {reason}");
            None
        })
    }
}

/// Publishes documents to one topic; a document counts as published only once Kafka
/// acknowledged it, so that a source that says "published N" really has N messages in the
/// topic.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    topic: String,
    origin: (&'static str, String),
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.topic)
            .finish()
    }
}

impl Publisher {
    /// `origin` becomes a message header (`weir-source` or `weir-replay`) naming where the
    /// document came from.
    pub fn new(
        brokers: &str,
        topic: &str,
        origin: (&'static str, String),
    ) -> Result<Self, SourceError> {
        let producer =
            kafka::producer_config(brokers)
                .create()
                .map_err(|source| SourceError::Producer {
                    brokers: brokers.to_string(),
                    source,
                })?;
        Ok(Self {
            producer,
            topic: topic.to_string(),
            origin,
        })
    }

    /// Hands one document to the producer; the future resolves when Kafka acknowledged it.
    fn enqueue(
        &self,
        key: Option<&str>,
        payload: &[u8],
        mark: Option<(&str, &str)>,
    ) -> Result<DeliveryFuture, SourceError> {
        let mut headers = OwnedHeaders::new().insert(Header {
            key: self.origin.0,
            value: Some(self.origin.1.as_str()),
        });
        if let Some((key, value)) = mark {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record = FutureRecord::<str, [u8]>::to(&self.topic)
            .payload(payload)
            .headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        (self.producer.send_result(record)).map_err(|(source, _)| self.publish_error(source))
    }

    /// What a finished delivery says: acknowledged, or why not.
    fn acknowledged(
        &self,
        delivery: Result<OwnedDeliveryResult, futures::channel::oneshot::Canceled>,
    ) -> Result<(), SourceError> {
        match delivery {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((source, _))) => Err(self.publish_error(source)),
            Err(_) => Err(self.publish_error(KafkaError::Canceled)),
        }
    }

    fn publish_error(&self, source: KafkaError) -> SourceError {
        SourceError::Publish {
            topic: self.topic.clone(),
            source,
        }
    }
}

/// Sends documents without waiting for each acknowledgement — at most `limit` are
/// unacknowledged at a time — and counts a document as published only once Kafka acknowledged
/// it. Waiting for every acknowledgement before the next send held a replay to one document
/// per round trip (about 70 a second against three brokers on a busy machine, whatever pace
/// was asked for). The producer is idempotent, so each partition still gets its documents in
/// the order sent.
pub struct Pipelined<'a> {
    publisher: &'a Publisher,
    unacknowledged: VecDeque<Outstanding>,
    limit: usize,
    acknowledged: u64,
    /// While the oldest document waits longer than [`KAFKA_SLOW`]: the state the source had
    /// before it said `waiting-for-kafka`.
    waiting_from: Option<SourceState>,
}

/// A document sent and not yet acknowledged.
struct Outstanding {
    sent_at: Instant,
    delivery: DeliveryFuture,
}

impl std::fmt::Debug for Pipelined<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipelined")
            .field("topic", &self.publisher.topic)
            .field("unacknowledged", &self.unacknowledged.len())
            .field("acknowledged", &self.acknowledged)
            .finish()
    }
}

impl<'a> Pipelined<'a> {
    pub fn new(publisher: &'a Publisher, limit: usize) -> Self {
        Self {
            publisher,
            unacknowledged: VecDeque::new(),
            limit: limit.max(1),
            acknowledged: 0,
            waiting_from: None,
        }
    }

    /// Documents Kafka acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged
    }

    /// Documents sent and not (yet) acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.unacknowledged.len()
    }

    /// Sends one document, first waiting for the oldest acknowledgement if `limit` are
    /// outstanding; `status.published` follows the acknowledgements.
    pub async fn send(
        &mut self,
        status: &watch::Sender<SourceStatus>,
        key: Option<&str>,
        payload: &[u8],
        mark: Option<(&str, &str)>,
    ) -> Result<(), SourceError> {
        while self.unacknowledged.len() >= self.limit {
            self.await_oldest(status).await?;
        }
        let delivery = self.publisher.enqueue(key, payload, mark)?;
        self.unacknowledged.push_back(Outstanding {
            sent_at: Instant::now(),
            delivery,
        });
        self.take_finished(status)
    }

    /// Counts the acknowledgements already in, oldest first, without waiting; says
    /// `waiting-for-kafka` when the oldest outstanding one is late.
    pub fn take_finished(
        &mut self,
        status: &watch::Sender<SourceStatus>,
    ) -> Result<(), SourceError> {
        while let Some(oldest) = self.unacknowledged.front_mut() {
            let Some(delivery) = (&mut oldest.delivery).now_or_never() else {
                break;
            };
            self.unacknowledged.pop_front();
            self.count(delivery, status)?;
        }
        self.say_if_late(status);
        Ok(())
    }

    /// Waits until every document sent is acknowledged.
    pub async fn finish(
        &mut self,
        status: &watch::Sender<SourceStatus>,
    ) -> Result<(), SourceError> {
        while !self.unacknowledged.is_empty() {
            self.await_oldest(status).await?;
        }
        Ok(())
    }

    /// Waits for the oldest acknowledgement, saying `waiting-for-kafka` once it is late.
    async fn await_oldest(
        &mut self,
        status: &watch::Sender<SourceStatus>,
    ) -> Result<(), SourceError> {
        let Some(oldest) = self.unacknowledged.front_mut() else {
            return Ok(());
        };
        let late_at = tokio::time::Instant::from_std(oldest.sent_at + KAFKA_SLOW);
        let delivery = tokio::select! {
            delivery = &mut oldest.delivery => Some(delivery),
            _ = tokio::time::sleep_until(late_at) => None,
        };
        let delivery = match delivery {
            Some(delivery) => delivery,
            None => {
                self.say_if_late(status);
                let oldest = self
                    .unacknowledged
                    .front_mut()
                    .expect("the oldest is there");
                (&mut oldest.delivery).await
            }
        };
        self.unacknowledged.pop_front();
        self.count(delivery, status)
    }

    /// Counts one finished delivery: acknowledged, or the error that stops the source.
    fn count(
        &mut self,
        delivery: Result<OwnedDeliveryResult, futures::channel::oneshot::Canceled>,
        status: &watch::Sender<SourceStatus>,
    ) -> Result<(), SourceError> {
        self.publisher.acknowledged(delivery)?;
        self.acknowledged += 1;
        let acknowledged = self.acknowledged;
        let back_to = self.waiting_from.take();
        if back_to.is_some() {
            tracing::info!(topic = %self.publisher.topic, "Kafka acknowledges again");
        }
        status.send_modify(|s| {
            s.published = acknowledged;
            if let Some(state) = back_to {
                s.state = state;
            }
        });
        Ok(())
    }

    /// Says `waiting-for-kafka` (once) when the oldest outstanding document is late.
    fn say_if_late(&mut self, status: &watch::Sender<SourceStatus>) {
        let late = (self.unacknowledged.front()).is_some_and(|o| o.sent_at.elapsed() >= KAFKA_SLOW);
        if late && self.waiting_from.is_none() {
            self.waiting_from = Some(status.borrow().state);
            let topic = &self.publisher.topic;
            tracing::warn!(%topic, "Kafka has not acknowledged for {KAFKA_SLOW:?}; waiting for it");
            status.send_modify(|s| s.state = SourceState::WaitingForKafka);
        }
    }
}

#[cfg(test)]
mod pipelined_tests {
    use super::*;

    #[tokio::test]
    async fn a_document_kafka_does_not_acknowledge_is_not_counted_and_the_source_says_it_waits() {
        // Nothing listens on port 1: the document stays outstanding.
        let publisher = Publisher::new("127.0.0.1:1", "events", ("weir-replay", "x".into()))
            .expect("a producer is created without a connection");
        let (status, _) = watch::channel(SourceStatus::new(false, "x", "events"));
        let mut sending = Pipelined::new(&publisher, 10);
        sending.send(&status, Some("k"), b"{}", None).await.unwrap();
        sending.take_finished(&status).unwrap();
        assert_eq!(status.borrow().state, SourceState::Publishing);
        tokio::time::sleep(KAFKA_SLOW + Duration::from_millis(200)).await;
        sending.take_finished(&status).unwrap();
        assert_eq!(status.borrow().state, SourceState::WaitingForKafka);
        assert_eq!(status.borrow().published, 0);
        assert_eq!((sending.acknowledged(), sending.unacknowledged()), (0, 1));
    }
}

#[cfg(test)]
mod tests {
    use super::DocumentKey;

    #[test]
    fn documents_are_keyed_by_a_fixed_key_or_by_a_pointer_into_them() {
        let ticker =
            br#"{"data": {"amount": "512000.5", "base": "BTC", "currency": "CNY"}, "n": 7}"#;
        let key = |key: Option<&str>, pointer: Option<&str>| {
            DocumentKey::from_args(key, pointer)
                .unwrap()
                .key_of(ticker)
                .map_err(|e| e.to_string())
        };
        assert_eq!(key(None, None), Ok(None));
        assert_eq!(key(Some("BTC-CNY"), None), Ok(Some("BTC-CNY".into())));
        assert_eq!(key(None, Some("/data/base")), Ok(Some("BTC".into())));
        assert_eq!(key(None, Some("/n")), Ok(Some("7".into())));
        let missing = key(None, Some("/data/quote")).unwrap_err();
        assert!(missing.contains("no value at `/data/quote`"), "{missing}");
        let not_json = DocumentKey::Pointer("/a".into()).key_of(b"plain text");
        assert!(not_json.unwrap_err().to_string().contains("not JSON"));
    }

    #[test]
    fn a_key_pointer_must_be_a_json_pointer_and_excludes_a_fixed_key() {
        let error = DocumentKey::from_args(None, Some("data.base"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("starts with `/`"), "{error}");
        assert!(DocumentKey::from_args(Some("k"), Some("/k")).is_err());
    }
}
