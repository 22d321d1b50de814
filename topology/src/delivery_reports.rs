//! Serving the producer's delivery reports on the runner's own thread.
//!
//! rdkafka's `ThreadedProducer` serves them on a thread of its own, which frees each
//! delivered message there: librdkafka allocated it on the runner's thread, in that thread's
//! malloc arena, so every free took the arena's lock against the runner's next allocations
//! (measured: futex waits and wake-ups of both threads, some 10 % of the runner process's
//! time). Served here, the callback runs between two bursts of records and the memory goes
//! back to the thread that reuses it.
//!
//! librdkafka calls [`wake`] from its own thread when the producer's event queue goes from
//! empty to not empty (the same mechanism rdkafka's `StreamConsumer` uses for messages); the
//! runner's loop awaits [`DeliveryReports::ready`] and then serves every report queued.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::bindings::{self as rdsys, rd_kafka_queue_t, rd_kafka_t};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use tokio::sync::Notify;

/// How long to wait before queueing again when librdkafka's local queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(2);

/// Events served in one call of [`DeliveryReports::serve`].
const EVENTS_PER_SERVE: usize = 64;

/// A producer whose delivery reports are served by whoever calls [`DeliveryReports::serve`].
pub struct DeliveryReports<C: ProducerContext + 'static> {
    /// librdkafka's reference to the producer's main event queue, released on drop.
    queue: NonNull<rd_kafka_queue_t>,
    /// Notified from librdkafka's thread; its address is the callback's opaque while the
    /// callback is enabled.
    ready: Arc<Notify>,
    /// Held so that the queue never outlives its client.
    producer: Arc<BaseProducer<C>>,
}

impl<C: ProducerContext + 'static> std::fmt::Debug for DeliveryReports<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryReports")
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

// The queue pointer is used only through librdkafka calls, which are thread-safe.
unsafe impl<C: ProducerContext> Send for DeliveryReports<C> {}
unsafe impl<C: ProducerContext> Sync for DeliveryReports<C> {}

/// Called by librdkafka, on one of its threads, when the queue stops being empty.
unsafe extern "C" fn wake(_client: *mut rd_kafka_t, opaque: *mut c_void) {
    // SAFETY: `opaque` is the `Notify` that `DeliveryReports` keeps alive until it has
    // disabled this callback (librdkafka calls it under the queue's lock, which disabling
    // takes too, so no call is under way once that returns).
    let ready = unsafe { &*(opaque as *const Notify) };
    ready.notify_one();
}

impl<C: ProducerContext + 'static> DeliveryReports<C> {
    /// Watches `producer`'s event queue.
    pub fn watch(producer: Arc<BaseProducer<C>>) -> Self {
        let ready = Arc::new(Notify::new());
        // SAFETY: the client pointer is valid while `producer` lives, which this holds.
        let queue = unsafe { rdsys::rd_kafka_queue_get_main(producer.client().native_ptr()) };
        let queue = NonNull::new(queue).expect("librdkafka gives every client a main queue");
        // SAFETY: the opaque points into `ready`, held until the callback is disabled.
        unsafe {
            rdsys::rd_kafka_queue_cb_event_enable(
                queue.as_ptr(),
                Some(wake),
                Arc::as_ptr(&ready) as *mut c_void,
            )
        };
        let reports = Self {
            queue,
            ready,
            producer,
        };
        // The callback fires only when the queue goes from empty to not empty: whatever the
        // producer queued before it was enabled (a log line about the broker, say) would
        // otherwise never be served, nor anything behind it.
        if reports.queued() > 0 {
            reports.ready.notify_one();
        }
        reports
    }

    /// The producer the reports come from.
    pub fn producer(&self) -> &Arc<BaseProducer<C>> {
        &self.producer
    }

    /// Resolves when reports may be waiting (at once if some arrived since the last call).
    pub async fn ready(&self) {
        self.ready.notified().await
    }

    /// Queues `record`, waiting while librdkafka's local queue is full: its messages leave
    /// that queue when their delivery reports are served, so they are served while waiting.
    pub async fn send<K, P>(
        &self,
        record: BaseRecord<'_, K, P, C::DeliveryOpaque>,
    ) -> Result<(), KafkaError>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        let mut record = record;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    self.serve();
                    tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// Serves the reports queued, running the context's delivery callback for each, here.
    /// Each event carries a batch of reports; after [`EVENTS_PER_SERVE`] of them the rest
    /// wait for the next call (`ready` resolves at once), so that the loop also reads.
    pub fn serve(&self) {
        for _ in 0..EVENTS_PER_SERVE {
            if self.queued() == 0 {
                return;
            }
            self.producer.poll(Duration::ZERO);
        }
        if self.queued() > 0 {
            self.ready.notify_one();
        }
    }

    fn queued(&self) -> usize {
        // SAFETY: the queue reference is valid until drop.
        unsafe { rdsys::rd_kafka_queue_length(self.queue.as_ptr()) }
    }
}

impl<C: ProducerContext + 'static> Drop for DeliveryReports<C> {
    fn drop(&mut self) {
        // SAFETY: disabling first means no call of `wake` can use `ready` afterwards; the
        // queue reference is released while the client (held in `producer`) still lives.
        unsafe {
            rdsys::rd_kafka_queue_cb_event_enable(self.queue.as_ptr(), None, std::ptr::null_mut());
            rdsys::rd_kafka_queue_destroy(self.queue.as_ptr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::config::ClientConfig;
    use std::time::Instant;

    /// Events waiting in `producer`'s main queue, read without watching it.
    fn main_queue_length(producer: &BaseProducer) -> usize {
        // SAFETY: the client lives while `producer` does; the reference is released here.
        unsafe {
            let queue = rdsys::rd_kafka_queue_get_main(producer.client().native_ptr());
            let length = rdsys::rd_kafka_queue_length(queue);
            rdsys::rd_kafka_queue_destroy(queue);
            length
        }
    }

    #[tokio::test]
    async fn what_the_producer_queued_before_it_was_watched_is_served() {
        // Nothing listens there: the producer queues errors and log lines about it at once.
        let producer: Arc<BaseProducer> = Arc::new(
            ClientConfig::new()
                .set("bootstrap.servers", "127.0.0.1:1")
                .create()
                .expect("a producer needs no broker to be created"),
        );
        let started = Instant::now();
        while main_queue_length(&producer) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the producer queued nothing about the broker it cannot reach"
            );
            std::thread::sleep(Duration::from_millis(20));
        }

        let reports = DeliveryReports::watch(producer);
        tokio::time::timeout(Duration::from_secs(5), reports.ready())
            .await
            .expect("events queued before watching wake the reader");
        reports.serve();
    }
}
