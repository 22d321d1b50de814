//! Windows fed from Kafka topics: each message of a topic becomes a point, its y (and
//! optionally x) taken from JSON fields of the message.

use std::future::Future;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message};
use weir_topology::operators::as_number;

use crate::store::{Charts, WindowOptions};

/// A window fed from a topic, e.g. `topic=rates,y=rate,x=timestamp,title=BTC rate (CNY)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicWindow {
    pub topic: String,
    /// Field holding y.
    pub y: String,
    /// Field holding x; the message timestamp (ms) when not given.
    pub x: Option<String>,
    pub title: String,
    pub env: String,
    pub win: String,
    pub series: String,
}

impl std::str::FromStr for TopicWindow {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const KEYS: [&str; 7] = ["topic", "y", "x", "title", "env", "win", "series"];
        let mut fields: std::collections::BTreeMap<String, String> =
            std::collections::BTreeMap::new();
        let mut last: Option<String> = None;
        for part in text.split(',') {
            match part.split_once('=') {
                Some((key, value)) if KEYS.contains(&key.trim()) => {
                    fields.insert(key.trim().to_string(), value.trim().to_string());
                    last = Some(key.trim().to_string());
                }
                Some((key, _)) => {
                    return Err(format!(
                        "unknown key `{}` (keys: topic, y, x, title, env, win, series)",
                        key.trim()
                    ))
                }
                // A comma inside a value (a title such as "Close (USD, replayed)").
                None => match last.as_ref().and_then(|key| fields.get_mut(key)) {
                    Some(value) => {
                        value.push(',');
                        value.push_str(part);
                    }
                    None => {
                        return Err(format!(
                            "`{part}` is not KEY=VALUE (keys: topic, y, x, title, env, win, series)"
                        ))
                    }
                },
            }
        }
        let mut take = |key: &str| fields.remove(key);
        let topic = take("topic").ok_or("a window needs `topic=`")?;
        let y = take("y").ok_or("a window needs `y=` (the JSON field to chart)")?;
        let window = TopicWindow {
            x: take("x"),
            title: take("title").unwrap_or_else(|| topic.clone()),
            env: take("env").unwrap_or_else(|| "main".into()),
            win: take("win").unwrap_or_else(|| topic.clone()),
            series: take("series").unwrap_or_else(|| y.clone()),
            topic,
            y,
        };
        match fields.keys().next() {
            Some(unknown) => Err(format!(
                "unknown key `{unknown}` (keys: topic, y, x, title, env, win, series)"
            )),
            None => Ok(window),
        }
    }
}

/// The point a message gives a window, or why it gives none.
pub fn point(
    window: &TopicWindow,
    payload: &[u8],
    timestamp_ms: Option<i64>,
) -> Result<(f64, f64), String> {
    let document: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let y = as_number(
        document
            .get(&window.y)
            .ok_or_else(|| format!("no field `{}`", window.y))?,
    )?;
    let x = match &window.x {
        Some(field) => as_number(
            document
                .get(field)
                .ok_or_else(|| format!("no field `{field}`"))?,
        )?,
        None => timestamp_ms.ok_or("the message has no timestamp")? as f64,
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
                x_label: window.x.clone().unwrap_or_else(|| "time (ms)".into()),
                y_label: window.y.clone(),
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
                            Ok(p) => charts.append(&window.env, &window.win, &window.series, &[p], false),
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
    fn window_specs_parse_with_defaults_and_refuse_unknown_keys() {
        let w: TopicWindow = "topic=rates,y=rate".parse().unwrap();
        assert_eq!(
            (
                w.win.as_str(),
                w.env.as_str(),
                w.series.as_str(),
                w.x.as_deref()
            ),
            ("rates", "main", "rate", None)
        );
        assert!("topic=r,y=v,colour=red"
            .parse::<TopicWindow>()
            .unwrap_err()
            .contains("unknown key `colour`"));
        let titled: TopicWindow = "topic=r,y=v,title=Close (USD, replayed),env=e"
            .parse()
            .unwrap();
        assert_eq!(
            (titled.title.as_str(), titled.env.as_str()),
            ("Close (USD, replayed)", "e")
        );
        assert!("y=v"
            .parse::<TopicWindow>()
            .unwrap_err()
            .contains("needs `topic=`"));
    }

    #[test]
    fn points_come_from_fields_or_the_timestamp() {
        let w: TopicWindow = "topic=r,y=rate".parse().unwrap();
        assert_eq!(
            point(&w, br#"{"rate": "478000.5"}"#, Some(7)),
            Ok((7.0, 478000.5))
        );
        let w: TopicWindow = "topic=r,y=variation,x=timestamp".parse().unwrap();
        assert_eq!(
            point(&w, br#"{"variation": -60.5, "timestamp": 1000}"#, None),
            Ok((1000.0, -60.5))
        );
        assert!(point(&w, b"oops", None).is_err());
    }
}
