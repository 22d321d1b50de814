//! The benchmark's input: synthetic ticker documents, keyed over a few currency pairs.
//!
//! They only feed the benchmark; nothing here is shown as market data.

use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use weir_topology::kafka::producer_config;

/// The key of record `index`: records go round-robin over `keys` keys, so `diff` keeps one
/// previous value per key, as it does for a source that polls several pairs.
pub fn key(index: u64, keys: u64) -> String {
    format!("pair-{}", index % keys)
}

/// A document shaped like a spot-price API answer whose rate wobbles around 480,000, so that
/// some variations cross the reference topology's threshold and every operator does work.
pub fn wobbling_document(index: u64) -> String {
    let wobble = ((index.wrapping_mul(2654435761) >> 7) % 20_000) as f64 / 100.0 - 100.0;
    let rate = 480_000.0 + wobble;
    document(&format!("{rate:.2}"))
}

/// A document whose rate names its sequence number (`100000.00 + sequence / 100`), so that an
/// output carrying the rate tells which input it came from. Used to time each record.
pub fn numbered_document(sequence: u64) -> String {
    document(&format!(
        "{}.{:02}",
        100_000 + sequence / 100,
        sequence % 100
    ))
}

/// The sequence number a rate written by [`numbered_document`] stands for.
pub fn sequence_of_rate(rate: f64) -> Option<u64> {
    let hundredths = (rate * 100.0).round();
    (hundredths >= 10_000_000.0).then(|| hundredths as u64 - 10_000_000)
}

fn document(amount: &str) -> String {
    format!(r#"{{"data":{{"amount":"{amount}","base":"BTC","currency":"CNY"}}}}"#)
}

/// The timestamps of the loaded messages: their event time.
#[derive(Debug, Clone, Copy)]
pub enum EventTime {
    /// When each is written, as the producer's clock says.
    Written,
    /// Record `index` of `count` at `start_ms + index * span_ms / count`: event time that moves
    /// on through the load, so that a windowed topology's windows close while it runs.
    Spread { start_ms: i64, span_ms: i64 },
}

impl EventTime {
    fn of(self, index: u64, count: u64) -> Option<i64> {
        match self {
            EventTime::Written => None,
            EventTime::Spread { start_ms, span_ms } => {
                let offset = i128::from(span_ms) * i128::from(index) / i128::from(count.max(1));
                Some(start_ms + offset as i64)
            }
        }
    }
}

/// Writes `count` keyed wobbling documents as fast as the broker takes them, stamped with
/// `event_time`, printing progress every tenth.
pub async fn fill(
    bootstrap: &str,
    topic: &str,
    count: u64,
    keys: u64,
    event_time: EventTime,
) -> anyhow::Result<()> {
    fill_with(bootstrap, topic, count, event_time, |index| {
        (key(index, keys), wobbling_document(index))
    })
    .await
}

/// Writes `count` records, record `index` being `record(index)` (its key and payload), as
/// fast as the broker takes them, stamped with `event_time`, printing progress every tenth.
pub async fn fill_with(
    bootstrap: &str,
    topic: &str,
    count: u64,
    event_time: EventTime,
    record: impl Fn(u64) -> (String, String),
) -> anyhow::Result<()> {
    let make = record;
    let producer: FutureProducer = producer_config(bootstrap).create()?;
    let started = Instant::now();
    let mut pending: Vec<DeliveryFuture> = Vec::with_capacity(PENDING_LIMIT);
    let tenth = (count / 10).max(1);
    for index in 0..count {
        let (key, payload) = make(index);
        let timestamp = event_time.of(index, count);
        let record = || {
            let record = FutureRecord::to(topic).key(&key).payload(&payload);
            match timestamp {
                Some(ms) => record.timestamp(ms),
                None => record,
            }
        };
        loop {
            match producer.send_result(record()) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    settle(&mut pending).await?;
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
        if pending.len() >= PENDING_LIMIT {
            settle(&mut pending).await?;
        }
        if (index + 1) % tenth == 0 {
            eprintln!(
                "  loaded {:>3}% ({} records, {:.1} s)",
                (index + 1) * 100 / count,
                index + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    settle(&mut pending).await
}

/// Deliveries awaited at once while loading.
const PENDING_LIMIT: usize = 20_000;

async fn settle(pending: &mut Vec<DeliveryFuture>) -> anyhow::Result<()> {
    for delivery in pending.drain(..) {
        delivery
            .await?
            .map_err(|(error, _)| error)
            .map_err(|error| anyhow::anyhow!("the broker refused a benchmark record: {error}"))?;
    }
    Ok(())
}

/// Sleeps until `due`, spinning for the last stretch so that paces of tens of thousands of
/// records per second keep their spacing.
pub fn wait_until(due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > Duration::from_micros(200) {
            std::thread::sleep(left - Duration::from_micros(100));
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wobbling_documents_look_like_spot_prices() {
        let doc: serde_json::Value = serde_json::from_str(&wobbling_document(7)).unwrap();
        let amount: f64 = doc["data"]["amount"].as_str().unwrap().parse().unwrap();
        assert!((479_900.0..=480_100.0).contains(&amount));
    }

    #[test]
    fn numbered_documents_give_their_sequence_back() {
        for sequence in [0, 1, 99, 100, 12_345, 2_999_999] {
            let doc: serde_json::Value =
                serde_json::from_str(&numbered_document(sequence)).unwrap();
            let rate: f64 = doc["data"]["amount"].as_str().unwrap().parse().unwrap();
            assert_eq!(sequence_of_rate(rate), Some(sequence));
        }
        assert_eq!(sequence_of_rate(480_000.5), Some(38_000_050));
        assert_eq!(sequence_of_rate(12.0), None);
    }

    #[test]
    fn spread_event_time_moves_on_evenly_through_the_load() {
        let spread = EventTime::Spread {
            start_ms: 1_000,
            span_ms: 600_000,
        };
        assert_eq!(spread.of(0, 1_000_000), Some(1_000));
        assert_eq!(spread.of(500_000, 1_000_000), Some(301_000));
        assert_eq!(spread.of(999_999, 1_000_000), Some(600_999));
        assert_eq!(EventTime::Written.of(7, 10), None);
    }

    #[test]
    fn keys_go_round_robin() {
        assert_eq!(key(0, 4), "pair-0");
        assert_eq!(key(5, 4), "pair-1");
    }
}
