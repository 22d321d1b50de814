//! Records whose outputs were sent and await their acknowledgements.
//!
//! The queue is ordered: a record's offset becomes committable only once it and every record
//! read before it have all their outputs acknowledged. It is shared by the runner's main loop,
//! which applies acknowledgements as they arrive, and by the rebalance callback, which applies
//! every one that has arrived before partitions leave this runner — so that a planned
//! rebalance (a replica joining or leaving) hands over committed offsets instead of records
//! the next owner would write a second time.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};

use crate::checkpoint::Checkpoint;
use crate::kafka;
use crate::metrics::Metrics;
use crate::operators::StateUpdate;
use crate::runner::RunnerError;

/// A record whose outputs were sent, waiting for their acknowledgements.
pub(crate) struct InFlight {
    pub partition: i32,
    /// The partition's checkpoint generation when the record was read.
    pub generation: u64,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub updates: Vec<StateUpdate>,
    pub outputs: u64,
    pub failed: bool,
}

/// Resolves once every output of a record is acknowledged, or with the first delivery error.
pub(crate) type Acked = Pin<Box<dyn Future<Output = Result<InFlight, RunnerError>> + Send>>;

/// The ordered queue of records in flight and the checkpoint their acknowledgements move.
pub(crate) struct Acknowledgements {
    queue: Mutex<FuturesOrdered<Acked>>,
    checkpoint: Mutex<Checkpoint>,
    metrics: Arc<Metrics>,
}

impl Acknowledgements {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            queue: Mutex::default(),
            checkpoint: Mutex::default(),
            metrics,
        }
    }

    /// What may be committed, and each partition's generation.
    pub fn checkpoint(&self) -> MutexGuard<'_, Checkpoint> {
        self.checkpoint.lock().expect("checkpoint lock")
    }

    fn queue(&self) -> MutexGuard<'_, FuturesOrdered<Acked>> {
        self.queue.lock().expect("in-flight queue lock")
    }

    pub fn len(&self) -> usize {
        self.queue().len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue().is_empty()
    }

    pub fn push(&self, acked: Acked) {
        self.queue().push_back(acked);
    }

    /// Waits for the oldest record's acknowledgements and applies them; `None` when nothing
    /// is in flight. The lock is held only while polling, never across a wait.
    pub async fn next(&self) -> Option<Result<(), RunnerError>> {
        let acked = poll_fn(|cx| self.queue().poll_next_unpin(cx)).await?;
        Some(self.apply(acked))
    }

    /// Applies, in order, every acknowledgement that has already arrived, and returns how
    /// many records are still waiting for theirs. A delivery error is put back at the head of
    /// the queue for the main loop to stop on: a callback cannot stop the runner itself.
    pub fn apply_arrived(&self) -> usize {
        let mut queue = self.queue();
        while let Some(Some(acked)) = queue.next().now_or_never() {
            if let Err(error) = self.apply(acked) {
                queue.push_front(Box::pin(std::future::ready(Err(error))));
                break;
            }
        }
        queue.len()
    }

    fn apply(&self, acked: Result<InFlight, RunnerError>) -> Result<(), RunnerError> {
        let record = acked?;
        let metrics = &self.metrics;
        if record.outputs > 0 {
            metrics.record_latency_ms(kafka::now_ms() - record.timestamp_ms);
        }
        metrics
            .messages_out
            .fetch_add(record.outputs, Ordering::Relaxed);
        if record.failed {
            metrics.records_failed.fetch_add(1, Ordering::Relaxed);
        }
        metrics.records_done.fetch_add(1, Ordering::Relaxed);
        self.checkpoint
            .lock()
            .expect("checkpoint lock")
            .acknowledge(
                record.partition,
                record.generation,
                record.offset,
                record.updates,
            );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64) -> Result<InFlight, RunnerError> {
        Ok(InFlight {
            partition: 0,
            generation: 0,
            offset,
            timestamp_ms: kafka::now_ms(),
            updates: Vec::new(),
            outputs: 1,
            failed: false,
        })
    }

    fn acknowledgements() -> Acknowledgements {
        Acknowledgements::new(Arc::new(Metrics::new("test")))
    }

    #[test]
    fn arrived_acknowledgements_are_applied_in_order_up_to_the_first_still_waiting() {
        let acks = acknowledgements();
        let (send_late, late) = futures::channel::oneshot::channel::<()>();
        acks.push(Box::pin(std::future::ready(record(0))));
        acks.push(Box::pin(async move {
            late.await.expect("sender kept");
            record(1)
        }));
        acks.push(Box::pin(std::future::ready(record(2))));

        assert_eq!(
            acks.apply_arrived(),
            2,
            "offset 1 still waits, and 2 behind it"
        );
        let commits = acks.checkpoint().take_dirty();
        assert_eq!(commits.len(), 1);
        assert_eq!(commits[0].next_offset, 1, "only offset 0 is committable");

        send_late.send(()).expect("receiver kept");
        assert_eq!(acks.apply_arrived(), 0);
        let commits = acks.checkpoint().take_dirty();
        assert_eq!(commits[0].next_offset, 3);
        assert_eq!(acks.metrics.snapshot().records_done, 3);
    }

    #[test]
    fn a_delivery_error_stays_at_the_head_for_the_main_loop() {
        let acks = acknowledgements();
        acks.push(Box::pin(std::future::ready(Err(RunnerError::Delivery {
            topic: "out".into(),
            source: rdkafka::error::KafkaError::Canceled,
        }))));
        acks.push(Box::pin(std::future::ready(record(1))));

        assert_eq!(acks.apply_arrived(), 2, "nothing passes a failed record");
        let first = futures::executor::block_on(acks.next());
        assert!(matches!(first, Some(Err(RunnerError::Delivery { .. }))));
    }
}
