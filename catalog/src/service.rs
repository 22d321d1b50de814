//! Service definitions: what each catalog service is, the parameters it takes (typed, with
//! defaults and validation), the ports it serves, the services it needs, and how readiness is
//! proven.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use weir_contracts::duration::parse_duration;
use weir_contracts::service_kind::ServiceKind;
use weir_contracts::window::TopicWindow;

/// A service on offer.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceDefinition {
    /// What users type: `weir up kafka`.
    #[serde(rename = "name")]
    pub kind: ServiceKind,
    pub description: &'static str,
    pub params: Vec<ParamDef>,
    pub ports: Vec<PortDef>,
    /// Services this one needs, each found through one of its parameters.
    pub needs: Vec<Need>,
    pub readiness: Readiness,
}

/// A typed parameter.
#[derive(Debug, Clone, Serialize)]
pub struct ParamDef {
    pub name: &'static str,
    pub description: &'static str,
    #[serde(flatten)]
    pub kind: ParamKind,
    /// Used when the parameter is not set; `None` with `required: false` means "unset".
    pub default: Option<&'static str>,
    pub required: bool,
}

/// The type of a parameter, with its validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ParamKind {
    String,
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    Duration,
    Url,
    Path,
    Enum {
        values: Vec<&'static str>,
    },
    /// The name of a running instance of the given service.
    Instance {
        service: ServiceKind,
    },
    /// A mapping of names to scalar values, written as YAML (`{threshold: 60, topic: rates}`);
    /// each value is kept verbatim as one value, whatever characters it holds.
    Mapping,
    /// Chart windows fed from Kafka topics, a YAML list of `{topic, y, x, title, kind}`.
    Windows,
}

/// A port a service listens on.
#[derive(Debug, Clone, Serialize)]
pub struct PortDef {
    pub name: &'static str,
    /// Port inside a container (Kubernetes); locally a free loopback port is chosen.
    pub container_port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Http,
}

/// A dependency on another service, satisfied through an `Instance` parameter.
#[derive(Debug, Clone, Serialize)]
pub struct Need {
    pub param: &'static str,
    pub service: ServiceKind,
    /// When the need applies; always when `None`.
    pub when: Option<Condition>,
}

/// A condition on an instance's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    /// The parameter has this value (Kafka needs ZooKeeper only in `mode=zookeeper`).
    Equals(&'static str, &'static str),
    /// The parameter is set (the chart server needs Kafka only for topic-fed windows).
    IsSet(&'static str),
}

impl Need {
    pub fn applies(&self, params: &Params) -> bool {
        match self.when {
            None => true,
            Some(Condition::Equals(param, value)) => params.str(param) == Some(value),
            Some(Condition::IsSet(param)) => params.get(param).is_some(),
        }
    }
}

/// What "ready" means for a service: it really serves, not just "the process started".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readiness {
    /// ZooKeeper answers `ruok` with `imok` and `srvr` reports a serving mode.
    ZooKeeperRuok,
    /// The broker answers a metadata request.
    KafkaMetadata,
    /// `GET path` answers 200.
    Http { path: &'static str },
}

/// A parameter value checked against its definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    String(String),
    Int(i64),
    Bool(bool),
    Duration(#[serde(serialize_with = "serialize_duration")] Duration),
    Mapping(BTreeMap<String, String>),
    Windows(Vec<TopicWindow>),
}

fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}ms", d.as_millis()))
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::String(s) => f.write_str(s),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Duration(d) => write!(f, "{}ms", d.as_millis()),
            ParamValue::Mapping(map) => {
                f.write_str(&serde_json::to_string(map).expect("strings serialize"))
            }
            ParamValue::Windows(windows) => {
                f.write_str(&serde_json::to_string(windows).expect("windows serialize"))
            }
        }
    }
}

/// Parameters of one instance after validation, defaults applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Params(pub BTreeMap<String, ParamValue>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.get(name)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        match self.0.get(name) {
            Some(ParamValue::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        match self.0.get(name) {
            Some(ParamValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.0.get(name) {
            Some(ParamValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn duration(&self, name: &str) -> Option<Duration> {
        match self.0.get(name) {
            Some(ParamValue::Duration(d)) => Some(*d),
            _ => None,
        }
    }

    pub fn mapping(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        match self.0.get(name) {
            Some(ParamValue::Mapping(map)) => Some(map),
            _ => None,
        }
    }

    pub fn windows(&self, name: &str) -> Option<&[TopicWindow]> {
        match self.0.get(name) {
            Some(ParamValue::Windows(windows)) => Some(windows),
            _ => None,
        }
    }
}

/// One thing wrong with the parameters given to a service. All are reported at once.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    #[error("{service} has no parameter `{name}` (parameters: {known})")]
    Unknown {
        service: ServiceKind,
        name: String,
        known: String,
    },
    #[error("{service}: parameter `{name}` is required ({description})")]
    Missing {
        service: ServiceKind,
        name: String,
        description: String,
    },
    #[error("{service}: parameter `{name}` = `{value}`: {reason}")]
    Invalid {
        service: ServiceKind,
        name: String,
        value: String,
        reason: InvalidValue,
    },
}

/// Why one parameter value is refused: what was expected instead. Messages of the parsers
/// underneath are kept as text so that the error stays comparable and cloneable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidValue {
    #[error("must not be empty")]
    Empty,
    #[error("must be a file path")]
    NoPath,
    #[error("cannot resolve the path: {0}")]
    UnresolvablePath(String),
    #[error("expected a whole number between {min} and {max}")]
    NotAWholeNumber { min: i64, max: i64 },
    #[error("must be between {min} and {max}")]
    OutOfRange { min: i64, max: i64 },
    #[error("expected true or false")]
    NotABool,
    #[error(transparent)]
    Duration(#[from] weir_contracts::duration::DurationError),
    #[error("expected an http:// or https:// URL")]
    NotAUrl,
    #[error("expected one of {0}")]
    NotOneOf(String),
    #[error("expected the name of a {0} instance")]
    NotAnInstanceName(String),
    #[error("expected a YAML mapping of names to values, e.g. `{{threshold: 60}}`{}", .0.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    NotAMapping(Option<String>),
    #[error("`{name}` must be one value, not {found}")]
    NotAScalar { name: String, found: String },
    #[error("expected a YAML list of windows `[{{topic: T, y: FIELD}}, …]`: {0}")]
    NotWindows(String),
    #[error("expected at least one window (counting only those whose `when` holds)")]
    NoWindows,
}

/// Why a running instance cannot be given another number of replicas.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotScalable {
    #[error("a {0} runs as one process; it has no replicas")]
    SingleProcess(ServiceKind),
    #[error("a Kafka cluster keeps the brokers it started with: adding or removing one would need its partitions reassigned, which Weir does not do; start a cluster of the size you want with `--set replicas=N`")]
    KafkaBrokers,
    #[error("replicas = {replicas}: {reason}")]
    Invalid { replicas: u32, reason: InvalidValue },
}

impl ServiceDefinition {
    /// Whether `weir scale` may give a running instance `replicas` replicas, or why not.
    /// The replicas of a consumer group (a topology's runners) may come and go: the group
    /// moves their partitions. A Kafka cluster's brokers hold partitions that would have to
    /// be reassigned, so a cluster keeps the size it started with.
    pub fn check_scale(&self, replicas: u32) -> Result<(), NotScalable> {
        let Some(param) = self.params.iter().find(|p| p.name == "replicas") else {
            return Err(NotScalable::SingleProcess(self.kind));
        };
        if self.kind == ServiceKind::Kafka {
            return Err(NotScalable::KafkaBrokers);
        }
        param
            .kind
            .parse(&replicas.to_string())
            .map(|_| ())
            .map_err(|reason| NotScalable::Invalid { replicas, reason })
    }

    /// Checks `given` (`NAME=VALUE` pairs as typed by a user) and applies defaults.
    pub fn validate(&self, given: &[(String, String)]) -> Result<Params, Vec<ParamError>> {
        let mut errors = Vec::new();
        let mut values = BTreeMap::new();
        for (name, raw) in given {
            match self.params.iter().find(|p| p.name == name) {
                None => errors.push(ParamError::Unknown {
                    service: self.kind,
                    name: name.clone(),
                    known: self
                        .params
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
                Some(def) => match def.kind.parse(raw) {
                    Ok(value) => {
                        values.insert(name.clone(), value);
                    }
                    Err(reason) => errors.push(ParamError::Invalid {
                        service: self.kind,
                        name: name.clone(),
                        value: raw.clone(),
                        reason,
                    }),
                },
            }
        }
        for def in &self.params {
            if values.contains_key(def.name) || errors.iter().any(|e| e.names(def.name)) {
                continue;
            }
            match def.default {
                Some(default) => {
                    let value = def.kind.parse(default).expect("catalog defaults are valid");
                    values.insert(def.name.to_string(), value);
                }
                None if def.required => errors.push(ParamError::Missing {
                    service: self.kind,
                    name: def.name.into(),
                    description: def.description.into(),
                }),
                None => {}
            }
        }
        if errors.is_empty() {
            Ok(Params(values))
        } else {
            Err(errors)
        }
    }
}

impl ParamError {
    fn names(&self, param: &str) -> bool {
        match self {
            ParamError::Unknown { name, .. }
            | ParamError::Missing { name, .. }
            | ParamError::Invalid { name, .. } => name == param,
        }
    }
}

impl ParamKind {
    /// Parses and validates one value; the error says what was expected.
    pub fn parse(&self, raw: &str) -> Result<ParamValue, InvalidValue> {
        match self {
            ParamKind::String => {
                if raw.is_empty() {
                    Err(InvalidValue::Empty)
                } else {
                    Ok(ParamValue::String(raw.into()))
                }
            }
            // Services run in directories of their own: a relative path is taken from where
            // the command was given.
            ParamKind::Path => match raw {
                "" => Err(InvalidValue::NoPath),
                _ => std::path::absolute(raw)
                    .map(|p| ParamValue::String(p.display().to_string()))
                    .map_err(|e| InvalidValue::UnresolvablePath(e.to_string())),
            },
            ParamKind::Int { min, max } => {
                let value: i64 = raw
                    .trim()
                    .parse()
                    .map_err(|_| InvalidValue::NotAWholeNumber {
                        min: *min,
                        max: *max,
                    })?;
                if (*min..=*max).contains(&value) {
                    Ok(ParamValue::Int(value))
                } else {
                    Err(InvalidValue::OutOfRange {
                        min: *min,
                        max: *max,
                    })
                }
            }
            ParamKind::Bool => match raw.trim() {
                "true" | "yes" | "1" => Ok(ParamValue::Bool(true)),
                "false" | "no" | "0" => Ok(ParamValue::Bool(false)),
                _ => Err(InvalidValue::NotABool),
            },
            ParamKind::Duration => Ok(ParamValue::Duration(parse_duration(raw)?)),
            ParamKind::Url => {
                if (raw.starts_with("http://") || raw.starts_with("https://"))
                    && raw.len() > "https://".len()
                    && !raw.contains(char::is_whitespace)
                {
                    Ok(ParamValue::String(raw.into()))
                } else {
                    Err(InvalidValue::NotAUrl)
                }
            }
            ParamKind::Enum { values } => {
                if values.contains(&raw) {
                    Ok(ParamValue::String(raw.into()))
                } else {
                    Err(InvalidValue::NotOneOf(values.join(", ")))
                }
            }
            ParamKind::Instance { service } => {
                if is_valid_name(raw) {
                    Ok(ParamValue::String(raw.into()))
                } else {
                    Err(InvalidValue::NotAnInstanceName(service.to_string()))
                }
            }
            ParamKind::Mapping => parse_mapping(raw).map(ParamValue::Mapping),
            ParamKind::Windows => parse_windows(raw).map(ParamValue::Windows),
        }
    }
}

/// A YAML list of windows, each shown only when its optional `when:` holds (e.g. `when:
/// "${candles}"` charts a dataflow the workflow runs only on request).
fn parse_windows(raw: &str) -> Result<Vec<TopicWindow>, InvalidValue> {
    let listed: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_saphyr::from_str(raw).map_err(|e| InvalidValue::NotWindows(e.to_string()))?;
    let mut windows = Vec::new();
    for mut fields in listed {
        // Read as a task's `when:` is, by the same deserializer.
        let shown = match fields.remove("when") {
            Some(when) => weir_contracts::condition::deserialize(when)
                .map_err(|e| InvalidValue::NotWindows(e.to_string()))?
                .unwrap_or(true),
            None => true,
        };
        let window: TopicWindow = serde_json::from_value(fields.into())
            .map_err(|e| InvalidValue::NotWindows(e.to_string()))?;
        if shown {
            windows.push(window);
        }
    }
    if windows.is_empty() {
        return Err(InvalidValue::NoWindows);
    }
    Ok(windows)
}

/// A YAML mapping of names to scalars; numbers and booleans are kept as written.
fn parse_mapping(raw: &str) -> Result<BTreeMap<String, String>, InvalidValue> {
    let value: serde_json::Value =
        serde_saphyr::from_str(raw).map_err(|e| InvalidValue::NotAMapping(Some(e.to_string())))?;
    let serde_json::Value::Object(object) = value else {
        return Err(InvalidValue::NotAMapping(None));
    };
    object
        .into_iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(text) => Ok((name, text)),
            serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                Ok((name, value.to_string()))
            }
            other => Err(InvalidValue::NotAScalar {
                found: other.to_string(),
                name,
            }),
        })
        .collect()
}

/// Instance names: lowercase letters, digits and dashes, starting with a letter, at most 40
/// characters — valid as Kubernetes object names and as directory names.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::find;

    fn given(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_fill_what_is_not_given() {
        let kafka = find("kafka").unwrap();
        let params = kafka.validate(&given(&[("partitions", "3")])).unwrap();
        assert_eq!(params.int("partitions"), Some(3));
        assert_eq!(params.str("mode"), Some("zookeeper"));
        assert_eq!(params.get("zookeeper"), None, "no default: auto-started");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let kafka = find("kafka").unwrap();
        let errors = kafka
            .validate(&given(&[
                ("partitions", "0"),
                ("mode", "raft"),
                ("colour", "red"),
            ]))
            .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[0].contains("`partitions` = `0`: must be between 1 and"),
            "{text:?}"
        );
        assert!(
            text[1].contains("expected one of zookeeper, kraft"),
            "{text:?}"
        );
        assert!(
            text[2].starts_with("kafka has no parameter `colour`"),
            "{text:?}"
        );
    }

    #[test]
    fn required_parameters_are_named() {
        let source = find("http-source").unwrap();
        let errors = source.validate(&[]).unwrap_err();
        let names: Vec<String> = errors
            .iter()
            .map(|e| match e {
                ParamError::Missing { name, .. } => name.clone(),
                other => panic!("unexpected {other}"),
            })
            .collect();
        assert_eq!(names, vec!["url", "topic"]);
    }

    #[test]
    fn typed_values_are_checked() {
        assert!(ParamKind::Url.parse("ftp://x").is_err());
        assert!(ParamKind::Url.parse("https://api.example.com/spot").is_ok());
        assert_eq!(ParamKind::Bool.parse("yes"), Ok(ParamValue::Bool(true)));
        assert_eq!(
            ParamKind::Duration.parse("1m30s"),
            Ok(ParamValue::Duration(Duration::from_secs(90)))
        );
        assert!(ParamKind::Duration.parse("soon").is_err());
        assert!(ParamKind::Instance {
            service: ServiceKind::Kafka
        }
        .parse("Kafka_1")
        .is_err());
    }

    #[test]
    fn structured_values_keep_each_value_whole() {
        let mapping = ParamKind::Mapping
            .parse(r#"{"pointer": "/data/amount", "quote": "a\"b: {c}\nd", "threshold": 60}"#)
            .unwrap();
        let expected = BTreeMap::from([
            ("pointer".to_string(), "/data/amount".to_string()),
            ("quote".to_string(), "a\"b: {c}\nd".to_string()),
            ("threshold".to_string(), "60".to_string()),
        ]);
        assert_eq!(mapping, ParamValue::Mapping(expected));
        assert!(ParamKind::Mapping
            .parse("{a: [1, 2]}")
            .unwrap_err()
            .to_string()
            .contains("must be one value"));
        let windows = ParamKind::Windows
            .parse("[{topic: rates, y: rate, title: 'Close (USD, replayed)', kind: markers}]")
            .unwrap();
        let ParamValue::Windows(windows) = windows else {
            panic!("not windows: {windows:?}")
        };
        assert_eq!(windows[0].title, "Close (USD, replayed)");
        assert!(ParamKind::Windows
            .parse("[{topic: rates}]")
            .unwrap_err()
            .to_string()
            .contains("missing field `y`"));
    }

    #[test]
    fn a_window_is_left_out_when_its_condition_is_false() {
        let parsed = ParamKind::Windows
            .parse("[{topic: rates, y: rate}, {topic: candles, y: close, when: '!true'}, {topic: highs, y: high, when: 'true'}]")
            .unwrap();
        let ParamValue::Windows(windows) = parsed else {
            panic!("not windows: {parsed:?}")
        };
        let topics: Vec<&str> = windows.iter().map(|w| w.topic.as_str()).collect();
        assert_eq!(topics, ["rates", "highs"]);
        let refused = |raw: &str| ParamKind::Windows.parse(raw).unwrap_err().to_string();
        assert!(refused("[{topic: r, y: v, when: maybe}]").contains("`when: maybe` must be true"));
        assert!(refused("[{topic: r, y: v, when: false}]").contains("at least one window"));
    }

    #[test]
    fn names_are_dns_labels() {
        assert!(is_valid_name("kafka-server-1"));
        for bad in ["", "Kafka", "1kafka", "kafka_1", "kafka-", &"k".repeat(41)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
