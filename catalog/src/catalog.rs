//! The services on offer.

use weir_contracts::service_kind::{ServiceKind, UnknownService};

use crate::service::{
    Condition, Need, ParamDef, ParamKind, PortDef, Protocol, Readiness, ServiceDefinition,
};

/// Every service, in the order the catalog lists them.
pub fn services() -> Vec<ServiceDefinition> {
    ServiceKind::all().map(definition).collect()
}

/// The definition of a kind of service.
pub fn definition(kind: ServiceKind) -> ServiceDefinition {
    match kind {
        ServiceKind::ZooKeeper => zookeeper(),
        ServiceKind::Kafka => kafka(),
        ServiceKind::TopologyRunner => topology_runner(),
        ServiceKind::ChartServer => chart_server(),
        ServiceKind::HttpSource => http_source(),
        ServiceKind::ReplaySource => replay_source(),
    }
}

/// The service called `name` as a user typed it, or which names the catalog offers.
pub fn find(name: &str) -> Result<ServiceDefinition, UnknownService> {
    ServiceKind::parse(name).map(definition)
}

fn param(
    name: &'static str,
    description: &'static str,
    kind: ParamKind,
    default: Option<&'static str>,
) -> ParamDef {
    ParamDef {
        name,
        description,
        kind,
        default,
        required: false,
    }
}

fn required(name: &'static str, description: &'static str, kind: ParamKind) -> ParamDef {
    ParamDef {
        name,
        description,
        kind,
        default: None,
        required: true,
    }
}

fn heap(default: &'static str) -> ParamDef {
    param(
        "heap_mb",
        "Java heap size in MiB",
        ParamKind::Int {
            min: 64,
            max: 16384,
        },
        Some(default),
    )
}

fn image(default: &'static str) -> ParamDef {
    param(
        "image",
        "Container image used on Kubernetes",
        ParamKind::String,
        Some(default),
    )
}

fn cpu(default: &'static str) -> ParamDef {
    param(
        "cpu",
        "CPU request on Kubernetes, as a Kubernetes quantity (250m, 2)",
        ParamKind::String,
        Some(default),
    )
}

fn kafka_need() -> ParamDef {
    param(
        "kafka",
        "Kafka instance to use; one is started when not given",
        ParamKind::Instance {
            service: ServiceKind::Kafka,
        },
        None,
    )
}

/// The image that carries the `weir` binary (runner, sources, chart server).
pub const WEIR_IMAGE: &str = concat!("ghcr.io/weir-sandbox/weir:", env!("CARGO_PKG_VERSION"));

fn zookeeper() -> ServiceDefinition {
    ServiceDefinition {
        kind: ServiceKind::ZooKeeper,
        description: "Apache ZooKeeper 3.8, the coordination service Kafka uses in ZooKeeper mode",
        params: vec![heap("256"), cpu("100m"), image("zookeeper:3.8")],
        ports: vec![PortDef {
            name: "client",
            container_port: 2181,
            protocol: Protocol::Tcp,
        }],
        needs: vec![],
        readiness: Readiness::ZooKeeperRuok,
    }
}

fn kafka() -> ServiceDefinition {
    ServiceDefinition {
        kind: ServiceKind::Kafka,
        description: "Apache Kafka 3.9 broker (ZooKeeper mode by default, KRaft available)",
        params: vec![
            param(
                "mode",
                "Metadata mode: `zookeeper` (needs a ZooKeeper instance) or `kraft` (self-managed)",
                ParamKind::Enum {
                    values: vec!["zookeeper", "kraft"],
                },
                Some("zookeeper"),
            ),
            param(
                "zookeeper",
                "ZooKeeper instance to use in zookeeper mode; one is started when not given",
                ParamKind::Instance {
                    service: ServiceKind::ZooKeeper,
                },
                None,
            ),
            param(
                "replicas",
                "Brokers in the cluster; with more than one, topics keep min(3, replicas) copies of each partition and writes need all but one of them",
                ParamKind::Int { min: 1, max: 9 },
                Some("1"),
            ),
            param(
                "partitions",
                "Default number of partitions of new topics",
                ParamKind::Int { min: 1, max: 1000 },
                Some("1"),
            ),
            param(
                "auto_create_topics",
                "Create topics on first use",
                ParamKind::Bool,
                Some("true"),
            ),
            heap("768"),
            cpu("250m"),
            image("apache/kafka:3.9.1"),
        ],
        ports: vec![PortDef {
            name: "broker",
            container_port: 9092,
            protocol: Protocol::Tcp,
        }],
        needs: vec![Need {
            param: "zookeeper",
            service: ServiceKind::ZooKeeper,
            when: Some(Condition::Equals("mode", "zookeeper")),
        }],
        readiness: Readiness::KafkaMetadata,
    }
}

fn topology_runner() -> ServiceDefinition {
    ServiceDefinition {
        kind: ServiceKind::TopologyRunner,
        description: "Weir's topology runner: Kafka in, operators (parse, extract, diff, threshold, emit), Kafka out",
        params: vec![
            required("file", "Topology file (YAML)", ParamKind::Path),
            param(
                "replicas",
                "Runner processes sharing the input's partitions as one consumer group",
                ParamKind::Int { min: 1, max: 32 },
                Some("1"),
            ),
            param(
                "params",
                "Topology parameters, a YAML mapping such as `{threshold: 60, rate_topic: rates}`",
                ParamKind::Mapping,
                None,
            ),
            kafka_need(),
            cpu("100m"),
            image(WEIR_IMAGE),
        ],
        ports: vec![PortDef {
            name: "http",
            container_port: 9464,
            protocol: Protocol::Http,
        }],
        needs: vec![Need {
            param: "kafka",
            service: ServiceKind::Kafka,
            when: None,
        }],
        readiness: Readiness::Http { path: "/status" },
    }
}

fn chart_server() -> ServiceDefinition {
    ServiceDefinition {
        kind: ServiceKind::ChartServer,
        description: "Weir's live chart server: windows fed from Kafka topics or with Visdom's HTTP protocol, PNG/SVG snapshots",
        params: vec![
            param(
                "windows",
                "Windows fed from Kafka, a YAML list of `{topic, y, x, title, kind: line|markers|bar, x_label, y_label, when}` (`when: false` leaves a window out)",
                ParamKind::Windows,
                None,
            ),
            param(
                "retention",
                "Points kept per series",
                ParamKind::Int { min: 10, max: 10_000_000 },
                Some("10000"),
            ),
            param(
                "kafka",
                "Kafka instance feeding the windows; one is started when windows are given without it",
                ParamKind::Instance { service: ServiceKind::Kafka },
                None,
            ),
            cpu("100m"),
            image(WEIR_IMAGE),
        ],
        ports: vec![PortDef {
            name: "http",
            container_port: 8097,
            protocol: Protocol::Http,
        }],
        needs: vec![Need {
            param: "kafka",
            service: ServiceKind::Kafka,
            when: Some(Condition::IsSet("windows")),
        }],
        readiness: Readiness::Http { path: "/api/health" },
    }
}

fn http_source() -> ServiceDefinition {
    ServiceDefinition {
        kind: ServiceKind::HttpSource,
        description: "Polls a URL every interval and publishes each response body to a Kafka topic",
        params: vec![
            required("url", "URL to poll", ParamKind::Url),
            required("topic", "Kafka topic to publish to", ParamKind::String),
            param(
                "interval",
                "Time between two polls",
                ParamKind::Duration,
                Some("5s"),
            ),
            fixed_key(),
            key_pointer(),
            kafka_need(),
            cpu("50m"),
            image(WEIR_IMAGE),
        ],
        ports: vec![status_port()],
        needs: vec![Need {
            param: "kafka",
            service: ServiceKind::Kafka,
            when: None,
        }],
        readiness: Readiness::Http { path: "/status" },
    }
}

fn replay_source() -> ServiceDefinition {
    ServiceDefinition {
        kind: ServiceKind::ReplaySource,
        description: "Publishes recorded documents (JSON Lines or CSV) to a Kafka topic at a chosen pace, labelled as a replay",
        params: vec![
            required("file", "Recording to replay", ParamKind::Path),
            required("topic", "Kafka topic to publish to", ParamKind::String),
            param(
                "interval",
                "Pause between two documents",
                ParamKind::Duration,
                Some("1s"),
            ),
            param(
                "repeat",
                "Start over after the last document",
                ParamKind::Bool,
                Some("false"),
            ),
            param(
                "change_events",
                "The recording holds Debezium change events: key each by its table's primary key, as `TABLE=COLUMN` pairs separated by commas (a composite key's columns joined by `+`), e.g. `members=member_id,claims=claim_id`; not with `key` or `key_pointer`",
                ParamKind::String,
                None,
            ),
            fixed_key(),
            key_pointer(),
            kafka_need(),
            cpu("50m"),
            image(WEIR_IMAGE),
        ],
        ports: vec![status_port()],
        needs: vec![Need {
            param: "kafka",
            service: ServiceKind::Kafka,
            when: None,
        }],
        readiness: Readiness::Http { path: "/status" },
    }
}

/// A source's key for every document: all of them go, in order, to one partition.
fn fixed_key() -> ParamDef {
    param(
        "key",
        "Message key of every document (e.g. `BTC-CNY`); all go, in order, to one partition",
        ParamKind::String,
        None,
    )
}

/// A source's key taken from each document.
fn key_pointer() -> ParamDef {
    param(
        "key_pointer",
        "Key each document by the value at this JSON pointer (e.g. `/data/base`): documents of one key go, in order, to one partition; not with `key`",
        ParamKind::String,
        None,
    )
}

/// A source's `/status` (JSON: state, published, failed attempts, last error).
fn status_port() -> PortDef {
    PortDef {
        name: "http",
        container_port: 8080,
        protocol: Protocol::Http,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_valid_and_every_need_names_a_catalog_service() {
        for service in services() {
            service
                .validate(&[])
                .map(|_| ())
                .or_else(|errors| {
                    // Only missing required parameters may fail with no input.
                    let all_missing = errors
                        .iter()
                        .all(|e| matches!(e, crate::service::ParamError::Missing { .. }));
                    if all_missing {
                        Ok(())
                    } else {
                        Err(errors)
                    }
                })
                .unwrap();
            for need in &service.needs {
                assert!(
                    service.params.iter().any(|p| p.name == need.param),
                    "{} finds its {} through a parameter `{}` it does not have",
                    service.kind,
                    need.service,
                    need.param
                );
            }
        }
    }
}
