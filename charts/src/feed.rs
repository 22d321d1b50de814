//! Windows fed from Kafka topics: each message of a topic becomes a point, its y (and
//! optionally x) taken from JSON fields of the message.

use std::future::Future;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message};
use weir_contracts::number::as_number;
use weir_contracts::window::TopicWindow;

use crate::store::{Charts, WindowOptions};

/// Why a message gives a window no point.
#[derive(Debug, thiserror::Error)]
pub enum NoPoint {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("no field `{0}`")]
    NoField(String),
    #[error(transparent)]
    NotANumber(#[from] weir_contracts::number::NotANumber),
    #[error("the message has no timestamp")]
    NoTimestamp,
}

/// The point a message gives a window, or why it gives none.
pub fn point(
    window: &TopicWindow,
    payload: &[u8],
    timestamp_ms: Option<i64>,
) -> Result<(f64, f64), NoPoint> {
    let document: serde_json::Value = serde_json::from_slice(payload)?;
    let field = |name: &str| {
        document
            .get(name)
            .ok_or_else(|| NoPoint::NoField(name.into()))
    };
    let y = as_number(field(&window.y)?)?;
    let x = match &window.x {
        Some(name) => as_number(field(name)?)?,
        None => timestamp_ms.ok_or(NoPoint::NoTimestamp)? as f64,
    };
    Ok((x, y))
}

/// Consumes every window's topic from the beginning until `shutdown`.
pub async fn feed(
    brokers: &str,
    windows: Vec<TopicWindow>,
    charts: Charts,
    shutdown: impl Future<Output = ()>,
) -> Result<(), rdkafka::error::KafkaError> {
    if windows.is_empty() {
        shutdown.await;
        return Ok(());
    }
    for window in &windows {
        if !charts.exists(&window.env, &window.win) {
            let options = WindowOptions {
                title: window.title.clone(),
                x_label: (window.x_label.clone())
                    .or_else(|| window.x.clone())
                    .unwrap_or_else(|| "time (ms)".into()),
                y_label: window.y_label.clone().unwrap_or_else(|| window.y.clone()),
                kind: window.kind,
                categories: Vec::new(),
            };
            charts.create(
                &window.env,
                &window.win,
                options,
                vec![(window.series.clone(), vec![])],
            );
        }
    }
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("weir-charts-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "2000")
        .create()?;
    let mut topics: Vec<&str> = windows.iter().map(|w| w.topic.as_str()).collect();
    topics.sort_unstable();
    topics.dedup();
    consumer.subscribe(&topics)?;
    tracing::info!(?topics, "charting Kafka topics");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            message = consumer.recv() => match message {
                Ok(message) => {
                    let payload = message.payload().unwrap_or_default();
                    for window in windows.iter().filter(|w| w.topic == message.topic()) {
                        match point(window, payload, message.timestamp().to_millis()) {
                            Ok(p) => if !charts.append(&window.env, &window.win, &window.series, &[p], false) {
                                tracing::warn!(win = %window.win, "window replaced by one that is not a plot; point dropped");
                            },
                            Err(reason) => tracing::debug!(topic = %window.topic, "message skipped: {reason}"),
                        }
                    }
                }
                // Topics that do not exist yet are retried by librdkafka; keep going.
                Err(error) => {
                    tracing::warn!("consuming chart topics: {error}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_come_from_fields_or_the_timestamp() {
        let w: TopicWindow = "topic=r,y=rate".parse().unwrap();
        assert_eq!(
            point(&w, br#"{"rate": "478000.5"}"#, Some(7)).unwrap(),
            (7.0, 478000.5)
        );
        let w: TopicWindow = "topic=r,y=variation,x=timestamp".parse().unwrap();
        assert_eq!(
            point(&w, br#"{"variation": -60.5, "timestamp": 1000}"#, None).unwrap(),
            (1000.0, -60.5)
        );
        assert!(point(&w, b"oops", None).is_err());
    }
}
