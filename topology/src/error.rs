//! What stops a topology runner: its own error type, shared by the runner's loop and the
//! in-flight queue that settles each record's deliveries.

use rdkafka::error::KafkaError;

/// Errors that stop the runner. Bad records never do: they go to the error topic.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunnerError {
    /// A Kafka client could not be created or subscribed.
    #[error("cannot set up Kafka clients for {brokers}: {source}")]
    Setup { brokers: String, source: KafkaError },
    /// Consuming failed in a way librdkafka does not recover from.
    #[error("consuming from `{topic}` failed: {source}")]
    Consume { topic: String, source: KafkaError },
    /// An output could not be delivered within the producer's delivery timeout. Its input
    /// offset was not committed, so a restart replays it.
    #[error("delivery to `{topic}` failed: {source}; the input record was not committed and will be replayed on restart")]
    Delivery { topic: String, source: KafkaError },
    /// Operator state could not be written to, or restored from, its changelog.
    #[error(transparent)]
    State(crate::changelog::ChangelogError),
    /// Committing offsets failed when stopping.
    #[error("committing offsets failed: {0}")]
    Commit(KafkaError),
}
