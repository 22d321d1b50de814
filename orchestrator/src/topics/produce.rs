//! Writing a message by hand — a record to try a topology on — and saying where it landed.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use super::TopicsError;

/// How long a message may wait for the broker's acknowledgement.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// A message to write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub key: Option<String>,
    pub value: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// A partition of its own choosing; otherwise the key's, or any when it has none.
    pub partition: Option<i32>,
}

/// Where a message was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Produced {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Writes `messages` to `topic` in order, each acknowledged by the broker before the next.
/// The topic must exist: a typo does not create a new topic.
pub async fn produce(
    brokers: &str,
    topic: &str,
    messages: &[NewMessage],
) -> Result<Vec<Produced>, TopicsError> {
    {
        let consumer = super::reader(brokers)?;
        super::partitions_of(&consumer, brokers, topic)?;
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(|source| TopicsError::Client {
            brokers: brokers.into(),
            source,
        })?;
    let mut produced = Vec::with_capacity(messages.len());
    for message in messages {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &message.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_str()),
            });
        }
        let mut record = FutureRecord::to(topic)
            .payload(message.value.as_str())
            .headers(headers);
        if let Some(key) = &message.key {
            record = record.key(key.as_str());
        }
        if let Some(partition) = message.partition {
            record = record.partition(partition);
        }
        let delivery = producer
            .send(record, DELIVERY_TIMEOUT)
            .await
            .map_err(|(source, _)| TopicsError::Kafka {
                what: "writing a message",
                topic: topic.into(),
                source,
            })?;
        produced.push(Produced {
            topic: topic.into(),
            partition: delivery.partition,
            offset: delivery.offset,
        });
    }
    Ok(produced)
}
