//! Chart windows fed from Kafka topics, as users write them in workflows and as the chart
//! server takes them on its command line.

use serde::{Deserialize, Serialize};

/// The keys of a window's short form, for error messages.
const KEYS: &str = "topic, y, x, title, env, win, series, kind, x_label, y_label";

/// Why a window could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowSpecError {
    /// The JSON form did not describe a window (serde's message says where).
    #[error("not a window: {0}")]
    Invalid(String),
    /// The short form named a key windows do not have.
    #[error("unknown key `{0}` (keys: {KEYS})")]
    UnknownKey(String),
    /// A part of the short form was not `KEY=VALUE`, most often a value holding a comma.
    #[error(
        "`{0}` is not KEY=VALUE (keys: {KEYS}); for a value with a comma write the window as JSON"
    )]
    NotKeyValue(String),
    /// A required key is missing.
    #[error("a window needs `{0}=`")]
    Missing(&'static str),
    /// Windows fed from topics hold points; text and properties windows are fed over HTTP.
    #[error("a window fed from a topic is a plot: kind `{}` is not one (use line, markers or bar)", .0.as_str())]
    NotAPlot(WindowKind),
}

/// What a window shows, and how.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "kebab-case")]
pub enum WindowKind {
    /// Points joined in x order: a quantity that moves continuously (rates, variations).
    #[default]
    Line,
    /// Points drawn apart: events that happen now and then (notifications).
    Markers,
    /// One bar per point.
    Bar,
    /// A running log of text entries (Visdom's `text` window).
    Text,
    /// A list of named values (Visdom's `properties` window).
    Properties,
}

impl WindowKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the window holds series of points.
    pub fn is_plot(self) -> bool {
        matches!(
            self,
            WindowKind::Line | WindowKind::Markers | WindowKind::Bar
        )
    }
}

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
    type Error = WindowSpecError;

    fn try_from(file: TopicWindowFile) -> Result<Self, WindowSpecError> {
        if !file.kind.is_plot() {
            return Err(WindowSpecError::NotAPlot(file.kind));
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
    type Err = WindowSpecError;

    /// JSON (`{"topic": …}`), or the short form `topic=T,y=FIELD[,x=…][,title=…][,env=…]
    /// [,win=…][,series=…][,kind=line|markers|bar]` for people typing it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim_start().starts_with('{') {
            return serde_json::from_str(text).map_err(|e| WindowSpecError::Invalid(e.to_string()));
        }
        let mut fields = serde_json::Map::new();
        for part in text.split(',') {
            match part.split_once('=') {
                Some((key, value)) if KEYS.split(", ").any(|k| k == key.trim()) => {
                    fields.insert(key.trim().to_string(), value.trim().into());
                }
                Some((key, _)) => return Err(WindowSpecError::UnknownKey(key.trim().to_string())),
                None => return Err(WindowSpecError::NotKeyValue(part.to_string())),
            }
        }
        for required in ["topic", "y"] {
            if !fields.contains_key(required) {
                return Err(WindowSpecError::Missing(required));
            }
        }
        serde_json::from_value(fields.into()).map_err(|e| WindowSpecError::Invalid(e.to_string()))
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
            .to_string()
            .contains("unknown key `colour`"));
        assert!("topic=r,y=v,title=Close (USD, replayed)"
            .parse::<TopicWindow>()
            .unwrap_err()
            .to_string()
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
            .to_string()
            .contains("unknown variant `pie`"));
        assert!("topic=r,y=v,kind=text"
            .parse::<TopicWindow>()
            .unwrap_err()
            .to_string()
            .contains("kind `text` is not one"));
        assert!("y=v"
            .parse::<TopicWindow>()
            .unwrap_err()
            .to_string()
            .contains("needs `topic=`"));
    }
}
