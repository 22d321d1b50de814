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
    /// The input topics have different numbers of partitions, so partition N of each would
    /// not come to the same runner and keyed state would see only part of a key's records.
    #[error(
        "the input topics must have as many partitions each, so that one runner processes \
         partition N of all of them (co-partitioning); they have {}. Create them with the same \
         number of partitions (or add partitions to the smaller ones)",
        partitions.iter().map(|(topic, n)| format!("`{topic}` {n}")).collect::<Vec<_>>().join(", ")
    )]
    NotCoPartitioned { partitions: Vec<(String, i32)> },
    /// Committing offsets failed when stopping.
    #[error("committing offsets failed: {0}")]
    Commit(KafkaError),
}
