//! Records whose outputs were sent and await their acknowledgements.
//!
//! The queue is ordered: a record's offset becomes committable only once it and every record
//! read before it have all their outputs acknowledged. Each record is registered before its
//! outputs are sent and gets a [`Ticket`], which travels with every one of its messages as the
//! producer's delivery opaque; the producer's delivery callback counts the record's outputs
//! down through it. That costs one queue slot per record, where a future per output (rdkafka's
//! `FutureProducer`) costs a channel and two allocations per message.
//!
//! The queue is shared by the runner's main loop, which applies acknowledgements as they
//! arrive, by the producer's delivery callback, and by the rebalance callback, which applies
//! every one that has arrived before partitions leave this runner — so that a planned
//! rebalance (a replica joining or leaving) hands over committed offsets instead of records
//! the next owner would write a second time.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::checkpoint::Checkpoint;
use crate::error::RunnerError;
use crate::kafka;
use crate::metrics::Metrics;
use crate::operators::StateUpdates;

/// A record whose outputs were sent, waiting for their acknowledgements.
pub(crate) struct InFlight {
    /// The input topic it came from, by index (see [`crate::spec::Input::topics`]).
    pub topic: usize,
    pub partition: i32,
    /// The partition's checkpoint generation when the record was read.
    pub generation: u64,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub updates: StateUpdates,
    /// Outputs the operators produced (the error topic's message, if any, not counted).
    pub outputs: u64,
    pub failed: bool,
    /// A window took the record aside as late.
    pub late: bool,
}

/// Names a registered record; each of its outputs carries it to the delivery callback.
pub(crate) type Ticket = usize;

/// The ordered queue of records in flight and the checkpoint their acknowledgements move.
pub(crate) struct Acknowledgements {
    pending: Mutex<Pending>,
    /// Woken when the oldest record in flight has heard from all its outputs.
    head_settled: Notify,
    checkpoint: Mutex<Checkpoint>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Pending {
    /// The ticket of `slots[0]`; tickets are consecutive from there.
    first: Ticket,
    slots: VecDeque<Slot>,
}

struct Slot {
    record: InFlight,
    /// Outputs sent whose delivery report has not arrived.
    awaited: usize,
    /// The first delivery that failed: nothing from this record on is committed.
    failure: Option<RunnerError>,
}

impl Slot {
    fn settled(&self) -> bool {
        self.awaited == 0
    }
}

/// What the head of the queue holds after applying what has arrived.
enum Head {
    /// Nothing is in flight.
    Empty,
    /// The oldest record still awaits deliveries.
    Awaiting,
    /// The oldest record's delivery failed; it stays at the head.
    Failed(RunnerError),
}

impl Acknowledgements {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            pending: Mutex::default(),
            head_settled: Notify::new(),
            checkpoint: Mutex::default(),
            metrics,
        }
    }

    /// What may be committed, and each partition's generation.
    pub fn checkpoint(&self) -> MutexGuard<'_, Checkpoint> {
        self.checkpoint.lock().expect("checkpoint lock")
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().expect("in-flight queue lock")
    }

    pub fn len(&self) -> usize {
        self.pending().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending().slots.is_empty()
    }

    /// The oldest record in flight, as "topic T partition P offset O, awaiting N outputs":
    /// what holds every later record's commit back.
    pub fn oldest(&self) -> Option<String> {
        let pending = self.pending();
        let head = pending.slots.front()?;
        Some(format!(
            "topic #{} partition {} offset {}, awaiting {} of its outputs{}",
            head.record.topic,
            head.record.partition,
            head.record.offset,
            head.awaited,
            if head.failure.is_some() {
                " (a delivery failed)"
            } else {
                ""
            }
        ))
    }

    /// Registers a record whose `outputs` messages are about to be sent with the ticket
    /// returned. A record with no outputs is settled at once.
    pub fn register(&self, record: InFlight, outputs: usize) -> Ticket {
        let mut pending = self.pending();
        let ticket = pending.first + pending.slots.len();
        pending.slots.push_back(Slot {
            record,
            awaited: outputs,
            failure: None,
        });
        if outputs == 0 && pending.slots.len() == 1 {
            self.head_settled.notify_one();
        }
        ticket
    }

    /// The delivery report of one output of the record `ticket` names.
    pub fn delivered(&self, ticket: Ticket, result: Result<(), RunnerError>) {
        self.settle(ticket, 1, result.err());
    }

    /// `count` outputs of the record could not be sent at all: no report will come for them,
    /// and the record must never be committed.
    pub fn unsent(&self, ticket: Ticket, count: usize, error: RunnerError) {
        self.settle(ticket, count, Some(error));
    }

    fn settle(&self, ticket: Ticket, count: usize, failure: Option<RunnerError>) {
        let mut pending = self.pending();
        let Some(index) = ticket.checked_sub(pending.first) else {
            return;
        };
        let Some(slot) = pending.slots.get_mut(index) else {
            return;
        };
        slot.awaited = slot.awaited.saturating_sub(count);
        if slot.failure.is_none() {
            slot.failure = failure;
        }
        if index == 0 && (slot.settled() || slot.failure.is_some()) {
            self.head_settled.notify_one();
        }
    }

    /// Waits until the oldest records are acknowledged and applies them; `None` when nothing
    /// is in flight, the delivery error when the oldest record's failed. The lock is never
    /// held across the wait.
    pub async fn next(&self) -> Option<Result<(), RunnerError>> {
        loop {
            let (applied, head) = self.apply_settled();
            match head {
                Head::Failed(error) => return Some(Err(error)),
                _ if applied > 0 => return Some(Ok(())),
                Head::Empty => return None,
                Head::Awaiting => self.head_settled.notified().await,
            }
        }
    }

    /// Applies, in order, every acknowledgement that has already arrived, and returns how
    /// many records are still waiting for theirs. A failed record stays at the head of the
    /// queue for the main loop to stop on: a callback cannot stop the runner itself.
    pub fn apply_arrived(&self) -> usize {
        self.apply_settled();
        self.len()
    }

    /// Pops and applies the settled records at the head. A failed record is never applied:
    /// it stays at the head, and so does every record behind it. The queue and the
    /// checkpoint are each locked once for the whole run of settled records (in that order,
    /// as everywhere).
    fn apply_settled(&self) -> (usize, Head) {
        let mut pending = self.pending();
        let mut applied = Applied::default();
        let mut checkpoint = None;
        let head = loop {
            let Some(head) = pending.slots.front() else {
                break Head::Empty;
            };
            if let Some(failure) = &head.failure {
                break Head::Failed(failure.clone());
            }
            if !head.settled() {
                break Head::Awaiting;
            }
            let slot = pending.slots.pop_front().expect("a head was seen");
            pending.first += 1;
            let checkpoint = checkpoint.get_or_insert_with(|| self.checkpoint());
            applied.add(slot.record, checkpoint, &self.metrics);
        };
        drop(checkpoint);
        drop(pending);
        applied.count_in(&self.metrics);
        (applied.records as usize, head)
    }
}

/// What one run of settled records adds to the metrics, counted as they are applied and
/// added once.
#[derive(Default)]
struct Applied {
    records: u64,
    failed: u64,
    late: u64,
    messages: u64,
    /// When they were applied (read once for the run), for their latencies.
    now_ms: Option<i64>,
}

impl Applied {
    fn add(&mut self, record: InFlight, checkpoint: &mut Checkpoint, metrics: &Metrics) {
        if record.outputs > 0 {
            let now_ms = *self.now_ms.get_or_insert_with(kafka::now_ms);
            metrics.record_latency_ms(now_ms - record.timestamp_ms);
        }
        self.records += 1;
        self.failed += u64::from(record.failed);
        self.late += u64::from(record.late);
        self.messages += record.outputs;
        checkpoint.acknowledge(
            (record.topic, record.partition),
            record.generation,
            record.offset,
            record.updates,
        );
    }

    fn count_in(&self, metrics: &Metrics) {
        if self.records == 0 {
            return;
        }
        (metrics.messages_out).fetch_add(self.messages, Ordering::Relaxed);
        if self.failed > 0 {
            (metrics.records_failed).fetch_add(self.failed, Ordering::Relaxed);
        }
        if self.late > 0 {
            (metrics.records_late).fetch_add(self.late, Ordering::Relaxed);
        }
        (metrics.records_done).fetch_add(self.records, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64) -> InFlight {
        InFlight {
            topic: 0,
            partition: 0,
            generation: 0,
            offset,
            timestamp_ms: kafka::now_ms(),
            updates: StateUpdates::new(),
            outputs: 1,
            failed: false,
            late: false,
        }
    }

    fn acknowledgements() -> Acknowledgements {
        Acknowledgements::new(Arc::new(Metrics::new("test")))
    }

    fn delivery_failed() -> RunnerError {
        RunnerError::Delivery {
            topic: "out".into(),
            source: rdkafka::error::KafkaError::Canceled,
        }
    }

    #[test]
    fn arrived_acknowledgements_are_applied_in_order_up_to_the_first_still_waiting() {
        let acks = acknowledgements();
        let first = acks.register(record(0), 1);
        let late = acks.register(record(1), 2);
        let third = acks.register(record(2), 1);
        acks.delivered(first, Ok(()));
        acks.delivered(third, Ok(()));
        acks.delivered(late, Ok(()));

        assert_eq!(
            acks.apply_arrived(),
            2,
            "offset 1 still waits for one output, and 2 behind it"
        );
        let commits = acks.checkpoint().take_dirty();
        assert_eq!(commits.len(), 1);
        assert_eq!(
            commits[0].next_offsets[&0], 1,
            "only offset 0 is committable"
        );

        acks.delivered(late, Ok(()));
        assert_eq!(acks.apply_arrived(), 0);
        let commits = acks.checkpoint().take_dirty();
        assert_eq!(commits[0].next_offsets[&0], 3);
        assert_eq!(acks.metrics.snapshot().records_done, 3);
    }

    #[test]
    fn a_delivery_error_stays_at_the_head_for_the_main_loop() {
        let acks = acknowledgements();
        let failed = acks.register(record(0), 1);
        let behind = acks.register(record(1), 1);
        acks.delivered(behind, Ok(()));
        acks.delivered(failed, Err(delivery_failed()));

        assert_eq!(acks.apply_arrived(), 2, "nothing passes a failed record");
        let first = futures::executor::block_on(acks.next());
        assert!(matches!(first, Some(Err(RunnerError::Delivery { .. }))));
        let again = futures::executor::block_on(acks.next());
        assert!(
            matches!(again, Some(Err(RunnerError::Delivery { .. }))),
            "a failed record is never applied, however often it is met"
        );
        assert!(acks.checkpoint().take_dirty().is_empty());
    }

    #[test]
    fn outputs_that_could_not_be_sent_keep_their_record_from_being_committed() {
        let acks = acknowledgements();
        let ticket = acks.register(record(0), 3);
        acks.delivered(ticket, Ok(()));
        acks.unsent(ticket, 2, delivery_failed());
        let first = futures::executor::block_on(acks.next());
        assert!(matches!(first, Some(Err(RunnerError::Delivery { .. }))));
        assert!(acks.checkpoint().take_dirty().is_empty());
    }

    #[test]
    fn next_waits_for_the_delivery_callback_and_ends_when_nothing_is_in_flight() {
        let acks = Arc::new(acknowledgements());
        let ticket = acks.register(record(0), 2);
        let callback = {
            let acks = acks.clone();
            std::thread::spawn(move || {
                acks.delivered(ticket, Ok(()));
                std::thread::sleep(std::time::Duration::from_millis(20));
                acks.delivered(ticket, Ok(()));
            })
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(matches!(acks.next().await, Some(Ok(()))));
            assert!(acks.next().await.is_none());
        });
        callback.join().unwrap();
        assert_eq!(acks.checkpoint().take_dirty()[0].next_offsets[&0], 1);
    }

    #[test]
    fn a_record_without_outputs_is_settled_at_once() {
        let acks = acknowledgements();
        acks.register(record(0), 0);
        assert_eq!(acks.apply_arrived(), 0);
        assert_eq!(acks.metrics.snapshot().records_done, 1);
    }
}
