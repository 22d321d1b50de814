//! Windows fed from Kafka topics: each message of a topic becomes a point, its y (and
//! optionally x) taken from JSON fields of the message.

use std::future::Future;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message};
use weir_topology::operators::as_number;

use serde::{Deserialize, Serialize};

use crate::store::{Charts, WindowKind, WindowOptions};

/// A window fed from a topic. Written in a workflow as a YAML mapping
/// (`{topic: rates, y: rate, x: timestamp, title: BTC rate, kind: line}`); on the command
/// line as the same mapping in JSON, or briefly as `topic=rates,y=rate,title=BTC rate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TopicWindowFile")]
pub struct TopicWindow {
    pub topic: String,
    /// Field holding y.
    pub y: String,
    /// Field holding x; the message timestamp (ms) when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    pub title: String,
    pub env: String,
    pub win: String,
    pub series: String,
    pub kind: WindowKind,
    /// Axis labels; the field names (or "time (ms)") when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y_label: Option<String>,
}

/// A window as written, before defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicWindowFile {
    topic: String,
    y: String,
    x: Option<String>,
    title: Option<String>,
    env: Option<String>,
    win: Option<String>,
    series: Option<String>,
    #[serde(default)]
    kind: WindowKind,
    x_label: Option<String>,
    y_label: Option<String>,
}

impl TryFrom<TopicWindowFile> for TopicWindow {
    type Error = String;

    fn try_from(file: TopicWindowFile) -> Result<Self, String> {
        if !file.kind.is_plot() {
            return Err(format!(
                "a window fed from a topic is a plot: kind `{}` is not one (use line, markers or bar)",
                file.kind.as_str()
            ));
        }
        Ok(TopicWindow {
            x: file.x,
            title: file.title.unwrap_or_else(|| file.topic.clone()),
            env: file.env.unwrap_or_else(|| "main".into()),
            win: file.win.unwrap_or_else(|| file.topic.clone()),
            series: file.series.unwrap_or_else(|| file.y.clone()),
            kind: file.kind,
            x_label: file.x_label,
            y_label: file.y_label,
            topic: file.topic,
            y: file.y,
        })
    }
}

impl TopicWindow {
    /// The window as one command-line argument (JSON), read back by [`FromStr`].
    pub fn to_arg(&self) -> String {
        serde_json::to_string(self).expect("a window serializes")
    }
}

impl std::str::FromStr for TopicWindow {
    type Err = String;

    /// JSON (`{"topic": …}`), or the short form `topic=T,y=FIELD[,x=…][,title=…][,env=…]
    /// [,win=…][,series=…][,kind=line|markers|bar]` for people typing it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim_start().starts_with('{') {
            return serde_json::from_str(text).map_err(|e| format!("not a window: {e}"));
        }
        const KEYS: &str = "topic, y, x, title, env, win, series, kind, x_label, y_label";
        let mut fields = serde_json::Map::new();
        for part in text.split(',') {
            match part.split_once('=') {
                Some((key, value)) if KEYS.split(", ").any(|k| k == key.trim()) => {
                    fields.insert(key.trim().to_string(), value.trim().into());
                }
                Some((key, _)) => {
                    return Err(format!("unknown key `{}` (keys: {KEYS})", key.trim()))
                }
                None => {
                    return Err(format!(
                        "`{part}` is not KEY=VALUE (keys: {KEYS}); for a value with a comma \
                         write the window as JSON"
                    ))
                }
            }
        }
        for required in ["topic", "y"] {
            if !fields.contains_key(required) {
                return Err(format!("a window needs `{required}=`"));
            }
        }
        serde_json::from_value(fields.into()).map_err(|e| format!("not a window: {e}"))
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
        assert!("topic=r,y=v,title=Close (USD, replayed)"
            .parse::<TopicWindow>()
            .unwrap_err()
            .contains("write the window as JSON"));
        let titled: TopicWindow =
            r#"{"topic": "r", "y": "v", "title": "Close (USD, replayed)", "kind": "markers"}"#
                .parse()
                .unwrap();
        assert_eq!(
            (titled.title.as_str(), titled.kind),
            ("Close (USD, replayed)", WindowKind::Markers)
        );
        assert_eq!(titled.to_arg().parse::<TopicWindow>(), Ok(titled));
        assert!(r#"{"topic": "r", "y": "v", "kind": "pie"}"#
            .parse::<TopicWindow>()
            .unwrap_err()
            .contains("unknown variant `pie`"));
        assert!("topic=r,y=v,kind=text"
            .parse::<TopicWindow>()
            .unwrap_err()
            .contains("kind `text` is not one"));
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
